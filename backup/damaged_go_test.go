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

// threeFileChain backs up s to a full and two incrementals and returns the
// sets.
func threeFileChain(t *testing.T, s *goStore) []*backup.Manifest {
	t.Helper()
	var sets []*backup.Manifest
	for i, tid := range []txn.TID{0x0200, 0x0300, 0x0400} {
		s.commit(t, tid, strings.Repeat("d", 100+i))
		m, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{s.spec.ID: tid}, backup.Options{Now: t0})
		require.NoError(t, err)
		sets = append(sets, m)
	}
	require.Equal(t, "incremental", sets[2].Storages[0].Kind)
	require.Len(t, sets[2].Storages[0].Files, 3)
	return sets
}

func flipByte(t *testing.T, path string) {
	t.Helper()
	b := readFile(t, path)
	b[len(b)/2] ^= 0x20
	require.NoError(t, os.Chmod(path, 0o644))
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// A flipped byte in the middle of a chain: the next backup does not build
// on it (a new full chain, saying why), and that new set restores.
func TestGoBackupRefusesToExtendDamagedChain(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", false)
	sets := threeFileChain(t, s)
	middle := filepath.Join(s.spec.Repository, sets[2].Storages[0].Files[1].Name)
	require.True(t, strings.HasSuffix(middle, ".deltafs"))
	flipByte(t, middle)

	s.commit(t, 0x0500, "after the damage")
	var log strings.Builder
	m, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x0500}, backup.Options{Now: t0, Log: &log})
	require.NoError(t, err)
	require.Equal(t, "full", m.Storages[0].Kind)
	require.Contains(t, log.String(), "the repository's chain is damaged, not extending it: "+middle+": md5")
	rs, err := backup.Restore(m, filepath.Join(dir, "new"), backup.RestoreOptions{})
	require.NoError(t, err)
	require.Equal(t, s.b.Bytes(), readFile(t, rs[0].DataFS))
	// The damaged set itself is refused by restore, naming the file.
	_, err = backup.Restore(sets[2], filepath.Join(dir, "old"), backup.RestoreOptions{})
	require.ErrorContains(t, err, middle+": sha256")
}

// A missing middle file or a ledger with a hole is damage too.
func TestGoBackupDamagedChainVariants(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, repo string, e *backup.StorageEntry)
		reason string
	}{
		{"missing file", func(t *testing.T, repo string, e *backup.StorageEntry) {
			require.NoError(t, os.Remove(filepath.Join(repo, e.Files[1].Name)))
		}, "differs from its ledger"},
		{"truncated file", func(t *testing.T, repo string, e *backup.StorageEntry) {
			p := filepath.Join(repo, e.Files[1].Name)
			require.NoError(t, os.Chmod(p, 0o644))
			require.NoError(t, os.Truncate(p, 3))
		}, "3 bytes, the ledger says"},
		{"sha256 only", func(t *testing.T, repo string, e *backup.StorageEntry) {
			// The newest manifest's sha256 is checked as well as the
			// ledger's md5.
			p := filepath.Join(repo, "2026-11-24-12-00-02.tidstorage.json")
			require.NoError(t, os.WriteFile(p, []byte(strings.Replace(string(readFile(t, p)), e.Files[0].SHA256, strings.Repeat("0", 64), 1)), 0o644))
		}, "the manifest says 0000000000000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newGoStore(t, dir, "s", false)
			sets := threeFileChain(t, s)
			tc.damage(t, s.spec.Repository, sets[2].Storages[0])
			var log strings.Builder
			m, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x0400}, backup.Options{Now: t0, Log: &log})
			require.NoError(t, err)
			require.Equal(t, "full", m.Storages[0].Kind)
			require.Contains(t, log.String(), tc.reason)
		})
	}
}

// Restore checks the ledger: a line that disagrees with the manifest stops
// it (repozo -R trusts the ledger and would join other bytes).
func TestGoRestoreChecksLedger(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", false)
	sets := threeFileChain(t, s)
	e := sets[2].Storages[0]
	dat := filepath.Join(s.spec.Repository, e.Dat)
	good := readFile(t, dat)
	require.NoError(t, os.WriteFile(dat, []byte(strings.Replace(string(good), e.Files[2].MD5, strings.Repeat("f", 32), 1)), 0o644))
	_, err := backup.Restore(sets[2], filepath.Join(dir, "a"), backup.RestoreOptions{})
	require.ErrorContains(t, err, "the ledger "+dat+" says "+e.Files[2].Name+" is bytes")
	lines := strings.SplitAfter(string(good), "\n")
	require.NoError(t, os.WriteFile(dat, []byte(lines[0]+lines[1]), 0o644))
	_, err = backup.Restore(sets[2], filepath.Join(dir, "b"), backup.RestoreOptions{})
	require.ErrorContains(t, err, "has no line for "+e.Files[2].Name)
	require.NoError(t, os.Remove(dat))
	_, err = backup.Restore(sets[2], filepath.Join(dir, "c"), backup.RestoreOptions{})
	require.ErrorContains(t, err, "the chain's ledger")
}

// Quick mode checks sizes and the last transaction only (repozo -Q): it
// catches a truncated file and a rewritten end, not a flipped byte in the
// middle of the chain, which verify then reports.
func TestGoBackupQuickChainCheck(t *testing.T) {
	quick := func(t *testing.T, s *goStore, tid txn.TID) (*backup.Manifest, string) {
		t.Helper()
		var log strings.Builder
		m, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": tid}, backup.Options{Now: t0, Quick: true, Log: &log})
		require.NoError(t, err)
		return m, log.String()
	}
	t.Run("extends", func(t *testing.T) {
		s := newGoStore(t, t.TempDir(), "s", false)
		sets := threeFileChain(t, s)
		flipByte(t, filepath.Join(s.spec.Repository, sets[2].Storages[0].Files[1].Name))
		s.commit(t, 0x0500, "more")
		m, _ := quick(t, s, 0x0500)
		require.Equal(t, "incremental", m.Storages[0].Kind, "quick mode does not read the middle")
		rs := verifyAll(t, []string{s.spec.Repository}, backup.VerifyOptions{})
		require.False(t, rs[len(rs)-1].OK(), "verify does")
	})
	t.Run("truncated", func(t *testing.T) {
		s := newGoStore(t, t.TempDir(), "s", false)
		sets := threeFileChain(t, s)
		p := filepath.Join(s.spec.Repository, sets[2].Storages[0].Files[1].Name)
		require.NoError(t, os.Chmod(p, 0o644))
		require.NoError(t, os.Truncate(p, 5))
		m, log := quick(t, s, 0x0400)
		require.Equal(t, "full", m.Storages[0].Kind)
		require.Contains(t, log, "5 bytes, the ledger says")
	})
	t.Run("rewritten end", func(t *testing.T) {
		s := newGoStore(t, t.TempDir(), "s", false)
		threeFileChain(t, s)
		data := readFile(t, s.spec.DataFS)
		data[s.b.End[3]-20] ^= 1 // inside the last backed-up transaction's pickle
		require.NoError(t, os.WriteFile(s.spec.DataFS, data, 0o644))
		m, log := quick(t, s, 0x0400)
		require.Equal(t, "full", m.Storages[0].Kind)
		require.Contains(t, log, "the last backed-up transaction (0000000000000400 at ")
	})
}
