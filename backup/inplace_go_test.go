package backup_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// Restore in place: the live files of every storage are replaced by the
// set's, the replaced Data.fs, .index and blob directory are kept aside,
// and nothing is written while any storage is held by a ZODB program.
func TestGoRestoreInPlace(t *testing.T) {
	a, b, m, opts := inPlaceSite(t)
	liveA, liveB := readFile(t, a.spec.DataFS), readFile(t, b.spec.DataFS)
	require.NoError(t, os.WriteFile(a.spec.DataFS+".index", []byte("live index"), 0o644))
	opts.Force = false
	_, err := backup.Restore(m, "", opts)
	require.ErrorContains(t, err, "refusing to overwrite existing files (use --force)")
	opts.Force = true
	lock, err := backup.LockDataFS(b.spec.DataFS) // b's ZEO is still running
	require.NoError(t, err)
	_, err = backup.Restore(m, "", opts)
	require.ErrorIs(t, err, backup.ErrInUse)
	require.NoError(t, lock.Unlock())
	require.Equal(t, liveA, readFile(t, a.spec.DataFS), "a untouched while b was in use")
	require.NoFileExists(t, a.spec.DataFS+".before-restore-X")

	rs, err := backup.Restore(m, "", opts)
	require.NoError(t, err)
	require.Equal(t, a.b.Bytes()[:m.Storage("a").Size], readFile(t, a.spec.DataFS))
	require.Equal(t, b.b.Bytes()[:m.Storage("b").Size], readFile(t, b.spec.DataFS))
	require.Equal(t, liveA, readFile(t, a.spec.DataFS+".before-restore-X"))
	require.Equal(t, liveB, readFile(t, b.spec.DataFS+".before-restore-X"))
	require.Equal(t, "live index", string(readFile(t, a.spec.DataFS+".index.before-restore-X")))
	require.NotEqual(t, "live index", string(readFile(t, a.spec.DataFS+".index")))
	require.Equal(t, []string{a.spec.DataFS + ".before-restore-X", a.spec.DataFS + ".index.before-restore-X", a.spec.BlobDir + ".before-restore-X"}, rs[0].Aside)
	// The blob directory is the set's: the later revision is only aside.
	require.FileExists(t, filepath.Join(a.spec.BlobDir, bushyBlobPath(1, 0x0200)))
	require.NoFileExists(t, filepath.Join(a.spec.BlobDir, bushyBlobPath(2, 0x0300)))
	require.FileExists(t, filepath.Join(a.spec.BlobDir+".before-restore-X", bushyBlobPath(2, 0x0300)))
	require.NoDirExists(t, a.spec.BlobDir+".part")

	// The same suffix again would replace what was kept: refused.
	restoredA := readFile(t, a.spec.DataFS)
	_, err = backup.Restore(m, "", opts)
	require.ErrorContains(t, err, "already exists: not replacing it")
	require.Equal(t, restoredA, readFile(t, a.spec.DataFS), "nothing moved aside when one name is taken")
	require.DirExists(t, a.spec.BlobDir)
	require.NoDirExists(t, a.spec.BlobDir+".part")
	require.NoFileExists(t, a.spec.DataFS+".part")
}

// A site is restored whole or not at all: when the second storage's chain
// is damaged, the first storage's live files are untouched and nothing is
// left beside them.
func TestGoRestoreInPlaceAllOrNothing(t *testing.T) {
	a, b, m, opts := inPlaceSite(t)
	liveA := readFile(t, a.spec.DataFS)
	flipByte(t, filepath.Join(b.spec.Repository, m.Storage("b").Files[0].Name))
	_, err := backup.Restore(m, "", opts)
	require.ErrorContains(t, err, "restore: storage b: ")
	require.Equal(t, liveA, readFile(t, a.spec.DataFS))
	require.FileExists(t, filepath.Join(a.spec.BlobDir, bushyBlobPath(2, 0x0300)))
	for _, p := range []string{a.spec.DataFS + ".part", a.spec.BlobDir + ".part", a.spec.DataFS + ".before-restore-X", b.spec.DataFS + ".part"} {
		require.NoFileExists(t, p)
		require.NoDirExists(t, p)
	}
	// The lock of a was released: it can be cut, backed up, restored.
	l, err := backup.LockDataFS(a.spec.DataFS)
	require.NoError(t, err)
	require.NoError(t, l.Unlock())
}

// inPlaceSite is two live storages (a with blobs) backed up as one set,
// then both written after it; the options restore the set in place, forced,
// keeping the replaced files with the suffix .before-restore-X.
func inPlaceSite(t *testing.T) (a, b *goStore, m *backup.Manifest, opts backup.RestoreOptions) {
	t.Helper()
	dir := t.TempDir()
	a, b = newGoStore(t, dir, "a", true), newGoStore(t, dir, "b", false)
	a.commit(t, 0x0200, "a1")
	m, err := backup.Backup([]backup.Spec{a.spec, b.spec}, map[string]txn.TID{"a": 0x0200, "b": 0x0100}, backup.Options{Now: t0})
	require.NoError(t, err)
	// Life goes on after the set, then the site must go back to it.
	a.commit(t, 0x0300, "a2")
	b.commit(t, 0x0300, "b1")
	live := map[string]backup.Spec{"a": a.spec, "b": b.spec}
	opts = backup.RestoreOptions{
		Force: true,
		Aside: ".before-restore-X",
		Dest: func(e *backup.StorageEntry) (string, string, error) {
			return live[e.ID].DataFS, live[e.ID].BlobDir, nil
		},
	}
	return a, b, m, opts
}
