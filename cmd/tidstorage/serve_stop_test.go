package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
)

// stopSite is serve in front of one ZEO storage, with a client holding a
// two-phase commit open through it (voted or not).
func stopSite(t *testing.T, vote bool) *serving {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1"}})
	dir := t.TempDir()
	proxyPort := zeotest.FreePort(t)
	adminAddr := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	cfg := fmt.Sprintf(`
status_file = %q
shutdown_timeout = "2m"
classic {
  enabled = false
}
admin {
  listen = %q
}
zeo "z" {
  listen   = "127.0.0.1:%d"
  upstream = %q
  storage "1" {}
}
`, filepath.Join(dir, "status"), adminAddr, proxyPort, srv.Addr)
	cfgPath := filepath.Join(dir, "tidstorage.hcl")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	sv := startServe(t, cfgPath, adminAddr, "/readyz")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	args := []string{"--db", fmt.Sprintf("a=127.0.0.1:%d/1", proxyPort), "hold", "--seconds", "90"}
	if vote {
		args = append(args, "--vote")
	}
	holder := zeotest.PythonCommand(ctx, t, "zodb_client.py", args...)
	out, err := holder.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, holder.Start())
	t.Cleanup(func() { cancel(); _ = holder.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, line, "holding")
	return sv
}

// TERM waits for a transaction in its commit (voted, not finished); a
// second TERM exits at once.
func TestServeSecondTermExitsAtOnce(t *testing.T) {
	sv := stopSite(t, true)
	require.NoError(t, sv.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-sv.done:
		t.Fatalf("serve exited (%v) with a transaction in its commit before shutdown_timeout: %s", sv.err, sv.stderr.String())
	case <-time.After(time.Second):
	}
	require.NoError(t, sv.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-sv.done:
		var exit *exec.ExitError
		require.True(t, errors.As(sv.err, &exit), "exit status: %v", sv.err)
		require.Equal(t, 1, exit.ExitCode())
	case <-time.After(10 * time.Second):
		t.Fatal("a second TERM did not stop serve at once")
	}
	require.Contains(t, sv.stderr.String(), "second stop signal")
}

// A transaction that has begun but not voted is not waited for: the stop
// closes its connection at once (the server aborts it; the client retries on
// the next process), and the stop is clean.
func TestServeTermDoesNotWaitForATransactionNotVoted(t *testing.T) {
	sv := stopSite(t, false)
	require.NoError(t, sv.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-sv.done:
		require.NoError(t, sv.err, sv.stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("serve waited for a transaction that had not voted: %s", sv.stderr.String())
	}
	require.Contains(t, sv.stderr.String(), "no transaction in its commit; every connection closed")
	require.NotContains(t, sv.stderr.String(), "stop timeout")
}
