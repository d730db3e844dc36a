//go:build report

package zeoproxy_test

import (
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/tlsfiles"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// The cost of TLS through the proxy (BENCHMARKS.md, "ZEO over TLS"): run by
// scripts/bench.sh, not by the tests (it measures, asserts nothing about
// speed). Four paths, measured in one run, alternating rounds: a plaintext
// client straight to ZEO, the same through the plaintext proxy, a TLS
// client straight to a TLS ZEO, and a TLS client through the proxy
// terminating and re-originating TLS.
//
//	go test -tags report -run TestTLSReport -v ./zeoproxy/
func TestTLSReport(t *testing.T) {
	t.Run("sync", reportTLSSync)
	t.Run("zodb", reportTLSZODB)
	t.Run("setup", reportTLSSetup)
}

// tlsPaths are the four paths to one kind of ZEO server.
type tlsPaths struct {
	direct, proxy, directTLS, proxyTLS string
	client                             *tls.Config // for the TLS paths
}

// startTLSPaths puts one proxy (two listeners) in front of a plaintext and
// a TLS server, with the daemon's own TLS files code (tlsfiles).
func startTLSPaths(t *testing.T, certs *zeotest.TLSCerts, plain, secure string, tr zeoproxy.Tracker, extra ...zeoproxy.ServerConfig) (tlsPaths, *zeoproxy.Proxy) {
	cli, err := certs.ClientConfig(certs.Client, certs.ClientKey)
	require.NoError(t, err)
	p := serveProxy(t, zeoproxy.Config{Servers: append([]zeoproxy.ServerConfig{
		{Name: "plain", Listen: "127.0.0.1:0", Upstream: plain},
		{Name: "tls", Listen: "127.0.0.1:0", Upstream: secure, TLS: proxyTLS(t, certs).Config, UpstreamTLS: upstreamTLS(t, certs, certs.CA).Config},
	}, extra...)}, tr)
	a := p.Addrs()
	return tlsPaths{direct: plain, proxy: a[0].String(), directTLS: secure, proxyTLS: a[1].String(), client: cli}, p
}

func pctl(d []time.Duration, q float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(q*float64(len(d)-1))]
}

// reportTLSSync: one small sync call and its reply, Go client, Go ZEO sink.
func reportTLSSync(t *testing.T) {
	certs := zeotest.WriteTLSCerts(t)
	sinkTLS := tlsSet(t, tlsfiles.Server, tlsfiles.Files{CertFile: certs.ZEO, KeyFile: certs.ZEOKey, CAFile: certs.CA})
	paths, _ := startTLSPaths(t, certs, startZEOSink(t), startZEOSinkWith(t, sinkTLS.Config()), newRecorder())
	const n = 20000
	measure := func(addr string, secure bool) []time.Duration {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		if secure {
			c = tls.Client(c, paths.client)
		}
		bc := newBenchClient(t, c)
		f := pingFrame(t, 3)
		d := make([]time.Duration, n)
		for i := range d {
			start := time.Now()
			bc.bw.Write(f)
			bc.bw.Flush()
			bc.readFrame(t)
			d[i] = time.Since(start)
		}
		c.Close()
		return d
	}
	var dp, pp, dt, pt []time.Duration
	for range 3 {
		dp = append(dp, measure(paths.direct, false)...)
		pp = append(pp, measure(paths.proxy, false)...)
		dt = append(dt, measure(paths.directTLS, true)...)
		pt = append(pt, measure(paths.proxyTLS, true)...)
	}
	printf("sync round trip (Go client, Go sink, %d calls x3) p50/p99: direct %v/%v; plaintext proxy %v/%v; direct TLS %v/%v; TLS proxy (terminate+re-originate) %v/%v\n",
		n, pctl(dp, .5), pctl(dp, .99), pctl(pp, .5), pctl(pp, .99), pctl(dt, .5), pctl(dt, .99), pctl(pt, .5), pctl(pt, .99))
	printf("sync added by the proxy p50: plaintext %v, TLS %v (TLS proxy vs direct TLS client)\n",
		pctl(pp, .5)-pctl(dp, .5), pctl(pt, .5)-pctl(dt, .5))
}

// reportTLSZODB: real ZODB small commits, one Python client, runzeo; the
// proxy feeds a real tracker.Service with its journal. CPU is this
// process's (the proxy's); the client and runzeo are other processes.
func reportTLSZODB(t *testing.T) {
	certs := zeotest.WriteTLSCerts(t)
	plain := zeotest.StartServer(t, zeotest.ServerOptions{})
	secure := zeotest.StartServer(t, zeotest.ServerOptions{TLS: certs})
	svc := tracker.NewService(tracker.ServiceConfig{})
	_, err := svc.OpenJournal(filepath.Join(t.TempDir(), "journal"), tracker.JournalOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Close() })
	svc.Bootstrap(map[string]txn.TID{}, true)
	paths, _ := startTLSPaths(t, certs, plain.Addr, secure.Addr, svc)
	const seconds = 5
	rate := func(addr string, secure bool) float64 {
		args := []string{"--addr", addr, "--seconds", strconv.Itoa(seconds)}
		if secure {
			args = append(args, certs.PythonArgs(certs.Client, certs.ClientKey)...)
		}
		out := zeotest.Python(t, "bench_commits.py", args...)
		v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		require.NoError(t, err)
		return v
	}
	const rounds = 3
	var d, pr, dt, pt, pcpu, ptcpu float64
	for range rounds {
		d += rate(paths.direct, false)
		before := cpuSeconds()
		pr += rate(paths.proxy, false)
		pcpu += cpuSeconds() - before
		dt += rate(paths.directTLS, true)
		before = cpuSeconds()
		pt += rate(paths.proxyTLS, true)
		ptcpu += cpuSeconds() - before
	}
	lat := func(r float64) float64 { return 1e6 / (r / rounds) } // µs per transaction, one synchronous client
	printf("real ZODB small commits (1 client, runzeo, %dx%d s each, alternating): direct %.0f txn/s (%.0f µs/txn); plaintext proxy %.0f txn/s (%.0f µs); direct TLS %.0f txn/s (%.0f µs); TLS proxy %.0f txn/s (%.0f µs)\n",
		rounds, seconds, d/rounds, lat(d), pr/rounds, lat(pr), dt/rounds, lat(dt), pt/rounds, lat(pt))
	printf("latency added per transaction: plaintext proxy vs direct %.0f µs; TLS proxy vs direct TLS client %.0f µs; ratio of throughputs TLS proxy / direct TLS %.2f, plaintext proxy / direct %.2f\n",
		lat(pr)-lat(d), lat(pt)-lat(dt), pt/dt, pr/d)
	pc, tc := pcpu/(pr*seconds)*1e6, ptcpu/(pt*seconds)*1e6
	printf("proxy CPU per transaction: plaintext %.0f µs, TLS (terminate+re-originate) %.0f µs, ratio %.2f\n", pc, tc, tc/pc)
}

// reportTLSSetup: dial -> the server's announcement read, against runzeo,
// with and without the proxy and TLS; through the TLS proxy, the upstream
// session is resumed (tlsfiles' session cache), and without the cache a
// full handshake each time.
func reportTLSSetup(t *testing.T) {
	certs := zeotest.WriteTLSCerts(t)
	plain := zeotest.StartServer(t, zeotest.ServerOptions{})
	secure := zeotest.StartServer(t, zeotest.ServerOptions{TLS: certs})
	up := upstreamTLS(t, certs, certs.CA)
	full := up.Config().Clone()
	full.ClientSessionCache = nil
	paths, p := startTLSPaths(t, certs, plain.Addr, secure.Addr, newRecorder(),
		zeoproxy.ServerConfig{Name: "full", Listen: "127.0.0.1:0", Upstream: secure.Addr, TLS: proxyTLS(t, certs).Config,
			UpstreamTLS: func() *tls.Config { return full }})
	fullAddr := p.Addrs()[2].String()
	setup := func(addr string, secure bool) time.Duration {
		start := time.Now()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		require.NoError(t, err)
		if secure {
			c = tls.Client(c, paths.client)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var hello [6]byte
		_, err = io.ReadFull(c, hello[:])
		require.NoError(t, err)
		d := time.Since(start)
		c.Close()
		return d
	}
	const n, rounds = 50, 4
	var dp, pp, dt, pt, rt []time.Duration
	for range rounds {
		for range n {
			dp = append(dp, setup(paths.direct, false))
			pp = append(pp, setup(paths.proxy, false))
			dt = append(dt, setup(paths.directTLS, true))
			pt = append(pt, setup(paths.proxyTLS, true))
			rt = append(rt, setup(fullAddr, true))
		}
	}
	printf("connection setup to runzeo, dial -> announcement (%d each, interleaved) p50/p90: direct %v/%v; plaintext proxy %v/%v; direct TLS %v/%v; TLS proxy (upstream session resumed) %v/%v; TLS proxy, full upstream handshake %v/%v\n",
		n*rounds, pctl(dp, .5), pctl(dp, .9), pctl(pp, .5), pctl(pp, .9), pctl(dt, .5), pctl(dt, .9), pctl(pt, .5), pctl(pt, .9), pctl(rt, .5), pctl(rt, .9))
}
