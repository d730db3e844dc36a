//go:build report

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// The fleet's performance report (issue #11, item 4): a sidecar against the
// all-in-one proxy, side by side in one run, on the same real ZEO servers,
// every part its own process. It measures and prints; it asserts nothing
// about speed (hence the build tag). BENCHMARKS.md quotes it:
//
//	go test -tags report -run TestFleetReport -v -count 1 ./cmd/tidstorage/
func TestFleetReport(t *testing.T) {
	s := startFleet(t, 1)
	aio := startAllInOne(t, s)
	sc := s.sidecars[0]
	paths := []struct{ name, addr string }{
		{"direct", s.zeoA.Addr},
		{"all-in-one", aio.addrA},
		{"sidecar", fmt.Sprintf("127.0.0.1:%d", sc.pa)},
	}

	// Publication lag at load, first: the tracker publishes only while
	// every commit is accounted, and the direct and all-in-one rounds below
	// are clients nobody reports to it (held as unaccounted from then on).
	fmt.Printf("publication lag through the sidecar (age of the published A1 point, sampled every 10 ms "+
		"while one client commits as fast as it can): %s\n", publicationLag(t, s.dump, "A1", "--addr", paths[2].addr, "--storage", "1", "--seconds", "5"))

	// Latency: synchronous lastTransaction calls over one registered
	// connection, rounds interleaved so that every path sees the same load.
	const calls = 5000
	lat := map[string][]time.Duration{}
	for range 3 {
		for _, p := range paths {
			lat[p.name] = append(lat[p.name], roundTrips(t, p.addr, calls)...)
		}
	}
	for _, p := range paths {
		d := lat[p.name]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		fmt.Printf("round trip %-10s p50 %8v  p99 %8v  (%d lastTransaction calls)\n", p.name, pct(d, .5), pct(d, .99), len(d))
	}
	for _, p := range paths[1:] {
		fmt.Printf("added by %-10s p50 %8v  p99 %8v\n", p.name, pct(lat[p.name], .5)-pct(lat["direct"], .5),
			pct(lat[p.name], .99)-pct(lat["direct"], .99))
	}

	// Throughput and CPU per proxied transaction: one real ZODB client
	// committing small transactions for 5 s per round; the CPU is each
	// tidstorage process's own (utime+stime from /proc).
	type tally struct {
		txns                 float64
		seconds              float64
		cpuProxy, cpuTracker time.Duration
	}
	tallies := map[string]*tally{}
	for round := range 3 {
		for _, p := range paths {
			proxyPid, trackerPid := 0, s.tracker.cmd.Process.Pid
			switch p.name {
			case "all-in-one":
				proxyPid = aio.sv.cmd.Process.Pid
			case "sidecar":
				proxyPid = sc.sv.cmd.Process.Pid
			}
			p0, k0 := cpuOf(t, proxyPid), cpuOf(t, trackerPid)
			began := time.Now()
			out := zeotest.Python(t, "bench_commits.py", "--addr", p.addr, "--storage", "1", "--seconds", "5")
			elapsed := time.Since(began)
			rate, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
			require.NoError(t, err, string(out))
			tl := tallies[p.name]
			if tl == nil {
				tl = &tally{}
				tallies[p.name] = tl
			}
			tl.txns += rate * 5
			tl.seconds += 5
			tl.cpuProxy += cpuOf(t, proxyPid) - p0
			tl.cpuTracker += cpuOf(t, trackerPid) - k0
			fmt.Printf("round %d %-10s %6.0f txn/s (%v)\n", round+1, p.name, rate, elapsed.Round(time.Millisecond))
		}
	}
	for _, p := range paths {
		tl := tallies[p.name]
		line := fmt.Sprintf("%-10s %6.0f txn/s", p.name, tl.txns/tl.seconds)
		if p.name != "direct" {
			line += fmt.Sprintf("  proxy CPU %6.1f µs/txn", float64(tl.cpuProxy.Microseconds())/tl.txns)
		}
		line += fmt.Sprintf("  tracker process CPU %6.1f µs/txn", float64(tl.cpuTracker.Microseconds())/tl.txns)
		fmt.Println(line)
	}
	if dir := os.Getenv("FLEET_PERF"); dir != "" {
		// A CPU profile of the tracker process during one more sidecar round.
		out := filepath.Join(dir, "tracker.data")
		rec := exec.Command("perf", "record", "-F", "999", "-g", "-o", out, "-p", strconv.Itoa(s.tracker.cmd.Process.Pid), "--", "sleep", "6")
		rec.Stderr = os.Stderr
		require.NoError(t, rec.Start())
		zeotest.Python(t, "bench_commits.py", "--addr", paths[2].addr, "--storage", "1", "--seconds", "5")
		require.NoError(t, rec.Wait())
		fmt.Printf("perf record of the fleet tracker: %s\n", out)
	}
	sc1 := tallies["sidecar"]
	fmt.Printf("fleet tracker CPU per commit (sidecar rounds: one commit per transaction): %.0f µs  [goal <= 150]\n",
		float64(sc1.cpuTracker.Microseconds())/sc1.txns)
	aioCPU := float64(tallies["all-in-one"].cpuProxy) / tallies["all-in-one"].txns
	scCPU := float64(tallies["sidecar"].cpuProxy) / tallies["sidecar"].txns
	fmt.Printf("sidecar ÷ all-in-one: CPU per transaction %.3f, throughput %.3f\n", scCPU/aioCPU,
		tallies["sidecar"].txns/tallies["all-in-one"].txns)
}

func pct(d []time.Duration, q float64) time.Duration { return d[int(q*float64(len(d)-1))] }

// roundTrips times n lastTransaction calls on one connection registered
// to storage "1" at addr.
func roundTrips(t *testing.T, addr string, n int) []time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := zrpc.Dial(ctx, "tcp", addr, nil)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Register(ctx, "1", true)
	require.NoError(t, err)
	d := make([]time.Duration, n)
	for i := range d {
		start := time.Now()
		_, err := c.LastTransaction(ctx)
		require.NoError(t, err)
		d[i] = time.Since(start)
	}
	return d
}

// cpuOf is the user+system CPU a process has used so far.
func cpuOf(t *testing.T, pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, err := strconv.ParseInt(f[11], 10, 64)
	require.NoError(t, err)
	stime, err := strconv.ParseInt(f[12], 10, 64)
	require.NoError(t, err)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

type allInOne struct {
	sv    *serving
	addrA string
}

// startAllInOne runs an all-in-one `tidstorage serve` proxying the fleet's
// ZEO servers (as the quickstart does), beside the fleet.
func startAllInOne(t *testing.T, s *fleetSite) *allInOne {
	dir := filepath.Join(s.dir, "aio")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	a := &allInOne{addrA: fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))}
	adm := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	cfg := filepath.Join(dir, "aio.hcl")
	writeFile(t, cfg, fmt.Sprintf(`
status_file = %q
log { file = %q }
classic { listen = "127.0.0.1:%d" }
admin { listen = %q }
zeo "a" {
  listen = %q
  upstream = %q
  storage "1" { id = "A1" }
  storage "2" { id = "A2" }
}
zeo "b" {
  listen = "127.0.0.1:%d"
  upstream = %q
  storage "1" { id = "B1" }
}
`, filepath.Join(dir, "status"), filepath.Join(dir, "aio.log"), zeotest.FreePort(t), adm, a.addrA, s.zeoA.Addr,
		zeotest.FreePort(t), s.zeoB.Addr))
	a.sv = startServe(t, cfg, adm, "/readyz")
	return a
}

// publicationLag runs one committing client (bench_commits.py with args)
// and samples every 10 ms the age of storage id's published point as dump
// gives it (now − its TID's time: under continuous load, the time from a
// commit to its publication).
func publicationLag(t *testing.T, dump func() map[string]txn.TID, id string, args ...string) string {
	stop := make(chan struct{})
	done := make(chan []time.Duration)
	began := time.Now()
	go func() {
		var lags []time.Duration
		for {
			select {
			case <-stop:
				done <- lags
				return
			case <-time.After(10 * time.Millisecond):
			}
			// From the first point committed by this client on: before it,
			// the age is that of the last commit before the run.
			if d := dump(); d[id] != 0 && (len(lags) > 0 || d[id].Time().After(began)) {
				lags = append(lags, time.Since(d[id].Time()))
			}
		}
	}()
	out := zeotest.Python(t, "bench_commits.py", args...)
	close(stop)
	lags := <-done
	require.NotEmpty(t, lags, "the tracker published something")
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	return fmt.Sprintf("%s txn/s, %d samples: p50 %v, p99 %v, max %v", strings.TrimSpace(string(out)), len(lags),
		pct(lags, .5).Round(100*time.Microsecond), pct(lags, .99).Round(100*time.Microsecond), lags[len(lags)-1].Round(time.Millisecond))
}
