package backup_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// The set's blobs are the committed revisions up to the kept TID: tmp/ and
// later revisions stay out, a blob record without its file is reported, a
// revision already in the pool is not copied again.
func TestGoBlobSelection(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", true)
	s.commit(t, 0x0200, "x")
	s.commit(t, 0x0300, "y")
	s.commit(t, 0x0400, "z")
	tmp := filepath.Join(s.spec.BlobDir, "tmp", "0x0250.blob")
	require.NoError(t, os.MkdirAll(filepath.Dir(tmp), 0o755))
	require.NoError(t, os.WriteFile(tmp, []byte("uncommitted"), 0o644))
	require.NoError(t, os.Remove(filepath.Join(s.spec.BlobDir, bushyBlobPath(2, 0x0300))))
	var log strings.Builder
	m, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x0300}, backup.Options{Now: t0, Log: &log})
	require.NoError(t, err)
	b := m.Storages[0].Blobs
	require.Equal(t, []backup.BlobFile{{Path: bushyBlobPath(1, 0x0200), Size: 6}}, b.Files)
	require.Equal(t, int64(6), b.Bytes)
	require.Equal(t, []string{"0000000000000002 0000000000000300"}, b.Missing)
	require.Contains(t, log.String(), "1 blob record(s) have no blob file")
	require.NoDirExists(t, filepath.Join(s.spec.Repository, "blobs", "tmp"))

	m, err = backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x0400}, backup.Options{Now: t0})
	require.NoError(t, err)
	require.Len(t, m.Storages[0].Blobs.Files, 2)
	require.Equal(t, 1, m.Storages[0].Blobs.Copied)
	st, err := os.Stat(filepath.Join(s.spec.Repository, "blobs", bushyBlobPath(3, 0x0400)))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o444), st.Mode().Perm(), "pool files are read-only")
}

// The lawn layout is kept; a pool of another layout is refused; an unknown
// layout is an error.
func TestGoBlobLayouts(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", true)
	s.lawn = true
	require.NoError(t, os.WriteFile(filepath.Join(s.spec.BlobDir, ".layout"), []byte("lawn\n"), 0o644))
	s.commit(t, 0x0200, "x")
	m, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x0200}, backup.Options{Now: t0})
	require.NoError(t, err)
	require.Equal(t, "lawn", m.Storages[0].Blobs.Layout)
	require.Equal(t, []backup.BlobFile{{Path: "0x01/0x0200.blob", Size: 6}}, m.Storages[0].Blobs.Files)
	require.Empty(t, m.Storages[0].Blobs.Missing)
	rs, err := backup.Restore(m, filepath.Join(dir, "out"), backup.RestoreOptions{})
	require.NoError(t, err)
	require.Equal(t, "lawn\n", string(readFile(t, filepath.Join(rs[0].BlobDir, ".layout"))))

	require.NoError(t, os.WriteFile(filepath.Join(s.spec.BlobDir, ".layout"), []byte("bushy\n"), 0o644))
	_, err = backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x0200}, backup.Options{Now: t0})
	require.ErrorContains(t, err, `blobs/.layout says "lawn"`)
	require.NoError(t, os.WriteFile(filepath.Join(s.spec.BlobDir, ".layout"), []byte("meadow\n"), 0o644))
	_, err = backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x0200}, backup.Options{Now: t0})
	require.ErrorContains(t, err, `unknown layout "meadow"`)
}
