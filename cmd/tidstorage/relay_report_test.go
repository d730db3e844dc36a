//go:build report

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// The relay's cost report: the all-in-one `tidstorage serve` (its
// defaults: journal and history watchers on) against a bare relay (io.Copy
// both ways, testdata/barerelay) in the same run, rounds interleaved, real
// ZODB clients committing through each, every part its own process. It
// measures and prints ratios; it asserts nothing about speed (hence the
// build tag). scripts/bench.sh runs it; BENCHMARKS.md quotes it:
//
//	go test -tags report -run TestRelayReport -v -count 1 ./cmd/tidstorage/
//
// RELAY_ROUNDS (default 5) and RELAY_SECONDS (default 5) set the rounds of
// the main comparison; RELAY_SCALING=0 skips the clients × storages table.
// RELAY_PERF=DIR also records `perf record -g` of both relays during one
// extra round each (DIR/aio.data, DIR/bare.data). RELAY_BASE_BIN=PATH adds
// another tidstorage binary (an earlier commit) to the main rounds.
//
// The all-in-one proxies server A only; direct and bare rounds commit on
// server B (the same storages), so that the all-in-one's history watchers
// never see commits nobody reported to it (which would pin its storages).
func TestRelayReport(t *testing.T) {
	rounds, secs := envInt("RELAY_ROUNDS", 5), envInt("RELAY_SECONDS", 5)
	storages := []string{"1", "2", "3", "4", "5", "6", "7", "8"}
	zeoA := zeotest.StartServer(t, zeotest.ServerOptions{Storages: storages})
	zeoB := zeotest.StartServer(t, zeotest.ServerOptions{Storages: storages})
	aio := startReportAIO(t, bin, zeoA.Addr, storages)
	bare := startBareRelay(t, zeoB.Addr)
	paths := []relayPath{
		{name: "direct", addr: zeoB.Addr},
		{name: "bare", addr: bare.addr, pid: bare.pid},
		{name: "all-in-one", addr: aio.addr, pid: aio.sv.cmd.Process.Pid},
	}
	var base *reportAIO
	if exe := os.Getenv("RELAY_BASE_BIN"); exe != "" {
		// Another tidstorage binary (an earlier commit) in the same rounds,
		// on a server of its own.
		zeoC := zeotest.StartServer(t, zeotest.ServerOptions{Storages: storages})
		base = startReportAIO(t, exe, zeoC.Addr, storages)
		paths = append(paths, relayPath{name: "base", addr: base.addr, pid: base.sv.cmd.Process.Pid})
	}
	fmt.Printf("machine: %d cores, load average %s\n", nprocs(), loadavg())
	if hold := os.Getenv("RELAY_HOLD"); hold != "" {
		// For profiling by hand: keep everything up while the file named
		// RELAY_HOLD exists (30 minutes at most).
		for _, p := range paths {
			fmt.Printf("HOLD %s addr %s pid %d\n", p.name, p.addr, p.pid)
		}
		for end := time.Now().Add(30 * time.Minute); time.Now().Before(end); time.Sleep(time.Second) {
			if _, err := os.Stat(hold); err != nil {
				break
			}
		}
		return
	}

	// Main comparison: one client, two-storage transactions.
	two := "1,2"
	res := map[string][]window{}
	for r := range rounds {
		line := fmt.Sprintf("round %d:", r+1)
		for _, p := range paths {
			w := commitWindow(t, p, two, 1, secs)
			res[p.name] = append(res[p.name], w)
			line += fmt.Sprintf("  %s %.0f txn/s", p.name, w.rate())
			if p.pid != 0 {
				line += fmt.Sprintf(" %.0f µs/txn", w.cpuPerTxn())
			}
		}
		fmt.Printf("%s  (load %s)\n", line, loadavg())
	}
	for _, p := range paths {
		ws := res[p.name]
		line := fmt.Sprintf("%-10s %6.0f txn/s", p.name, median(ws, func(w window) float64 { return w.rate() }))
		if p.pid != 0 {
			line += fmt.Sprintf("  relay CPU %6.0f µs/txn (min %4.0f, max %4.0f)  %5.1f syscalls/txn  %5.1f context switches/txn",
				median(ws, window.cpuPerTxn), minOf(ws, window.cpuPerTxn), maxOf(ws, window.cpuPerTxn),
				median(ws, window.syscallsPerTxn), median(ws, window.switchesPerTxn))
		}
		fmt.Println(line)
	}
	if res["base"] != nil {
		fmt.Printf("RATIO base ÷ bare relay, CPU per transaction: median %.2f (rounds: %s); throughput %.3f\n",
			medianF(ratios(res["base"], res["bare"], window.cpuPerTxn)), fmtList(ratios(res["base"], res["bare"], window.cpuPerTxn)),
			medianF(ratios(res["base"], res["bare"], window.rate)))
	}
	cpuRatio := ratios(res["all-in-one"], res["bare"], window.cpuPerTxn)
	rateRatio := ratios(res["all-in-one"], res["bare"], window.rate)
	fmt.Printf("RATIO all-in-one ÷ bare relay, CPU per transaction: median %.2f (rounds: %s)  [goal <= 1.15]\n",
		medianF(cpuRatio), fmtList(cpuRatio))
	fmt.Printf("RATIO all-in-one ÷ bare relay, throughput: median %.3f (rounds: %s)  [goal >= 0.97]\n",
		medianF(rateRatio), fmtList(rateRatio))
	fmt.Printf("(%d interleaved rounds of %d s, one client, transactions over storages %s; load average %s)\n",
		rounds, secs, two, loadavg())

	// Publication lag: the age of the all-in-one's published point of
	// storage 1 (now − its TID's time), sampled every 10 ms while one client
	// commits as fast as it can.
	fmt.Printf("publication lag (all-in-one, storage 1): %s\n",
		publicationLag(t, aio.dump, "S1", "--addr", aio.addr, "--storage", two, "--seconds", strconv.Itoa(secs)))
	if base != nil {
		fmt.Printf("publication lag (base, storage 1): %s\n",
			publicationLag(t, base.dump, "S1", "--addr", base.addr, "--storage", two, "--seconds", strconv.Itoa(secs)))
	}

	if dir := os.Getenv("RELAY_PERF"); dir != "" {
		for _, p := range paths[1:] {
			out := filepath.Join(dir, map[string]string{"bare": "bare.data", "all-in-one": "aio.data", "base": "base.data"}[p.name])
			rec := exec.Command("perf", "record", "-F", "999", "-g", "-o", out, "-p", strconv.Itoa(p.pid), "--", "sleep", strconv.Itoa(secs+2))
			rec.Stderr = os.Stderr
			require.NoError(t, rec.Start())
			w := commitWindow(t, p, two, 1, secs)
			require.NoError(t, rec.Wait())
			fmt.Printf("perf record of %s: %s (%.0f txn/s, %.0f µs/txn)\n", p.name, out, w.rate(), w.cpuPerTxn())
		}
	}

	if os.Getenv("RELAY_SCALING") == "0" {
		return
	}
	// How the cost grows: clients × storages per transaction, bare and
	// all-in-one interleaved, 3 rounds each.
	fmt.Println("scaling (median of 3 interleaved rounds; CPU of the relaying process per transaction):")
	fmt.Println("clients storages/txn   bare txn/s  µs/txn   all-in-one txn/s  µs/txn   CPU ratio  throughput ratio")
	for _, st := range []string{"1", strings.Join(storages, ",")} {
		for _, clients := range []int{1, 4, 16} {
			sc := map[string][]window{}
			for range 3 {
				for _, p := range paths[1:3] {
					sc[p.name] = append(sc[p.name], commitWindow(t, p, st, clients, secs))
				}
			}
			b, a := sc["bare"], sc["all-in-one"]
			fmt.Printf("%7d %12d   %10.0f %7.0f   %16.0f %7.0f   %9.2f  %16.3f\n", clients, len(strings.Split(st, ",")),
				median(b, window.rate), median(b, window.cpuPerTxn), median(a, window.rate), median(a, window.cpuPerTxn),
				medianF(ratios(a, b, window.cpuPerTxn)), medianF(ratios(a, b, window.rate)))
		}
	}
}

type relayPath struct {
	name, addr string
	pid        int // the relaying process (0: direct)
}

// window is one measured round: transactions committed by the clients
// and the relaying process's CPU over the same wall-clock window.
type window struct {
	txns    float64
	seconds float64
	cpu     time.Duration
	// system calls and context switches of the relaying process (perf
	// stat; -1 when perf is not usable here)
	syscalls, switches float64
}

func (w window) rate() float64 { return w.txns / w.seconds }

func (w window) cpuPerTxn() float64 { return float64(w.cpu.Microseconds()) / w.txns }

func (w window) syscallsPerTxn() float64 { return w.syscalls / w.txns }

func (w window) switchesPerTxn() float64 { return w.switches / w.txns }

// commitWindow runs clients bench_commits.py processes through p, each
// committing transactions over storages (comma-separated) for secs
// seconds, all starting at the same moment once connected; the relay's CPU
// is read from /proc at the start and the end of that window.
func commitWindow(t *testing.T, p relayPath, storages string, clients, secs int) window {
	startAt := time.Now().Add(4*time.Second + time.Duration(clients)*500*time.Millisecond)
	var wg sync.WaitGroup
	rates := make([]float64, clients)
	errs := make([]error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := zeotest.PythonErr(t, "bench_commits.py", "--addr", p.addr, "--storage", storages, "--key", fmt.Sprintf("c%d", i),
				"--seconds", strconv.Itoa(secs), "--start-at", fmt.Sprintf("%.3f", float64(startAt.UnixNano())/1e9))
			if err == nil {
				rates[i], err = strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
			}
			errs[i] = err
		}()
	}
	time.Sleep(time.Until(startAt))
	c0 := cpuOf(t, p.pid)
	count := startCounting(p.pid, secs)
	time.Sleep(time.Until(startAt.Add(time.Duration(secs) * time.Second)))
	c1 := cpuOf(t, p.pid)
	wg.Wait()
	w := window{seconds: float64(secs), cpu: c1 - c0}
	w.syscalls, w.switches = count()
	for i := range clients {
		require.NoError(t, errs[i])
		w.txns += rates[i] * float64(secs)
	}
	return w
}

// startCounting counts the system calls and context switches of pid
// (every thread) for secs seconds with perf stat; the function returned
// waits for the counts (-1, -1 when perf is not usable).
func startCounting(pid, secs int) func() (float64, float64) {
	if pid == 0 {
		return func() (float64, float64) { return -1, -1 }
	}
	cmd := exec.Command("perf", "stat", "-x", ",", "-e", "raw_syscalls:sys_enter,context-switches",
		"-p", strconv.Itoa(pid), "--", "sleep", strconv.Itoa(secs))
	var out strings.Builder
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return func() (float64, float64) { return -1, -1 }
	}
	return func() (float64, float64) {
		if err := cmd.Wait(); err != nil {
			return -1, -1
		}
		sys, sw := -1.0, -1.0
		for _, l := range strings.Split(out.String(), "\n") {
			f := strings.Split(l, ",")
			if len(f) < 3 {
				continue
			}
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				continue
			}
			switch f[2] {
			case "raw_syscalls:sys_enter":
				sys = v
			case "context-switches":
				sw = v
			}
		}
		return sys, sw
	}
}

type reportAIO struct {
	sv            *serving
	addr, classic string
}

// startReportAIO runs `tidstorage serve` with its defaults (journal and
// history watchers on) proxying every storage of upstream.
func startReportAIO(t *testing.T, exe, upstream string, storages []string) *reportAIO {
	dir := t.TempDir()
	a := &reportAIO{addr: fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t)), classic: fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))}
	adm := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	var blocks strings.Builder
	for _, s := range storages {
		fmt.Fprintf(&blocks, "  storage %q { id = \"S%s\" }\n", s, s)
	}
	cfg := filepath.Join(dir, "aio.hcl")
	writeFile(t, cfg, fmt.Sprintf(`
status_file = %q
log { file = %q }
classic { listen = %q }
admin { listen = %q }
zeo "a" {
  listen = %q
  upstream = %q
%s}
`, filepath.Join(dir, "status"), filepath.Join(dir, "aio.log"), a.classic, adm, a.addr, upstream, blocks.String()))
	a.sv = startServeBin(t, exe, cfg, adm, "/readyz")
	return a
}

// dump is the all-in-one's published point (classic DUMP).
func (a *reportAIO) dump() map[string]txn.TID { return classicDump(a.classic) }

type bareRelay struct {
	addr string
	pid  int
}

// startBareRelay builds and runs testdata/barerelay in front of upstream.
func startBareRelay(t *testing.T, upstream string) *bareRelay {
	exe := filepath.Join(t.TempDir(), "barerelay")
	out, err := exec.Command("go", "build", "-o", exe, "./testdata/barerelay").CombinedOutput()
	require.NoError(t, err, string(out))
	cmd := exec.Command(exe, "127.0.0.1:0", upstream)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	return &bareRelay{addr: strings.TrimSpace(line), pid: cmd.Process.Pid}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func nprocs() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func ratios(num, den []window, f func(window) float64) []float64 {
	out := make([]float64, len(num))
	for i := range num {
		out[i] = f(num[i]) / f(den[i])
	}
	return out
}

func median(ws []window, f func(window) float64) float64 {
	vs := make([]float64, len(ws))
	for i, w := range ws {
		vs[i] = f(w)
	}
	return medianF(vs)
}

func medianF(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minOf(ws []window, f func(window) float64) float64 {
	m := f(ws[0])
	for _, w := range ws[1:] {
		m = min(m, f(w))
	}
	return m
}

func maxOf(ws []window, f func(window) float64) float64 {
	m := f(ws[0])
	for _, w := range ws[1:] {
		m = max(m, f(w))
	}
	return m
}

func fmtList(vs []float64) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprintf("%.2f", v)
	}
	return strings.Join(s, " ")
}
