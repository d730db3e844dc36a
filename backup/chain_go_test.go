package backup_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/internal/txn"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// Full, incremental and unchanged sets of two storages, each restored to
// exactly the bytes of its point, with the ledger, the manifest and the
// blob pool as documented.
func TestGoBackupChainAndRestore(t *testing.T) {
	dir := t.TempDir()
	a, b := newGoStore(t, dir, "a", true), newGoStore(t, dir, "b", false)
	a.commit(t, 0x0200, "a1")
	a.commit(t, 0x0300, "a2")
	b.commit(t, 0x0250, "b1")
	specs := []backup.Spec{a.spec, b.spec}

	// Set 1: A at 0x0200 (its 0x0300 is after the point), B at its end.
	var log strings.Builder
	m1, err := backup.Backup(specs, map[string]txn.TID{"a": 0x0200, "b": 0x0250, "unrelated": 7}, backup.Options{Now: t0, Log: &log, PointSource: "test"})
	require.NoError(t, err)
	require.Equal(t, "2026-11-24-12-00-00", m1.Stamp)
	require.Equal(t, "test", m1.PointSource)
	require.Equal(t, "0000000000000200", m1.Point["a"])
	ea := m1.Storages[0]
	require.Equal(t, "full", ea.Kind)
	require.Equal(t, "0000000000000200", ea.KeptTID)
	require.True(t, ea.Exact)
	require.Equal(t, a.end(t, 0x0200), ea.Size)
	require.Equal(t, int64(len(a.b.Bytes())), ea.SourceSize)
	require.Equal(t, "0000000000000200", ea.LastTxn.TID)
	require.Equal(t, a.b.Pos[1], ea.LastTxn.Pos)
	require.Equal(t, "2026-11-24-12-00-00.dat", ea.Dat)
	require.Len(t, ea.Files, 1)
	full := a.b.Bytes()[:ea.Size]
	require.Equal(t, md5Hex(full), ea.Files[0].MD5)
	require.Equal(t, full, readFile(t, filepath.Join(a.spec.Repository, "2026-11-24-12-00-00.fs")))
	require.Equal(t, fmt.Sprintf("%s 0 %d %s\n", filepath.Join(a.spec.Repository, "2026-11-24-12-00-00.fs"), ea.Size, md5Hex(full)),
		string(readFile(t, filepath.Join(a.spec.Repository, ea.Dat))))
	// Blobs: the revision of 0x0200 only, in the pool with the layout.
	require.Equal(t, "bushy", ea.Blobs.Layout)
	require.Equal(t, []backup.BlobFile{{Path: bushyBlobPath(1, 0x0200), Size: int64(len("blob a1"))}}, ea.Blobs.Files)
	require.Equal(t, 1, ea.Blobs.Copied)
	require.Equal(t, "bushy\n", string(readFile(t, filepath.Join(a.spec.Repository, "blobs", ".layout"))))
	require.Contains(t, log.String(), "a: full backup: no previous backup in the repository")
	for _, repo := range []string{a.spec.Repository, b.spec.Repository} {
		got, err := backup.ReadManifest(repo, m1.Stamp)
		require.NoError(t, err)
		require.Equal(t, m1.Point, got.Point)
		require.Equal(t, ea.Files, got.Storage("a").Files)
	}

	// Set 2, in the same second: the stamp moves on; A is incremental.
	a.commit(t, 0x0400, "a3")
	m2, err := backup.Backup(specs, map[string]txn.TID{"a": 0x0400, "b": 0x0250}, backup.Options{Now: t0})
	require.NoError(t, err)
	require.Equal(t, "2026-11-24-12-00-01", m2.Stamp)
	ea2, eb2 := m2.Storage("a"), m2.Storage("b")
	require.Equal(t, "incremental", ea2.Kind)
	require.Equal(t, ea.Dat, ea2.Dat)
	require.Len(t, ea2.Files, 2)
	require.Equal(t, ea.Files[0], ea2.Files[0])
	require.Equal(t, "2026-11-24-12-00-01.deltafs", ea2.Files[1].Name)
	require.Equal(t, ea.Size, ea2.Files[1].Start)
	require.Equal(t, a.b.Bytes()[ea.Size:ea2.Size], readFile(t, filepath.Join(a.spec.Repository, ea2.Files[1].Name)))
	require.Len(t, ea2.Blobs.Files, 3)
	require.Equal(t, 2, ea2.Blobs.Copied, "0x0300 and 0x0400 are new in the pool")
	require.Equal(t, "unchanged", eb2.Kind)
	require.Equal(t, m1.Storage("b").Files, eb2.Files)
	dat := strings.Split(strings.TrimSpace(string(readFile(t, filepath.Join(a.spec.Repository, ea.Dat)))), "\n")
	require.Len(t, dat, 2)

	// Each set restores to the bytes of its point, with a fresh index and
	// the set's blobs only.
	for _, m := range []*backup.Manifest{m1, m2} {
		got, err := backup.FindSet([]string{b.spec.Repository}, m.Stamp)
		require.NoError(t, err)
		to := filepath.Join(dir, "restore-"+m.Stamp)
		rs, err := backup.Restore(got, to, backup.RestoreOptions{})
		require.NoError(t, err)
		require.Len(t, rs, 2)
		ra := rs[0]
		require.Equal(t, filepath.Join(to, "a", "Data.fs"), ra.DataFS)
		require.Equal(t, a.b.Bytes()[:m.Storage("a").Size], readFile(t, ra.DataFS))
		require.True(t, ra.Index)
		require.FileExists(t, ra.DataFS+".index")
		require.NoFileExists(t, ra.DataFS+".part")
		require.Equal(t, len(m.Storage("a").Blobs.Files), ra.Blobs)
		for _, bf := range m.Storage("a").Blobs.Files {
			require.Equal(t, readFile(t, filepath.Join(a.spec.BlobDir, bf.Path)), readFile(t, filepath.Join(ra.BlobDir, bf.Path)))
		}
		if m == m1 {
			require.NoFileExists(t, filepath.Join(ra.BlobDir, bushyBlobPath(2, 0x0300)), "after the point of set 1")
		}
		require.Equal(t, b.b.Bytes(), readFile(t, rs[1].DataFS))
		require.Equal(t, "", rs[1].BlobDir)
	}
	// Nothing new up to the point: no new set, the newest is returned (and
	// again on the next run).
	before, err := backup.Sets(a.spec.Repository)
	require.NoError(t, err)
	for range 2 {
		same, err := backup.Backup(specs, map[string]txn.TID{"a": 0x0400, "b": 0x0250}, backup.Options{Now: t0, Log: &log})
		require.NoError(t, err)
		require.Equal(t, m2.Stamp, same.SameAs)
		require.Equal(t, m2.Stamp, same.Stamp)
		after, err := backup.Sets(a.spec.Repository)
		require.NoError(t, err)
		require.Equal(t, before, after)
	}
	require.Contains(t, log.String(), "nothing new since set "+m2.Stamp)

	// --full starts a new chain with its own ledger.
	m3, err := backup.Backup(specs, map[string]txn.TID{"a": 0x0400, "b": 0x0250}, backup.Options{Now: t0.Add(time.Hour), Full: true, Log: &log})
	require.NoError(t, err)
	require.Equal(t, "full", m3.Storage("b").Kind)
	require.Equal(t, m3.Stamp+".dat", m3.Storage("b").Dat)
	require.Contains(t, log.String(), "full backup: --full")
	latest, err := backup.FindSet([]string{a.spec.Repository}, "")
	require.NoError(t, err)
	require.Equal(t, m3.Stamp, latest.Stamp)
}

// A point between two transactions keeps the one before and says so; a
// point after the file's end is refused (the file lacks transactions).
func TestGoBackupInexactAndBehind(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", false)
	s.commit(t, 0x0200, "x")
	var log strings.Builder
	m, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x01ff}, backup.Options{Now: t0, Log: &log})
	require.NoError(t, err)
	e := m.Storages[0]
	require.False(t, e.Exact)
	require.Equal(t, "0000000000000100", e.KeptTID)
	require.Equal(t, "00000000000001ff", e.TID)
	require.Contains(t, log.String(), "not in the Data.fs")
	_, err = backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x0201}, backup.Options{Now: t0})
	require.ErrorContains(t, err, "is before the point's TID 0000000000000201")
}

// The chain is extended only while the Data.fs still extends it.
func TestGoBackupFullWhenSourceNoLongerExtendsChain(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, s *goStore)
		point  txn.TID
		reason string
	}{
		{"rewritten", func(t *testing.T, s *goStore) {
			data := readFile(t, s.spec.DataFS)
			data[s.b.Pos[1]+30] ^= 1 // inside the user name: still a valid file
			require.NoError(t, os.WriteFile(s.spec.DataFS, data, 0o644))
		}, 0x0200, "changed since the last backup"},
		{"shorter", func(t *testing.T, s *goStore) {
			require.NoError(t, os.WriteFile(s.spec.DataFS, s.b.Bytes()[:s.b.End[0]], 0o644))
		}, 0x0100, "is shorter than the last backup's end"},
		{"no boundary", func(t *testing.T, s *goStore) {
			data := append([]byte{}, s.b.Bytes()[:s.b.Pos[1]]...)
			data = append(data, make([]byte, 200)...)
			require.NoError(t, os.WriteFile(s.spec.DataFS, data, 0o644))
		}, 0x0100, "no longer a transaction boundary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newGoStore(t, dir, "s", false)
			s.commit(t, 0x0200, "x")
			_, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x0200}, backup.Options{Now: t0})
			require.NoError(t, err)
			tc.change(t, s)
			var log strings.Builder
			m, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": tc.point}, backup.Options{Now: t0, Log: &log})
			require.NoError(t, err)
			require.Equal(t, "full", m.Storages[0].Kind)
			require.Contains(t, log.String(), tc.reason)
		})
	}
}

// A point before the chain's last transaction cannot extend it.
func TestGoBackupPointBeforeChainEnd(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", false)
	s.commit(t, 0x0200, "x")
	_, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x0200}, backup.Options{Now: t0})
	require.NoError(t, err)
	var log strings.Builder
	m, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x0100}, backup.Options{Now: t0, Log: &log})
	require.NoError(t, err)
	require.Equal(t, "full", m.Storages[0].Kind)
	require.Equal(t, s.b.End[0], m.Storages[0].Size)
	require.Contains(t, log.String(), "the last backup ends after the point")
}

func TestGoBackupRefusals(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", false)
	point := map[string]txn.TID{"s": 0x0100, "t": 0x0100}
	_, err := backup.Backup(nil, point, backup.Options{})
	require.ErrorContains(t, err, "no storage to back up")
	_, err = backup.Backup([]backup.Spec{{ID: "s", DataFS: s.spec.DataFS}}, point, backup.Options{})
	require.ErrorContains(t, err, "needs data_fs and repository")
	_, err = backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{}, backup.Options{})
	require.ErrorContains(t, err, "storage s: not in the point")
	other := s.spec
	other.ID = "t"
	_, err = backup.Backup([]backup.Spec{s.spec, other}, point, backup.Options{})
	require.ErrorContains(t, err, "share the repository")
	notDir := s.spec
	notDir.Repository = s.spec.DataFS
	_, err = backup.Backup([]backup.Spec{notDir}, point, backup.Options{})
	require.ErrorContains(t, err, "not a directory")
	require.NoError(t, os.WriteFile(s.spec.DataFS+".pack", nil, 0o644))
	_, err = backup.Backup([]backup.Spec{s.spec}, point, backup.Options{})
	require.ErrorContains(t, err, "a pack is in progress")
}

// Progress lines name the storage and the amount copied.
func TestGoBackupProgress(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", true)
	for i := range 50 {
		s.commit(t, txn.TID(0x1000+i), strings.Repeat("p", 4000))
	}
	var pr strings.Builder
	_, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x1000 + 49}, backup.Options{Now: t0, Progress: &pr, ProgressEvery: time.Nanosecond})
	require.NoError(t, err)
	require.Contains(t, pr.String(), "backup s: copied ")
	require.Contains(t, pr.String(), "(100.0%")
	require.Contains(t, pr.String(), "backup s blobs: copied ")
}

// The copy follows the scan through a file of many blocks; a scan that
// fails half way leaves no data file and no temporary file behind.
func TestGoBackupCopyFollowsScan(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", false)
	for i := range 40 {
		s.commit(t, txn.TID(0x1000+i), strings.Repeat(string(rune('a'+i%26)), 200_000))
	}
	m, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x1000 + 30}, backup.Options{Now: t0})
	require.NoError(t, err)
	e := m.Storages[0]
	require.Equal(t, s.b.End[31], e.Size)
	require.Equal(t, s.b.Bytes()[:e.Size], readFile(t, filepath.Join(s.spec.Repository, e.Files[0].Name)))
	require.Equal(t, md5Hex(s.b.Bytes()[:e.Size]), e.Files[0].MD5)

	// Damage a transaction after several blocks were copied.
	data := readFile(t, s.spec.DataFS)
	data[s.b.Pos[35]+16] = 'x' // status byte
	require.NoError(t, os.WriteFile(s.spec.DataFS, data, 0o644))
	_, err = backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x1000 + 39}, backup.Options{Now: t0, Full: true})
	require.ErrorContains(t, err, "invalid status byte")
	ents, err := os.ReadDir(s.spec.Repository)
	require.NoError(t, err)
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	require.ElementsMatch(t, []string{e.Files[0].Name, e.Dat, m.Stamp + ".tidstorage.json"}, names)
}
