package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/tracker"
)

// A sidecar is its own role: it has no tracker, status file or classic
// endpoint; what the admin endpoint reads of it is its own (ready once its
// bootstrap ran and its proxy serves, no pin to accept) and its link. Its
// ZEO server does not answer here: the bootstrap is retried in the
// background and the relay serves meanwhile.
func TestSidecarRoleHasNoTracker(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "sidecar.hcl")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`admin { enabled = false }
tracker {
  address = "127.0.0.1:%d"
  name = "zope1"
  buffer_file = "buffer"
}
zeo "main" {
  listen = "127.0.0.1:%d"
  upstream = "127.0.0.1:%d"
  storage "1" { id = "A" }
}
`, zeotest.FreePort(t), zeotest.FreePort(t), zeotest.FreePort(t))), 0o644))
	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	require.Equal(t, config.RoleSidecar, cfg.Role())
	d, err := Start(Options{Config: cfg, Version: "test", Stderr: io.Discard})
	require.NoError(t, err)
	require.IsType(t, &sidecar{}, d.role)
	require.Nil(t, d.Tracker, "no tracker of its own")
	require.Nil(t, d.StatusFile())
	require.Nil(t, d.Classic)
	require.NotNil(t, d.Proxy)
	require.Equal(t, PrevUnknown, d.PreviousRun())

	p := d.Parts()
	st := p.Status.Status()
	require.True(t, st.Bootstrapped, "ready: its proxy serves")
	require.Empty(t, st.Storages)
	require.NotNil(t, p.FleetLink)
	require.Equal(t, "zope1", p.FleetLink().Source)
	require.NotNil(t, p.Proxy)
	require.Nil(t, p.Watchers)
	require.Nil(t, p.Journal)
	require.Nil(t, p.StatusFile)
	require.Nil(t, p.FleetSidecars)
	require.ErrorIs(t, p.Accept(1), tracker.ErrNoSuchPin)
	d.DumpState() // no tracker to dump: the sidecar's own state

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, d.Shutdown(ctx))
}
