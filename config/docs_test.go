package config

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// docs/config.md must document every attribute and block the parser knows.
func TestDocsCoverEverySetting(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	require.NoError(t, err)
	for _, schema := range schemas() {
		for _, a := range schema.Attributes {
			require.Contains(t, string(doc), "| `"+a.Name+"` |", "docs/config.md lacks a table row for %q", a.Name)
		}
		for _, b := range schema.Blocks {
			require.True(t, strings.Contains(string(doc), "`"+b.Type+"`") || strings.Contains(string(doc), "`"+b.Type+" \""),
				"docs/config.md does not mention block %q", b.Type)
		}
	}
	// Defaults quoted in the docs.
	for _, d := range []string{DefaultClassicListen, DefaultAdminListen, `"30s"`, `"5m"`, `"10m"`, `"64MiB"`, `"64KiB"`} {
		require.Contains(t, string(doc), d)
	}
}
