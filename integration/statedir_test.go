package integration

import (
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/statusdoc"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
)

// The daemon's own state on a disk that fills up, turns read-only or is
// damaged (docs/admin.md, "A full or read-only state directory" and "Crash
// recovery"), with real ZEO servers, real ZODB writers and a real `serve`
// process.

// stateDisk is the state directory (status file, journal, marker, admin
// token) on a file system the test can fill or make read-only for real: a
// small tmpfs when the test runs as root and may mount (ENOSPC, EROFS), else
// a file-size limit on serve (RLIMIT_FSIZE, set with prlimit on the running
// process: EFBIG) and, for read-only, a directory without write permission
// (EACCES; not possible as root without a mount).
type stateDisk struct {
	t      *testing.T
	dir    string
	tmpfs  bool
	filler string
}

func newStateDisk(t *testing.T, size string) *stateDisk {
	d := &stateDisk{t: t, dir: filepath.Join(t.TempDir(), "state")}
	require.NoError(t, os.Mkdir(d.dir, 0o700))
	if os.Geteuid() == 0 {
		if err := syscall.Mount("tmpfs", d.dir, "tmpfs", 0, "size="+size+",mode=0700"); err == nil {
			d.tmpfs = true
			t.Cleanup(func() { _ = syscall.Unmount(d.dir, syscall.MNT_DETACH) })
		} else {
			t.Logf("cannot mount a tmpfs (%v)", err)
		}
	}
	if d.tmpfs {
		t.Logf("state directory on a %s tmpfs: a full disk is ENOSPC, a read-only one EROFS", size)
	} else {
		t.Logf("state directory on the test's file system: a full disk is a file-size limit on serve (RLIMIT_FSIZE: EFBIG)")
	}
	return d
}

// fill makes every write of serve (pid) that extends a file fail.
func (d *stateDisk) fill(pid int) {
	d.t.Helper()
	if !d.tmpfs {
		d.setFsize(pid, 0)
		return
	}
	d.filler = filepath.Join(d.dir, "filler")
	f, err := os.OpenFile(d.filler, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	require.NoError(d.t, err)
	defer f.Close()
	chunk := make([]byte, 256<<10)
	for {
		if _, err = f.Write(chunk); err != nil {
			break
		}
	}
	require.ErrorIs(d.t, err, syscall.ENOSPC)
	// What is left of a page: the last small writes fail too.
	for k := 0; k < 64 && err == nil; k++ {
		_, err = f.Write(chunk[:512])
	}
}

// free undoes fill.
func (d *stateDisk) free(pid int) {
	d.t.Helper()
	if !d.tmpfs {
		d.setFsize(pid, unix.RLIM_INFINITY)
		return
	}
	require.NoError(d.t, os.Remove(d.filler))
}

func (d *stateDisk) setFsize(pid int, cur uint64) {
	d.t.Helper()
	var old unix.Rlimit
	require.NoError(d.t, unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old))
	require.NoError(d.t, unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: min(cur, old.Max), Max: old.Max}, nil))
}

// fullWrap is the command prefix that starts serve on a full disk: nothing
// to do on the tmpfs (still full), a zero file-size limit otherwise.
func (d *stateDisk) fullWrap() []string {
	if d.tmpfs {
		return nil
	}
	return []string{"bash", "-c", `ulimit -S -f 0 && exec "$@"`, "bash"}
}

// readOnly makes the directory read-only; false if it cannot be done here.
func (d *stateDisk) readOnly() bool {
	if d.tmpfs {
		require.NoError(d.t, syscall.Mount("", d.dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""))
		return true
	}
	if os.Geteuid() == 0 {
		return false
	}
	require.NoError(d.t, os.Chmod(d.dir, 0o500))
	return true
}

func (d *stateDisk) writable() {
	if d.tmpfs {
		require.NoError(d.t, syscall.Mount("", d.dir, "", syscall.MS_REMOUNT, ""))
		return
	}
	require.NoError(d.t, os.Chmod(d.dir, 0o700))
}

func (s *procSite) pid() int { return s.sv.cmd.Process.Pid }

// waitHeld waits until publication is held (or no longer held) and returns
// the /status document then.
func (s *procSite) waitHeld(held bool) statusdoc.StatusDoc {
	s.t.Helper()
	var doc statusdoc.StatusDoc
	require.Eventually(s.t, func() bool {
		var ok bool
		doc, ok = s.statusDoc()
		return ok && (doc.PublicationHeld != "") == held
	}, zeotestWait, pollEvery, "publication held: want %v", held)
	return doc
}

// metric returns the line of a metric without labels from /metrics.
func (s *procSite) metric(name string) string {
	s.t.Helper()
	code, b := s.get("/metrics")
	require.Equal(s.t, 200, code)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return line
		}
	}
	return ""
}

// looping runs n paired writers through the proxy until stop is called;
// they retry through restarts of serve.
func (s *procSite) looping(ctx context.Context, n int, args ...string) (stop func() int64) {
	var halt atomic.Bool
	var runs atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !halt.Load() && ctx.Err() == nil {
				cmd := zeotest.PythonCommand(ctx, s.t, "zodb_client.py", append(append(append([]string{"--wait-timeout", "20"}, s.dbs...),
					"paired", "--count", "100000", "--seconds", "5"), args...)...)
				_ = cmd.Run()
				runs.Add(1)
			}
		}()
	}
	return func() int64 { halt.Store(true); wg.Wait(); return runs.Load() }
}

// requireMoves requires the storages' last TIDs to move within a few
// seconds: ZODB commits go through the relay.
func (s *procSite) requireMoves(id string) {
	s.t.Helper()
	before := s.last()[id]
	require.Eventually(s.t, func() bool { return s.last()[id] > before }, 20*time.Second, 200*time.Millisecond,
		"no ZODB commit went through the relay")
}

// notePartialPins keeps the partial pins active now, to be checked against
// the databases at rest (while writers run, a transaction between its
// finishes looks like a half).
func (s *procSite) notePartialPins(seen map[uint64]statusdoc.PinDoc) {
	for _, p := range s.pins("partial") {
		seen[p.ID] = p
	}
}

// requirePartialPinsTrue requires every partial pin (active, and those in
// seen) to name a half the databases show, unless it says the outcome is
// unknown; it returns how many said so.
func (s *procSite) requirePartialPinsTrue(halves []half, seen map[uint64]statusdoc.PinDoc) int {
	s.t.Helper()
	unknown := 0
	all := s.pins("partial")
	for _, p := range seen {
		all = append(all, p)
	}
	for _, p := range all {
		if strings.Contains(p.Reason, "outcome unknown") || strings.Contains(p.Reason, "outcome ambiguous") {
			unknown++
			continue
		}
		named := false
		for _, h := range halves {
			named = named || containsTID(pinTIDs(p), h.tid)
		}
		require.True(s.t, named, "FALSE PARTIAL COMMIT: pin %d names no half transaction of the databases (%v): %s", p.ID, halves, p.Reason)
	}
	return unknown
}

func containsTID(tids []txn.TID, t txn.TID) bool {
	for _, x := range tids {
		if x == t {
			return true
		}
	}
	return false
}

// finish stops load, accepts what the test decided is acceptable, and
// requires the point to reach the storages' last TIDs coherently.
func (s *procSite) finishChecked(idA, idC string, seen map[uint64]statusdoc.PinDoc) {
	s.t.Helper()
	halves := s.pairedHalves("a", "c")
	unknown := s.requirePartialPinsTrue(halves, seen)
	s.t.Logf("pins at rest: %d (%d with an unknown outcome)", len(s.pins("")), unknown)
	s.requireHalvesReported(halves)
	s.acceptAll()
	last := s.last()
	s.waitPublished(last)
	s.requireAtRest(last)
	samples := s.stopSampling()
	n := s.checkPairedAccepted(samples, s.sampleAt, "a", "c", halves)
	s.t.Logf("%d distinct published points sampled, %d restored to equal counters or to a half accepted before", len(samples), n)
	epochs, err := filepath.Glob(s.statusPath + ".epoch-*")
	require.NoError(s.t, err)
	require.Empty(s.t, epochs, "a restart began a new status file epoch: a published TID went down")
	final := s.published()
	require.Equal(s.t, last[idA], final[idA])
	require.Equal(s.t, last[idC], final[idC])
}

// pairedSampledSite starts serve in front of two ZEO servers (storages a
// and c, pickle and msgpack), publishes a first paired commit and starts
// the sampler.
func pairedSampledSite(t *testing.T, opts procOptions) (s *procSite, idA, idC string) {
	s = startProcSite(t, opts,
		zeoSpec{storages: []string{"1"}, dbNames: []string{"a"}},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"c"}, msgpack: true})
	s.client("commit", "--count", "1", "--touch", "a,c")
	s.waitPublished(s.last())
	s.startSampling()
	return s, s.ids["a"], s.ids["c"]
}

// The state disk fills up under paired load: ZODB commits go on, publication
// is held (the reason on /status, the metric, the log), serve is SIGKILLed
// and starts again on the full disk and relays; once space is back,
// publication resumes by itself under load, and every sampled point is
// coherent and never goes back.
func TestServeStateDirFullUnderLoad(t *testing.T) {
	disk := newStateDisk(t, "24m")
	s, idA, idC := pairedSampledSite(t, procOptions{stateDir: disk.dir, topHCL: `journal_max_size = "1MiB"`})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	stop := s.looping(ctx, 2, "--touch", "a,c", "--desc", "statedir", "--unique-desc")
	defer stop()
	time.Sleep(2 * time.Second)

	disk.fill(s.pid())
	doc := s.waitHeld(true)
	if disk.tmpfs {
		// The reserve beside the journal lets the first rotation on the
		// full disk succeed, which frees the old journal: publication
		// resumes until that space is used too. Fill it.
		var j *statusdoc.JournalDoc
		require.Eventually(t, func() bool {
			j = s.status().Journal
			return j != nil && j.Rotations >= 2 && j.Broken == "" && j.Reserve != ""
		}, zeotestWait, pollEvery, "no rotation on the full disk from the reserve")
		t.Logf("journal after the rotation on the full disk (the reserve given up for it): %+v", j)
		disk.fill(s.pid())
		doc = s.waitHeld(true)
	}
	t.Logf("publication held: %s", doc.PublicationHeld)
	require.Contains(t, doc.PublicationHeld, "the journal cannot be written")
	require.Equal(t, "tidstorage_publication_held 1", s.metric("tidstorage_publication_held"))
	if disk.tmpfs { // the log is on another disk; with a file-size limit it is not written either
		require.Contains(t, doc.PublicationHeld, "no space left on device")
		s.waitLog("error", "CRITICAL: journal", nil)
	}
	held := publishedOf(doc)
	s.requireMoves(idA)
	require.Equal(t, held, s.published(), "the published point stays while held")

	// SIGKILL, and a start on the still full disk: it starts and relays.
	s.kill()
	s.wrap = disk.fullWrap()
	s.start()
	s.wrap = nil
	doc = s.waitHeld(true)
	t.Logf("after a restart on the full disk: held: %s; journal: %+v", doc.PublicationHeld, doc.Journal)
	s.requireMoves(idA)

	// Space comes back: publication resumes by itself, under load.
	freed := time.Now()
	disk.free(s.pid())
	s.waitHeld(false)
	// The commits whose reports the restart lost are held until the
	// operator accepts them (docs/admin.md, "Crash recovery"); then the
	// point moves on under load.
	require.Eventually(t, func() bool {
		s.acceptNow()
		p := s.published()
		return p[idA] > held[idA] && p[idC] > held[idC]
	}, zeotestWait, time.Second, "publication did not resume under load")
	t.Logf("publication resumed %v after space came back; journal %+v", time.Since(freed).Round(time.Millisecond), s.status().Journal)
	s.requireMoves(idA)
	require.Equal(t, "tidstorage_publication_held 0", s.metric("tidstorage_publication_held"))
	t.Logf("writer runs: %d", stop())
	s.finishChecked(idA, idC, nil)
	s.stopClean()
}

// A read-only state directory: serve starts and relays, publication is held
// (the marker and the journal cannot be written); once writable again it
// resumes by itself, and a clean stop writes the final line.
func TestServeReadOnlyStateDir(t *testing.T) {
	disk := newStateDisk(t, "16m")
	s := startProcSite(t, procOptions{stateDir: disk.dir},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"a"}},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"c"}})
	idA, idC := s.ids["a"], s.ids["c"]
	s.client("commit", "--count", "1", "--touch", "a,c")
	s.waitPublished(s.last())
	s.stopClean()
	if !disk.readOnly() {
		if os.Getenv("CI") != "" {
			t.Fatal("no way to make a read-only directory here: root without the right to mount a tmpfs")
		}
		t.Skip("no way to make a read-only directory here: root without the right to mount a tmpfs")
	}
	s.start()
	doc := s.waitHeld(true)
	t.Logf("read-only: held: %s", doc.PublicationHeld)
	require.Contains(t, doc.PublicationHeld, "the running marker cannot be written")
	require.Contains(t, doc.PublicationHeld, "the journal cannot be written")
	if disk.tmpfs {
		require.Contains(t, doc.PublicationHeld, "read-only file system")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop := s.looping(ctx, 1, "--touch", "a,c", "--desc", "readonly", "--unique-desc")
	defer stop()
	s.requireMoves(idC)
	require.Empty(t, s.published(), "nothing published while held since the start")

	disk.writable()
	s.waitHeld(false)
	stop()
	last := s.last()
	s.waitPublished(last)
	require.Empty(t, s.pins(""))
	s.stopClean()
	f, err := os.Open(s.statusPath)
	require.NoError(t, err)
	defer f.Close()
	res, err := statusfile.Replay(f, statusfile.ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, map[string]txn.TID{idA: last[idA], idC: last[idC]}, res.Point, "the final line holds the last point")
}

// The journal is damaged after a SIGKILL under paired load — cut, or a byte
// flipped, at several offsets — and serve starts again on it each time. No
// false partial commit is reported (every partial pin names a half the
// databases show, or says its outcome is unknown), published TIDs never go
// below the status file's last point (the floor: what the dead process
// answered over /status in the last moments before the kill, newer than its
// last line, may be lost with the journal) and the status file begins no
// new epoch, every sampled point is coherent, and once the operator
// accepted what the lost reports left held, the point reaches the last
// TIDs.
func TestServeDamagedJournalUnderLoad(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	s, idA, idC := pairedSampledSite(t, procOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	stop := s.looping(ctx, 3, "--touch", "a,c", "--desc", "damaged", "--unique-desc")
	defer stop()
	journal := s.statusPath + ".journal"
	seen := map[uint64]statusdoc.PinDoc{}
	for _, c := range []struct {
		flip bool
		at   float64
	}{{false, 0.3}, {true, 0.5}, {false, 0.8}, {true, 0.95}} {
		time.Sleep(time.Duration(1500+rng.Intn(1500)) * time.Millisecond)
		s.kill()
		floor := s.statusFilePoint()
		s.samplerFloor(floor)
		b, err := os.ReadFile(journal)
		require.NoError(t, err)
		off := 8 + int(float64(len(b)-8)*c.at)
		if c.flip {
			b[off] ^= 0xff
			require.NoError(t, os.WriteFile(journal, b, 0o600))
		} else {
			require.NoError(t, os.Truncate(journal, int64(off)))
		}
		t.Logf("journal of %d bytes: %s at offset %d", len(b), map[bool]string{true: "byte flipped", false: "cut"}[c.flip], off)
		s.start()
		doc := s.status()
		require.NotNil(t, doc.Journal)
		t.Logf("replayed %d inputs; damage: %s", doc.Journal.Replayed, doc.Journal.Damage)
		p := publishedOf(doc)
		require.GreaterOrEqual(t, p[idA], floor[idA], "the status file's last point is a floor")
		require.GreaterOrEqual(t, p[idC], floor[idC], "the status file's last point is a floor")
		// The operator accepts what is held once the history settled the
		// orphans; the partial pins are checked against the databases at
		// rest.
		time.Sleep(2 * time.Second)
		s.notePartialPins(seen)
		s.acceptNow()
	}
	t.Logf("writer runs: %d", stop())
	s.finishChecked(idA, idC, seen)
	s.stopClean()
}

// statusFilePoint is the status file's last point (serve stopped).
func (s *procSite) statusFilePoint() map[string]txn.TID {
	s.t.Helper()
	f, err := os.Open(s.statusPath)
	require.NoError(s.t, err)
	defer f.Close()
	res, err := statusfile.Replay(f, statusfile.ReplayOptions{})
	require.NoError(s.t, err)
	return res.Point
}

// samplerFloor makes the sampler check later points against floor (the
// status file's last point) instead of the highest it saw.
func (s *procSite) samplerFloor(floor map[string]txn.TID) {
	s.samplerMu.Lock()
	defer s.samplerMu.Unlock()
	s.samplerGen++
	for k, v := range floor {
		s.maxSeen[k] = v
	}
}
