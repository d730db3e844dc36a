//go:build report

package zeoproxy_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// The proxy's performance report: run by scripts/bench.sh, not by the tests
// (it measures, it asserts nothing about speed), hence the build tag.
//
//	go test -tags report -run TestReport -v ./zeoproxy/
func TestReport(t *testing.T) {
	t.Run("latency", reportLatency)
	t.Run("idle", reportIdle)
	t.Run("zodb", reportZODB)
	t.Run("setup", reportSetup)
	t.Run("burst", reportBurst)
}

func printf(format string, a ...any) { fmt.Fprintf(os.Stdout, format, a...) }

func reportLatency(t *testing.T) {
	sink := startZEOSink(t)
	p := serveProxy(t, zeoproxy.Config{Servers: []zeoproxy.ServerConfig{{Name: "sink", Listen: "127.0.0.1:0", Upstream: sink}}}, newRecorder())
	const n = 20000
	measure := func(addr string) []time.Duration {
		bc := dialBench(t, addr)
		f := pingFrame(t, 3)
		d := make([]time.Duration, n)
		for i := range d {
			start := time.Now()
			bc.bw.Write(f)
			bc.bw.Flush()
			bc.readFrame(t)
			d[i] = time.Since(start)
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d
	}
	// Interleave rounds so that both see the same machine load.
	var direct, proxied []time.Duration
	for r := 0; r < 3; r++ {
		direct = append(direct, measure(sink)...)
		proxied = append(proxied, measure(p.Addrs()[0].String())...)
	}
	sort.Slice(direct, func(i, j int) bool { return direct[i] < direct[j] })
	sort.Slice(proxied, func(i, j int) bool { return proxied[i] < proxied[j] })
	pct := func(d []time.Duration, q float64) time.Duration { return d[int(q*float64(len(d)-1))] }
	printf("sync round trip (Go client, Go sink, %d calls x3): direct p50 %v p99 %v; proxy p50 %v p99 %v; added p50 %v p99 %v\n",
		n, pct(direct, .5), pct(direct, .99), pct(proxied, .5), pct(proxied, .99),
		pct(proxied, .5)-pct(direct, .5), pct(proxied, .99)-pct(direct, .99))
}

func reportIdle(t *testing.T) {
	// The proxy holds two sockets per connection; the client and sink ends
	// live in this process too, so 4 descriptors per connection count
	// against RLIMIT_NOFILE. IDLE_CONNS lists the counts measured, in
	// increasing order, one proxy: 1000,4000 by default.
	counts := []int{1000, 4000}
	if v := os.Getenv("IDLE_CONNS"); v != "" {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			require.NoError(t, err)
			counts = append(counts, n)
		}
	}
	sink := startIdleSink(t)
	p := serveProxy(t, zeoproxy.Config{Servers: []zeoproxy.ServerConfig{{Name: "sink", Listen: "127.0.0.1:0", Upstream: sink}}}, newRecorder())
	addr := p.Addrs()[0].String()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, n := range counts {
		for len(conns) < n {
			c, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			conns = append(conns, c)
			buf := make([]byte, 6)
			_, err = c.Read(buf) // the sink's Z5, through the proxy
			require.NoError(t, err)
		}
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		require.EqualValues(t, n, p.Metrics().ConnsOpen)
		// Counted for the whole test process: the proxy, plus the idle
		// sink's goroutine and 16-byte buffer, plus the client ends: an
		// upper bound.
		per := float64(after.Sys-before.Sys) / float64(n)
		heap := float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse) / float64(n)
		printf("idle connections: %d held; memory per connection (proxy + idle sink + client ends, heap+stacks in use) %.1f KiB; Sys growth %.1f KiB  [goal <= 64 KiB]\n",
			n, heap/1024, per/1024)
	}
}

// reportSetup times connection setup (dial to the server's announcement
// read), directly to a Go ZEO sink and through the proxy, 5 interleaved
// rounds of 500 connections each, one after the other.
func reportSetup(t *testing.T) {
	sink := startZEOSink(t)
	p := serveProxy(t, zeoproxy.Config{Servers: []zeoproxy.ServerConfig{{Name: "sink", Listen: "127.0.0.1:0", Upstream: sink}}}, newRecorder())
	measure := func(addr string, n int) []time.Duration {
		d := make([]time.Duration, n)
		hello := make([]byte, 6)
		for i := range d {
			start := time.Now()
			c, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			_, err = io.ReadFull(c, hello)
			require.NoError(t, err)
			d[i] = time.Since(start)
			c.Close()
		}
		return d
	}
	rounds := func(what, direct, proxy string, n int) {
		var dds, pds []time.Duration
		var ratios []float64
		for range 5 {
			dd, pd := measure(direct, n), measure(proxy, n)
			dds, pds = append(dds, dd...), append(pds, pd...)
			ratios = append(ratios, float64(medianDur(pd))/float64(medianDur(dd)))
		}
		sort.Float64s(ratios)
		printf("connection setup (dial to announcement, %s, 5x%d interleaved): direct p50 %v, proxy p50 %v; RATIO proxy/direct median of rounds %.2f (rounds %.2f - %.2f)  [goal <= 1.5]\n",
			what, n, medianDur(dds).Round(time.Microsecond), medianDur(pds).Round(time.Microsecond), ratios[2], ratios[0], ratios[4])
	}
	rounds("Go ZEO sink", sink, p.Addrs()[0].String(), 500)
	// The same against a real ZEO server (runzeo), whose accept and
	// announcement take Python's time.
	zeo := zeotest.StartServer(t, zeotest.ServerOptions{})
	pz := serveProxy(t, zeoproxy.Config{Servers: []zeoproxy.ServerConfig{{Name: "zeo", Listen: "127.0.0.1:0", Upstream: zeo.Addr}}}, newRecorder())
	rounds("runzeo", zeo.Addr, pz.Addrs()[0].String(), 100)
}

func medianDur(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// reportBurst: a writer's longest commit alone and while 2,000 loopback
// connections are opened through the same proxy, twice each, interleaved.
func reportBurst(t *testing.T) {
	for range 2 {
		alone := burstRun(t, 0)
		b := burstRun(t, 2000)
		printf("burst of %d connections opened in %v, identified after %v; writer's longest commit: alone %.0f ms (%.0f commits/s), during the burst %.0f ms (%.0f commits/s)  [goal: burst <= 50 ms]\n",
			b.conns, b.opened.Round(time.Millisecond), b.resolved.Round(time.Millisecond), alone.longest, alone.tps, b.longest, b.tps)
	}
}

// reportZODB runs one real ZODB client against runzeo directly, through a
// bare relay (io.Copy both ways, no observation: the floor any TCP relay
// costs) and through the proxy feeding a real tracker.Service with its
// journal (what `tidstorage serve` runs), alternating rounds so that all
// three see the same machine noise. CPU is this process's (the relay's);
// the client and runzeo are other processes.
func reportZODB(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1"}})
	svc := tracker.NewService(tracker.ServiceConfig{})
	_, err := svc.OpenJournal(filepath.Join(t.TempDir(), "journal"), tracker.JournalOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Close() })
	svc.Bootstrap(map[string]txn.TID{}, true)
	p := serveProxy(t, zeoproxy.Config{Servers: []zeoproxy.ServerConfig{{Name: "z", Listen: "127.0.0.1:0", Upstream: srv.Addr}}}, svc)
	bare := startBareRelay(t, srv.Addr)
	rate := func(addr string) float64 {
		out := zeotest.Python(t, "bench_commits.py", "--addr", addr, "--seconds", "5")
		v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		require.NoError(t, err)
		return v
	}
	const rounds = 3
	var d, br, pr, bcpu, pcpu float64
	for r := 0; r < rounds; r++ { // alternate to share the machine's noise
		d += rate(srv.Addr)
		before := cpuSeconds()
		br += rate(bare)
		bcpu += cpuSeconds() - before
		before = cpuSeconds()
		pr += rate(p.Addrs()[0].String())
		pcpu += cpuSeconds() - before
	}
	bper, pper := bcpu/(br*5)*1e6, pcpu/(pr*5)*1e6
	js := svc.JournalStats()
	printf("real ZODB small commits (1 client process, runzeo, %dx5 s each, alternating): direct %.0f txn/s, bare relay %.0f txn/s, proxy+tracker+journal %.0f txn/s; throughput proxy/bare %.3f; relay CPU per transaction: bare %.0f µs, proxy %.0f µs, ratio %.2f; journal %d records, %d bytes\n",
		rounds, d/rounds, br/rounds, pr/rounds, pr/br, bper, pper, pper/bper, js.Records, js.Size)
}

// startBareRelay forwards every connection to upstream with io.Copy both
// ways and nothing else.
func startBareRelay(t *testing.T, upstream string) string {
	ln := zeotest.ServeTCP(t, func(c net.Conn) {
		defer c.Close()
		s, err := net.Dial("tcp", upstream)
		if err != nil {
			return
		}
		defer s.Close()
		done := make(chan struct{}, 2)
		go func() { _, _ = io.Copy(s, c); done <- struct{}{} }()
		go func() { _, _ = io.Copy(c, s); done <- struct{}{} }()
		<-done
	})
	return ln.Addr().String()
}

// startIdleSink announces Z5 on every connection and then only waits, with
// as little memory as a connection can take, so that the proxy's own cost
// per idle connection dominates the measurement.
func startIdleSink(t *testing.T) string {
	hello := []byte{0, 0, 0, 2, 'Z', '5'}
	ln := zeotest.ServeTCP(t, func(c net.Conn) {
		defer c.Close()
		_, _ = c.Write(hello)
		var b [16]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				return
			}
		}
	})
	return ln.Addr().String()
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
