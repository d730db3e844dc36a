package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/statusdoc"
)

// snapshotDir maps every file under dir to its mode and the sha256 of its
// bytes: two equal snapshots mean nothing was created, removed or changed.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fmt.Sprintf("%v %x", fi.Mode(), sha256.Sum256(b))
		return nil
	}))
	return out
}

// quiet waits until two snapshots of dir a little apart are equal (the
// daemon has written what the last commits made it write) and returns it.
func quiet(t *testing.T, dir string) map[string]string {
	t.Helper()
	var snap map[string]string
	require.Eventually(t, func() bool {
		a := snapshotDir(t, dir)
		time.Sleep(700 * time.Millisecond)
		snap = snapshotDir(t, dir)
		return fmt.Sprint(a) == fmt.Sprint(snap)
	}, 30*time.Second, 10*time.Millisecond, "the state directory never settled")
	return snap
}

func statusOf(t *testing.T, adminAddr, tokenPath string) statusdoc.StatusDoc {
	t.Helper()
	r := run(t, "status", "-a", adminAddr, "--token-file", tokenPath, "--json")
	require.Contains(t, []int{0, 3}, r.code, r.stderr)
	var doc statusdoc.StatusDoc
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc))
	return doc
}

// One process per state: a second `tidstorage serve` on the configuration
// of a running one (a systemd unit and a hand-started copy) is refused at
// once, naming the holder's pid and host, and leaves every file of the state
// directory byte for byte as it was — at rest, and under load (where it once
// began a new epoch and truncated the live journal). The running one keeps
// serving and its journal replays whole after it is SIGKILLed; the restart
// takes the dead process's locks over and says so.
func TestSecondServeRefused(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}})
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	require.NoError(t, os.Mkdir(state, 0o755))
	port := zeotest.FreePort(t)
	adminAddr := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	classicAddr := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	statusPath := filepath.Join(state, "tidstorage.status")
	cfgPath := filepath.Join(dir, "tidstorage.hcl")
	writeFile(t, cfgPath, fmt.Sprintf(`
status_file  = %q
pid_file     = %q
burst_period = "0s"
classic {
  listen = %q
}
admin {
  listen = %q
}
zeo "main" {
  listen   = "127.0.0.1:%d"
  upstream = %q
  storage "1" {}
  storage "2" {}
}
`, statusPath, filepath.Join(state, "tidstorage.pid"), classicAddr, adminAddr, port, srv.Addr))
	first := startServe(t, cfgPath, adminAddr, "/readyz")
	dbs := []string{"--db", fmt.Sprintf("a=127.0.0.1:%d/1", port), "--db", fmt.Sprintf("b=127.0.0.1:%d/2", port)}
	zeotest.Python(t, "zodb_client.py", append(dbs, "commit", "--count", "5", "--touch", "a,b")...)
	host, _ := os.Hostname()
	refused := func() {
		t.Helper()
		start := time.Now()
		r := run(t, "serve", "-c", cfgPath)
		require.Equal(t, 1, r.code, "stdout %s\nstderr %s", r.stdout, r.stderr)
		require.Less(t, time.Since(start), 10*time.Second, "refused at once")
		require.Contains(t, r.stderr, fmt.Sprintf("by pid %d on %s", first.cmd.Process.Pid, host), "names the holder")
		require.Contains(t, r.stderr, "nothing was read or changed")
		require.NotContains(t, r.stderr, "previous run", "nothing was read: %s", r.stderr)
	}

	// At rest: byte for byte.
	before := quiet(t, state)
	require.Contains(t, before, "tidstorage.status.lock")
	require.Contains(t, before, "tidstorage.status.journal.lock")
	require.Contains(t, before, "tidstorage.status.admin-token.lock")
	journal := statusPath + ".journal"
	jrest := readJournal(t, journal)
	refused()
	// The running process itself may append a tick to its journal, or
	// rotate it when idle, meanwhile: the journal is checked apart.
	withoutJournal := func(m map[string]string) map[string]string {
		out := maps.Clone(m)
		delete(out, "tidstorage.status.journal")
		return out
	}
	require.Equal(t, withoutJournal(before), withoutJournal(snapshotDir(t, state)), "the refused process changed the state directory")
	jrest.onlyGrew(t, journal)

	// Under load: the status file only grows, the marker and the pid file
	// still name the first process, nothing new appears beside them.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	load := zeotest.PythonCommand(ctx, t, "zodb_client.py", append(dbs, "paired", "--count", "100000", "--seconds", "8", "--touch", "a,b")...)
	require.NoError(t, load.Start())
	time.Sleep(2 * time.Second)
	prefix, err := os.ReadFile(statusPath)
	require.NoError(t, err)
	jload := readJournal(t, journal)
	for range 3 {
		refused()
		time.Sleep(300 * time.Millisecond)
	}
	require.NoError(t, load.Wait())
	now, err := os.ReadFile(statusPath)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(now), string(prefix)), "the status file was only appended to")
	// The live journal was only appended to (not truncated, no hole), or
	// rotated by its own process into a new file.
	jload.onlyGrew(t, journal)
	for _, f := range []string{"tidstorage.status.running", "tidstorage.pid"} {
		b, err := os.ReadFile(filepath.Join(state, f))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(first.cmd.Process.Pid), strings.TrimSpace(string(b)), f)
	}
	after := quiet(t, state)
	for f := range after {
		require.Contains(t, before, f, "a file appeared during the refusals")
	}
	doc := statusOf(t, adminAddr, statusPath+".admin-token")
	require.NotNil(t, doc.Journal)
	require.Zero(t, doc.Journal.Errors)
	require.Zero(t, doc.StatusFile.Epochs)
	require.Empty(t, doc.Pins)

	// The holder SIGKILLed: its locks stay on disk, unheld; the next serve
	// takes them over, says so, and replays the journal whole.
	kill(t, first)
	second := startServe(t, cfgPath, adminAddr, "/readyz")
	require.Contains(t, second.stderr.String(), fmt.Sprintf("taking over the lock of a process that is gone (tidstorage serve -c %s (all-in-one) by pid %d", cfgPath, first.cmd.Process.Pid))
	doc = statusOf(t, adminAddr, statusPath+".admin-token")
	require.Equal(t, "unclean", doc.PreviousRun)
	require.NotNil(t, doc.Journal)
	require.Positive(t, doc.Journal.Replayed)
	require.Empty(t, doc.Journal.Damage, "the journal replays whole")
	require.Empty(t, doc.Pins, "no partial and nothing unaccounted after the kill at rest")
	second.stopClean(t)
	for _, f := range []string{"tidstorage.status.lock", "tidstorage.status.journal.lock", "tidstorage.pid.lock"} {
		require.NoFileExists(t, filepath.Join(state, f), "a clean stop removes its locks")
	}
}

// A sidecar's send buffer is locked too: a second sidecar on the same
// buffer file is refused before it reads it, the first keeps it.
func TestSecondSidecarRefused(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1"}})
	dir := t.TempDir()
	adminAddr := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	cfgPath := filepath.Join(dir, "sidecar.hcl")
	buffer := filepath.Join(dir, "sidecar.buffer")
	writeFile(t, cfgPath, fmt.Sprintf(`
tracker {
  address     = "127.0.0.1:%d"
  name        = "zope1"
  buffer_file = %q
}
admin {
  listen = %q
}
zeo "main" {
  listen   = "127.0.0.1:%d"
  upstream = %q
  storage "1" { id = "main" }
}
`, zeotest.FreePort(t), buffer, adminAddr, zeotest.FreePort(t), srv.Addr))
	first := startServe(t, cfgPath, adminAddr, "/readyz")
	before := quiet(t, dir)
	require.Contains(t, before, "sidecar.buffer.lock")
	r := run(t, "serve", "-c", cfgPath)
	require.Equal(t, 1, r.code, r.stderr)
	require.Contains(t, r.stderr, "sidecar.buffer.lock is held by tidstorage serve -c "+cfgPath+" (sidecar) by pid "+fmt.Sprint(first.cmd.Process.Pid))
	require.Equal(t, before, snapshotDir(t, dir))
	resp, err := http.Get("http://" + adminAddr + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, "the first sidecar still serves")
}

// journalState is a journal's bytes and file identity at one moment.
type journalState struct {
	b  []byte
	fi os.FileInfo
}

func readJournal(t *testing.T, path string) journalState {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return journalState{b, fi}
}

// onlyGrew checks that the journal at path is the same file with the
// earlier bytes as its prefix (appended to by the running process), or a
// new file (its own rotation: written aside and renamed over it). A second
// process that truncated or rewrote it in place fails.
func (j journalState) onlyGrew(t *testing.T, path string) {
	t.Helper()
	now := readJournal(t, path)
	if !os.SameFile(j.fi, now.fi) {
		return
	}
	require.GreaterOrEqual(t, len(now.b), len(j.b), "the journal was truncated")
	require.True(t, bytes.Equal(now.b[:len(j.b)], j.b), "the journal was only appended to")
}
