package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

func tidInt(t *testing.T, hex string) txn.TID {
	t.Helper()
	v, err := txn.ParseTID(hex, txn.FormatHex)
	require.NoError(t, err)
	return v
}

// backupSite is two storages written by real ZODB, one with blobs, and a
// configuration naming their files and repositories.
type backupSite struct {
	dir, cfg, status  string
	mainFS, mainBlobs string
	catFS             string
	mainW, catW       zeotest.FSWritten
}

func newBackupSite(t *testing.T) *backupSite {
	zeotest.Venv(t)
	dir := t.TempDir()
	s := &backupSite{dir: dir, cfg: filepath.Join(dir, "t.hcl"), status: filepath.Join(dir, "tidstorage.status")}
	for _, d := range []string{"main", "cat", "repo-main", "repo-cat"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	s.mainFS, s.mainBlobs, s.catFS = filepath.Join(dir, "main", "Data.fs"), filepath.Join(dir, "main", "blobs"), filepath.Join(dir, "cat", "Data.fs")
	require.NoError(t, os.WriteFile(s.cfg, []byte(`status_file = "tidstorage.status"
storage "main" {
  data_fs    = "main/Data.fs"
  blob_dir   = "main/blobs"
  repository = "repo-main"
}
storage "catalog" {
  data_fs    = "cat/Data.fs"
  repository = "repo-cat"
}
`), 0o644))
	s.mainW = zeotest.WriteFS(t, "--fs", s.mainFS, "--blob-dir", s.mainBlobs, "--count", "3")
	s.catW = zeotest.WriteFS(t, "--fs", s.catFS, "--count", "3")
	return s
}

// publish appends a full line to the status file.
func (s *backupSite) publish(t *testing.T, main, cat string) {
	t.Helper()
	f, err := os.OpenFile(s.status, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer f.Close()
	_, err = fmt.Fprintf(f, "1795558268.17 f {'catalog': %d, 'main': %d}\n", tidInt(t, cat), tidInt(t, main))
	require.NoError(t, err)
}

func TestBackupRestoreCommands(t *testing.T) {
	s := newBackupSite(t)
	s.publish(t, s.mainW.New[1], s.catW.New[2])

	r := run(t, "backup", "-c", s.cfg, "--progress", "0")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "main: full, tid "+s.mainW.New[1])
	require.Contains(t, r.stdout, "catalog: full, tid "+s.catW.New[2])
	require.Contains(t, r.stdout, "blobs: 2 files, 2 new")
	require.Contains(t, r.stdout, "point: status file "+s.status+", line 1")

	// The real repozo restores each repository to the point.
	repozo := filepath.Join(zeotest.Venv(t), "bin", "repozo")
	for _, tc := range []struct{ repo, want string }{{"repo-main", s.mainW.New[1]}, {"repo-cat", s.catW.New[2]}} {
		out := filepath.Join(s.dir, tc.repo+".fs")
		b, err := exec.Command(repozo, "-R", "-r", filepath.Join(s.dir, tc.repo), "-o", out).CombinedOutput()
		require.NoError(t, err, string(b))
		require.Equal(t, tc.want, zeotest.ReadFS(t, "--fs", out).Last)
	}

	// More commits, a later point: incrementals.
	m2 := zeotest.WriteFS(t, "--fs", s.mainFS, "--blob-dir", s.mainBlobs, "--count", "2")
	c2 := zeotest.WriteFS(t, "--fs", s.catFS, "--count", "1")
	s.publish(t, m2.New[1], c2.New[0])
	r = run(t, "backup", "-c", s.cfg, "--progress", "0")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "main: incremental, tid "+m2.New[1])
	require.Contains(t, r.stdout, "catalog: incremental, tid "+c2.New[0])
	// verify agrees with repozo -V on real ZODB files, and goes further.
	r = run(t, "verify", "-c", s.cfg, "--read-data")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "verified 2 set(s): all sound")
	for _, repo := range []string{"repo-main", "repo-cat"} {
		b, err := exec.Command(repozo, "-V", "-r", filepath.Join(s.dir, repo)).CombinedOutput()
		require.NoError(t, err, string(b))
	}

	to := filepath.Join(s.dir, "restored")
	r = run(t, "restore", "-c", s.cfg, "--to", to)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, filepath.Join(to, "main", "Data.fs"))
	rm := zeotest.ReadFS(t, "--fs", filepath.Join(to, "main", "Data.fs"), "--blob-dir", filepath.Join(to, "main", "blobs"))
	require.Equal(t, m2.New[1], rm.Last)
	require.Equal(t, 5, *rm.Value)
	require.Equal(t, "blob 5", *rm.Blob)
	require.Equal(t, c2.New[0], zeotest.ReadFS(t, "--fs", filepath.Join(to, "catalog", "Data.fs")).Last)

	// An older set on request; existing files need --force.
	r = run(t, "restore", "-c", s.cfg, "--to", to)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "refusing to overwrite existing files (use --force)")
	sets, err := filepath.Glob(filepath.Join(s.dir, "repo-cat", "*.tidstorage.json"))
	require.NoError(t, err)
	require.Len(t, sets, 2)
	first := strings.TrimSuffix(filepath.Base(sets[0]), ".tidstorage.json")
	r = run(t, "restore", "-c", s.cfg, "--to", to, "--set", first, "--force")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, s.catW.New[2], zeotest.ReadFS(t, "--fs", filepath.Join(to, "catalog", "Data.fs")).Last)
	r = run(t, "restore", "-c", s.cfg, "--to", to, "--set", "1999-01-01-00-00-00")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "no set 1999-01-01-00-00-00")

	// The point from a running server's DUMP; nothing new: unchanged.
	addr := startClassic(t, fixedBackend{point: map[string]txn.TID{"main": tidInt(t, m2.New[1]), "catalog": tidInt(t, c2.New[0])}})
	r = run(t, "backup", "-c", s.cfg, "--dump", addr, "--progress", "1ns")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "(point: dump "+addr+")")
	require.Contains(t, r.stdout, "nothing new since backup set ")
	booting := startClassic(t, fixedBackend{point: map[string]txn.TID{}, booting: true})
	r = run(t, "backup", "-c", s.cfg, "--dump", booting)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "has published no point yet")
	// A full backup with progress lines.
	r = run(t, "backup", "-c", s.cfg, "--full", "--progress", "1ns", "--tid", "main="+m2.New[1], "--tid", "catalog="+c2.New[0])
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "catalog: full")
	require.Contains(t, r.stderr, "backup catalog: copied ")
	require.Contains(t, r.stderr, "catalog: full backup: --full")

	// --tid overrides the status file; a storage missing from it fails.
	r = run(t, "backup", "-c", s.cfg, "--tid", "main="+m2.New[0])
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "--tid: give a TID for every storage backed up; missing: catalog")
	r = run(t, "backup", "-c", s.cfg, "--tid", "nope=1")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "want STORAGE=TID with a configured storage")
}

func TestCutCommand(t *testing.T) {
	s := newBackupSite(t)
	more := zeotest.WriteFS(t, "--fs", s.catFS, "--count", "2")
	s.publish(t, s.mainW.New[0], s.catW.New[2])
	sizeBefore := func(p string) int64 {
		st, err := os.Stat(p)
		require.NoError(t, err)
		return st.Size()
	}
	mainSize, catSize := sizeBefore(s.mainFS), sizeBefore(s.catFS)

	r := run(t, "cut", "-c", s.cfg, "--dry-run")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "main: "+s.mainFS+": tid "+s.mainW.New[0]+": keep ")
	require.Contains(t, r.stdout, "remove 2 committed transaction(s) "+s.mainW.New[1]+".."+s.mainW.New[2])
	require.Contains(t, r.stdout, "remove 2 committed transaction(s) "+more.New[0]+".."+more.New[1])
	require.Contains(t, r.stdout, "dry run: nothing was changed")
	require.Equal(t, mainSize, sizeBefore(s.mainFS))
	require.Equal(t, catSize, sizeBefore(s.catFS))

	// A ZODB program holding one storage: nothing is changed at all.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hold := zeotest.PythonCommand(ctx, t, "backup_fs.py", "hold", "--fs", s.catFS)
	stdin, err := hold.StdinPipe()
	require.NoError(t, err)
	stdout, err := hold.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, hold.Start())
	_, err = bufio.NewReader(stdout).ReadBytes('\n') // {"pid": ...} once it holds the lock
	require.NoError(t, err)
	r = run(t, "cut", "-c", s.cfg)
	require.Equal(t, 1, r.code, r.stdout)
	require.Contains(t, r.stderr, "is held by pid")
	require.Contains(t, r.stderr, "nothing was changed")
	require.Equal(t, mainSize, sizeBefore(s.mainFS))
	stdin.Close()
	require.NoError(t, hold.Wait())
	// (ZODB's close saved a fresh index; the cut moves it aside.)

	r = run(t, "cut", "-c", s.cfg)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "main: cut "+s.mainFS)
	require.Contains(t, r.stdout, "stale index moved to "+s.mainFS+".index.cut-"+s.mainW.New[0]+"-")
	require.Contains(t, r.stdout, "fresh index written")
	require.Equal(t, s.mainW.New[0], zeotest.ReadFS(t, "--fs", s.mainFS).Last)
	require.Equal(t, s.catW.New[2], zeotest.ReadFS(t, "--fs", s.catFS).Last)
	tails, err := filepath.Glob(s.catFS + ".cut-" + s.catW.New[2] + "-*")
	require.NoError(t, err)
	require.Len(t, tails, 1)
	st, err := os.Stat(tails[0])
	require.NoError(t, err)
	require.Equal(t, catSize-sizeBefore(s.catFS), st.Size())

	// Again: nothing left to cut.
	r = run(t, "cut", "-c", s.cfg)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "main: already ends right after the point: unchanged")
}
