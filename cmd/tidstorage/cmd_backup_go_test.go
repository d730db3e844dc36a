package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/backup/fsdata/fsdatatest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// goSite is a configuration with one storage whose Data.fs the test
// writes in Go (fsdatatest): the backup commands' own logic, without
// Python. backupSite covers them against real ZODB.
type goSite struct {
	dir, cfg, fs, repo string
	b                  *fsdatatest.Builder
}

func newGoSite(t *testing.T) *goSite {
	dir := t.TempDir()
	s := &goSite{dir: dir, cfg: filepath.Join(dir, "t.hcl"), fs: filepath.Join(dir, "Data.fs"), repo: filepath.Join(dir, "repo", "main")}
	require.NoError(t, os.WriteFile(s.cfg, []byte(`storage "main" {
  data_fs    = "Data.fs"
  repository = "repo/main"
}
`), 0o644))
	s.b = fsdatatest.New(fsdata.MagicFS30)
	s.commit(t, 0x0100)
	return s
}

func (s *goSite) commit(t *testing.T, tid txn.TID) {
	t.Helper()
	s.b.Add(fsdatatest.Txn{TID: tid, Recs: []fsdatatest.Rec{{OID: uint64(len(s.b.Pos)), Data: []byte("object")}}})
	require.NoError(t, os.WriteFile(s.fs, s.b.Bytes(), 0o644))
}

func (s *goSite) backup(t *testing.T, tid txn.TID, extra ...string) result {
	t.Helper()
	r := run(t, append([]string{"backup", "-c", s.cfg, "--progress", "0", "--tid", "main=" + tid.Hex()}, extra...)...)
	require.Equal(t, 0, r.code, r.stderr)
	return r
}

// damageDelta overwrites the repository's one incremental with 7 bytes
// of garbage and returns its path.
func (s *goSite) damageDelta(t *testing.T) string {
	t.Helper()
	delta, err := filepath.Glob(filepath.Join(s.repo, "*.deltafs"))
	require.NoError(t, err)
	require.Len(t, delta, 1)
	require.NoError(t, os.Chmod(delta[0], 0o644))
	require.NoError(t, os.WriteFile(delta[0], []byte("garbage"), 0o644))
	return delta[0]
}

// verify: 0 and one line per set when sound, 1 with the problem when a
// file is damaged; --set checks one set.
func TestVerifyCommand(t *testing.T) {
	s := newGoSite(t)
	r := run(t, "verify", "-c", s.cfg)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "no backup set found")
	require.Contains(t, r.stderr, "tidstorage verify: open "+s.repo+": no such file")

	s.backup(t, 0x0100)
	s.commit(t, 0x0200)
	s.backup(t, 0x0200)
	r = run(t, "verify", "-c", s.cfg, "--read-data")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, ": ok (1 storage(s), 1 data file(s) checked, 0 blob file(s))")
	require.Contains(t, r.stdout, "verified 2 set(s): all sound")

	delta := s.damageDelta(t)
	r = run(t, "verify", "-c", s.cfg)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, ": DAMAGED")
	require.Contains(t, r.stdout, "problem: main: "+delta+": 7 bytes, the ledger says")
	require.Contains(t, r.stdout, "verified 2 set(s): 1 with problems")

	sets, err := filepath.Glob(filepath.Join(s.repo, "*.tidstorage.json"))
	require.NoError(t, err)
	first := filepath.Base(sets[0])[:19]
	r = run(t, "verify", "-c", s.cfg, "--set", first, "--json")
	require.Equal(t, 0, r.code, r.stdout)
	require.Contains(t, r.stdout, `"Stamp": "`+first+`"`)

	r = run(t, "verify", "-c", s.cfg, "extra")
	require.Equal(t, 2, r.code)
	r = run(t, "verify")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "give the configuration with -c FILE")
}

// forget: a dry run by default, --yes removes; backup --keep applies it.
func TestForgetCommand(t *testing.T) {
	s := newGoSite(t)
	s.backup(t, 0x0100)
	s.commit(t, 0x0200)
	s.backup(t, 0x0200, "--full")
	s.commit(t, 0x0300)
	s.backup(t, 0x0300, "--full")
	fulls := func() []string {
		got, err := filepath.Glob(filepath.Join(s.repo, "*.fs"))
		require.NoError(t, err)
		return got
	}
	require.Len(t, fulls(), 3)

	r := run(t, "forget", "-c", s.cfg, "--keep", "2")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "keeping 2 full chain(s)")
	require.Contains(t, r.stdout, "would remove 3 file(s)")
	require.Contains(t, r.stdout, "dry run: nothing was removed")
	require.Len(t, fulls(), 3)

	r = run(t, "forget", "-c", s.cfg, "--keep", "2", "--yes")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "removed 3 file(s)")
	require.Len(t, fulls(), 2)

	s.commit(t, 0x0400)
	r = s.backup(t, 0x0400, "--full", "--keep", "1")
	require.Contains(t, r.stderr, "removed 6 file(s)")
	require.Len(t, fulls(), 1)
	r = run(t, "verify", "-c", s.cfg)
	require.Equal(t, 0, r.code, r.stdout)
	require.Contains(t, r.stdout, "verified 1 set(s): all sound")

	require.Equal(t, 2, run(t, "forget", "-c", s.cfg).code)
	require.Equal(t, 2, run(t, "backup", "-c", s.cfg, "--keep", "-1").code)
}

// sets lists what restore --set/--at choose from; --at takes the newest
// set at or before the date.
func TestSetsAndRestoreAt(t *testing.T) {
	s := newGoSite(t)
	r := run(t, "sets", "-c", s.cfg)
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "no backup set found")
	s.backup(t, 0x0100)
	s.commit(t, 0x0200)
	s.backup(t, 0x0200)
	stamps, err := filepath.Glob(filepath.Join(s.repo, "*.tidstorage.json"))
	require.NoError(t, err)
	require.Len(t, stamps, 2)
	first, second := filepath.Base(stamps[0])[:19], filepath.Base(stamps[1])[:19]

	r = run(t, "sets", "-c", s.cfg)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, first+"  taken ")
	require.Contains(t, r.stdout, "files present")
	require.Contains(t, r.stdout, "  main: full, tid 0000000000000100, ")
	require.Contains(t, r.stdout, "  main: incremental, tid 0000000000000200, ")
	r = run(t, "sets", "-c", s.cfg, "--verify")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, first+"  taken ")
	require.Contains(t, r.stdout, "  verified\n")
	r = run(t, "sets", "-c", s.cfg, "--json")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, `"stamp": "`+second+`"`)

	to := filepath.Join(s.dir, "out")
	r = run(t, "restore", "-c", s.cfg, "--to", to, "--at", first, "--progress", "0")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "backup set "+first)
	got, err := os.ReadFile(filepath.Join(to, "main", "Data.fs"))
	require.NoError(t, err)
	require.Equal(t, s.b.Bytes()[:s.b.End[0]], got)
	r = run(t, "restore", "-c", s.cfg, "--to", to, "--at", "2999-01-01", "--force", "--progress", "0")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "backup set "+second)

	r = run(t, "restore", "-c", s.cfg, "--to", to, "--at", "1999-01-01")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "no backup set at or before 1999-01-01-00-00-00")
	require.Equal(t, 2, run(t, "restore", "-c", s.cfg, "--to", to, "--at", "soon").code)
	require.Equal(t, 2, run(t, "restore", "-c", s.cfg, "--to", to, "--at", first, "--set", first).code)
}

// backup -z writes repozo -z files that restore and verify read.
func TestBackupGzipFlag(t *testing.T) {
	s := newGoSite(t)
	r := s.backup(t, 0x0100, "-z")
	require.Contains(t, r.stdout, ".fsz (")
	s.commit(t, 0x0200)
	r = s.backup(t, 0x0200, "--gzip")
	require.Contains(t, r.stdout, ".deltafsz (")
	r = run(t, "verify", "-c", s.cfg, "--read-data")
	require.Equal(t, 0, r.code, r.stdout)
	to := filepath.Join(s.dir, "out")
	r = run(t, "restore", "-c", s.cfg, "--to", to, "--progress", "0")
	require.Equal(t, 0, r.code, r.stderr)
	got, err := os.ReadFile(filepath.Join(to, "main", "Data.fs"))
	require.NoError(t, err)
	require.Equal(t, s.b.Bytes(), got)
}

// backup -Q extends a chain after the quick check.
func TestBackupQuickFlag(t *testing.T) {
	s := newGoSite(t)
	s.backup(t, 0x0100)
	s.commit(t, 0x0200)
	r := s.backup(t, 0x0200, "-Q")
	require.Contains(t, r.stdout, "main: incremental")
	s.commit(t, 0x0300)
	r = s.backup(t, 0x0300, "--quick")
	require.Contains(t, r.stdout, "main: incremental")
}

// backup --snapshot DIR: a full set elsewhere, the configured repository
// untouched.
func TestBackupSnapshot(t *testing.T) {
	s := newGoSite(t)
	s.backup(t, 0x0100)
	s.commit(t, 0x0200)
	before, err := os.ReadDir(s.repo)
	require.NoError(t, err)
	snap := filepath.Join(s.dir, "snap")
	r := s.backup(t, 0x0200, "--snapshot", snap)
	require.Contains(t, r.stdout, "main: full, tid 0000000000000200")
	after, err := os.ReadDir(s.repo)
	require.NoError(t, err)
	require.Equal(t, len(before), len(after), "the configured repository is left alone")
	fulls, err := filepath.Glob(filepath.Join(snap, "main", "*.fs"))
	require.NoError(t, err)
	require.Len(t, fulls, 1)
	got, err := os.ReadFile(fulls[0])
	require.NoError(t, err)
	require.Equal(t, s.b.Bytes(), got)
	require.Equal(t, 2, run(t, "backup", "-c", s.cfg, "--snapshot", snap, "--keep", "1").code)
}
