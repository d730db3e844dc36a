package backup_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

func hexTID(t *testing.T, s string) txn.TID {
	t.Helper()
	v, err := txn.ParseTID(s, txn.FormatHex)
	require.NoError(t, err)
	return v
}

// repozo runs the real repozo from the venv.
func repozo(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(zeotest.Venv(t), "bin", "repozo"), args...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "repozo %v:\n%s", args, out)
	return string(out)
}

type fixture struct {
	dir          string
	a, b         backup.Spec
	wa, wb       zeotest.FSWritten
	aBlobs       string
	restoreCount int
}

func newFixture(t *testing.T) *fixture {
	zeotest.Venv(t)
	dir := t.TempDir()
	f := &fixture{dir: dir}
	for _, n := range []string{"a", "b", "repo-a", "repo-b"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, n), 0o755))
	}
	f.aBlobs = filepath.Join(dir, "a", "blobs")
	f.a = backup.Spec{ID: "A", Label: "a", DataFS: filepath.Join(dir, "a", "Data.fs"), BlobDir: f.aBlobs, Repository: filepath.Join(dir, "repo-a")}
	f.b = backup.Spec{ID: "B", Label: "b", DataFS: filepath.Join(dir, "b", "Data.fs"), Repository: filepath.Join(dir, "repo-b")}
	f.wa = zeotest.WriteFS(t, "--fs", f.a.DataFS, "--blob-dir", f.aBlobs, "--count", "3")
	f.wb = zeotest.WriteFS(t, "--fs", f.b.DataFS, "--count", "3", "--big", "300000")
	return f
}

// checkRepozo restores a repository with the real repozo and checks with
// ZODB that the storage ends at want with counter value.
func (f *fixture) checkRepozo(t *testing.T, repo, stamp, want string, value int) {
	t.Helper()
	f.restoreCount++
	out := filepath.Join(f.dir, "repozo-out", filepath.Base(repo)+"-"+string(rune('0'+f.restoreCount))+".fs")
	require.NoError(t, os.MkdirAll(filepath.Dir(out), 0o755))
	args := []string{"-R", "-r", repo, "-o", out}
	if stamp != "" {
		args = append(args, "-D", stamp)
	}
	repozo(t, args...)
	repozo(t, "-V", "-r", repo)
	r := zeotest.ReadFS(t, "--fs", out)
	require.Equal(t, want, r.Last, "repozo -R %s", repo)
	require.NotNil(t, r.Value)
	require.Equal(t, value, *r.Value)
}

func TestBackupRealRepozoFullIncrementalUnchanged(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	// The point keeps A's second write (its third is after the point) and
	// all of B.
	point := map[string]txn.TID{"A": hexTID(t, f.wa.New[1]), "B": hexTID(t, f.wb.New[2]), "other": 42}
	var log strings.Builder
	m, err := backup.Backup([]backup.Spec{f.a, f.b}, point, backup.Options{Now: now, Log: &log, PointSource: "test"})
	require.NoError(t, err)
	require.Equal(t, "2026-11-24-12-00-00", m.Stamp)
	require.Len(t, m.Storages, 2)
	ea, eb := m.Storages[0], m.Storages[1]
	require.Equal(t, "full", ea.Kind)
	require.Equal(t, "full", eb.Kind)
	require.Equal(t, f.wa.New[1], ea.KeptTID)
	require.True(t, ea.Exact)
	require.Len(t, ea.Files, 1)
	require.Equal(t, "2026-11-24-12-00-00.fs", ea.Files[0].Name)
	require.NotEmpty(t, ea.Files[0].SHA256)
	// Blobs: the revisions up to the point only.
	require.NotNil(t, ea.Blobs)
	require.Equal(t, "bushy", ea.Blobs.Layout)
	require.Len(t, ea.Blobs.Files, 2)
	require.Empty(t, ea.Blobs.Missing)
	for _, b := range ea.Blobs.Files {
		require.FileExists(t, filepath.Join(f.a.Repository, "blobs", b.Path))
		require.NotContains(t, b.Path, f.wa.New[2])
	}
	require.Contains(t, log.String(), "full backup: no previous backup")
	// Same manifest in both repositories.
	for _, repo := range []string{f.a.Repository, f.b.Repository} {
		got, err := backup.ReadManifest(repo, m.Stamp)
		require.NoError(t, err)
		require.Equal(t, m.Point, got.Point)
		require.Len(t, got.Storages, 2)
	}
	f.checkRepozo(t, f.a.Repository, "", f.wa.New[1], 2)
	f.checkRepozo(t, f.b.Repository, "", f.wb.New[2], 3)

	// More commits, a new point, a backup in the same second: the stamp
	// moves on (repozo would lose a same-second incremental).
	wa2 := zeotest.WriteFS(t, "--fs", f.a.DataFS, "--blob-dir", f.aBlobs, "--count", "2")
	wb2 := zeotest.WriteFS(t, "--fs", f.b.DataFS, "--count", "2")
	point2 := map[string]txn.TID{"A": hexTID(t, wa2.New[1]), "B": hexTID(t, wb2.New[0])}
	m2, err := backup.Backup([]backup.Spec{f.a, f.b}, point2, backup.Options{Now: now})
	require.NoError(t, err)
	require.Equal(t, "2026-11-24-12-00-01", m2.Stamp)
	ea2, eb2 := m2.Storages[0], m2.Storages[1]
	require.Equal(t, "incremental", ea2.Kind)
	require.Equal(t, "incremental", eb2.Kind)
	require.Len(t, ea2.Files, 2)
	require.Equal(t, ea.Files[0], ea2.Files[0])
	require.Equal(t, ea.Size, ea2.Files[1].Start)
	require.Equal(t, "2026-11-24-12-00-00.dat", ea2.Dat)
	require.Len(t, ea2.Blobs.Files, 5) // 3 + 2 revisions
	require.Equal(t, 3, ea2.Blobs.Copied)
	f.checkRepozo(t, f.a.Repository, "", wa2.New[1], 5)
	f.checkRepozo(t, f.b.Repository, "", wb2.New[0], 4)
	// repozo -D at the first set still gives the first point.
	f.checkRepozo(t, f.a.Repository, m.Stamp, f.wa.New[1], 2)

	// Nothing new up to the point: no data file and no new set; the
	// newest set is returned.
	m3, err := backup.Backup([]backup.Spec{f.a, f.b}, point2, backup.Options{Now: now.Add(time.Hour)})
	require.NoError(t, err)
	require.Equal(t, m2.Stamp, m3.SameAs)
	require.Equal(t, ea2.Files, m3.Storages[0].Files)
	stamps, err := backup.Sets(f.a.Repository)
	require.NoError(t, err)
	require.Equal(t, []string{m.Stamp, m2.Stamp}, stamps)
	f.checkRepozo(t, f.b.Repository, m3.Stamp, wb2.New[0], 4)

	// Restore each set with tidstorage, and read it back with ZODB.
	for _, tc := range []struct {
		m        *backup.Manifest
		a, b     string
		av, bv   int
		blob     string
		blobsOut int
	}{
		{m, f.wa.New[1], f.wb.New[2], 2, 3, "blob 2", 2},
		{m2, wa2.New[1], wb2.New[0], 5, 4, "blob 5", 5},
	} {
		got, err := backup.FindSet([]string{f.a.Repository}, tc.m.Stamp)
		require.NoError(t, err)
		to := filepath.Join(f.dir, "restore-"+tc.m.Stamp)
		rs, err := backup.Restore(got, to, backup.RestoreOptions{})
		require.NoError(t, err)
		require.Len(t, rs, 2)
		require.Equal(t, filepath.Join(to, "a", "Data.fs"), rs[0].DataFS)
		require.Equal(t, filepath.Join(to, "a", "blobs"), rs[0].BlobDir)
		require.Equal(t, tc.blobsOut, rs[0].Blobs)
		ra := zeotest.ReadFS(t, "--fs", rs[0].DataFS, "--blob-dir", rs[0].BlobDir)
		require.Equal(t, tc.a, ra.Last)
		require.Equal(t, tc.av, *ra.Value)
		require.NotNil(t, ra.Blob)
		require.Equal(t, tc.blob, *ra.Blob)
		require.True(t, rs[0].Index)
		checkIndex(t, rs[1].DataFS)
		rb := zeotest.ReadFS(t, "--fs", rs[1].DataFS)
		require.Equal(t, tc.b, rb.Last)
		require.Equal(t, tc.bv, *rb.Value)
		// Restoring again over it is refused, then allowed with Force.
		_, err = backup.Restore(got, to, backup.RestoreOptions{})
		require.ErrorContains(t, err, "refusing to overwrite")
		_, err = backup.Restore(got, to, backup.RestoreOptions{Force: true})
		require.NoError(t, err)
	}
	// The newest set is the default.
	latest, err := backup.FindSet([]string{f.b.Repository}, "")
	require.NoError(t, err)
	require.Equal(t, m2.Stamp, latest.Stamp)

	// --full starts a new chain.
	m4, err := backup.Backup([]backup.Spec{f.a, f.b}, point2, backup.Options{Now: now.Add(2 * time.Hour), Full: true})
	require.NoError(t, err)
	require.Equal(t, "full", m4.Storages[1].Kind)
	require.Len(t, m4.Storages[1].Files, 1)
	f.checkRepozo(t, f.b.Repository, "", wb2.New[0], 4)
}

// A Data.fs rewritten under the chain (as a pack does) gets a full backup,
// and restore catches a damaged repository file.
func TestBackupRewrittenSourceAndDamagedRepository(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	point := map[string]txn.TID{"B": hexTID(t, f.wb.New[2])}
	_, err := backup.Backup([]backup.Spec{f.b}, point, backup.Options{Now: now})
	require.NoError(t, err)

	// Flip a byte inside a pickle of the source: still a valid file, but
	// not the bytes backed up.
	data, err := os.ReadFile(f.b.DataFS)
	require.NoError(t, err)
	c, err := fsdata.CutOffset(f.b.DataFS, hexTID(t, f.wb.New[1]))
	require.NoError(t, err)
	data[c.Offset-100] ^= 0x01
	require.NoError(t, os.WriteFile(f.b.DataFS, data, 0o644))
	var log strings.Builder
	m, err := backup.Backup([]backup.Spec{f.b}, point, backup.Options{Now: now, Log: &log})
	require.NoError(t, err)
	require.Equal(t, "full", m.Storages[0].Kind)
	require.Contains(t, log.String(), "changed since the last backup")

	// Damage the repository's full backup: restore names the file.
	name := filepath.Join(f.b.Repository, m.Storages[0].Files[0].Name)
	flipByte(t, name)
	_, err = backup.Restore(m, filepath.Join(f.dir, "out"), backup.RestoreOptions{})
	require.ErrorContains(t, err, name+": sha256")
	_, err = os.Stat(filepath.Join(f.dir, "out", "b", "Data.fs"))
	require.True(t, os.IsNotExist(err), "no output on failure")
}

// The point must name every storage, and the file must reach the point.
func TestBackupRefusals(t *testing.T) {
	f := newFixture(t)
	_, err := backup.Backup([]backup.Spec{f.a, f.b}, map[string]txn.TID{"A": 1}, backup.Options{})
	require.ErrorContains(t, err, "storage B: not in the point")
	_, err = backup.Backup([]backup.Spec{f.b}, map[string]txn.TID{"B": hexTID(t, f.wb.New[2]) + 1}, backup.Options{})
	require.ErrorContains(t, err, "is before the point's TID")
	shared := f.b
	shared.ID = "C"
	_, err = backup.Backup([]backup.Spec{f.b, shared}, map[string]txn.TID{"B": 1, "C": 1}, backup.Options{})
	require.ErrorContains(t, err, "share the repository")
}
