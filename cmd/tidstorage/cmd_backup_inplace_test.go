package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
)

// restore --in-place with a real ZEO server: refused while runzeo holds
// the storage, then, with the server stopped, the live Data.fs and blob
// directory go back to the set (the replaced ones kept aside) and the
// server starts again on them.
func TestRestoreInPlaceRealZEO(t *testing.T) {
	zeotest.Venv(t)
	dir := t.TempDir()
	live := filepath.Join(dir, "var")
	require.NoError(t, os.MkdirAll(live, 0o755))
	fs, blobs := filepath.Join(live, "1.fs"), filepath.Join(live, "1.blobs")
	w := zeotest.WriteFS(t, "--fs", fs, "--blob-dir", blobs, "--count", "3")
	cfg := filepath.Join(dir, "t.hcl")
	require.NoError(t, os.WriteFile(cfg, []byte(`status_file = "tidstorage.status"
storage "1" {
  data_fs    = "var/1.fs"
  blob_dir   = "var/1.blobs"
  repository = "repo"
}
`), 0o644))
	r := run(t, "backup", "-c", cfg, "--progress", "0", "--tid", "1="+w.New[1])
	require.Equal(t, 0, r.code, r.stderr)

	before, err := os.ReadFile(fs)
	require.NoError(t, err)
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Dir: live, Blobs: true})
	r = run(t, "restore", "-c", cfg, "--in-place", "--force", "--progress", "0")
	require.Equal(t, 1, r.code, r.stdout)
	require.Contains(t, r.stderr, "1.fs.lock is held")
	// A cut preview works on the live system and names the holder.
	r = run(t, "cut", "-c", cfg, "--dry-run", "--tid", "1="+w.New[1])
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "in use (the file as of now; the cut itself will refuse until it stops)")
	require.Contains(t, r.stdout, "dry run: nothing was changed")
	after, err := os.ReadFile(fs)
	require.NoError(t, err)
	require.Equal(t, before, after, "nothing written while ZEO runs")
	srv.Stop()

	r = run(t, "restore", "-c", cfg, "--in-place", "--progress", "0")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "refusing to overwrite existing files (use --force)")
	r = run(t, "restore", "-c", cfg, "--in-place", "--force", "--progress", "0")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "1: kept the replaced "+fs+".before-restore-")
	require.Contains(t, r.stdout, "next: start the ZEO server(s) of these storages again")
	require.Contains(t, r.stdout, "move its status file "+filepath.Join(dir, "tidstorage.status")+" aside")
	got := zeotest.ReadFS(t, "--fs", fs, "--blob-dir", blobs)
	require.Equal(t, w.New[1], got.Last)
	require.Equal(t, "blob 2", *got.Blob)
	aside, err := filepath.Glob(fs + ".before-restore-*")
	require.NoError(t, err)
	require.Len(t, aside, 1)
	require.Equal(t, w.New[2], zeotest.ReadFS(t, "--fs", aside[0]).Last, "the replaced file is intact")
	srv.Restart()
	srv.Stop()
}
