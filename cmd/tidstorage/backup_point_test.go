package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// A backup right after commits backs up the newest point: the running
// daemon's (its /status, else its classic DUMP), not the status file's last
// line, which is written only every burst_period. Once the daemon is gone
// the status file is used, and the command says how old its line is and how
// to get a newer point; a daemon at the configured address that does not
// publish the configuration's storages is not used.
func TestBackupAsksTheRunningDaemon(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}})
	dir := t.TempDir()
	port := zeotest.FreePort(t)
	adminAddr := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	classicAddr := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	status := filepath.Join(dir, "tidstorage.status")
	body := func(admin, classic string) string {
		return fmt.Sprintf(`
status_file      = %q
burst_period     = "1h"
full_dump_period = "1h"
classic {
  %s
}
admin {
  %s
}
zeo "main" {
  listen   = "127.0.0.1:%d"
  upstream = %q
  storage "1" {
    data_fs    = %q
    repository = "repo-1"
  }
  storage "2" {
    data_fs    = %q
    repository = "repo-2"
  }
}
`, status, classic, admin, port, srv.Addr, srv.DataFS("1"), srv.DataFS("2"))
	}
	cfg := filepath.Join(dir, "tidstorage.hcl")
	writeFile(t, cfg, body(fmt.Sprintf("listen = %q", adminAddr), fmt.Sprintf("listen = %q", classicAddr)))
	classicOnly := filepath.Join(dir, "classic-only.hcl")
	writeFile(t, classicOnly, body("enabled = false", fmt.Sprintf("listen = %q", classicAddr)))
	sv := startServe(t, cfg, adminAddr, "/readyz")

	dbs := []string{"--db", fmt.Sprintf("a=127.0.0.1:%d/1", port), "--db", fmt.Sprintf("b=127.0.0.1:%d/2", port)}
	zeotest.Python(t, "zodb_client.py", append(dbs, "commit", "--count", "3", "--touch", "a,b")...)
	var last map[string]string
	require.NoError(t, json.Unmarshal(zeotest.Python(t, "zodb_client.py", append(dbs, "last")...), &last))
	require.Len(t, readLines(t, status), 1, "only the bootstrap line: the next is due in an hour")
	id := func(name string) string { return fmt.Sprintf("((('127.0.0.1', %d),), '%s')", port, name) }
	// The daemon publishes the commits within moments.
	require.Eventually(t, func() bool {
		r := run(t, "dump", "-a", classicAddr)
		return strings.Contains(r.stdout, last["a"]) && strings.Contains(r.stdout, last["b"])
	}, 30*time.Second, 100*time.Millisecond)

	r := run(t, "backup", "-c", cfg, "--progress", "0")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "(point: the running daemon's current point (http://"+adminAddr+"/status, ")
	require.Contains(t, r.stdout, "main-1 = "+id("1")+": full, tid "+last["a"])
	require.Contains(t, r.stdout, "main-2 = "+id("2")+": full, tid "+last["b"])
	require.NotContains(t, r.stderr, "note:")

	// Without an admin endpoint, its classic DUMP.
	r = run(t, "cut", "-c", classicOnly, "--dry-run")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "point: the running daemon's current point (DUMP at "+classicAddr+", ")
	require.Contains(t, r.stdout, "main-1 = "+id("1")+": "+srv.DataFS("1")+": tid "+last["a"])

	// The daemon gone: the status file's (older) line, and why.
	kill(t, sv)
	r = run(t, "cut", "-c", cfg, "--dry-run")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "point: status file "+status+", line 1 (")
	require.Contains(t, r.stderr, "note: the point is the status file's last line, written ")
	require.Contains(t, r.stderr, "the daemon could not be asked for a newer one (admin "+adminAddr+": connection refused; classic "+classicAddr+": connection refused)")
	require.Contains(t, r.stderr, "every burst_period (1h0m0s) after commits")
	require.Contains(t, r.stderr, "or give --dump HOST:PORT")

	// Another daemon at the configured address (publishing other storages)
	// is not taken for this configuration's.
	alien := startClassic(t, fixedBackend{point: map[string]txn.TID{"elsewhere": 0x0100}})
	writeFile(t, classicOnly, body("enabled = false", fmt.Sprintf("listen = %q", alien)))
	r = run(t, "cut", "-c", classicOnly, "--dry-run")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stderr, "warning: the daemon at "+alien+" does not publish "+id("1"))
	require.Contains(t, r.stdout, "point: status file "+status+", line 1 (")
}
