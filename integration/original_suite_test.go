package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
)

// Tidstorage is a drop-in for the original daemon. The
// original Products.TIDStorage suite (tests/testTIDServer.py, 11 tests) runs
// unchanged but for Python 3 (integration/python/original_suite.py) against
// `tidstorage serve` with only the classic endpoint, as a separate process.
func TestOriginalSuiteAgainstClassicOnlyServe(t *testing.T) {
	dir := t.TempDir()
	classicAddr := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	cfg := filepath.Join(dir, "tidstorage.hcl")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`status_file = "status"
classic {
  listen = %q
}
admin {
  enabled = false
}
`, classicAddr)), 0o644))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	serve := exec.CommandContext(ctx, tidstorageBin(t), "serve", "-c", cfg)
	serve.Dir = dir
	log := &zeotest.SyncBuffer{}
	serve.Stdout, serve.Stderr = log, log
	serve.Cancel = func() error { return serve.Process.Signal(syscall.SIGTERM) }
	serve.WaitDelay = 10 * time.Second
	require.NoError(t, serve.Start())
	defer func() {
		cancel()
		_ = serve.Wait()
		if t.Failed() {
			t.Logf("tidstorage serve:\n%s", log.String())
		}
	}()
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", classicAddr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 20*time.Second, 20*time.Millisecond, "classic endpoint never listened")

	out, err := zeotest.PythonErr(t, "original_suite.py", "127.0.0.1", fmt.Sprint(classicAddrPort(t, classicAddr)))
	var res struct {
		Passed []string          `json:"passed"`
		Failed map[string]string `json:"failed"`
	}
	require.NoError(t, json.Unmarshal(out, &res), "suite output %q (run error: %v)", out, err)
	require.Empty(t, res.Failed, "tests of the original suite failed")
	require.Len(t, res.Passed, 11, "the original suite has 11 tests")
	require.NoError(t, err)
}

func classicAddrPort(t *testing.T, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return port
}
