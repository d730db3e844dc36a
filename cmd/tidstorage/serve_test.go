package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
)

// `tidstorage serve` as an operator runs it: two real ZEO servers (three
// storages) behind it, a ZODB workload through it, then `dump` and `status`
// agree with the storages, and HUP, USR1 and TERM do what the docs say.
func TestServeEndToEnd(t *testing.T) {
	a := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}})
	b := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1"}, Msgpack: true})
	dir := t.TempDir()
	pa, pb := zeotest.FreePort(t), zeotest.FreePort(t)
	classicAddr := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	logPath := filepath.Join(dir, "tidstorage.log")
	statusPath := filepath.Join(dir, "tidstorage.status")
	pidPath := filepath.Join(dir, "tidstorage.pid")
	cfg := fmt.Sprintf(`
status_file = %q
pid_file = %q
burst_period = "0s"
log {
  file = %q
  level = "debug"
  format = "json"
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
  storage "1" {}
  storage "2" {}
}
zeo "b" {
  listen = "127.0.0.1:%d"
  upstream = %q
  storage "1" {}
}
`, statusPath, pidPath, logPath, classicAddr, adminAddr, pa, a.Addr, pb, b.Addr)
	cfgPath := filepath.Join(dir, "tidstorage.hcl")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	require.Equal(t, 0, run(t, "config", "check", "-c", cfgPath).code)

	sv := startServe(t, cfgPath, adminAddr, "/healthz")
	cmd := sv.cmd
	pid, err := os.ReadFile(pidPath)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint(cmd.Process.Pid), strings.TrimSpace(string(pid)))

	dbs := []string{"--db", fmt.Sprintf("a=127.0.0.1:%d/1", pa), "--db", fmt.Sprintf("b=127.0.0.1:%d/2", pa), "--db", fmt.Sprintf("c=127.0.0.1:%d/1", pb)}
	zeotest.Python(t, "zodb_client.py", append(dbs, "commit", "--count", "5", "--touch", "a,b,c")...)
	zeotest.Python(t, "zodb_client.py", append(dbs, "commit", "--count", "3", "--touch", "b")...)
	var lastHex map[string]string
	require.NoError(t, json.Unmarshal(zeotest.Python(t, "zodb_client.py", append(dbs, "last")...), &lastHex))
	ids := map[string]string{
		"a": fmt.Sprintf("((('127.0.0.1', %d),), '1')", pa),
		"b": fmt.Sprintf("((('127.0.0.1', %d),), '2')", pa),
		"c": fmt.Sprintf("((('127.0.0.1', %d),), '1')", pb),
	}
	want := map[string]string{}
	for db, h := range lastHex {
		want[ids[db]] = h
	}

	// dump (classic DUMP) and status (admin /status) agree with the storages.
	require.Eventually(t, func() bool {
		r := run(t, "dump", "-a", classicAddr, "--json")
		var d struct {
			Bootstrapped bool
			Storages     map[string]tidInfo
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &d) != nil || !d.Bootstrapped {
			return false
		}
		got := map[string]string{}
		for id, ti := range d.Storages {
			got[id] = ti.Hex
		}
		return fmt.Sprint(got) == fmt.Sprint(want)
	}, 30*time.Second, 100*time.Millisecond, "dump never reached %v", want)
	r := run(t, "status", "-c", cfgPath, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var doc statusdoc.StatusDoc
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc))
	require.True(t, doc.Bootstrapped)
	require.Len(t, doc.Storages, 3)
	for _, s := range doc.Storages {
		require.NotNil(t, s.Published, s.ID)
		require.Equal(t, want[s.ID], s.Published.Hex, s.ID)
	}
	require.Empty(t, doc.Pins)
	// Ground truth wired: every proxied storage watched, its watcher
	// connected, nothing held; the journal beside the status file.
	require.Len(t, doc.History, 3)
	for _, s := range doc.Storages {
		require.True(t, s.Watched, s.ID)
		require.False(t, s.HeldByUnaccounted, s.ID)
	}
	for _, h := range doc.History {
		require.True(t, h.Connected, h.Storage)
	}
	require.NotNil(t, doc.Journal)
	require.Equal(t, statusPath+".journal", doc.Journal.Path)
	require.Positive(t, doc.Journal.Records)
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	require.NoError(t, err)
	var metrics bytes.Buffer
	_, _ = metrics.ReadFrom(resp.Body)
	resp.Body.Close()
	require.Contains(t, metrics.String(), "tidstorage_")
	require.Contains(t, metrics.String(), "tidstorage_history_connected{")
	require.Contains(t, metrics.String(), "tidstorage_journal_bytes ")
	require.Contains(t, metrics.String(), `tidstorage_held_storages 0`)

	// Serve created the admin token beside the status file, 0600;
	// a rebinding request is misdirected, a POST without it unauthorized.
	fi, err := os.Stat(statusPath + ".admin-token")
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	req, err := http.NewRequest(http.MethodGet, "http://"+adminAddr+"/status", nil)
	require.NoError(t, err)
	req.Host = "rebind.evil.example:" + strings.Split(adminAddr, ":")[1]
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMisdirectedRequest, resp.StatusCode)
	resp, err = http.Post("http://"+adminAddr+"/accept-partial?pin=1", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// USR1 writes the tracker state to the log.
	require.NoError(t, cmd.Process.Signal(syscall.SIGUSR1))
	require.Eventually(t, func() bool { return fileContains(logPath, "SIGUSR1: tracker state") }, 10*time.Second, 50*time.Millisecond)

	// HUP reopens the log file after it was moved away (logrotate), and
	// applies a new log level from the configuration file.
	require.NoError(t, os.Rename(logPath, logPath+".1"))
	require.NoError(t, os.WriteFile(cfgPath, []byte(strings.Replace(cfg, `level = "debug"`, `level = "info"`, 1)), 0o644))
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return fileContains(logPath, "log file reopened") }, 10*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool { return fileContains(logPath, "log level changed") }, 10*time.Second, 50*time.Millisecond)

	// TERM: a clean stop, a final full line in the status file, which reads
	// back to the same point; the pid file is gone.
	sv.stopClean(t)
	lines := readLines(t, statusPath)
	require.NotEmpty(t, lines)
	require.Equal(t, "f", strings.Fields(lines[len(lines)-1])[1], "the last status line is a full one")
	f, err := os.Open(statusPath)
	require.NoError(t, err)
	defer f.Close()
	res, err := statusfile.Replay(f, statusfile.ReplayOptions{})
	require.NoError(t, err)
	got := map[string]string{}
	for id, v := range res.Point {
		got[id] = fmt.Sprintf("%016x", v)
	}
	require.Equal(t, want, got)
	_, err = os.Stat(pidPath)
	require.True(t, os.IsNotExist(err), "pid file removed at a clean stop")
	_, err = os.Stat(statusPath + ".running")
	require.True(t, os.IsNotExist(err), "a clean stop leaves no running marker")
}

func fileContains(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, []byte(s))
}

func readLines(t *testing.T, path string) []string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// serving is a `tidstorage serve` process started by a test.
type serving struct {
	cmd    *exec.Cmd
	stderr *zeotest.SyncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // its Wait error, once done is closed
}

// stopClean sends TERM and requires a clean stop (exit status 0) within a
// minute.
func (sv *serving) stopClean(t *testing.T) {
	t.Helper()
	require.NoError(t, sv.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-sv.done:
		require.NoError(t, sv.err, "exit status 0 after TERM; stderr: %s", sv.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop after TERM")
	}
}

// startServe runs `tidstorage serve -c cfgPath` and waits until
// http://adminAddr+path answers 200. The process is killed at cleanup if it
// is still running.
func startServe(t *testing.T, cfgPath, adminAddr, path string) *serving {
	t.Helper()
	return startServeBin(t, bin, cfgPath, adminAddr, path)
}

// startServeBin is startServe with another tidstorage binary.
func startServeBin(t *testing.T, exe, cfgPath, adminAddr, path string) *serving {
	t.Helper()
	sv := &serving{cmd: exec.Command(exe, "serve", "-c", cfgPath), stderr: &zeotest.SyncBuffer{}, done: make(chan struct{})}
	sv.cmd.Stderr = sv.stderr
	require.NoError(t, sv.cmd.Start())
	go func() { sv.err = sv.cmd.Wait(); close(sv.done) }()
	t.Cleanup(func() {
		select {
		case <-sv.done:
		default:
			_ = sv.cmd.Process.Kill()
			<-sv.done
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 30*time.Second, 50*time.Millisecond, "serve did not come up: %s", sv.stderr.String())
	return sv
}
