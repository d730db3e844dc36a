package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
)

// `config check` loads every TLS block's files as serve would: a
// certificate that does not match its key, a CA file without a
// certificate, an expired or expiring certificate are each reported at
// the attribute; a missing file only once (as a missing path).
func TestCheckPathsLoadsTLSFiles(t *testing.T) {
	certs := zeotest.WriteTLSCerts(t)
	year := time.Now().Add(365 * 24 * time.Hour)
	goodCert, goodKey := certs.Issue(t, "good", true, year)
	clientCert, clientKey := certs.Issue(t, "client", false, year)
	_, otherKey := certs.Issue(t, "other", true, year)
	oldCert, oldKey := certs.Issue(t, "old", true, time.Now().Add(-time.Hour))
	soonCert, soonKey := certs.Issue(t, "soon", false, time.Now().Add(10*24*time.Hour))
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644))
	missing := filepath.Join(t.TempDir(), "missing.crt")

	check := func(zeo string) []string {
		t.Helper()
		src := fmt.Sprintf("status_file = %q\nzeo \"z\" {\n  listen = \"127.0.0.1:8100\"\n  upstream = \"zeo1:8100\"\n%s  storage \"1\" {}\n}\n",
			filepath.Join(t.TempDir(), "st"), zeo)
		cfg, err := Parse([]byte(src), "t.hcl")
		require.NoError(t, err)
		var out []string
		for _, d := range cfg.CheckPaths() {
			out = append(out, FormatDiagnostic(d))
		}
		return out
	}
	tlsBlock := func(cert, key, ca string) string {
		return fmt.Sprintf("  tls {\n    cert_file = %q\n    key_file = %q\n    client_ca_file = %q\n  }\n", cert, key, ca)
	}
	upBlock := func(cert, key, ca string) string {
		return fmt.Sprintf("  upstream_tls {\n    cert_file = %q\n    key_file = %q\n    ca_file = %q\n  }\n", cert, key, ca)
	}

	require.Empty(t, check(tlsBlock(goodCert, goodKey, certs.CA)), "good files")
	require.Empty(t, check(upBlock(clientCert, clientKey, certs.CA)))

	got := check(tlsBlock(goodCert, otherKey, certs.CA))
	require.Len(t, got, 1, "%v", got)
	require.True(t, strings.HasPrefix(got[0], "t.hcl:6:17: warning: TLS files do not load: zeo \"z\" tls: cert_file "), got[0])
	require.Contains(t, got[0], "private key does not match public key")

	got = check(upBlock(clientCert, clientKey, notPEM))
	require.Equal(t, []string{fmt.Sprintf(`t.hcl:8:15: warning: TLS files do not load: zeo "z" upstream_tls: ca_file %s: no PEM certificate in it`, notPEM)}, got)

	got = check(tlsBlock(oldCert, oldKey, certs.CA))
	require.Len(t, got, 1, "%v", got)
	require.Contains(t, got[0], "t.hcl:6:17: warning: Certificate expired: zeo \"z\" tls: cert_file "+oldCert)

	got = check(upBlock(soonCert, soonKey, certs.CA))
	require.Len(t, got, 1, "%v", got)
	require.Contains(t, got[0], "Certificate expires soon")
	require.Contains(t, got[0], "in 9 days")

	got = check(tlsBlock(missing, goodKey, certs.CA))
	require.Equal(t, []string{fmt.Sprintf(`t.hcl:6:17: warning: Path does not exist: cert_file %q does not exist`, missing)}, got)
}
