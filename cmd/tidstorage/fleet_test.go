package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/tidstorage/tidstorage/fleet/fleetpb"
	"github.com/tidstorage/tidstorage/fleet/fleettest"
	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/classic"
)

// fleetSite is a fleet on loopback, every part its own process: two real
// ZEO servers (three storages), one tracker watching them, two sidecars
// proxying them, with mutual TLS on the report streams.
type fleetSite struct {
	t          *testing.T
	dir        string
	zeoA, zeoB *zeotest.Server
	certs      fleettest.Certs
	fleetAddr  string
	linkAddr   string // what sidecars dial (default fleetAddr)
	classic    string
	trackerAdm string
	trackerCfg string
	tracker    *serving
	sidecars   []*sidecarProc
}

type sidecarProc struct {
	name     string
	cfg      string
	admin    string
	pa, pb   int // proxy ports for server A and B
	sv       *serving
	bufferFS string
}

func startFleet(t *testing.T, sidecars int, link ...func(fleetAddr string) string) *fleetSite {
	s := &fleetSite{t: t, dir: t.TempDir()}
	s.zeoA = zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}})
	s.zeoB = zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1"}, Msgpack: true})
	var err error
	s.certs, err = fleettest.Write(s.dir)
	require.NoError(t, err)
	s.fleetAddr = fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	s.classic = fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	s.trackerAdm = fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	s.trackerCfg = filepath.Join(s.dir, "tracker.hcl")
	writeFile(t, s.trackerCfg, fmt.Sprintf(`
status_file = %q
burst_period = "0s"
log {
  file = %q
  level = "debug"
}
classic { listen = %q }
admin { listen = %q }
%szeo "a" {
  upstream = %q
  storage "1" { id = "A1" }
  storage "2" { id = "A2" }
}
zeo "b" {
  upstream = %q
  storage "1" { id = "B1" }
}
`, filepath.Join(s.dir, "tracker.status"), filepath.Join(s.dir, "tracker.log"), s.classic, s.trackerAdm,
		s.certs.TrackerHCL(s.fleetAddr), s.zeoA.Addr, s.zeoB.Addr))
	require.Equal(t, 0, run(t, "config", "check", "-c", s.trackerCfg).code)
	s.tracker = startServe(t, s.trackerCfg, s.trackerAdm, "/readyz")
	for _, l := range link {
		s.linkAddr = l(s.fleetAddr)
	}
	if s.linkAddr == "" {
		s.linkAddr = s.fleetAddr
	}
	for i := range sidecars {
		s.sidecars = append(s.sidecars, s.newSidecar(fmt.Sprintf("zope%d", i+1), s.certs.SidecarCert, s.certs.SidecarKey))
	}
	for _, sc := range s.sidecars {
		sc.sv = startServe(t, sc.cfg, sc.admin, "/readyz")
	}
	return s
}

// pyAddr is how ZEO's ClientStorage writes a server address in its
// sortKey: the repr of a (host, port) tuple.
func pyAddr(hostport string) string {
	host, port, _ := net.SplitHostPort(hostport)
	return fmt.Sprintf("('%s', %s)", host, port)
}

func writeFile(t *testing.T, path, text string) {
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
}

func (s *fleetSite) newSidecar(name, cert, key string) *sidecarProc {
	t := s.t
	// ZODB orders a transaction's storages by their sortKey, which holds
	// the address the client dials ("1:('127.0.0.1', 8100)", compared as
	// text): every sidecar must order A and B as the ZEO servers' own
	// addresses do, or writers through two sidecars, or a sidecar's and a
	// patched Zope's that dials ZEO directly, lock A and B in opposite
	// orders and deadlock in ZEO's commit locks (docs/deploy.md).
	pa, pb := zeotest.FreePort(t), zeotest.FreePort(t)
	for len(fmt.Sprint(pa)) != len(fmt.Sprint(pb)) {
		pb = zeotest.FreePort(t)
	}
	if (pa > pb) != (pyAddr(s.zeoA.Addr) > pyAddr(s.zeoB.Addr)) {
		pa, pb = pb, pa
	}
	sc := &sidecarProc{name: name, pa: pa, pb: pb,
		admin: fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t)), cfg: filepath.Join(s.dir, name+".hcl"),
		bufferFS: filepath.Join(s.dir, name+".buffer")}
	writeFile(t, sc.cfg, fmt.Sprintf(`
log {
  file = %q
  level = "debug"
}
admin { listen = %q }
tracker {
  address = %q
  name = %q
  buffer_file = %q
  tls {
    cert_file = %q
    key_file = %q
    ca_file = %q
  }
}
zeo "a" {
  listen = "127.0.0.1:%d"
  upstream = %q
  storage "1" { id = "A1" }
  storage "2" { id = "A2" }
}
zeo "b" {
  listen = "127.0.0.1:%d"
  upstream = %q
  storage "1" { id = "B1" }
}
`, filepath.Join(s.dir, name+".log"), sc.admin, s.linkAddr, name, sc.bufferFS, cert, key, s.certs.CA,
		sc.pa, s.zeoA.Addr, sc.pb, s.zeoB.Addr))
	r := run(t, "config", "check", "-c", sc.cfg)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "sidecar")
	return sc
}

// dbs are zodb_client.py's --db arguments through sidecar sc (nil: the
// ZEO servers directly).
func (s *fleetSite) dbs(sc *sidecarProc) []string {
	a, b := s.zeoA.Addr, s.zeoB.Addr
	if sc != nil {
		a, b = fmt.Sprintf("127.0.0.1:%d", sc.pa), fmt.Sprintf("127.0.0.1:%d", sc.pb)
	}
	return []string{"--db", "a=" + a + "/1", "--db", "b=" + a + "/2", "--db", "c=" + b + "/1"}
}

var fleetDBIDs = map[string]string{"a": "A1", "b": "A2", "c": "B1"}

func (s *fleetSite) last() map[string]txn.TID {
	var hex map[string]string
	require.NoError(s.t, json.Unmarshal(zeotest.Python(s.t, "zodb_client.py", append(s.dbs(nil), "last")...), &hex))
	out := map[string]txn.TID{}
	for db, h := range hex {
		var v uint64
		_, err := fmt.Sscanf(h, "%x", &v)
		require.NoError(s.t, err)
		out[fleetDBIDs[db]] = txn.TID(v)
	}
	return out
}

// dump is the tracker's published point (classic DUMP); nil while it is down.
func (s *fleetSite) dump() map[string]txn.TID { return classicDump(s.classic) }

// classicDump is the published point a classic endpoint answers to DUMP;
// nil while it does not answer.
func classicDump(addr string) map[string]txn.TID {
	c, err := classic.Dial(addr, time.Second)
	if err != nil {
		return nil
	}
	defer c.Close()
	p, err := c.Dump()
	if err != nil {
		return nil
	}
	return p
}

func (s *fleetSite) waitPublished(want map[string]txn.TID, within time.Duration) {
	s.t.Helper()
	ok := assert.Eventually(s.t, func() bool {
		got := s.dump()
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}, within, 50*time.Millisecond)
	if !ok {
		r := run(s.t, "status", "-c", s.trackerCfg)
		s.t.Fatalf("published %v, want %v\nstatus:\n%s\ntracker log:\n%s", s.dump(), want, r.stdout,
			notable(filepath.Join(s.dir, "tracker.log"), 40))
	}
}

// notable returns the last n WARN and ERROR lines of a log.
func notable(path string, n int) string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "[WARN]") || strings.Contains(l, "[ERROR]") {
			out = append(out, l)
		}
	}
	return strings.Join(out[max(0, len(out)-n):], "\n")
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v), url)
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (s *fleetSite) status() statusdoc.StatusDoc {
	r := run(s.t, "status", "-c", s.trackerCfg, "--json")
	var doc statusdoc.StatusDoc // (the exit status says whether pins hold publication)
	require.NoError(s.t, json.Unmarshal([]byte(r.stdout), &doc), r.stderr)
	return doc
}

// kill SIGKILLs a serve process and waits for it.
func kill(t *testing.T, sv *serving) {
	require.NoError(t, sv.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case <-sv.done:
	case <-time.After(10 * time.Second):
		t.Fatal("SIGKILL did not stop the process")
	}
}

// writer is one paired-counter client process, its commits counted.
type writer struct {
	commits atomic.Int64
	done    chan error
	stderr  *zeotest.SyncBuffer
	cmd     *exec.Cmd
}

func (w *writer) err() string { return w.stderr.String() }

func (s *fleetSite) startWriter(ctx context.Context, sc *sidecarProc, seconds int) *writer {
	return s.startPaired(ctx, s.dbs(sc), seconds, "paired "+sc.name)
}

// startPaired runs a paired-counter writer on a and c with the given --db
// arguments (s.dbs) and extra arguments of zodb_client.py's paired.
func (s *fleetSite) startPaired(ctx context.Context, dbs []string, seconds int, desc string, extra ...string) *writer {
	w := &writer{done: make(chan error, 1)}
	args := append(append(dbs, "paired", "--count", "100000", "--seconds", fmt.Sprint(seconds), "--touch", "a,c",
		"--desc", desc), extra...)
	cmd := zeotest.PythonCommand(ctx, s.t, "zodb_client.py", args...)
	out, err := cmd.StdoutPipe()
	require.NoError(s.t, err)
	w.stderr = &zeotest.SyncBuffer{}
	cmd.Stderr = w.stderr
	require.NoError(s.t, cmd.Start())
	w.cmd = cmd
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.commits.Add(1)
		}
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, w.stderr.String())
		}
		w.done <- err
	}()
	return w
}

// commitThroughEach commits once through each sidecar on every storage and
// waits until that is published: the site is live before the load starts.
func (s *fleetSite) commitThroughEach() {
	for _, sc := range s.sidecars {
		zeotest.Python(s.t, "zodb_client.py", append(s.dbs(sc), "commit", "--count", "1", "--touch", "a,b,c")...)
	}
	s.waitPublished(s.last(), 30*time.Second)
}

// diagnoseStall logs where stalled writers and the sidecars are: the
// writers' Python stacks and conflict counts (SIGUSR2, zodb_client.py), the
// sidecars' goroutines (SIGQUIT, which ends them), and the logs' tails.
func (s *fleetSite) diagnoseStall(ws ...*writer) {
	t := s.t
	for _, w := range ws {
		_ = w.cmd.Process.Signal(syscall.SIGUSR2)
	}
	for _, sc := range s.sidecars {
		_ = sc.sv.cmd.Process.Signal(syscall.SIGQUIT)
	}
	time.Sleep(time.Second)
	for i, w := range ws {
		t.Logf("writer %d (%d commits), stderr:\n%s", i+1, w.commits.Load(), w.err())
	}
	for _, sc := range s.sidecars {
		t.Logf("%s log:\n%s\n%s goroutines:\n%s", sc.name, tail(filepath.Join(s.dir, sc.name+".log"), 30), sc.name,
			sc.sv.stderr.String())
	}
	t.Logf("tracker log:\n%s", tail(filepath.Join(s.dir, "tracker.log"), 30))
}

// waitWriters waits for writers that were given a run time: a writer
// still running a minute after its time is stuck (a commit-lock deadlock
// between clients that order storages differently, a hung proxy): the test
// says where everyone is instead of waiting for its context to kill them.
func (s *fleetSite) waitWriters(ws ...*writer) {
	s.t.Helper()
	deadline := time.After(90 * time.Second)
	for i, w := range ws {
		select {
		case err := <-w.done:
			require.NoError(s.t, err, "writer %d: %s", i+1, w.err())
		case <-deadline:
			s.diagnoseStall(ws...)
			s.t.Fatalf("writer %d did not end in time (%d commits)", i+1, w.commits.Load())
		}
	}
}

// sampler collects the distinct published points while the load runs.
type sampler struct {
	mu      sync.Mutex
	samples []map[string]txn.TID
	at      []time.Time // when each sample was first seen
	stop    chan struct{}
	wg      sync.WaitGroup
}

func (s *fleetSite) sample() *sampler {
	sm := &sampler{stop: make(chan struct{})}
	sm.wg.Add(1)
	go func() {
		defer sm.wg.Done()
		prev := map[string]txn.TID{}
		for {
			if p := s.dump(); p != nil {
				for k, v := range p {
					if v < prev[k] {
						s.t.Errorf("published TID of %s decreased: %x after %x", k, v, prev[k])
					}
				}
				if p["A1"] != prev["A1"] || p["B1"] != prev["B1"] {
					sm.mu.Lock()
					sm.samples = append(sm.samples, p)
					sm.at = append(sm.at, time.Now())
					sm.mu.Unlock()
				}
				prev = p
			}
			select {
			case <-sm.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return sm
}

// longestStill is the longest time between two advances of the published
// point seen between from and to.
func (sm *sampler) longestStill(from, to time.Time) time.Duration {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	var longest time.Duration
	prev := from
	for _, at := range sm.at {
		if at.Before(from) || at.After(to) {
			continue
		}
		longest = max(longest, at.Sub(prev))
		prev = at
	}
	return max(longest, to.Sub(prev))
}

func (sm *sampler) end() []map[string]txn.TID {
	close(sm.stop)
	sm.wg.Wait()
	return sm.samples
}

// checkCoherent restores a spread of sampled points (ZODB reads at the
// published TIDs, straight from the ZEO servers) and requires equal
// counters in A1 and B1.
func (s *fleetSite) checkCoherent(samples []map[string]txn.TID, most int) int {
	step := max(1, len(samples)/most)
	checked := 0
	for i := len(samples) - 1; i >= 0; i -= step {
		p := samples[i]
		if p["A1"] == 0 || p["B1"] == 0 {
			continue
		}
		out := zeotest.Python(s.t, "zodb_client.py", append(s.dbs(nil), "read-at", "--at",
			fmt.Sprintf("a=%016x,c=%016x", p["A1"], p["B1"]))...)
		var got map[string]struct{ Counter *int }
		require.NoError(s.t, json.Unmarshal(out, &got), string(out))
		a, c := got["a"].Counter, got["c"].Counter
		require.Equal(s.t, a == nil, c == nil, "point %d: %s", i, out)
		if a != nil {
			require.Equal(s.t, *a, *c, "point %d (A1 %016x, B1 %016x) restores to unequal counters", i, p["A1"], p["B1"])
		}
		checked++
	}
	return checked
}

// One tracker, two sidecars, two ZEO servers, paired-counter writers through
// both sidecars. The tracker is SIGKILLed mid-load and restarted: the ZEO
// traffic through the sidecars never stops, they resend, publication
// resumes. Then a sidecar is SIGKILLed mid-load and restarted: its clients
// reconnect, and publication resumes with no operator action unless the
// kill fell inside a client's tpc_finish sequence (a real partial commit,
// which must then be reported, never published). Every sampled published
// point restores to equal counters; at rest the published point is every
// storage's last TID.
func TestFleetTrackerAndSidecarKilledUnderLoad(t *testing.T) {
	s := startFleet(t, 2)
	s.commitThroughEach()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sm := s.sample()
	const seconds = 25
	w1 := s.startWriter(ctx, s.sidecars[0], seconds)
	w2 := s.startWriter(ctx, s.sidecars[1], seconds)
	if !assert.Eventually(t, func() bool { return w1.commits.Load() > 5 && w2.commits.Load() > 5 }, 60*time.Second, 20*time.Millisecond) {
		s.diagnoseStall(w1, w2)
		t.Fatalf("the writers do not commit through both sidecars: %d, %d", w1.commits.Load(), w2.commits.Load())
	}

	// The tracker dies; traffic through both sidecars goes on.
	kill(t, s.tracker)
	before := w1.commits.Load() + w2.commits.Load()
	b1, b2 := w1.commits.Load(), w2.commits.Load()
	require.Eventually(t, func() bool { return w1.commits.Load() > b1+5 && w2.commits.Load() > b2+5 }, 30*time.Second,
		20*time.Millisecond, "commits through both sidecars while the tracker is down")
	t.Logf("%d commits while the tracker was down", w1.commits.Load()+w2.commits.Load()-before)
	s.tracker = startServe(t, s.trackerCfg, s.trackerAdm, "/healthz")
	require.Eventually(t, func() bool {
		st := s.status()
		return st.Bootstrapped
	}, 30*time.Second, 100*time.Millisecond)
	time.Sleep(3 * time.Second)

	// Sidecar 1 dies and comes back on the same buffer.
	kill(t, s.sidecars[0].sv)
	time.Sleep(500 * time.Millisecond)
	s.sidecars[0].sv = startServe(t, s.sidecars[0].cfg, s.sidecars[0].admin, "/healthz")
	c1 := w1.commits.Load()
	require.Eventually(t, func() bool { return w1.commits.Load() > c1 }, 30*time.Second, 20*time.Millisecond,
		"sidecar 1's client reconnected and committed again")

	s.waitWriters(w1, w2)
	t.Logf("commits: %d through sidecar 1, %d through sidecar 2", w1.commits.Load(), w2.commits.Load())

	last := s.last()
	partial := false
	for _, p := range s.status().Pins {
		if p.Kind == "partial" {
			partial = true
			t.Logf("the sidecar kill fell inside a tpc_finish sequence: partial commit reported: %+v", p)
		}
	}
	if !partial {
		s.waitPublished(last, 60*time.Second)
	}
	samples := sm.end()
	if final := s.dump(); final != nil {
		samples = append(samples, final)
	}
	require.GreaterOrEqual(t, len(samples), 5, "publication keeps up with the load")
	checked := s.checkCoherent(samples, 12)
	t.Logf("%d distinct published points sampled, %d restored to equal counters", len(samples), checked)
	for k, v := range s.status().Pins {
		require.NotEqual(t, "unaccounted", v.Kind, "pin %d: nothing committed through the sidecars goes unaccounted: %+v", k, v)
	}
	log := tail(filepath.Join(s.dir, "tracker.log"), 100000)
	require.Contains(t, log, "sidecar restarted")

	// The link's figures, on both sides.
	var tf struct {
		Role     string
		Sidecars []struct {
			Source    string
			Connected bool
			Applied   uint64
			Connects  uint64
		}
	}
	getJSON(t, "http://"+s.trackerAdm+"/fleet", &tf)
	require.Equal(t, "tracker", tf.Role)
	require.Len(t, tf.Sidecars, 2)
	for _, sc := range tf.Sidecars {
		require.True(t, sc.Connected, sc.Source)
		require.NotZero(t, sc.Applied, sc.Source)
	}
	var sf struct {
		Role string
		Link struct {
			Connected         bool
			Incarnation       uint32
			Sent, Acked       uint64
			Pending, Capacity int
		}
	}
	getJSON(t, "http://"+s.sidecars[0].admin+"/fleet", &sf)
	require.Equal(t, "sidecar", sf.Role)
	require.True(t, sf.Link.Connected)
	require.NotZero(t, sf.Link.Sent)
	require.Equal(t, 1000000, sf.Link.Capacity)
	var notable []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "[WARN]") || strings.Contains(l, "[ERROR]") {
			notable = append(notable, l)
		}
	}
	t.Logf("tracker warnings and errors: %d\n%s", len(notable), strings.Join(notable[:min(len(notable), 20)], "\n"))
	require.Contains(t, tail(filepath.Join(s.dir, "zope1.log"), 100000), "connected to the tracker")
}

// Three sidecars (one per "Zope host"), two busy writer processes behind
// each, all with identical transaction metadata (user, description): the
// load that stalls publication when many processes of one remote host
// share one identity at an all-in-one proxy. Through per-host sidecars each
// process is known by its pid: publication keeps advancing under load,
// every sampled point restores to equal counters, and at rest the point
// reaches every storage's last TID.
func TestFleetThreeSidecarsSameMetadataNoStall(t *testing.T) {
	s := startFleet(t, 3)
	s.commitThroughEach()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sm := s.sample()
	const seconds = 20
	var ws []*writer
	for _, sc := range s.sidecars {
		for range 2 {
			ws = append(ws, s.startPaired(ctx, s.dbs(sc), seconds, "same"))
		}
	}
	require.Eventually(t, func() bool {
		for _, w := range ws {
			if w.commits.Load() == 0 {
				return false
			}
		}
		return true
	}, 60*time.Second, 20*time.Millisecond, "every writer commits")
	from := time.Now()
	time.Sleep(12 * time.Second)
	to := time.Now()
	still := sm.longestStill(from, to)
	total := int64(0)
	for _, w := range ws {
		s.waitWriters(w)
		total += w.commits.Load()
	}
	s.waitPublished(s.last(), 60*time.Second)
	samples := append(sm.end(), s.dump())
	checked := s.checkCoherent(samples, 12)
	t.Logf("%d commits by %d writers through %d sidecars; %d distinct points sampled, %d restored to equal counters; "+
		"longest time the published point stood still under load: %v", total, len(ws), len(s.sidecars), len(samples), checked, still)
	require.Less(t, still, 5*time.Second, "publication advances under load")
	require.Empty(t, s.status().Pins)
}

// The mixed topology (docs/deploy.md): Zopes behind a sidecar, and a
// patched Zope (Products.TIDStorage) that talks to ZEO directly and reports
// its transactions to the tracker's classic endpoint, both writing the same
// paired counters. The tracker accounts the patched Zope's commits from its
// classic reports (none is left unaccounted: without --classic this test
// fails, the direct commits held as unaccounted), every sampled point
// restores to equal counters, and at rest the point reaches every storage's
// last TID.
func TestFleetMixedSidecarAndPatchedZope(t *testing.T) {
	s := startFleet(t, 1)
	s.commitThroughEach()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sm := s.sample()
	const seconds = 15
	viaSidecar := s.startWriter(ctx, s.sidecars[0], seconds)
	patched := s.startPaired(ctx, s.dbs(nil), seconds, "patched zope", "--classic", s.classic, "--ids", "a=A1,c=B1")
	s.waitWriters(viaSidecar, patched)
	require.Positive(t, viaSidecar.commits.Load())
	require.Positive(t, patched.commits.Load())
	s.waitPublished(s.last(), 60*time.Second)
	samples := append(sm.end(), s.dump())
	checked := s.checkCoherent(samples, 12)
	t.Logf("%d commits through the sidecar, %d by the patched Zope; %d distinct points sampled, %d restored to equal counters",
		viaSidecar.commits.Load(), patched.commits.Load(), len(samples), checked)
	require.Empty(t, s.status().Pins, "the patched Zope's commits are accounted by its classic reports")
	require.Zero(t, s.status().Counters.Unaccounted)
}

// A peer with a certificate from another CA is refused with a clear error on
// both sides, and changes nothing; so is a sidecar proxying storages the
// tracker does not know.
func TestFleetRefusesWrongCertificateAndUnknownStorage(t *testing.T) {
	s := startFleet(t, 0)
	trackerLog := filepath.Join(s.dir, "tracker.log")
	before := s.dump()
	require.NotNil(t, before)

	// A peer that is not a sidecar at all: plain HTTP on the fleet port.
	c, err := net.Dial("tcp", s.fleetAddr)
	require.NoError(t, err)
	_, err = c.Write([]byte("GET / HTTP/1.1\r\nHost: tracker\r\n\r\n"))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.ReadAll(c)
	require.NoError(t, err, "the tracker closes the connection (EOF), it does not wait for more")
	c.Close()
	require.Eventually(t, func() bool { return fileContains(trackerLog, "TLS handshake failed") }, 30*time.Second, 100*time.Millisecond)

	// A gRPC peer with a good certificate that does not say hello first.
	cert, err := tls.LoadX509KeyPair(s.certs.SidecarCert, s.certs.SidecarKey)
	require.NoError(t, err)
	caPEM, err := os.ReadFile(s.certs.CA)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	conn, err := grpc.NewClient(s.fleetAddr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := fleetpb.NewFleetClient(conn).Report(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&fleetpb.SidecarMessage{Items: []*fleetpb.Item{{Seq: 1,
		Body: &fleetpb.Item_Gap{Gap: &fleetpb.Gap{FromSeq: 0, ToSeq: 1, Reason: "not a sidecar"}}}}}))
	_, err = stream.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "hello")
	require.Eventually(t, func() bool { return fileContains(trackerLog, "did not introduce itself as a sidecar") },
		30*time.Second, 100*time.Millisecond)
	require.Equal(t, before, s.dump(), "nothing published changed")
	require.Empty(t, s.status().Pins)

	rogue := s.newSidecar("rogue", s.certs.RogueCert, s.certs.RogueKey)
	rogue.sv = startServe(t, rogue.cfg, rogue.admin, "/healthz")
	require.Eventually(t, func() bool {
		return fileContains(filepath.Join(s.dir, "rogue.log"), "certificate")
	}, 30*time.Second, 100*time.Millisecond)

	stranger := s.newSidecar("stranger", s.certs.SidecarCert, s.certs.SidecarKey)
	text, err := os.ReadFile(stranger.cfg)
	require.NoError(t, err)
	writeFile(t, stranger.cfg, strings.Replace(string(text), `id = "B1"`, `id = "Z9"`, 1))
	stranger.sv = startServe(t, stranger.cfg, stranger.admin, "/healthz")
	require.Eventually(t, func() bool { return fileContains(trackerLog, `sidecar refused`) }, 30*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool {
		return fileContains(filepath.Join(s.dir, "stranger.log"), `does not know`)
	}, 30*time.Second, 100*time.Millisecond)
	require.False(t, fileContains(trackerLog, "sidecar connected"))
	require.Empty(t, s.status().Pins)
	require.Equal(t, before, s.dump(), "nothing published changed")
	var tf struct{ Sidecars []json.RawMessage }
	getJSON(t, "http://"+s.trackerAdm+"/fleet", &tf)
	require.Empty(t, tf.Sidecars, "no peer was taken for a sidecar")
}

// A client killed between the tpc_finish of two storages through a sidecar:
// the tracker reports the partial commit with the client's process, and
// never publishes its half, nor anything after it on those storages.
func TestFleetPartialCommitThroughSidecar(t *testing.T) {
	s := startFleet(t, 1)
	sc := s.sidecars[0]
	zeotest.Python(t, "zodb_client.py", append(s.dbs(sc), "commit", "--count", "1", "--touch", "a,b,c")...)
	before := s.last()
	s.waitPublished(before, 30*time.Second)
	// ZODB finishes the storages in sortKey order (the sidecar's ports
	// sort like the ZEO servers': newSidecar): the first one commits.
	first, then, firstID, thenID := "a", "c", "A1", "B1"
	if sc.pa > sc.pb {
		first, then, firstID, thenID = "c", "a", "B1", "A1"
	}
	_, err := zeotest.PythonErr(t, "zodb_client.py", append(s.dbs(sc), "crash-between", "--first", first, "--then", then, "--desc", "T1")...)
	require.Error(t, err, "the client dies inside tpc_finish")
	after := s.last()
	require.Greater(t, after[firstID], before[firstID], "T1 committed on the first storage")
	require.Equal(t, before[thenID], after[thenID], "T1 never committed on the other")
	var pin statusdoc.PinDoc
	require.Eventually(t, func() bool {
		for _, p := range s.status().Pins {
			if p.Kind == "partial" {
				pin = p
				return true
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "partial commit reported; tracker log:\n%s", notable(filepath.Join(s.dir, "tracker.log"), 20))
	require.ElementsMatch(t, []string{"A1", "B1"}, pin.Storages)
	require.Contains(t, pin.Reason, "T1")
	require.Contains(t, pin.Reason, "pid:", "the client process, known to the sidecar on its host")
	require.Equal(t, before[firstID], s.dump()[firstID], "T1's half is not published")
	r := run(t, "status", "-c", s.trackerCfg)
	t.Logf("status:\n%s", r.stdout)
}

// linkCutter forwards TCP to the tracker's fleet listener and can cut every
// connection through it and refuse new ones for a while (a network cut), or
// stall it: nothing is forwarded for a while, nothing is lost (a peer or a
// middlebox that stops reading; gRPC keepalives must notice it).
type linkCutter struct {
	ln        net.Listener
	target    string
	mu        sync.Mutex
	conns     []net.Conn
	downTo    time.Time
	stalledTo time.Time
}

func newLinkCutter(t *testing.T, target string) *linkCutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &linkCutter{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); c.cut(0) })
	go func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			refused := time.Now().Before(c.downTo)
			c.mu.Unlock()
			if refused {
				down.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				down.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, down, up)
			c.mu.Unlock()
			go func() { c.forward(up, down); up.Close() }()
			go func() { c.forward(down, up); down.Close() }()
		}
	}()
	return c
}

// forward copies src to dst, holding each chunk while the link is stalled.
func (c *linkCutter) forward(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for {
			c.mu.Lock()
			wait := time.Until(c.stalledTo)
			c.mu.Unlock()
			if wait <= 0 {
				break
			}
			time.Sleep(min(wait, 50*time.Millisecond))
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// cut closes every connection and refuses new ones for d.
func (c *linkCutter) cut(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.downTo = time.Now().Add(d)
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// stall stops forwarding on every connection, old and new, for d.
func (c *linkCutter) stall(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stalledTo = time.Now().Add(d)
}

// startCutFleetUnderLoad starts a fleet of two sidecars whose link to the
// tracker goes through a linkCutter, primes it, and starts a paired writer
// through each sidecar for the given seconds, sampled.
func startCutFleetUnderLoad(t *testing.T, ctx context.Context, seconds int) (*fleetSite, *linkCutter, *sampler, *writer, *writer) {
	var cutter *linkCutter
	s := startFleet(t, 2, func(fleetAddr string) string {
		cutter = newLinkCutter(t, fleetAddr)
		return cutter.ln.Addr().String()
	})
	s.commitThroughEach()
	sm := s.sample()
	w1 := s.startWriter(ctx, s.sidecars[0], seconds)
	w2 := s.startWriter(ctx, s.sidecars[1], seconds)
	if !assert.Eventually(t, func() bool { return w1.commits.Load() > 5 && w2.commits.Load() > 5 }, 30*time.Second, 20*time.Millisecond) {
		s.diagnoseStall(w1, w2)
		t.Fatalf("the writers do not commit: %d, %d", w1.commits.Load(), w2.commits.Load())
	}
	return s, cutter, sm, w1, w2
}

// The network between the sidecars and the tracker is cut twice for a few
// seconds under load, then stalled longer than the link's keepalive: ZEO
// traffic through the sidecars goes on, they reconnect and resend,
// publication resumes, every sampled point restores to equal counters.
//
// (The writer stalls once seen here were a conflict livelock of two
// paired writers without backoff, not the sidecars: zodb_client.py now
// backs off and reports its conflicts, and a stall dumps both sides.)
func TestFleetLinkCutUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, cutter, sm, w1, w2 := startCutFleetUnderLoad(t, ctx, 70)
	type link struct {
		Link struct {
			Connected         bool
			Connects, Resent  uint64
			Pending, Capacity int
		}
	}
	linkLog := func() string {
		var lines []string
		for _, l := range strings.Split(tail(filepath.Join(s.dir, "zope1.log"), 100000), "\n") {
			if strings.Contains(l, "fleet:") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}
	connects := func() uint64 {
		var l link
		getJSON(t, "http://"+s.sidecars[0].admin+"/fleet", &l)
		if !l.Link.Connected {
			return 0
		}
		return l.Link.Connects
	}
	for i := range 3 {
		c0 := connects()
		require.NotZero(t, c0, "sidecar 1 is linked before cut %d", i+1)
		if i < 2 {
			cutter.cut(2 * time.Second)
		} else {
			// Longer than the keepalive (10 s + 5 s): the sidecars must
			// notice a link that carries nothing and reconnect.
			cutter.stall(20 * time.Second)
		}
		b1, b2 := w1.commits.Load(), w2.commits.Load()
		if !assert.Eventually(t, func() bool { return w1.commits.Load() > b1+3 && w2.commits.Load() > b2+3 }, 30*time.Second,
			20*time.Millisecond) {
			s.diagnoseStall(w1, w2)
			t.Fatalf("no commits through both sidecars while the link is cut: %d→%d, %d→%d", b1, w1.commits.Load(),
				b2, w2.commits.Load())
		}
		// Stall: 20 s, then the keepalive (15 s at most after the last
		// byte) and the reconnect backoff (5 s at most).
		if !assert.Eventually(t, func() bool { return connects() > c0 }, 45*time.Second, 100*time.Millisecond,
			"sidecar 1 linked again after cut %d", i+1) {
			t.Logf("sidecar 1's link:\n%s", linkLog())
			s.diagnoseStall(w1, w2)
			t.FailNow()
		}
	}
	s.waitWriters(w1, w2)
	s.waitPublished(s.last(), 60*time.Second)
	samples := append(sm.end(), s.dump())
	checked := s.checkCoherent(samples, 10)
	t.Logf("%d distinct published points sampled, %d restored to equal counters", len(samples), checked)
	require.Empty(t, s.status().Pins)
	var sf link
	getJSON(t, "http://"+s.sidecars[0].admin+"/fleet", &sf)
	t.Logf("sidecar 1's link:\n%s", linkLog())
	require.GreaterOrEqual(t, sf.Link.Connects, uint64(4), "reconnected after the cuts and the stall")
	require.NotZero(t, sf.Link.Resent, "reports of the cut periods were resent")
	t.Logf("sidecar 1: %d connects, %d reports resent", sf.Link.Connects, sf.Link.Resent)
}
