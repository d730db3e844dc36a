package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/classic"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
)

// epochSite is one real ZEO storage behind `tidstorage serve`, with its
// Data.fs and a repository configured so that backup and restore run.
type epochSite struct {
	zs                     *zeotest.Server
	dir, cfg, status, log  string
	classicAddr, adminAddr string
	id                     string   // the storage id
	db                     []string // zodb_client.py's --db through the proxy
}

func newEpochSite(t *testing.T, extra string) *epochSite {
	zs := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1"}})
	dir := t.TempDir()
	port := zeotest.FreePort(t)
	s := &epochSite{zs: zs, dir: dir, cfg: filepath.Join(dir, "t.hcl"), status: filepath.Join(dir, "tidstorage.status"),
		log: filepath.Join(dir, "tidstorage.log"), classicAddr: fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t)),
		adminAddr: fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t)), id: fmt.Sprintf("((('127.0.0.1', %d),), '1')", port),
		db: []string{"--db", fmt.Sprintf("a=127.0.0.1:%d/1", port)}}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "repo"), 0o755))
	require.NoError(t, os.WriteFile(s.cfg, []byte(fmt.Sprintf(`
status_file = %q
burst_period = "0s"
%s
log {
  file = %q
}
classic {
  listen = %q
}
admin {
  listen = %q
}
zeo "a" {
  listen = "127.0.0.1:%d"
  upstream = %q
  storage "1" {
    data_fs    = %q
    repository = %q
  }
}
`, s.status, extra, s.log, s.classicAddr, s.adminAddr, port, zs.Addr, zs.DataFS("1"), filepath.Join(dir, "repo"))), 0o644))
	return s
}

// serve runs `tidstorage serve` until work returns, then stops it with TERM
// and requires a clean exit.
func (s *epochSite) serve(t *testing.T, work func(sv *serving)) {
	t.Helper()
	sv := startServe(t, s.cfg, s.adminAddr, "/readyz")
	work(sv)
	sv.stopClean(t)
}

func (s *epochSite) commit(t *testing.T, n int) {
	zeotest.Python(t, "zodb_client.py", append(s.db, "commit", "--count", fmt.Sprint(n), "--touch", "a")...)
}

// last is the storage's last TID, read through the proxy.
func (s *epochSite) last(t *testing.T) txn.TID {
	var m map[string]string
	require.NoError(t, json.Unmarshal(zeotest.Python(t, "zodb_client.py", append(s.db, "last")...), &m))
	return tidInt(t, m["a"])
}

// waitPublished waits until DUMP publishes tid for the storage.
func (s *epochSite) waitPublished(t *testing.T, tid txn.TID) {
	require.Eventually(t, func() bool {
		cl, err := classic.Dial(s.classicAddr, 5*time.Second)
		if err != nil {
			return false
		}
		defer cl.Close()
		d, err := cl.Dump()
		return err == nil && d[s.id] == tid
	}, 30*time.Second, 50*time.Millisecond, "%s never published %s", s.id, tid.Hex())
}

// replay reads the current status file.
func (s *epochSite) replay(t *testing.T) *statusfile.Result {
	f, err := os.Open(s.status)
	require.NoError(t, err)
	defer f.Close()
	res, err := statusfile.Replay(f, statusfile.ReplayOptions{})
	require.NoError(t, err)
	return res
}

// putBack stops ZEO, replaces the storage's Data.fs with an older copy (as
// a restore in place or a cut does), and starts ZEO again.
func (s *epochSite) putBack(t *testing.T, older []byte) {
	s.zs.Stop()
	fs := s.zs.DataFS("1")
	require.NoError(t, os.WriteFile(fs, older, 0o644))
	for _, ext := range []string{".index", ".tmp"} {
		_ = os.Remove(fs + ext)
	}
	s.zs.Restart()
}

func (s *epochSite) snapshot(t *testing.T) []byte {
	s.zs.Stop()
	b, err := os.ReadFile(s.zs.DataFS("1"))
	require.NoError(t, err)
	s.zs.Restart()
	return b
}

// With real ZEO and serve restarts: a torn
// last line is cut off before anything is appended; an id a classic client
// reported once and nobody configured leaves the point without breaking
// backups; an older Data.fs restored in place begins a new epoch instead of
// a lowering line; each time backup (and restore, verified) succeed without
// a hand edit.
func TestServeStatusFileEpochsAndRepairs(t *testing.T) {
	s := newEpochSite(t, "")

	// Run 1: commits, and a classic client reports 'bogus-storage'.
	var t1 txn.TID
	s.serve(t, func(*serving) {
		s.commit(t, 2)
		t1 = s.last(t)
		s.waitPublished(t, t1)
		cl, err := classic.Dial(s.classicAddr, 5*time.Second)
		require.NoError(t, err)
		require.NoError(t, cl.Begin("c1", []string{"bogus-storage"}))
		require.NoError(t, cl.Commit("c1", map[string]txn.TID{"bogus-storage": 5}))
		require.NoError(t, cl.Close())
		require.Eventually(t, func() bool { return fileContains(s.log, `"bogus-storage", which no configured storage has`) },
			10*time.Second, 50*time.Millisecond)
	})
	require.Equal(t, map[string]txn.TID{s.id: t1, "bogus-storage": 5}, s.replay(t).Point)
	older := s.snapshot(t) // the set restored in place below

	// A crash or a full disk in the middle of a line (3b).
	f, err := os.OpenFile(s.status, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`1795558268.17 d {"((('127.0.0.1', 1),), '1')": 2726`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	// Run 2: the torn line is cut off and kept aside; bogus-storage is not
	// reported again and leaves the point at the first full line (3).
	var t2 txn.TID
	s.serve(t, func(*serving) {
		s.commit(t, 3)
		t2 = s.last(t)
		s.waitPublished(t, t2)
	})
	torn, err := filepath.Glob(s.status + ".torn-*")
	require.NoError(t, err)
	require.Len(t, torn, 1)
	require.True(t, fileContains(s.log, "cut off a torn last line"))
	res := s.replay(t)
	require.Equal(t, map[string]txn.TID{s.id: t2}, res.Point)
	require.Contains(t, strings.Join(res.Warnings, "\n"), "storage bogus-storage left the point")
	r := run(t, "backup", "-c", s.cfg, "--progress", "0")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "tid "+t2.Hex())

	// The older set restored in place (1): run 3 begins a new epoch.
	s.putBack(t, older)
	s.serve(t, func(*serving) {
		s.waitPublished(t, t1)
		doc := statusDoc(t, s.adminAddr)
		require.NotNil(t, doc.StatusFile)
		require.EqualValues(t, 1, doc.StatusFile.Epochs)
	})
	require.True(t, fileContains(s.log, "a NEW EPOCH begins"))
	aside, err := filepath.Glob(s.status + ".epoch-*")
	require.NoError(t, err)
	require.Len(t, aside, 1)
	require.Equal(t, map[string]txn.TID{s.id: t1}, s.replay(t).Point)
	first := readLines(t, s.status)[0]
	require.Contains(t, first, fmt.Sprintf(" f {\"%s\": %d}", s.id, uint64(t1)), "the new epoch begins with a full line")

	r = run(t, "backup", "-c", s.cfg, "--progress", "0")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "tid "+t1.Hex())
	to := filepath.Join(s.dir, "restored")
	r = run(t, "restore", "-c", s.cfg, "--to", to)
	require.Equal(t, 0, r.code, r.stderr)
	restored, err := filepath.Glob(filepath.Join(to, "*", "*.fs"))
	require.NoError(t, err)
	require.Len(t, restored, 1, r.stdout)
	require.Equal(t, t1.Hex(), zeotest.ReadFS(t, "--fs", restored[0]).Last)
}

// With real ZEO: the storage goes back under a running
// serve (an older Data.fs put back, as a cut does) while a pin holds it;
// accept-partial refuses to publish the TID that no longer exists and says
// to restart; the restart begins a new epoch at the live state and backup
// succeeds.
func TestServeAcceptAfterCutIsRefused(t *testing.T) {
	s := newEpochSite(t, `classic_txn_timeout = "1s"`)
	var t0 txn.TID
	s.serve(t, func(sv *serving) {
		t0 = s.last(t) // the root object's creation
		older := s.snapshot(t)
		s.commit(t, 2)
		t2 := s.last(t)
		s.waitPublished(t, t2)
		// A classic transaction that never ends: a lost pin on the storage.
		cl, err := classic.Dial(s.classicAddr, 5*time.Second)
		require.NoError(t, err)
		require.NoError(t, cl.Begin("stuck", []string{s.id}))
		require.NoError(t, cl.Close())
		var pin uint64
		require.Eventually(t, func() bool {
			doc := statusDoc(t, s.adminAddr)
			for _, p := range doc.Pins {
				if p.Kind == "lost" {
					pin = p.ID
					return true
				}
			}
			return false
		}, 30*time.Second, 100*time.Millisecond)

		s.putBack(t, older)
		r := run(t, "accept-partial", "-c", s.cfg, "--yes", fmt.Sprint(pin))
		require.Equal(t, 1, r.code, r.stdout)
		require.Contains(t, r.stderr, "history went back")
		require.Contains(t, r.stderr, "live last TID "+t0.Hex())
		require.Contains(t, r.stderr, "Restart tidstorage serve")
		doc := statusDoc(t, s.adminAddr)
		require.Len(t, doc.Pins, 1, "the pin stays")
		require.Equal(t, t2.Hex(), doc.Storages[0].Published.Hex, "nothing published")
	})
	s.serve(t, func(*serving) { s.waitPublished(t, t0) })
	require.True(t, fileContains(s.log, "a NEW EPOCH begins"))
	require.Equal(t, map[string]txn.TID{s.id: t0}, s.replay(t).Point)
	r := run(t, "backup", "-c", s.cfg, "--progress", "0")
	require.Equal(t, 0, r.code, r.stderr)
}

func statusDoc(t *testing.T, adminAddr string) statusdoc.StatusDoc {
	t.Helper()
	r := run(t, "status", "-a", adminAddr, "--json")
	require.Contains(t, []int{0, 3}, r.code, r.stderr)
	var doc statusdoc.StatusDoc
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc))
	return doc
}
