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

// TERM waits for transactions in flight; a second TERM exits at once.
func TestServeSecondTermExitsAtOnce(t *testing.T) {
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
	cmd, stderr := sv.cmd, sv.stderr

	// A client holds a two-phase commit open through the proxy.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	holder := zeotest.PythonCommand(ctx, t, "zodb_client.py", "--db", fmt.Sprintf("a=127.0.0.1:%d/1", proxyPort), "hold", "--seconds", "90")
	out, err := holder.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, holder.Start())
	defer func() { cancel(); _ = holder.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, line, "holding")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-sv.done:
		t.Fatalf("serve exited (%v) with a transaction in flight before its grace period: %s", sv.err, stderr.String())
	case <-time.After(time.Second):
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-sv.done:
		var exit *exec.ExitError
		require.True(t, errors.As(sv.err, &exit), "exit status: %v", sv.err)
		require.Equal(t, 1, exit.ExitCode())
	case <-time.After(10 * time.Second):
		t.Fatal("a second TERM did not stop serve at once")
	}
	require.Contains(t, stderr.String(), "second stop signal")
}
