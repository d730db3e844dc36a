package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/archive"
	"github.com/tidstorage/tidstorage/integration/s3test"
	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/statusdoc"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// pairCommit is one line of a paired writer: both TIDs and the value.
type pairCommit struct {
	a, c  txn.TID
	value int
}

func parsePairs(t *testing.T, out []byte) []pairCommit {
	var pcs []pairCommit
	for _, l := range parseLines(t, out) {
		v, err := strconv.Atoi(l["counter"])
		require.NoError(t, err)
		pcs = append(pcs, pairCommit{a: txn.TID(parseTID(t, l["a"])), c: txn.TID(parseTID(t, l["c"])), value: v})
	}
	return pcs
}

// archiveSiteHCL gives each storage its Data.fs and blob directory.
func archiveSiteHCL(db string, srv *zeotest.Server, name string) string {
	s := fmt.Sprintf("    data_fs = %q\n", srv.DataFS(name))
	if d := srv.BlobDir(name); d != "" {
		s += fmt.Sprintf("    blob_dir = %q\n", d)
	}
	return s
}

// archiverProc is a `tidstorage archive` process.
type archiverProc struct {
	cmd  *exec.Cmd
	out  *zeotest.SyncBuffer
	done chan struct{}
}

func startArchiver(t *testing.T, args ...string) *archiverProc {
	t.Helper()
	p := &archiverProc{cmd: exec.Command(tidstorageBin(t), append([]string{"archive"}, args...)...), out: &zeotest.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("archiver output:\n%s", p.out.String())
		}
	})
	return p
}

func (p *archiverProc) signal(t *testing.T, sig syscall.Signal) {
	require.NoError(t, p.cmd.Process.Signal(sig))
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("archiver survived %v", sig)
	}
}

// archiveList is `archive list --json`.
func archiveList(t *testing.T, s *procSite, cfg string) archive.Summary {
	out, errOut, code := s.cli("archive", "list", "-c", cfg, "--json")
	require.Equal(t, 0, code, errOut)
	var sum archive.Summary
	require.NoError(t, json.Unmarshal([]byte(out), &sum), out)
	return sum
}

var restoredTID = regexp.MustCompile(`(?m)^([\w.-]+): .*ends with tid ([0-9a-f]{16})`)
var restoredPoint = regexp.MustCompile(`archive point (\S+) `)

// restoreMoment restores the archive at moment and checks what a restore
// must give: the newest point at or before it, both paired counters equal
// to the last pair that point holds (every pair committed wholly in or
// out), the blob of that pair, the files readable by ZODB.
func restoreMoment(t *testing.T, s *procSite, cfg string, at time.Time, pairs []pairCommit) (point time.Time, value int) {
	t.Helper()
	dir := t.TempDir()
	out, errOut, code := s.cli("restore", "-c", cfg, "--from-archive", "--at", at.UTC().Format(time.RFC3339Nano), "--to", dir)
	require.Equal(t, 0, code, "restore at %s: %s%s", at, out, errOut)
	m := restoredPoint.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	point, err := time.Parse(time.RFC3339Nano, m[1])
	require.NoError(t, err)
	require.False(t, point.After(at), "the point restored (%s) is after the moment asked (%s)", point, at)
	kept := map[string]txn.TID{}
	for _, mm := range restoredTID.FindAllStringSubmatch(out, -1) {
		kept[mm[1]] = txn.TID(parseTID(t, mm[2]))
	}
	require.Len(t, kept, 2, out)
	got := zeotest.Python(t, "check_restored.py",
		"a="+filepath.Join(dir, "z0-1", "1.fs")+","+filepath.Join(dir, "z0-1", "1.blobs"), "c="+filepath.Join(dir, "z1-1", "1.fs"))
	var res map[string]struct {
		LastTID string `json:"last_tid"`
		Counter *int
		Blob    *string
	}
	require.NoError(t, json.Unmarshal(got, &res), string(got))
	require.Equal(t, fmt.Sprintf("%016x", uint64(kept["z0-1"])), res["a"].LastTID, "ZODB sees the restored file end at the point")
	want := 0
	for _, p := range pairs {
		inA, inC := p.a <= kept["z0-1"], p.c <= kept["z1-1"]
		require.Equal(t, inA, inC, "pair %d is half in the point restored at %s (A %s, C %s)", p.value, at, kept["z0-1"].Hex(), kept["z1-1"].Hex())
		if inA && p.value > want {
			want = p.value
		}
	}
	require.NotNil(t, res["a"].Counter, string(got))
	require.NotNil(t, res["c"].Counter, string(got))
	require.Equal(t, want, *res["a"].Counter, "A restored at %s", at)
	require.Equal(t, want, *res["c"].Counter, "C restored at %s", at)
	require.NotNil(t, res["a"].Blob, "the blob of the pair restored with A")
	require.Equal(t, strconv.Itoa(want), *res["a"].Blob)
	return point, want
}

// The archive end to end against a real S3-compatible server (versitygw):
// paired writers (a blob with every pair) commit through tidstorage serve
// while `tidstorage archive` ships every point; meanwhile the object store
// is killed and restarted, the archiver is SIGKILLed mid-load and
// restarted (it takes over its own stale lock and resumes), and storage A
// is packed (a new base). Restores at moments spread over the window give,
// every time, both counters equal to the last pair of the point at or
// before that moment, with its blob; retention then removes A's old base
// and the points before the window, and every kept moment still restores;
// verify --read-data finds the archive sound.
func TestArchiveToS3EndToEnd(t *testing.T) {
	began := time.Now()
	srv := s3test.Start(t)
	store, err := archive.NewS3Store("tidstorage", "site1", archive.StoreOptions{Endpoint: srv.Endpoint, Region: "us-east-1", PathStyle: true})
	require.NoError(t, err)
	require.NoError(t, store.EnsureBucket(context.Background()))

	s := startProcSite(t, procOptions{storageHCLFor: archiveSiteHCL},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"a"}, blobs: true},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"c"}, msgpack: true})
	pairs := parsePairs(t, s.client("paired", "--count", "1", "--touch", "a,c", "--blob"))
	s.waitPublished(s.last())
	base, err := os.ReadFile(s.cfgPath)
	require.NoError(t, err)
	archCfg := filepath.Join(s.dir, "archive.hcl")
	require.NoError(t, os.WriteFile(archCfg, append(base, fmt.Sprintf(`
archive {
  url        = "s3://tidstorage/site1"
  endpoint   = %q
  region     = "us-east-1"
  path_style = true
  interval   = "200ms"
  retention  = "1h"
}
`, srv.Endpoint)...), 0o644))
	arch := startArchiver(t, "-c", archCfg, "--dump", s.classicAddr)

	// Writers, in two phases: a pack of A between them.
	var mu sync.Mutex
	var wg sync.WaitGroup
	writers := func(count string) {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out := s.client("paired", "--count", count, "--seconds", "30", "--touch", "a,c", "--blob")
				mu.Lock()
				pairs = append(pairs, parsePairs(t, out)...)
				mu.Unlock()
			}()
		}
	}
	writers("150")
	// The object store dies and comes back.
	time.Sleep(2 * time.Second)
	srv.Stop()
	require.Eventually(t, func() bool { return strings.Contains(arch.out.String(), "cannot write to the object store") },
		20*time.Second, 50*time.Millisecond, "the archiver says the store is unreachable")
	time.Sleep(time.Second)
	srv.Restart()
	require.Eventually(t, func() bool { return strings.Contains(arch.out.String(), "the object store is back") },
		30*time.Second, 50*time.Millisecond, "the archiver says the store is back")
	require.Equal(t, 1, strings.Count(arch.out.String(), "cannot write to the object store"), "logged once, not at every attempt")
	// The archiver is killed mid-load, and started again.
	time.Sleep(time.Second)
	arch.signal(t, syscall.SIGKILL)
	arch = startArchiver(t, "-c", archCfg, "--dump", s.classicAddr)
	require.Eventually(t, func() bool { return strings.Contains(arch.out.String(), "taking over a stale lock") },
		20*time.Second, 50*time.Millisecond, "the new archiver takes over the killed one's lock")
	wg.Wait()
	// A pack of A (straight on its ZEO server: a pack is not a commit),
	// then more pairs.
	before, err := os.Stat(s.servers[0].DataFS("1"))
	require.NoError(t, err)
	zeotest.Python(t, "zodb_client.py", s.direct[0], s.direct[1], "pack")
	after, err := os.Stat(s.servers[0].DataFS("1"))
	require.NoError(t, err)
	t.Logf("pack of A: %d bytes before, %d after", before.Size(), after.Size())
	require.False(t, os.SameFile(before, after), "the pack replaced A's Data.fs")
	writers("40")
	wg.Wait()
	t.Logf("%d pairs committed, %v", len(pairs), time.Since(began))

	// The archive catches up with the published point.
	final := s.last()
	s.waitPublished(final)
	var sum archive.Summary
	require.Eventually(t, func() bool {
		sum = archiveList(t, s, archCfg)
		return sum.Newest != nil && sum.Newest.Storages[s.ids["a"]].TID == final[s.ids["a"]].Hex() &&
			sum.Newest.Storages[s.ids["c"]].TID == final[s.ids["c"]].Hex()
	}, 30*time.Second, 200*time.Millisecond, "the archive reaches the published point")
	require.Contains(t, arch.out.String(), "a new base begins", "the pack starts a new base")
	bases := map[string]int{}
	for _, b := range sum.Bases {
		bases[b.Label]++
	}
	require.Equal(t, 2, bases["z0-1"], "A: the first base and the one after the pack: %+v", sum.Bases)
	require.Equal(t, 1, bases["z1-1"], "C was not packed: one base")
	t.Logf("archive: %d points from %s to %s", sum.Points, sum.First, sum.Last)
	if os.Getenv("ARCHIVE_DEBUG") != "" {
		objs, _ := store.List(context.Background(), "timeline/")
		for _, o := range objs {
			t.Logf("%s", o.Key)
		}
		t.Logf("archiver:\n%s", arch.out.String())
	}

	// Restores at moments spread over the window.
	span := sum.Last.Sub(sum.First)
	var lastValue int
	for i := range 9 {
		at := sum.First.Add(span * time.Duration(i) / 8)
		_, lastValue = restoreMoment(t, s, archCfg, at, pairs)
	}
	maxValue := 0
	for _, p := range pairs {
		maxValue = max(maxValue, p.value)
	}
	require.Equal(t, maxValue, lastValue, "the newest moment holds every pair")

	out, errOut, code := s.cli("archive", "verify", "-c", archCfg, "--read-data")
	require.Equal(t, 0, code, out+errOut)

	// Retention: the window starts at A's first point of its new base: A's
	// old base goes, every kept moment still restores, an older one does
	// not.
	arch.signal(t, syscall.SIGTERM)
	var cutoff time.Time
	objs, err := store.List(context.Background(), "timeline/")
	require.NoError(t, err)
	for _, o := range objs {
		b := func() []byte {
			rc, err := store.Get(context.Background(), o.Key)
			require.NoError(t, err)
			defer rc.Close()
			var buf strings.Builder
			_, err = io.Copy(&buf, rc)
			require.NoError(t, err)
			return []byte(buf.String())
		}()
		var rec archive.Record
		require.NoError(t, json.Unmarshal(b, &rec))
		if !strings.HasPrefix(rec.Storages[s.ids["a"]].Base, "0000000001-") {
			cutoff = rec.Time
			break
		}
	}
	require.False(t, cutoff.IsZero(), "a point in A's new base")
	retention := time.Since(cutoff).Round(time.Millisecond) - time.Millisecond
	out, errOut, code = s.cli("archive", "prune", "-c", archCfg, "--retention", retention.String(), "--yes")
	// The window prune kept starts at its own clock minus the retention:
	// at cutoff or later (how much later depends on how long the command
	// took to start), at the latest at this moment minus the retention.
	windowStartAtMost := time.Now().Add(-retention)
	require.Equal(t, 0, code, out+errOut)
	t.Logf("prune:\n%s", out)
	require.Contains(t, out, "base z0-1/")
	require.NotContains(t, out, "base z1-1/", "C's only base is needed")
	sum = archiveList(t, s, archCfg)
	bases = map[string]int{}
	for _, b := range sum.Bases {
		bases[b.Label]++
	}
	require.Equal(t, 1, bases["z0-1"])
	require.Equal(t, 1, bases["z1-1"])
	require.False(t, sum.First.After(windowStartAtMost), "the state at the window's start stays restorable")
	for i := range 4 {
		at := sum.First.Add(sum.Last.Sub(sum.First) * time.Duration(i) / 3)
		restoreMoment(t, s, archCfg, at, pairs)
	}
	_, _, code = s.cli("restore", "-c", archCfg, "--from-archive", "--at", sum.First.Add(-time.Millisecond).Format(time.RFC3339Nano), "--to", t.TempDir())
	require.Equal(t, 1, code, "a moment before the window is refused")
	out, errOut, code = s.cli("archive", "verify", "-c", archCfg, "--read-data")
	require.Equal(t, 0, code, out+errOut)
	t.Logf("total %v", time.Since(began))
}

// serve archives by itself when its configuration has an archive block
// (here a directory, file://): paired writers commit through it; it is
// SIGKILLed between two phases of writes and started again (it resumes the
// archive, taking over its own stale lock); /status, /metrics and
// `tidstorage status` show the archive; restores at moments sampled while
// the writers ran give equal counters, the pair's blob, and never a point
// after the moment.
func TestServeArchivesToDirectory(t *testing.T) {
	dir := t.TempDir()
	s := startProcSite(t, procOptions{storageHCLFor: archiveSiteHCL, extraHCL: fmt.Sprintf(`
archive {
  url       = "file://%s"
  interval  = "100ms"
  retention = "7d"
}
`, dir)},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"a"}, blobs: true},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"c"}, msgpack: true})
	pairs := parsePairs(t, s.client("paired", "--count", "1", "--touch", "a,c", "--blob"))
	var mu sync.Mutex
	var moments []time.Time
	phase := func() {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(300 * time.Millisecond):
					mu.Lock()
					moments = append(moments, time.Now())
					mu.Unlock()
				}
			}
		}()
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out := s.client("paired", "--count", "40", "--seconds", "30", "--touch", "a,c", "--blob")
				mu.Lock()
				pairs = append(pairs, parsePairs(t, out)...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(stop)
	}
	phase()
	s.kill()
	s.start()
	phase()
	final := s.last()
	s.waitPublished(final)
	var doc *statusdoc.ArchiveDoc
	require.Eventually(t, func() bool {
		doc = archiveDoc(t, s)
		return doc != nil && doc.Shipments > 0 && doc.LagSeconds == 0 && archiveList(t, s, s.cfgPath).Newest.Storages[s.ids["a"]].TID == final[s.ids["a"]].Hex()
	}, 30*time.Second, 100*time.Millisecond, "the archive reaches the published point: %+v, %v", doc, final)
	require.Equal(t, "running", doc.State)
	logText, err := os.ReadFile(s.logPath)
	require.NoError(t, err)
	require.Contains(t, string(logText), "taking over a stale lock", "the restarted serve took over its own lock")
	out, errOut, code := s.cli("status", "-c", s.cfgPath)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "Archive: file://"+dir+", running; last shipment")
	code, metrics := s.get("/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, string(metrics), "tidstorage_archive_shipments_total")

	step := max(1, len(moments)/8)
	checked := 0
	for i := 0; i < len(moments); i += step {
		restoreMoment(t, s, s.cfgPath, moments[i], pairs)
		checked++
	}
	_, last := restoreMoment(t, s, s.cfgPath, time.Now(), pairs)
	maxValue := 0
	for _, p := range pairs {
		maxValue = max(maxValue, p.value)
	}
	require.Equal(t, maxValue, last)
	t.Logf("%d pairs, %d moments restored", len(pairs), checked+1)
	out, errOut, code = s.cli("archive", "verify", "-c", s.cfgPath, "--read-data")
	require.Equal(t, 0, code, out+errOut)
}

func archiveDoc(t *testing.T, s *procSite) *statusdoc.ArchiveDoc {
	doc, ok := s.statusDoc()
	if !ok {
		return nil
	}
	return doc.Archive
}
