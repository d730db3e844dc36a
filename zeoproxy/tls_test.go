package zeoproxy_test

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/tlsfiles"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// tlsSet loads one end's files as the daemon does.
func tlsSet(t *testing.T, role tlsfiles.Role, f tlsfiles.Files) *tlsfiles.Set {
	t.Helper()
	s, err := tlsfiles.New("test", role, f)
	require.NoError(t, err)
	return s
}

// proxyTLS is the listener's end: the proxy's certificate, client
// certificates signed by the CA required.
func proxyTLS(t *testing.T, c *zeotest.TLSCerts) *tlsfiles.Set {
	return tlsSet(t, tlsfiles.Server, tlsfiles.Files{CertFile: c.Proxy, KeyFile: c.ProxyKey, CAFile: c.CA})
}

// upstreamTLS is the end towards ZEO: tidstorage's client certificate, the
// ZEO server's certificate checked against caFile.
func upstreamTLS(t *testing.T, c *zeotest.TLSCerts, caFile string) *tlsfiles.Set {
	return tlsSet(t, tlsfiles.Client, tlsfiles.Files{CertFile: c.Upstream, KeyFile: c.UpstreamKey, CAFile: caFile, ServerName: "127.0.0.1"})
}

// Terminated and re-originated TLS changes no relayed byte: TLS taps on
// both sides of the proxy (a ZODB client -> tap -> proxy -> tap -> ZEO 6
// with <ssl> and authenticate) record the same plaintext streams,
// connection by connection; every commit is observed and no storage is
// blind.
func TestTLSRelayIsByteExact(t *testing.T) {
	certs := zeotest.WriteTLSCerts(t)
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}, TLS: certs})
	innerSrv := tlsSet(t, tlsfiles.Server, tlsfiles.Files{CertFile: certs.ZEO, KeyFile: certs.ZEOKey, CAFile: certs.CA})
	innerCli, err := certs.ClientConfig(certs.Upstream, certs.UpstreamKey)
	require.NoError(t, err)
	inner := startTLSTap(t, srv.Addr, innerSrv.Config(), innerCli)

	rec := newRecorder()
	p := serveProxy(t, zeoproxy.Config{Servers: []zeoproxy.ServerConfig{{Name: "z", Listen: "127.0.0.1:0", Upstream: inner.Addr(),
		TLS: proxyTLS(t, certs).Config, UpstreamTLS: upstreamTLS(t, certs, certs.CA).Config}}}, rec)

	outerSrv := tlsSet(t, tlsfiles.Server, tlsfiles.Files{CertFile: certs.Proxy, KeyFile: certs.ProxyKey, CAFile: certs.CA})
	outerCli, err := certs.ClientConfig(certs.Client, certs.ClientKey)
	require.NoError(t, err)
	outer := startTLSTap(t, p.Addrs()[0].String(), outerSrv.Config(), outerCli)

	args := append(certs.PythonArgs(certs.Client, certs.ClientKey), "--db", "a="+outer.Addr()+"/1", "--db", "b="+outer.Addr()+"/2")
	out := zeotest.Python(t, "zodb_client.py", append(args, "commit", "--count", "20", "--touch", "a,b", "--desc", "tls")...)
	zeotest.Python(t, "zodb_client.py", append(args, "read")...)
	got, want := outer.digests(), inner.digests()
	require.NotEmpty(t, want)
	require.Equal(t, want, got, "the plaintext above TLS is the same on both sides of the proxy")

	lines := parseLines(t, out)
	require.Len(t, lines, 20)
	last := lines[len(lines)-1]
	addr := p.Addrs()[0].String()
	for db, name := range map[string]string{"a": "1", "b": "2"} {
		c := rec.committed()[zeoproxy.StorageIDOf(addr, name)]
		require.NotEmpty(t, c)
		require.Equal(t, last[db], c[len(c)-1], "the last commit on %s was observed", db)
	}
	for _, ev := range rec.snapshot() {
		require.NotContains(t, ev, "blind")
	}
	m := p.Metrics()
	require.Positive(t, m.TLSHandshakesClient)
	require.Equal(t, m.TLSHandshakesClient, m.TLSHandshakesUpstream, "one upstream handshake per client connection")
	for _, r := range m.TLSRefused {
		require.Zero(t, r.Count, "%s/%s", r.Side, r.Reason)
	}
}

// refusals returns the refused handshakes counted, by "side/reason".
func refusals(p *zeoproxy.Proxy) map[string]int64 {
	out := map[string]int64{}
	for _, r := range p.Metrics().TLSRefused {
		if r.Count > 0 {
			out[r.Side+"/"+r.Reason] = r.Count
		}
	}
	return out
}

// Every refusal happens at the handshake, is counted and logged once per
// peer and reason, and nothing reaches the ZEO server: a client without a
// certificate where one is required, a certificate of another CA, a
// plaintext ZEO client (it waits for the server to speak: refused when the
// handshake times out), plaintext bytes, a ZEO server whose certificate
// does not verify, a ZEO server that refuses tidstorage's certificate.
func TestTLSRefusals(t *testing.T) {
	certs := zeotest.WriteTLSCerts(t)
	srv := zeotest.StartServer(t, zeotest.ServerOptions{TLS: certs})
	counter := startTap(t, srv.Addr) // counts the connections that reach ZEO through "strict"
	logs := &zeotest.SyncBuffer{}
	noCert := tlsSet(t, tlsfiles.Client, tlsfiles.Files{CAFile: certs.CA, ServerName: "127.0.0.1"})
	p := serveProxy(t, zeoproxy.Config{
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: logs}),
		Servers: []zeoproxy.ServerConfig{
			{Name: "strict", Listen: "127.0.0.1:0", Upstream: counter.Addr(), TLS: proxyTLS(t, certs).Config,
				UpstreamTLS: upstreamTLS(t, certs, certs.CA).Config},
			{Name: "wrongca", Listen: "127.0.0.1:0", Upstream: srv.Addr, TLS: proxyTLS(t, certs).Config,
				UpstreamTLS: upstreamTLS(t, certs, certs.RogueCA).Config},
			{Name: "nocert", Listen: "127.0.0.1:0", Upstream: srv.Addr, UpstreamTLS: noCert.Config},
		}}.WithFixed(zeoproxy.Fixed{HandshakeTimeout: time.Second}), newRecorder())
	strict, wrongCA, noCertAddr := p.Addrs()[0].String(), p.Addrs()[1].String(), p.Addrs()[2].String()
	python := func(addr string, ssl ...string) error {
		args := append(ssl, "--wait-timeout", "2", "--db", "a="+addr+"/1", "last")
		_, err := zeotest.PythonErr(t, "zodb_client.py", args...)
		return err
	}
	goDial := func(certFile, keyFile string) {
		cfg, err := certs.ClientConfig(certFile, keyFile)
		require.NoError(t, err)
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", strict, cfg)
		if err == nil {
			// TLS 1.3: the server judges the client's certificate after
			// the client's side of the handshake; its verdict comes on read.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		require.Error(t, err, "the proxy must refuse the handshake")
	}
	// A refusal is counted once the server side of the handshake returned,
	// which may be after the client read the alert.
	waitRefusals := func(key string, atLeast int64) {
		t.Helper()
		require.Eventually(t, func() bool { return refusals(p)[key] >= atLeast }, 10*time.Second, 10*time.Millisecond,
			"%s: %v", key, refusals(p))
	}
	// The handshakes were refused before any dial: ZEO saw nothing.
	requireNothingReachedZEO := func() {
		t.Helper()
		counter.mu.Lock()
		defer counter.mu.Unlock()
		require.Empty(t, counter.conns, "a refused client's connection reached ZEO")
	}

	t.Run("no client certificate", func(t *testing.T) {
		require.Error(t, python(strict, certs.PythonArgs("", "")...))
		goDial("", "")
		waitRefusals("client/no_certificate", 2)
		requireNothingReachedZEO()
	})
	t.Run("certificate of another CA", func(t *testing.T) {
		for range 3 {
			goDial(certs.Rogue, certs.RogueKey)
		}
		waitRefusals("client/bad_certificate", 3)
		require.Equal(t, int64(3), refusals(p)["client/bad_certificate"])
		require.Equal(t, 1, strings.Count(logs.String(), "reason=bad_certificate"), "logged once for the peer:\n%s", logs)
		require.Error(t, python(strict, certs.PythonArgs(certs.Rogue, certs.RogueKey)...))
		requireNothingReachedZEO()
	})
	t.Run("plaintext ZEO client", func(t *testing.T) {
		require.Error(t, python(strict))
		waitRefusals("client/timeout", 1)
		requireNothingReachedZEO()
	})
	t.Run("plaintext bytes", func(t *testing.T) {
		c, err := net.Dial("tcp", strict)
		require.NoError(t, err)
		_, err = c.Write([]byte("\x00\x00\x00\x02Z5"))
		require.NoError(t, err)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 64))
		require.Error(t, err, "closed")
		c.Close()
		waitRefusals("client/not_tls", 1)
		require.Equal(t, int64(1), refusals(p)["client/not_tls"])
		requireNothingReachedZEO()
	})
	framesBefore := p.Metrics().FramesC2S
	t.Run("ZEO certificate does not verify", func(t *testing.T) {
		require.Error(t, python(wrongCA, certs.PythonArgs(certs.Client, certs.ClientKey)...))
		waitRefusals("upstream/bad_certificate", 1)
		require.Contains(t, logs.String(), "TLS handshake with the ZEO server failed")
	})
	t.Run("ZEO refuses tidstorage's certificate", func(t *testing.T) {
		require.Error(t, python(noCertAddr))
		waitRefusals("upstream/peer_refused", 1)
	})
	require.Equal(t, framesBefore, p.Metrics().FramesC2S, "no client frame was relayed")
	require.Zero(t, p.Metrics().ConnsTotal, "no refused connection was relayed")

	// The oracle can fail: a good client does reach ZEO through "strict".
	require.NoError(t, python(strict, certs.PythonArgs(certs.Client, certs.ClientKey)...))
	counter.mu.Lock()
	require.NotEmpty(t, counter.conns)
	counter.mu.Unlock()
	t.Logf("refusals: %v\n%s", refusals(p), logs)
}
