package classic

import (
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/tracker"
)

// The original daemon's scenarios again, against the real tracker as the
// daemon runs it for the classic endpoint (configured storages, Bootstrap
// with no proxied values): the same DUMP results as the reference backend
// that copies the original algorithm.
func trackerFactory(t *testing.T, configured []string) Backend {
	s := tracker.NewService(tracker.ServiceConfig{Config: tracker.Config{Storages: configured, ClassicTimeout: time.Hour}})
	s.Bootstrap(nil, true)
	return s
}

func TestScenariosTracker(t *testing.T) { runScenarios(t, trackerFactory) }

func TestBootstrapTracker(t *testing.T) { runBootstrapScenario(t, trackerFactory) }
