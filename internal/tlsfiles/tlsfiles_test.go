package tlsfiles_test

import (
	"crypto/tls"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/tlsfiles"
)

func TestServerAndClientConfigs(t *testing.T) {
	c := zeotest.WriteTLSCerts(t)
	srv, err := tlsfiles.New("zeo.main.tls", tlsfiles.Server, tlsfiles.Files{CertFile: c.Proxy, KeyFile: c.ProxyKey, CAFile: c.CA})
	require.NoError(t, err)
	cfg := srv.Config()
	require.Equal(t, uint16(tls.VersionTLS12), cfg.MinVersion)
	require.Equal(t, tls.RequireAndVerifyClientCert, cfg.ClientAuth, "a client CA requires client certificates")
	exp := srv.Expiries()
	require.Len(t, exp, 2)
	require.Equal(t, tlsfiles.Expiry{Block: "zeo.main.tls", File: c.Proxy, Attr: "cert_file", Subject: "CN=proxy", NotAfter: exp[0].NotAfter}, exp[0])
	require.Equal(t, "client_ca_file", exp[1].Attr)

	open, err := tlsfiles.New("b", tlsfiles.Server, tlsfiles.Files{CertFile: c.Proxy, KeyFile: c.ProxyKey})
	require.NoError(t, err)
	require.Equal(t, tls.NoClientCert, open.Config().ClientAuth)

	cli, err := tlsfiles.New("b", tlsfiles.Client, tlsfiles.Files{CAFile: c.CA, ServerName: "zeo1"})
	require.NoError(t, err)
	require.Empty(t, cli.Config().Certificates, "no client certificate")
	require.Equal(t, "zeo1", cli.Config().ServerName)

	for _, bad := range []struct {
		role tlsfiles.Role
		f    tlsfiles.Files
		msg  string
	}{
		{tlsfiles.Server, tlsfiles.Files{}, "needs cert_file and key_file"},
		{tlsfiles.Client, tlsfiles.Files{CertFile: c.Client, ServerName: "x"}, "go together"},
		{tlsfiles.Client, tlsfiles.Files{CAFile: c.CA}, "no server name"},
		{tlsfiles.Server, tlsfiles.Files{CertFile: c.Proxy, KeyFile: c.ClientKey}, "cert_file " + c.Proxy + " with key_file"},
		{tlsfiles.Client, tlsfiles.Files{CAFile: c.ProxyKey, ServerName: "x"}, "ca_file " + c.ProxyKey + ": no PEM certificate"},
		{tlsfiles.Server, tlsfiles.Files{CertFile: c.Dir + "/none.crt", KeyFile: c.ProxyKey}, "cert_file: open"},
	} {
		_, err := tlsfiles.New("b", bad.role, bad.f)
		require.ErrorContains(t, err, bad.msg)
	}
}

// Reload takes renewed files; files that do not load leave the previous
// ones in use.
func TestReload(t *testing.T) {
	c := zeotest.WriteTLSCerts(t)
	s, err := tlsfiles.New("b", tlsfiles.Server, tlsfiles.Files{CertFile: c.Proxy, KeyFile: c.ProxyKey})
	require.NoError(t, err)
	first := s.Expiries()[0].NotAfter
	later := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	c.Issue(t, "proxy", true, later)
	require.NoError(t, s.Reload())
	require.True(t, s.Expiries()[0].NotAfter.Equal(later))
	require.False(t, first.Equal(later))

	require.NoError(t, os.WriteFile(c.ProxyKey, []byte("garbage"), 0o600))
	require.Error(t, s.Reload())
	require.True(t, s.Expiries()[0].NotAfter.Equal(later), "the previous files stay in use")
	require.Len(t, s.Config().Certificates, 1)
}
