package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Config check warns about paths that cannot work as
// written, at the attribute, and not about those that can.
func TestCheckPaths(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Data.fs"), nil, 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "blobs"), 0o755))
	src := `status_file = "nodir/tidstorage.status"
journal_file = "tidstorage.journal"
log { file = "logs/tidstorage.log" }
storage "main" {
  data_fs    = "Data.fs"
  blob_dir   = "blobs"
  repository = "not/yet/made"
}
storage "other" {
  data_fs  = "missing.fs"
  blob_dir = "Data.fs"
}
`
	cfg, err := Parse([]byte(src), filepath.Join(dir, "t.hcl"))
	require.NoError(t, err)
	var got []string
	for _, d := range cfg.CheckPaths() {
		got = append(got, FormatDiagnostic(d))
	}
	text := strings.Join(got, "\n")
	require.Len(t, got, 4, text)
	require.Contains(t, text, "t.hcl:1:15: warning: Directory does not exist")
	require.Contains(t, text, "the directory of status_file")
	require.Contains(t, text, "the directory of log file")
	require.Contains(t, text, "t.hcl:3:14: warning: Directory does not exist")
	require.Contains(t, text, "t.hcl:10:14: warning: Path does not exist")
	require.Contains(t, text, "t.hcl:11:14: warning: Not a directory")
	require.NotContains(t, text, "repository", "repositories are created on first use")
	require.NotContains(t, text, "journal_file", "its directory exists")
}
