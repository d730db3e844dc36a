package backup_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// A blob record whose file is gone from blob_dir is reported.
func TestBackupReportsMissingBlobFile(t *testing.T) {
	f := newFixture(t)
	gone, err := filepath.Glob(filepath.Join(f.aBlobs, "0x00", "*", "*", "*", "*", "*", "*", "*", "0x"+f.wa.New[0]+".blob"))
	require.NoError(t, err)
	require.Len(t, gone, 1)
	require.NoError(t, os.Remove(gone[0]))
	var log strings.Builder
	m, err := backup.Backup([]backup.Spec{f.a}, map[string]txn.TID{"A": hexTID(t, f.wa.New[2])}, backup.Options{Log: &log})
	require.NoError(t, err)
	b := m.Storages[0].Blobs
	require.Len(t, b.Files, 2)
	require.Len(t, b.Missing, 1)
	require.True(t, strings.HasSuffix(b.Missing[0], " "+f.wa.New[0]), b.Missing[0])
	require.Contains(t, log.String(), "1 blob record(s) have no blob file")
}

// An FS21 file (Python 2 ZODB) is backed up and restored with its magic.
func TestBackupRestoreFS21(t *testing.T) {
	f := newFixture(t)
	data, err := os.ReadFile(f.b.DataFS)
	require.NoError(t, err)
	copy(data, "FS21")
	require.NoError(t, os.WriteFile(f.b.DataFS, data, 0o644))
	m, err := backup.Backup([]backup.Spec{f.b}, map[string]txn.TID{"B": hexTID(t, f.wb.New[1])}, backup.Options{Now: time.Now()})
	require.NoError(t, err)
	require.Equal(t, "FS21", m.Storages[0].Magic)
	rs, err := backup.Restore(m, filepath.Join(f.dir, "out"), backup.RestoreOptions{})
	require.NoError(t, err)
	got, err := os.ReadFile(rs[0].DataFS)
	require.NoError(t, err)
	require.Equal(t, data[:rs[0].Size], got)
	require.Equal(t, "FS21", string(got[:4]))
	require.False(t, rs[0].Index)
	require.NoFileExists(t, rs[0].DataFS+".index")
}

// A data file the ledger does not know (a run that died between the rename
// and the ledger line) would be joined by repozo -R: the next backup starts
// a new chain instead of extending it.
func TestBackupOrphanDataFileStartsNewChain(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	_, err := backup.Backup([]backup.Spec{f.b}, map[string]txn.TID{"B": hexTID(t, f.wb.New[0])}, backup.Options{Now: now})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(f.b.Repository, "2026-11-24-12-00-01.deltafs"), []byte("orphan"), 0o644))
	var log strings.Builder
	m, err := backup.Backup([]backup.Spec{f.b}, map[string]txn.TID{"B": hexTID(t, f.wb.New[2])}, backup.Options{Now: now, Log: &log})
	require.NoError(t, err)
	require.Equal(t, "2026-11-24-12-00-02", m.Stamp)
	require.Equal(t, "full", m.Storages[0].Kind)
	require.Contains(t, log.String(), "differs from its ledger")
	f.checkRepozo(t, f.b.Repository, "", f.wb.New[2], 3)
}

// With real ZODB and repozo: a flipped byte in a middle
// .deltafs makes the next backup start a new chain (saying why) instead of
// extending the damaged one, and real repozo restores that newest set.
func TestBackupDamagedMiddleDeltaStartsNewChain(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	_, err := backup.Backup([]backup.Spec{f.b}, map[string]txn.TID{"B": hexTID(t, f.wb.New[2])}, backup.Options{Now: now})
	require.NoError(t, err)
	var m *backup.Manifest
	for range 2 {
		w := zeotest.WriteFS(t, "--fs", f.b.DataFS, "--count", "1")
		m, err = backup.Backup([]backup.Spec{f.b}, map[string]txn.TID{"B": hexTID(t, w.New[0])}, backup.Options{Now: now})
		require.NoError(t, err)
		require.Equal(t, "incremental", m.Storages[0].Kind)
	}
	middle := filepath.Join(f.b.Repository, m.Storages[0].Files[1].Name)
	flipByte(t, middle)

	w := zeotest.WriteFS(t, "--fs", f.b.DataFS, "--count", "1")
	var log strings.Builder
	m, err = backup.Backup([]backup.Spec{f.b}, map[string]txn.TID{"B": hexTID(t, w.New[0])}, backup.Options{Now: now, Log: &log})
	require.NoError(t, err)
	require.Equal(t, "full", m.Storages[0].Kind)
	require.Contains(t, log.String(), "chain is damaged, not extending it: "+middle+": md5")
	f.checkRepozo(t, f.b.Repository, "", w.New[0], 6)
	rs, err := backup.Restore(m, filepath.Join(f.dir, "out"), backup.RestoreOptions{})
	require.NoError(t, err)
	r := zeotest.ReadFS(t, "--fs", rs[0].DataFS)
	require.Equal(t, w.New[0], r.Last)
}

// Retention on a repository of real ZODB files: after forget, real repozo
// still restores and verifies what is kept, and so does tidstorage.
func TestForgetThenRealRepozo(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	var last zeotest.FSWritten
	for i := range 3 {
		last = zeotest.WriteFS(t, "--fs", f.a.DataFS, "--blob-dir", f.aBlobs, "--count", "1")
		_, err := backup.Backup([]backup.Spec{f.a}, map[string]txn.TID{"A": hexTID(t, last.New[0])}, backup.Options{Now: now, Full: i != 1})
		require.NoError(t, err)
	}
	plan, err := backup.Forget([]string{f.a.Repository}, 1, true, nil, nil)
	require.NoError(t, err)
	require.Len(t, plan.Sets, 2)
	f.checkRepozo(t, f.a.Repository, "", last.New[0], 6)
	m, err := backup.FindSet([]string{f.a.Repository}, "")
	require.NoError(t, err)
	rs, err := backup.Restore(m, filepath.Join(f.dir, "out"), backup.RestoreOptions{})
	require.NoError(t, err)
	r := zeotest.ReadFS(t, "--fs", rs[0].DataFS, "--blob-dir", rs[0].BlobDir)
	require.Equal(t, last.New[0], r.Last)
	require.Equal(t, "blob 6", *r.Blob)
}

// Gzipped sets of real ZODB files: real repozo restores and verifies them
// (they are repozo -z files), and so does tidstorage.
func TestGzipSetsRealRepozo(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	_, err := backup.Backup([]backup.Spec{f.b}, map[string]txn.TID{"B": hexTID(t, f.wb.New[1])}, backup.Options{Now: now, Gzip: true})
	require.NoError(t, err)
	m, err := backup.Backup([]backup.Spec{f.b}, map[string]txn.TID{"B": hexTID(t, f.wb.New[2])}, backup.Options{Now: now, Gzip: true})
	require.NoError(t, err)
	require.Equal(t, "2026-11-24-12-00-01.deltafsz", m.Storages[0].Files[1].Name)
	f.checkRepozo(t, f.b.Repository, "", f.wb.New[2], 3)
	f.checkRepozo(t, f.b.Repository, "2026-11-24-12-00-00", f.wb.New[1], 2)
	rs, err := backup.Restore(m, filepath.Join(f.dir, "out"), backup.RestoreOptions{})
	require.NoError(t, err)
	require.Equal(t, f.wb.New[2], zeotest.ReadFS(t, "--fs", rs[0].DataFS).Last)
	for _, r := range backup.Verify([]string{f.b.Repository}, []string{m.Stamp}, backup.VerifyOptions{ReadData: true}) {
		require.True(t, r.OK(), "%v", r.Problems)
	}
}
