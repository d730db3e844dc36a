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
)

// A zeo block's TLS files are loaded at start: files that do not load stop
// the start with the block and the file named; loaded ones are listed with
// their expiry for the admin endpoint.
func TestStartLoadsZEOTLSFiles(t *testing.T) {
	certs := zeotest.WriteTLSCerts(t)
	dir := t.TempDir()
	write := func(key string) *config.Config {
		path := filepath.Join(dir, "t.hcl")
		require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`status_file = "status"
admin { enabled = false }
classic { enabled = false }
zeo "main" {
  listen   = "127.0.0.1:%d"
  upstream = "127.0.0.1:%d"
  tls {
    cert_file      = %q
    key_file       = %q
    client_ca_file = %q
  }
  upstream_tls {
    ca_file   = %q
    cert_file = %q
    key_file  = %q
  }
  storage "1" {}
}
`, zeotest.FreePort(t), zeotest.FreePort(t), certs.Proxy, key, certs.CA, certs.CA, certs.Upstream, certs.UpstreamKey)), 0o644))
		cfg, err := config.Load(path)
		require.NoError(t, err)
		return cfg
	}
	_, err := Start(Options{Config: write(certs.ClientKey), Version: "test", Stderr: io.Discard})
	require.ErrorContains(t, err, `zeo "main" tls: cert_file `+certs.Proxy+" with key_file "+certs.ClientKey)
	_, err = os.Stat(filepath.Join(dir, "status.running"))
	require.ErrorIs(t, err, os.ErrNotExist, "nothing started")

	cfg := write(certs.ProxyKey)
	require.True(t, HasTLS(cfg))
	d, err := Start(Options{Config: cfg, Version: "test", Stderr: io.Discard})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	var got []string
	for _, e := range d.Certificates() {
		require.WithinDuration(t, time.Now(), e.NotAfter, 10*365*24*time.Hour+time.Hour)
		got = append(got, e.Block+" "+e.Attr+" "+e.File)
	}
	require.Equal(t, []string{
		"zeo.main.tls cert_file " + certs.Proxy, "zeo.main.tls client_ca_file " + certs.CA,
		"zeo.main.upstream_tls cert_file " + certs.Upstream, "zeo.main.upstream_tls ca_file " + certs.CA,
	}, got)
}
