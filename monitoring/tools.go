//go:build tools

package monitoring

// The Pushgateway the tests push the backup commands' outcome to is built
// from its module (pushgateway_test.go); this import keeps it in go.mod.
import _ "github.com/prometheus/pushgateway"
