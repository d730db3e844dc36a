package integration

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
)

// ZEO over TLS, end to end (docs/deploy.md, "ZEO over TLS"): real ZEO 6
// servers with <ssl> and authenticate, `tidstorage serve` terminating the
// clients' TLS (client certificates required) and re-originating it to ZEO
// (its proxy, bootstrap, watchers and resolution), real ZODB clients with
// ssl contexts.

// metricValue reads one sample of /metrics (labels as written there).
func (s *procSite) metricValue(name, labels string) (float64, bool) {
	s.t.Helper()
	_, body := s.get("/metrics")
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+labels) + ` (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(s.t, err)
	return v, true
}

// writers runs n client processes with args through the proxy at once;
// the returned function waits for them.
func (s *procSite) writers(n int, args ...string) func() {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.client(args...)
		}()
	}
	return wg.Wait
}

// Paired counters through the TLS proxy on two ZEO servers: every sampled
// point restores to equal counters. Then a client killed between its two
// tpc_finish: the partial commit is reported and its half never
// published. At the end nothing is blind, nothing unaccounted, every
// watcher (over TLS) is caught up, and no handshake was refused.
func TestTLSPairedCountersAndKilledClient(t *testing.T) {
	certs := zeotest.WriteTLSCerts(t)
	s := startProcSite(t, procOptions{tls: certs},
		zeoSpec{storages: []string{"1", "2"}, dbNames: []string{"a", "b"}},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"c"}, msgpack: true})
	idA, idB := s.ids["a"], s.ids["b"]
	s.client("commit", "--count", "1")
	s.waitPublished(s.last())

	s.startSampling()
	s.writers(3, "paired", "--count", "15", "--seconds", "60", "--touch", "a,b,c", "--desc", "paired-tls")()
	s.waitPublished(s.last())
	samples := s.stopSampling()
	require.GreaterOrEqual(t, len(samples), 3, "publication keeps up")
	n := s.checkPaired(samples, "a", "c") // across the two servers
	s.checkPaired(samples, "a", "b")
	t.Logf("%d published points under TLS restored to equal counters", n)

	// A client killed between T's tpc_finish on A and on B.
	before := s.last()
	s.startSampling()
	desc := "T-tls-killed"
	_, pid, wait := s.blockedBetween("a", "b", desc, "2")
	require.NoError(t, syscall.Kill(-pid, syscall.SIGKILL))
	require.Error(t, wait())
	afterT := s.last()
	require.Greater(t, afterT[idA], before[idA], "T committed on A")
	require.Equal(t, before[idB], afterT[idB], "T never committed on B")
	s.client("commit", "--count", "2", "--touch", "a", "--key", "other", "--desc", "later")
	pin := s.waitPin("partial")
	require.Contains(t, pin.Storages, idA)
	require.Contains(t, pin.Reason, desc)
	require.Contains(t, pin.Reason, "pid:", "the client process is known under TLS too")
	pub := s.published()
	require.Equal(t, before[idA], pub[idA], "T's A half is not published")
	require.Equal(t, before[idB], pub[idB])
	s.checkPaired(s.stopSampling(), "a", "b")

	s.accept(pin.ID)
	s.client("commit", "--count", "1", "--key", "other", "--desc", "after-accept")
	last := s.last()
	s.waitPublished(last)
	doc := s.requireAtRest(last)
	for _, st := range doc.Storages {
		require.Zero(t, st.BlindConnections, "storage %s blind", st.ID)
	}
	require.Empty(t, s.pins(""))

	// The proxy's TLS, as /metrics tells it.
	hs, ok := s.metricValue("tidstorage_proxy_tls_handshakes_total", `{side="client"}`)
	require.True(t, ok)
	require.Positive(t, hs)
	up, _ := s.metricValue("tidstorage_proxy_tls_handshakes_total", `{side="upstream"}`)
	require.Equal(t, hs, up, "one upstream handshake per client")
	_, body := s.get("/metrics")
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "tidstorage_proxy_tls_refused_total{") {
			require.True(t, strings.HasSuffix(line, " 0"), "nothing refused: %s", line)
		}
	}
	for _, r := range s.logRecords() {
		require.NotContains(t, fmt.Sprint(r["@message"]), "cannot read the storage's commits before a vote",
			"the witness connections talk TLS to ZEO")
	}
	exp, ok := s.metricValue("tidstorage_certificate_expiry_timestamp_seconds",
		`{attribute="cert_file",block="zeo.z0.tls"}`)
	require.True(t, ok, "the listener's certificate expiry is exported")
	require.InDelta(t, float64(time.Now().Add(24*time.Hour).Unix()), exp, 3600)
}

// The proxy loses the TLS connection to ZEO right after a tpc_finish went
// out (cut between the proxy and ZEO, behind a TLS-terminating cutter):
// the participation is in doubt and resolved, over a new upstream TLS
// connection, as committed from the storage's iterator; publication goes on.
func TestTLSInDoubtResolvedOverTLS(t *testing.T) {
	certs := zeotest.WriteTLSCerts(t)
	s := startProcSite(t, procOptions{tls: certs}, zeoSpec{storages: []string{"1", "2"}, dbNames: []string{"a", "b"}})
	s.client("commit", "--count", "1")
	s.waitPublished(s.last())
	s.cutters[0].Arm("2", zeotest.CutAfterFinish)
	_, _ = zeotest.PythonErr(t, "zodb_client.py", append(append([]string{}, s.dbs...), "commit", "--count", "1", "--desc", "cut-after")...)
	require.Equal(t, 1, s.cutters[0].Cuts())
	last := s.last()
	s.waitPublished(last)
	require.Empty(t, s.pins(""))
	v, ok := s.metricValue("tidstorage_proxy_in_doubt_resolved_total", `{outcome="committed"}`)
	require.True(t, ok)
	require.Equal(t, 1.0, v, "resolved as committed through the storage, over TLS")
	s.requireAtRest(last)
}

// peerCert returns the certificate the proxy at addr presents now.
func peerCert(t *testing.T, certs *zeotest.TLSCerts, addr string) *x509.Certificate {
	t.Helper()
	cfg, err := certs.ClientConfig(certs.Client, certs.ClientKey)
	require.NoError(t, err)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	require.NoError(t, err)
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// Certificates renewed under load: paired writers run through the TLS
// proxy while the proxy's certificate and its client certificate towards
// ZEO are replaced three times, each followed by SIGHUP; new connections
// get the new certificate, the writers' connections go on, the exported
// expiry follows; a renewal whose key does not match is refused with the
// previous certificates kept. Every sampled point stays coherent.
func TestTLSCertificateReloadUnderLoad(t *testing.T) {
	certs := zeotest.WriteTLSCerts(t)
	s := startProcSite(t, procOptions{tls: certs}, zeoSpec{storages: []string{"1", "2"}, dbNames: []string{"a", "b"}})
	s.client("commit", "--count", "1")
	s.waitPublished(s.last())
	listen := strings.SplitN(strings.TrimPrefix(s.dbs[len(s.dbs)-1], "b="), "/", 2)[0]

	s.startSampling()
	wait := s.writers(2, "paired", "--count", "400", "--seconds", "12", "--touch", "a,b", "--desc", "renewal")
	for i := 1; i <= 3; i++ {
		time.Sleep(2 * time.Second)
		notAfter := time.Now().Add(time.Duration(48+i) * time.Hour).Truncate(time.Second)
		certs.Issue(t, "proxy", true, notAfter)
		certs.Issue(t, "tidstorage", false, notAfter)
		require.NoError(t, s.sv.cmd.Process.Signal(syscall.SIGHUP))
		require.Eventually(t, func() bool {
			exp, _ := s.metricValue("tidstorage_certificate_expiry_timestamp_seconds",
				`{attribute="cert_file",block="zeo.z0.tls"}`)
			return exp == float64(notAfter.Unix())
		}, zeotestWait, pollEvery, "renewal %d: the exported expiry follows", i)
		got := peerCert(t, certs, listen)
		require.True(t, notAfter.Equal(got.NotAfter), "renewal %d: a new connection gets the new certificate (not after %s, got %s)", i, notAfter, got.NotAfter)
	}
	good := peerCert(t, certs, listen).SerialNumber

	// A renewal gone wrong: the key does not match the certificate.
	_, otherKey := certs.Issue(t, "other", true, time.Now().Add(time.Hour))
	b, err := os.ReadFile(otherKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(certs.ProxyKey, b, 0o600))
	require.NoError(t, s.sv.cmd.Process.Signal(syscall.SIGHUP))
	s.waitLog("error", "SIGHUP: TLS files do not load; the previous certificates stay in use", map[string]string{"zeo": "z0"})
	require.Equal(t, good, peerCert(t, certs, listen).SerialNumber, "the previous certificate stays in use")

	wait()
	last := s.last()
	s.waitPublished(last)
	samples := s.stopSampling()
	n := s.checkPaired(samples, "a", "b")
	require.Positive(t, n)
	t.Logf("%d points coherent across three renewals", n)
	s.requireAtRest(last)
	require.Empty(t, s.pins(""))
	refused := 0.0
	_, body := s.get("/metrics")
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "tidstorage_proxy_tls_refused_total{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			refused += v
		}
	}
	require.Zero(t, refused, "no handshake refused across the renewals")
}
