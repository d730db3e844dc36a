package backup_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// Five sets in two repositories, three full chains: keeping two removes
// the oldest chain, the sets that needed it, and the blob revision that only
// those sets listed; what remains verifies and restores.
func TestGoForget(t *testing.T) {
	dir := t.TempDir()
	a, b := newGoStore(t, dir, "a", true), newGoStore(t, dir, "b", false)
	specs := []backup.Spec{a.spec, b.spec}
	var sets []*backup.Manifest
	step := func(tid txn.TID, full bool) {
		a.commit(t, tid, "a")
		b.commit(t, tid, "b")
		m, err := backup.Backup(specs, map[string]txn.TID{"a": tid, "b": tid}, backup.Options{Now: t0, Full: full})
		require.NoError(t, err)
		sets = append(sets, m)
	}
	step(0x0200, false) // full
	step(0x0300, false) // incremental
	// A pack removed the first blob revision from blob_dir: later sets
	// do not list it, so only the first chain needs it.
	firstBlob := sets[0].Storage("a").Blobs.Files[0].Path
	require.NoError(t, os.Remove(filepath.Join(a.spec.BlobDir, filepath.FromSlash(firstBlob))))
	step(0x0400, true)  // full
	step(0x0500, false) // incremental
	step(0x0600, true)  // full
	repos := []string{a.spec.Repository, b.spec.Repository}
	stamp := func(i int) string { return sets[i].Stamp }

	// Dry run: the plan, nothing removed.
	plan, err := backup.Forget(repos, 2, false, nil, nil)
	require.NoError(t, err)
	require.Equal(t, []string{stamp(0), stamp(1)}, plan.Sets)
	ra := plan.Repos[0]
	require.Equal(t, []string{stamp(2), stamp(4)}, ra.KeptChains)
	require.Equal(t, []string{
		stamp(0) + ".dat", stamp(0) + ".fs", stamp(0) + ".tidstorage.json",
		stamp(1) + ".deltafs", stamp(1) + ".tidstorage.json",
	}, ra.Files)
	require.Equal(t, []string{firstBlob}, ra.Blobs)
	require.Positive(t, ra.Bytes)
	require.Empty(t, plan.Repos[1].Blobs)
	require.FileExists(t, filepath.Join(a.spec.Repository, stamp(0)+".fs"))

	_, err = backup.Forget(repos, 2, true, nil, nil)
	require.NoError(t, err)
	for _, repo := range repos {
		got, err := backup.Sets(repo)
		require.NoError(t, err)
		require.Equal(t, []string{stamp(2), stamp(3), stamp(4)}, got)
		require.NoFileExists(t, filepath.Join(repo, stamp(0)+".fs"))
		require.NoFileExists(t, filepath.Join(repo, backup.RepoLockName))
	}
	require.NoFileExists(t, filepath.Join(a.spec.Repository, "blobs", filepath.FromSlash(firstBlob)))
	require.NoDirExists(t, filepath.Join(a.spec.Repository, "blobs", filepath.Dir(filepath.FromSlash(firstBlob))), "emptied directories go")
	for _, r := range verifyAll(t, repos, backup.VerifyOptions{ReadData: true}) {
		require.True(t, r.OK(), "%s: %v", r.Stamp, r.Problems)
	}
	m, err := backup.FindSet(repos, stamp(2))
	require.NoError(t, err)
	rs, err := backup.Restore(m, filepath.Join(dir, "out"), backup.RestoreOptions{})
	require.NoError(t, err)
	require.Equal(t, a.b.Bytes()[:m.Storage("a").Size], readFile(t, rs[0].DataFS))

	// Nothing more to remove; keep must be at least 1; a held lock stops it.
	plan, err = backup.Forget(repos, 2, true, nil, nil)
	require.NoError(t, err)
	require.Empty(t, plan.Sets)
	require.Empty(t, plan.Repos[0].Files)
	_, err = backup.Forget(repos, 0, false, nil, nil)
	require.ErrorContains(t, err, "at least the newest full chain")
	l, err := backup.LockRepository(b.spec.Repository, "backup", nil)
	require.NoError(t, err)
	defer l.Unlock()
	_, err = backup.Forget(repos, 1, true, nil, nil)
	require.ErrorIs(t, err, backup.ErrLocked)
	require.FileExists(t, filepath.Join(a.spec.Repository, stamp(2)+".fs"))
}

// A forget never removes files a restore or verify is reading: the readers'
// lock (shared for them, exclusive for forget) refuses whichever comes
// second, without waiting, and says who holds it.
func TestGoForgetAndReadersExcludeEachOther(t *testing.T) {
	dir := t.TempDir()
	a := newGoStore(t, dir, "a", false)
	for i, full := range []bool{false, true} {
		tid := txn.TID(0x0200 + 0x100*i)
		a.commit(t, tid, "a")
		_, err := backup.Backup([]backup.Spec{a.spec}, map[string]txn.TID{"a": tid}, backup.Options{Now: t0, Full: full})
		require.NoError(t, err)
	}
	repos := []string{a.spec.Repository}
	stamps, err := backup.Sets(a.spec.Repository)
	require.NoError(t, err)
	m, err := backup.FindSet(repos, stamps[0])
	require.NoError(t, err)

	// A reader holds the lock (as a running restore does).
	f, err := os.OpenFile(filepath.Join(a.spec.Repository, backup.ReadersLockName), os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_SH))
	_, err = backup.Forget(repos, 1, true, nil, nil)
	require.ErrorIs(t, err, backup.ErrLocked)
	require.ErrorContains(t, err, "a restore or verify is reading it")
	require.FileExists(t, filepath.Join(a.spec.Repository, stamps[0]+".fs"), "nothing removed")
	plan, err := backup.Forget(repos, 1, false, nil, nil)
	require.NoError(t, err, "a dry run only reads")
	require.Equal(t, []string{stamps[0]}, plan.Sets)
	_, err = backup.Restore(m, filepath.Join(dir, "shared"), backup.RestoreOptions{})
	require.NoError(t, err, "readers share the lock")

	// A forget holds it: restore and verify refuse.
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
	_, err = backup.Restore(m, filepath.Join(dir, "out"), backup.RestoreOptions{})
	require.ErrorIs(t, err, backup.ErrLocked)
	require.ErrorContains(t, err, "a forget is removing sets from it")
	rep := backup.Verify(repos, stamps[:1], backup.VerifyOptions{})
	require.False(t, rep[0].OK())
	require.Contains(t, rep[0].Problems[0], "a forget is removing sets")
	f.Close()

	_, err = backup.Forget(repos, 1, true, nil, nil)
	require.NoError(t, err)
	require.NoFileExists(t, filepath.Join(a.spec.Repository, stamps[0]+".fs"))
}
