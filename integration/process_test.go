package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// The tests of this file run `tidstorage serve` as a separate process, so
// that it can be SIGKILLed and restarted on the same configuration, status
// file and journal, as after an OOM kill or a host crash.

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// tidstorageBin builds the tidstorage binary once per test run.
func tidstorageBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "tidstorage-integration-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "tidstorage")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/tidstorage/tidstorage/cmd/tidstorage")
		cmd.Dir = zeotest.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// procSite is real ZEO servers behind a `tidstorage serve` process. Each ZEO
// server's upstream (the proxy's and the history watcher's) is a Cutter.
type procSite struct {
	t                                 *testing.T
	dir, cfgPath, statusPath, logPath string
	adminAddr, classicAddr            string
	servers                           []*zeotest.Server
	cutters                           []*zeotest.Cutter
	dbs                               []string          // --db arguments through the proxy
	direct                            []string          // --db arguments straight to the ZEO servers
	ids                               map[string]string // db name -> storage id
	sv                                *serveProc
	starts, kills                     int
	samplerMu                         sync.Mutex
	samplerGen                        int                  // bumped by samplerFloor
	samples                           []map[string]txn.TID // distinct published points seen by the sampler
	sampleAt                          []time.Time          // when each was first seen
	accepted                          []accepted           // pins the test accepted
	maxSeen                           map[string]txn.TID
	decreased                         []string
	stopSampler                       chan struct{}
	samplerDone                       chan struct{}
	storageHCL                        map[string]string // db name -> extra lines in its storage block
	grace                             string
	wrap                              []string // command prefix of serve (procOptions.wrap)
}

type serveProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	out  *zeotest.SyncBuffer
}

type procOptions struct {
	storageHCL map[string]string // db name -> lines added to its storage block
	grace      string            // unaccounted_grace (default "1s")
	topHCL     string            // lines added at the top level
	// tls: every ZEO server speaks TLS only and requires client
	// certificates (<ssl> with authenticate); tidstorage terminates the
	// clients' TLS (client certificates required) and re-originates it;
	// the clients, through the proxy or directly, present tls.Client; the
	// cutters terminate and re-originate TLS.
	tls *zeotest.TLSCerts
	// stateDir holds the status file, and beside it the journal, the
	// running marker and the admin token (default: the test's directory,
	// which also holds the configuration and the log).
	stateDir string
	wrap     []string // run serve as wrap... tidstorage serve -c FILE
	// storageHCLFor, if set, gives the lines of a storage block from its
	// server (data_fs, blob_dir...), after storageHCL's.
	storageHCLFor func(db string, srv *zeotest.Server, name string) string
	extraHCL      string // appended to the configuration
}

func startProcSite(t *testing.T, opts procOptions, specs ...zeoSpec) *procSite {
	t.Helper()
	s := &procSite{t: t, dir: t.TempDir(), ids: map[string]string{}, storageHCL: opts.storageHCL, grace: opts.grace, wrap: opts.wrap}
	if s.grace == "" {
		s.grace = "1s"
	}
	s.statusPath = filepath.Join(s.dir, "tidstorage.status")
	if opts.stateDir != "" {
		s.statusPath = filepath.Join(opts.stateDir, "tidstorage.status")
	}
	s.logPath = filepath.Join(s.dir, "tidstorage.log")
	s.adminAddr = fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	s.classicAddr = fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	var b strings.Builder
	fmt.Fprintf(&b, "status_file = %q\nburst_period = \"0s\"\nfull_dump_period = \"1m\"\nunaccounted_grace = %q\n%s\n", s.statusPath, s.grace, opts.topHCL)
	fmt.Fprintf(&b, "log {\n  file = %q\n  level = \"debug\"\n  format = \"json\"\n}\n", s.logPath)
	fmt.Fprintf(&b, "classic {\n  listen = %q\n}\nadmin {\n  listen = %q\n}\n", s.classicAddr, s.adminAddr)
	if c := opts.tls; c != nil {
		s.dbs = c.PythonArgs(c.Client, c.ClientKey)
		s.direct = c.PythonArgs(c.Client, c.ClientKey)
	}
	for i, sp := range specs {
		srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: sp.storages, Msgpack: sp.msgpack, Blobs: sp.blobs, TLS: opts.tls})
		s.servers = append(s.servers, srv)
		var cutter *zeotest.Cutter
		if opts.tls != nil {
			cutter = zeotest.StartTLSCutter(t, srv.Addr, opts.tls)
		} else {
			cutter = zeotest.StartCutter(t, srv.Addr)
		}
		s.cutters = append(s.cutters, cutter)
		upstream := cutter.Addr()
		port := zeotest.FreePort(t)
		listen := fmt.Sprintf("127.0.0.1:%d", port)
		fmt.Fprintf(&b, "zeo \"z%d\" {\n  listen = %q\n  upstream = %q\n", i, listen, upstream)
		if c := opts.tls; c != nil {
			fmt.Fprintf(&b, "  tls {\n    cert_file = %q\n    key_file = %q\n    client_ca_file = %q\n  }\n", c.Proxy, c.ProxyKey, c.CA)
			fmt.Fprintf(&b, "  upstream_tls {\n    ca_file = %q\n    cert_file = %q\n    key_file = %q\n  }\n", c.CA, c.Upstream, c.UpstreamKey)
		}
		for j, name := range sp.storages {
			db := sp.dbNames[j]
			more := ""
			if opts.storageHCLFor != nil {
				more = opts.storageHCLFor(db, srv, name)
			}
			fmt.Fprintf(&b, "  storage %q {\n%s\n%s\n  }\n", name, s.storageHCL[db], more)
			s.dbs = append(s.dbs, "--db", db+"="+listen+"/"+name)
			s.direct = append(s.direct, "--db", db+"="+srv.Addr+"/"+name)
			s.ids[db] = fmt.Sprintf("((('127.0.0.1', %d),), %s)", port, pyRepr(name))
		}
		b.WriteString("}\n")
	}
	b.WriteString(opts.extraHCL)
	s.cfgPath = filepath.Join(s.dir, "tidstorage.hcl")
	require.NoError(t, os.WriteFile(s.cfgPath, []byte(b.String()), 0o644))
	s.start()
	t.Cleanup(func() {
		s.stopSampling()
		if s.sv != nil {
			select {
			case <-s.sv.done:
			default:
				_ = s.sv.cmd.Process.Kill()
				<-s.sv.done
			}
		}
		if t.Failed() {
			if b, err := os.ReadFile(s.logPath); err == nil {
				tail := b[max(0, len(b)-30000):]
				t.Logf("tidstorage log (tail):\n%s", tail)
			}
		}
	})
	return s
}

func pyRepr(s string) string { return "'" + s + "'" }

// start runs `tidstorage serve` and waits until /readyz answers 200.
func (s *procSite) start() {
	t := s.t
	t.Helper()
	argv := append(append([]string{}, s.wrap...), tidstorageBin(t), "serve", "-c", s.cfgPath)
	sv := &serveProc{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{}), out: &zeotest.SyncBuffer{}}
	sv.cmd.Stdout, sv.cmd.Stderr = sv.out, sv.out
	require.NoError(t, sv.cmd.Start())
	go func() { sv.err = sv.cmd.Wait(); close(sv.done) }()
	s.sv = sv
	s.starts++
	deadline := time.Now().Add(zeotestWait)
	for {
		select {
		case <-sv.done:
			t.Fatalf("serve exited at start (%v): %s", sv.err, sv.out.String())
		default:
		}
		if code, _ := s.get("/readyz"); code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready after %v: %s", zeotestWait, sv.out.String())
		}
		time.Sleep(pollEvery)
	}
}

// kill SIGKILLs serve and waits for it to be gone.
func (s *procSite) kill() {
	s.t.Helper()
	require.NoError(s.t, s.sv.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case <-s.sv.done:
	case <-time.After(zeotestWait):
		s.t.Fatal("serve survived SIGKILL")
	}
	s.kills++
}

// stopClean stops serve with TERM and requires exit status 0.
func (s *procSite) stopClean() {
	s.t.Helper()
	require.NoError(s.t, s.sv.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-s.sv.done:
		require.NoError(s.t, s.sv.err, s.sv.out.String())
	case <-time.After(60 * time.Second):
		s.t.Fatal("serve did not stop after TERM")
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// get reads path from the admin endpoint with serve's admin token (the
// file serve creates beside the status file), so /status is not redacted.
func (s *procSite) get(path string) (int, []byte) {
	req, err := http.NewRequest(http.MethodGet, "http://"+s.adminAddr+path, nil)
	require.NoError(s.t, err)
	if tok, err := statusdoc.ReadToken(s.statusPath + ".admin-token"); err == nil {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// status is /status; ok is false while serve does not answer.
func (s *procSite) statusDoc() (statusdoc.StatusDoc, bool) {
	var doc statusdoc.StatusDoc
	code, b := s.get("/status")
	if code != http.StatusOK || json.Unmarshal(b, &doc) != nil {
		return doc, false
	}
	return doc, true
}

func (s *procSite) status() statusdoc.StatusDoc {
	s.t.Helper()
	doc, ok := s.statusDoc()
	require.True(s.t, ok, "/status does not answer")
	return doc
}

func publishedOf(doc statusdoc.StatusDoc) map[string]txn.TID {
	out := map[string]txn.TID{}
	for _, st := range doc.Storages {
		if st.Published != nil {
			out[st.ID] = st.Published.Int
		}
	}
	return out
}

func (s *procSite) published() map[string]txn.TID { return publishedOf(s.status()) }

// pins returns the active pins of a kind ("" for all).
func (s *procSite) pins(kind string) []statusdoc.PinDoc {
	var out []statusdoc.PinDoc
	for _, p := range s.status().Pins {
		if kind == "" || p.Kind == kind {
			out = append(out, p)
		}
	}
	return out
}

func (s *procSite) waitPin(kind string) statusdoc.PinDoc {
	s.t.Helper()
	var pin statusdoc.PinDoc
	require.Eventually(s.t, func() bool {
		ps := s.pins(kind)
		if len(ps) == 0 {
			return false
		}
		pin = ps[0]
		return true
	}, zeotestWait, pollEvery, "no %s pin: %+v", kind, s.status().Pins)
	return pin
}

// client runs zodb_client.py through the proxy.
func (s *procSite) client(args ...string) []byte {
	s.t.Helper()
	return zeotest.Python(s.t, "zodb_client.py", append(append([]string{}, s.dbs...), args...)...)
}

// directClient runs zodb_client.py straight against the ZEO servers.
func (s *procSite) directClient(args ...string) []byte {
	s.t.Helper()
	return zeotest.Python(s.t, "zodb_client.py", append(append([]string{}, s.direct...), args...)...)
}

// last returns every storage's lastTransaction, read from ZEO directly.
func (s *procSite) last() map[string]txn.TID {
	s.t.Helper()
	var hex map[string]string
	require.NoError(s.t, json.Unmarshal(s.directClient("last"), &hex))
	out := map[string]txn.TID{}
	for db, h := range hex {
		out[s.ids[db]] = txn.TID(parseTID(s.t, h))
	}
	return out
}

func (s *procSite) waitPublished(want map[string]txn.TID) {
	s.t.Helper()
	var got map[string]txn.TID
	deadline := time.Now().Add(zeotestWait)
	for {
		if doc, ok := s.statusDoc(); ok {
			got = publishedOf(doc)
			reached := true
			for k, v := range want {
				reached = reached && got[k] == v
			}
			if reached {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("published %v, want %v; pins %+v", got, want, s.status().Pins)
		}
		time.Sleep(pollEvery)
	}
}

// cli runs the tidstorage command line; it returns stdout, stderr and the
// exit status.
func (s *procSite) cli(args ...string) (string, string, int) {
	s.t.Helper()
	cmd := exec.Command(tidstorageBin(s.t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(s.t, err)
	}
	return out.String(), errb.String(), code
}

// accept runs `tidstorage accept-partial N` (dry run first, exit status 2),
// then with --yes, and requires success.
func (s *procSite) accept(pin uint64) {
	s.t.Helper()
	out, errOut, code := s.cli("accept-partial", "-c", s.cfgPath, fmt.Sprint(pin))
	require.Equal(s.t, 2, code, "dry run: %s %s", out, errOut)
	require.Contains(s.t, out, "Would accept")
	out, errOut, code = s.cli("accept-partial", "-c", s.cfgPath, "--yes", fmt.Sprint(pin))
	require.Equal(s.t, 0, code, "accept: %s %s", out, errOut)
	s.t.Logf("accept-partial: %s", strings.TrimSpace(out))
}

// logRecords returns the JSON log records of every run so far.
func (s *procSite) logRecords() []map[string]any {
	s.t.Helper()
	f, err := os.Open(s.logPath)
	require.NoError(s.t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// waitLog waits for a log record of level whose message starts with msg and
// whose fields include every one of fields.
func (s *procSite) waitLog(level, msg string, fields map[string]string) map[string]any {
	s.t.Helper()
	var found map[string]any
	require.Eventually(s.t, func() bool {
		for _, r := range s.logRecords() {
			if !strings.EqualFold(fmt.Sprint(r["@level"]), level) || !strings.HasPrefix(fmt.Sprint(r["@message"]), msg) {
				continue
			}
			ok := true
			for k, v := range fields {
				if fmt.Sprint(r[k]) != v {
					ok = false
				}
			}
			if ok {
				found = r
				return true
			}
		}
		return false
	}, zeotestWait, 100*time.Millisecond, "no %s log %q with %v", level, msg, fields)
	return found
}

// startSampling polls /status until stopSampling, keeping every distinct
// published point and noting any published TID that went down (across
// restarts too).
func (s *procSite) startSampling() {
	s.stopSampler, s.samplerDone = make(chan struct{}), make(chan struct{})
	s.samples, s.sampleAt = nil, nil
	s.maxSeen = map[string]txn.TID{}
	go func() {
		defer close(s.samplerDone)
		var prev map[string]txn.TID
		for {
			s.samplerMu.Lock()
			gen := s.samplerGen
			s.samplerMu.Unlock()
			if doc, ok := s.statusDoc(); ok && doc.Bootstrapped {
				p := publishedOf(doc)
				s.samplerMu.Lock()
				if gen != s.samplerGen {
					p = nil // read before a new floor was set (samplerFloor)
				}
				for k, v := range p {
					if v < s.maxSeen[k] {
						s.decreased = append(s.decreased, fmt.Sprintf("%s: %s after %s", k, v.Hex(), s.maxSeen[k].Hex()))
					}
					s.maxSeen[k] = max(s.maxSeen[k], v)
				}
				if p != nil && fmt.Sprint(p) != fmt.Sprint(prev) {
					s.samples = append(s.samples, p)
					s.sampleAt = append(s.sampleAt, time.Now())
					prev = p
				}
				s.samplerMu.Unlock()
			}
			select {
			case <-s.stopSampler:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
}

// stopSampling stops the sampler and returns the points it saw; it fails
// the test if a published TID went down.
func (s *procSite) stopSampling() []map[string]txn.TID {
	if s.stopSampler == nil {
		return nil
	}
	close(s.stopSampler)
	<-s.samplerDone
	s.stopSampler = nil
	s.samplerMu.Lock()
	defer s.samplerMu.Unlock()
	require.Empty(s.t, s.decreased, "published TIDs went down")
	return s.samples
}

// checkPaired reads root['counter'] of dbs a and b at every one of the
// points (one client process) and requires them equal: no point holds half
// of a paired transaction.
func (s *procSite) checkPaired(points []map[string]txn.TID, a, b string) int {
	s.t.Helper()
	ia, ib := s.ids[a], s.ids[b]
	args := []string{"read-at"}
	var kept []map[string]txn.TID
	for _, p := range points {
		if p[ia] != 0 && p[ib] != 0 {
			args = append(args, "--at", fmt.Sprintf("%s=%016x,%s=%016x", a, p[ia], b, p[ib]))
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		return 0
	}
	lines := strings.Split(strings.TrimSpace(string(s.directClient(args...))), "\n")
	require.Len(s.t, lines, len(kept))
	for i, line := range lines {
		var got map[string]struct{ Counter *int }
		require.NoError(s.t, json.Unmarshal([]byte(line), &got), line)
		ca, cb := got[a].Counter, got[b].Counter
		require.Equal(s.t, ca == nil, cb == nil, "point %d: %s", i, line)
		if ca != nil {
			require.Equal(s.t, *ca, *cb, "point %d (%s %016x, %s %016x) restores to unequal counters", i, a, kept[i][ia], b, kept[i][ib])
		}
	}
	return len(kept)
}

// half is a value of the paired counter committed on one database only:
// half of a transaction.
type half struct {
	db    string
	tid   txn.TID
	value int
}

func (h half) String() string { return fmt.Sprintf("%s@%s(%d)", h.db, h.tid.Hex(), h.value) }

// pairedHalves reads every paired value root['counter'] took in dbs a and
// b (their whole history) and returns the values committed on one of them
// only: partial commits. A paired commit writes one new value in both; a
// later one cannot reuse it (its snapshot would conflict), so a value on one
// side only is half a transaction.
func (s *procSite) pairedHalves(a, b string) []half {
	s.t.Helper()
	var hist map[string][][2]any
	require.NoError(s.t, json.Unmarshal(s.directClient("history"), &hist))
	values := func(db string) map[int]txn.TID {
		out := map[int]txn.TID{}
		for _, e := range hist[db] {
			if v, ok := e[1].(float64); ok {
				if _, seen := out[int(v)]; !seen {
					out[int(v)] = txn.TID(parseTID(s.t, e[0].(string))) // the transaction that wrote it
				}
			}
		}
		return out
	}
	va, vb := values(a), values(b)
	var halves []half
	for v, tid := range va {
		if _, ok := vb[v]; !ok {
			halves = append(halves, half{a, tid, v})
		}
	}
	for v, tid := range vb {
		if _, ok := va[v]; !ok {
			halves = append(halves, half{b, tid, v})
		}
	}
	sort.Slice(halves, func(i, j int) bool { return halves[i].tid < halves[j].tid })
	s.t.Logf("%d paired values on %s, %d on %s; committed on one side only: %v", len(va), a, len(vb), b, halves)
	return halves
}

// pinTIDs returns the commits a pin names: a partial pin's committed TIDs,
// an unaccounted pin's unaccounted commits.
func pinTIDs(p statusdoc.PinDoc) []txn.TID {
	var out []txn.TID
	if p.Kind == "unaccounted" {
		for _, u := range p.Unaccounted {
			out = append(out, u.Int)
		}
		if p.Upto != nil {
			out = append(out, p.Upto.Int)
		}
		return out
	}
	for _, m := range committedTIDRe.FindAllStringSubmatch(p.Reason, -1) {
		var v uint64
		_, _ = fmt.Sscanf(m[1], "%x", &v)
		out = append(out, txn.TID(v))
	}
	return out
}

var committedTIDRe = regexp.MustCompile(`\)@([0-9a-f]{16}) `)

// accepted is a pin the test accepted as the operator: when, and the
// commits it named.
type accepted struct {
	at   time.Time
	kind string
	tids []txn.TID
}

// reported says whether h was named by an accepted pin (before t, unless t
// is zero) or is named by an active one.
func (s *procSite) reported(h half, pins []statusdoc.PinDoc, before time.Time) bool {
	for _, a := range s.accepted {
		if (before.IsZero() || a.at.Before(before)) && slices.Contains(a.tids, h.tid) {
			return true
		}
	}
	if !before.IsZero() {
		return false
	}
	for _, p := range pins {
		if slices.Contains(pinTIDs(p), h.tid) {
			return true
		}
	}
	return false
}

// requireHalvesReported requires every half transaction found in the
// databases to have been named by a pin: accepted already, or active.
func (s *procSite) requireHalvesReported(halves []half) {
	s.t.Helper()
	require.Eventually(s.t, func() bool {
		pins := s.pins("")
		for _, h := range halves {
			if !s.reported(h, pins, time.Time{}) {
				return false
			}
		}
		return true
	}, zeotestWait, pollEvery, "partial commits %v are in the databases; pins %+v", halves, s.status().Pins)
}

// requirePinsExplained requires every pin, active or accepted by the test,
// to name at least one half transaction found in the databases. Anything
// else is a false hold that only an operator could release.
func (s *procSite) requirePinsExplained(halves []half) {
	s.t.Helper()
	isHalf := func(tids []txn.TID) bool {
		for _, h := range halves {
			if slices.Contains(tids, h.tid) {
				return true
			}
		}
		return false
	}
	for _, p := range s.pins("") {
		require.True(s.t, isHalf(pinTIDs(p)), "pin %d (%s) is not explained by the databases' half transactions %v: %s", p.ID, p.Kind, halves, p.Reason)
	}
	for _, a := range s.accepted {
		require.True(s.t, isHalf(a.tids), "an accepted %s pin named %v, none a half transaction of %v", a.kind, a.tids, halves)
	}
}

// acceptNow accepts, as the operator would, the pins active now (not
// waiting for more); a refused accept is logged and left for later.
func (s *procSite) acceptNow() {
	s.t.Helper()
	doc, ok := s.statusDoc()
	if !ok {
		return
	}
	unaccountedDone := false
	for _, p := range doc.Pins {
		if !p.Acceptable || (p.Kind == "unaccounted" && unaccountedDone) {
			continue
		}
		rec := accepted{at: time.Now(), kind: p.Kind, tids: pinTIDs(p)}
		if p.Kind == "unaccounted" {
			// Accepting one accepts every unaccounted pin (all-or-nothing).
			unaccountedDone = true
			for _, q := range doc.Pins {
				if q.Kind == "unaccounted" && q.ID != p.ID {
					rec.tids = append(rec.tids, pinTIDs(q)...)
				}
			}
		}
		out, errOut, code := s.cli("accept-partial", "-c", s.cfgPath, "--yes", fmt.Sprint(p.ID))
		if code != 0 {
			s.t.Logf("accept-partial %d refused for now (exit %d): %s %s", p.ID, code, out, errOut)
			continue
		}
		s.accepted = append(s.accepted, rec)
		s.t.Logf("accepted pin %d (%s) naming %v", p.ID, p.Kind, rec.tids)
	}
}

// checkPairedAccepted is checkPaired for a run in which the test accepted
// pins as it went: a point may hold a half transaction only if a pin
// naming it had been accepted before the point was first seen.
func (s *procSite) checkPairedAccepted(points []map[string]txn.TID, times []time.Time, a, b string, halves []half) int {
	s.t.Helper()
	ia, ib := s.ids[a], s.ids[b]
	args := []string{"read-at"}
	var idx []int
	for i, p := range points {
		if p[ia] != 0 && p[ib] != 0 {
			args = append(args, "--at", fmt.Sprintf("%s=%016x,%s=%016x", a, p[ia], b, p[ib]))
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return 0
	}
	lines := strings.Split(strings.TrimSpace(string(s.directClient(args...))), "\n")
	require.Len(s.t, lines, len(idx))
	for k, line := range lines {
		i := idx[k]
		var got map[string]struct{ Counter *int }
		require.NoError(s.t, json.Unmarshal([]byte(line), &got), line)
		ca, cb := got[a].Counter, got[b].Counter
		require.Equal(s.t, ca == nil, cb == nil, "point %d: %s", i, line)
		if ca == nil || *ca == *cb {
			continue
		}
		db, v := a, *ca
		if *cb > *ca {
			db, v = b, *cb
		}
		ok := false
		for _, h := range halves {
			if h.db == db && h.value == v {
				ok = s.reported(h, nil, times[i])
			}
		}
		require.True(s.t, ok, "point %d (%s %016x, %s %016x, first seen %s) restores to unequal counters %d/%d, and no accepted pin named the half (halves %v)",
			i, a, points[i][ia], b, points[i][ib], times[i].Format(time.RFC3339Nano), *ca, *cb, halves)
	}
	return len(idx)
}

// requireAtRest requires, with no load, every storage watched, its history
// watcher connected and caught up with last, and nothing unaccounted,
// held or awaiting the history; it returns the /status document.
func (s *procSite) requireAtRest(last map[string]txn.TID) statusdoc.StatusDoc {
	s.t.Helper()
	var doc statusdoc.StatusDoc
	require.Eventually(s.t, func() bool {
		doc = s.status()
		for _, h := range doc.History {
			if !h.Connected || h.LastTID == nil || h.LastTID.Int != last[h.Storage] {
				return false
			}
		}
		return len(doc.History) == len(last)
	}, zeotestWait, pollEvery, "watchers not caught up with %v", last)
	for _, st := range doc.Storages {
		require.True(s.t, st.Watched, st.ID)
		require.Empty(s.t, st.Unaccounted, st.ID)
		require.False(s.t, st.HeldByUnaccounted, st.ID)
		require.Zero(s.t, st.AwaitingHistory, st.ID)
	}
	return doc
}

// acceptAll accepts every acceptable pin, as the operator would once each
// is understood, until none is left (bounded).
func (s *procSite) acceptAll() {
	s.t.Helper()
	for tries := 0; tries < 10 && len(s.pins("")) > 0; tries++ {
		// One at a time: accepting an unaccounted pin accepts every
		// unaccounted pin (all-or-nothing).
		for _, p := range s.pins("") {
			s.t.Logf("pin %d (%s): %s", p.ID, p.Kind, p.Reason)
			if p.Acceptable {
				rec := accepted{at: time.Now(), kind: p.Kind, tids: pinTIDs(p)}
				if p.Kind == "unaccounted" {
					for _, q := range s.pins("unaccounted") {
						rec.tids = append(rec.tids, pinTIDs(q)...)
					}
				}
				s.accept(p.ID)
				s.accepted = append(s.accepted, rec)
				break
			}
		}
	}
}
