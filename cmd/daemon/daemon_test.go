package daemon

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/fleet/fleettest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/tracker/classic"
)

// A classic-only daemon: the status file is written by its one owner (a
// torn tail from a crash is cut off first), classic reports reach it, a
// clean stop writes the final full line, and an accept without a proxy has
// nothing to read live and goes straight to the tracker.
func TestDaemonStatusFileClassicOnly(t *testing.T) {
	dir := t.TempDir()
	status := filepath.Join(dir, "status")
	require.NoError(t, os.WriteFile(status, []byte("1.00 f {'a': 1}\n2.00 d {'a': 2"), 0o644))
	cfgPath := filepath.Join(dir, "t.hcl")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`status_file = "status"
burst_period = "0s"
classic {
  listen = "127.0.0.1:0"
}
admin {
  enabled = false
}
`), 0o644))
	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	d, err := Start(Options{Config: cfg, Version: "test", Stderr: io.Discard})
	require.NoError(t, err)
	require.Equal(t, PrevClean, d.PreviousRun(), "the file has lines and no running marker")

	cl, err := classic.Dial(d.classicLn.Addr().String(), 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, cl.Begin("t1", []string{"a"}))
	require.NoError(t, cl.Commit("t1", map[string]txn.TID{"a": 5}))
	// Classic-only: as the original, publication starts at the next end.
	require.NoError(t, cl.Begin("t2", []string{"a"}))
	require.NoError(t, cl.Abort("t2"))
	require.NoError(t, cl.Close())
	require.Eventually(t, func() bool { return d.StatusFile().Stats().Lines >= 1 }, 10*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, d.AcceptPartial(7), tracker.ErrNoSuchPin)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, d.Shutdown(ctx))
	b, err := os.ReadFile(status)
	require.NoError(t, err)
	require.Regexp(t, `^1.00 f \{'a': 1\}\n[0-9.]+ f \{'a': 5\}\n[0-9.]+ f \{'a': 5\}\n$`, string(b))
	st := d.StatusFile().Stats()
	require.EqualValues(t, 2, st.Lines)
	require.EqualValues(t, 3, st.FileLines)
	require.Zero(t, st.Errors)
	torn, err := filepath.Glob(status + ".torn-*")
	require.NoError(t, err)
	require.Len(t, torn, 1)
}

// A first start says so (not "the previous run stopped
// cleanly"), and a restart counts the lines the file already holds.
func TestDaemonPreviousRun(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "t.hcl")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`status_file = "status"
burst_period = "0s"
classic {
  listen = "127.0.0.1:0"
}
admin {
  enabled = false
}
`), 0o644))
	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	start := func() *Daemon {
		d, err := Start(Options{Config: cfg, Version: "test", Stderr: io.Discard})
		require.NoError(t, err)
		return d
	}
	stop := func(d *Daemon) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, d.Shutdown(ctx))
	}
	d := start()
	require.Equal(t, PrevNone, d.PreviousRun())
	cl, err := classic.Dial(d.classicLn.Addr().String(), 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, cl.Begin("t1", []string{"a"}))
	require.NoError(t, cl.Commit("t1", map[string]txn.TID{"a": 5}))
	// Classic-only: as the original, publication starts at the next end.
	require.NoError(t, cl.Begin("t2", []string{"a"}))
	require.NoError(t, cl.Abort("t2"))
	require.NoError(t, cl.Close())
	require.Eventually(t, func() bool { return d.StatusFile().Stats().Lines >= 1 }, 10*time.Second, 10*time.Millisecond)
	stop(d)
	n := d.StatusFile().Stats().FileLines
	require.NotZero(t, n)

	d = start()
	require.Equal(t, PrevClean, d.PreviousRun())
	require.Equal(t, n, d.StatusFile().Stats().FileLines, "the lines of the previous run are counted")
	require.Zero(t, d.StatusFile().Stats().Lines)
	stop(d)
}

// SIGHUP (Reopen) reads the tracker's fleet TLS files again: a renewed
// certificate is presented to new connections, and a file that does not
// load is logged by name while the previous certificate stays in use.
func TestReopenReloadsFleetCerts(t *testing.T) {
	dir := t.TempDir()
	c, err := fleettest.Write(dir)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	zeo := l.Addr().String() // nothing answers: the tracker retries its bootstrap in the background
	require.NoError(t, l.Close())
	cfgPath := filepath.Join(dir, "tracker.hcl")
	logFile := filepath.Join(dir, "tracker.log")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`status_file = "status"
log { file = "tracker.log" }
admin { enabled = false }
classic { listen = "127.0.0.1:0" }
`+c.TrackerHCL("127.0.0.1:0")+`zeo "main" {
  upstream = "`+zeo+`"
  storage "1" { id = "A" }
}
`), 0o644))
	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	d, err := Start(Options{Config: cfg, Version: "test", Stderr: os.Stderr})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	peerCN := func() string {
		cn, err := c.PeerCN(d.FleetAddr().String())
		require.NoError(t, err)
		return cn
	}
	logs := func() string {
		b, err := os.ReadFile(logFile)
		require.NoError(t, err)
		return string(b)
	}
	require.Equal(t, "tracker", peerCN())

	require.NoError(t, os.WriteFile(c.TrackerCert, []byte("garbage"), 0o600))
	d.Reopen()
	require.Contains(t, logs(), "SIGHUP: the fleet TLS files do not load; the previous certificates stay in use")
	require.Contains(t, logs(), c.TrackerCert)
	require.Equal(t, "tracker", peerCN())

	cert2, key2, err := c.Issue(t.TempDir(), "tracker-2", true)
	require.NoError(t, err)
	for src, dst := range map[string]string{cert2: c.TrackerCert, key2: c.TrackerKey} {
		require.NoError(t, os.Rename(src, dst))
	}
	d.Reopen()
	require.Contains(t, logs(), "SIGHUP: fleet TLS files reloaded: new connections use them")
	require.Contains(t, logs(), "CN=tracker-2")
	require.Equal(t, "tracker-2", peerCN())
}
