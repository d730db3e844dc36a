package archive_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/archive"
	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/backup/fsdata/fsdatatest"
	"github.com/tidstorage/tidstorage/integration/s3test"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// goStore is a storage whose Data.fs and blob files the test writes in Go.
type goStore struct {
	spec archive.StorageSpec
	b    *fsdatatest.Builder
	oid  uint64
	ends map[txn.TID]int64
}

func newGoStore(t *testing.T, dir, label string, blobs bool) *goStore {
	t.Helper()
	base := filepath.Join(dir, label)
	require.NoError(t, os.MkdirAll(base, 0o755))
	s := &goStore{spec: archive.StorageSpec{ID: "id-" + label, Label: label, DataFS: filepath.Join(base, "Data.fs")},
		b: fsdatatest.New(fsdata.MagicFS30), ends: map[txn.TID]int64{}}
	if blobs {
		s.spec.BlobDir = filepath.Join(base, "blobs")
		require.NoError(t, os.MkdirAll(s.spec.BlobDir, 0o755))
	}
	return s
}

// commit appends a transaction writing a new object (a blob with its file
// when the store has blobs); earlier bytes never change.
func (s *goStore) commit(t *testing.T, tid txn.TID, data string) {
	t.Helper()
	oid := s.oid
	s.oid++
	rec := fsdatatest.Rec{OID: oid, Data: []byte(data)}
	if s.spec.BlobDir != "" && oid > 0 {
		rec.Data = append(fsdatatest.BlobPickle(), data...)
		p := filepath.Join(s.spec.BlobDir, blobPath(oid, tid))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("blob "+data), 0o444))
	}
	s.b.Add(fsdatatest.Txn{TID: tid, User: "/ test", Recs: []fsdatatest.Rec{rec}})
	s.ends[tid] = s.b.End[len(s.b.End)-1]
	require.NoError(t, os.WriteFile(s.spec.DataFS, s.b.Bytes(), 0o644))
}

// pack rewrites the file as a pack does: a new file (new inode) with the
// same transactions up to now under status 'p', plus whatever follows.
func (s *goStore) pack(t *testing.T, tids []txn.TID) {
	t.Helper()
	nb := fsdatatest.New(fsdata.MagicFS30)
	s.ends = map[txn.TID]int64{}
	for i, tid := range tids {
		nb.Add(fsdatatest.Txn{TID: tid, Status: fsdata.StatusPacked, User: "/ packed", Recs: []fsdatatest.Rec{{OID: uint64(i), Data: []byte(fmt.Sprintf("packed %d", i))}}})
		s.ends[tid] = nb.End[len(nb.End)-1]
	}
	s.b, s.oid = nb, uint64(len(tids))
	tmp := s.spec.DataFS + ".pack"
	require.NoError(t, os.WriteFile(tmp, nb.Bytes(), 0o644))
	require.NoError(t, os.Rename(tmp, s.spec.DataFS))
}

func blobPath(oid uint64, tid txn.TID) string {
	p := ""
	for i := 7; i >= 0; i-- {
		p += fmt.Sprintf("0x%02x/", byte(oid>>(8*i)))
	}
	return p + fmt.Sprintf("0x%016x", uint64(tid)) + ".blob"
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) Logf(level, msg string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprint(append([]any{level, " ", msg, " "}, args...)...))
}

func (l *logs) grep(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// stores returns the stores every test runs against: a directory, and a
// bucket of a real S3-compatible server.
func stores(t *testing.T) map[string]func(t *testing.T) archive.Store {
	return map[string]func(t *testing.T) archive.Store{
		"file": func(t *testing.T) archive.Store {
			s, err := archive.NewFileStore(t.TempDir())
			require.NoError(t, err)
			return s
		},
		"s3": func(t *testing.T) archive.Store {
			srv := s3test.Start(t)
			s, err := archive.NewS3Store("tidstorage", "site1", archive.StoreOptions{Endpoint: srv.Endpoint, Region: "us-east-1", PathStyle: true})
			require.NoError(t, err)
			require.NoError(t, s.EnsureBucket(context.Background()))
			return s
		},
	}
}

type fixture struct {
	t      *testing.T
	store  archive.Store
	a, b   *goStore
	clock  *clock
	logs   *logs
	next   txn.TID
	points []archive.Point
}

func newFixture(t *testing.T, store archive.Store) *fixture {
	dir := t.TempDir()
	f := &fixture{t: t, store: store, a: newGoStore(t, dir, "main-1", true), b: newGoStore(t, dir, "cat-1", false),
		clock: &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}, logs: &logs{}, next: 0x03f0000000000000}
	f.commitBoth("root")
	return f
}

func (f *fixture) specs() []archive.StorageSpec { return []archive.StorageSpec{f.a.spec, f.b.spec} }

func (f *fixture) open() *archive.Archiver {
	f.t.Helper()
	a, err := archive.Open(context.Background(), archive.Options{Store: f.store, Storages: f.specs(), Command: "test",
		Logf: f.logs.Logf, Now: f.clock.Now})
	require.NoError(f.t, err)
	return a
}

// commitBoth commits one transaction on each storage and returns the point
// holding both.
func (f *fixture) commitBoth(data string) archive.Point {
	f.next += 0x100
	ta := f.next
	f.next += 0x10
	tb := f.next
	f.a.commit(f.t, ta, data)
	f.b.commit(f.t, tb, data)
	f.clock.Add(time.Minute)
	p := archive.Point{Time: f.clock.Now(), TIDs: map[string]txn.TID{f.a.spec.ID: ta, f.b.spec.ID: tb}, Source: "test"}
	f.points = append(f.points, p)
	return p
}

// expect is a restored storage's expected bytes at point p.
func (f *fixture) requireRestored(dir string, s *goStore, file []byte, tid txn.TID) {
	f.t.Helper()
	got, err := os.ReadFile(filepath.Join(dir, s.spec.Label, "Data.fs"))
	require.NoError(f.t, err)
	require.Equal(f.t, file[:s.ends[tid]], got, "%s restored to tid %s", s.spec.Label, tid.Hex())
	_, err = os.Stat(filepath.Join(dir, s.spec.Label, "Data.fs.index"))
	require.NoError(f.t, err, "a fresh index")
}

func restoreAt(t *testing.T, s archive.Store, at time.Time, specs []archive.StorageSpec) (string, *archive.Record, error) {
	rec, err := archive.FindPoint(context.Background(), s, archive.Selector{At: at})
	if err != nil {
		return "", nil, err
	}
	dir := t.TempDir()
	_, err = archive.Restore(context.Background(), s, rec, archive.RestoreOptions{Dest: dir, Storages: specs})
	return dir, rec, err
}

func TestShipResumeRestore(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, mk(t))
			a := f.open()
			_, err := archive.Open(ctx, archive.Options{Store: f.store, Storages: f.specs(), Command: "second", Now: f.clock.Now})
			require.ErrorIs(t, err, archive.ErrLocked, "a second archiver of the same archive is refused")
			p1 := f.points[0]
			r1, err := a.Ship(ctx, p1)
			require.NoError(t, err)
			require.NotEmpty(t, r1.Storages[f.a.spec.ID].NewBase)
			p2 := f.commitBoth("two")
			p3 := f.commitBoth("three")
			_, err = a.Ship(ctx, p3)
			require.NoError(t, err)
			require.True(t, a.Shipped(p3))
			require.NoError(t, a.Close(ctx))

			// A new run resumes from the last record: no new base.
			f.commitBoth("four")
			p5 := f.commitBoth("five")
			a = f.open()
			r5, err := a.Ship(ctx, p5)
			require.NoError(t, err)
			require.Empty(t, r5.Storages[f.a.spec.ID].NewBase, "the file still extends what was shipped")
			require.Equal(t, r1.Storages[f.a.spec.ID].Base, r5.Storages[f.a.spec.ID].Base)
			require.NoError(t, a.Close(ctx))

			fileA, fileB := f.a.b.Bytes(), f.b.b.Bytes()
			for _, c := range []struct {
				at   time.Time
				want archive.Point
			}{{p1.Time, p1}, {p2.Time, p1}, {p3.Time.Add(time.Second), p3}, {p5.Time, p5}, {p5.Time.Add(time.Hour), p5}} {
				dir, rec, err := restoreAt(t, f.store, c.at, f.specs())
				require.NoError(t, err)
				require.Equal(t, c.want.TIDs[f.a.spec.ID].Hex(), rec.Storages[f.a.spec.ID].TID)
				f.requireRestored(dir, f.a, fileA, c.want.TIDs[f.a.spec.ID])
				f.requireRestored(dir, f.b, fileB, c.want.TIDs[f.b.spec.ID])
				// The blob files of the restored transactions, and no later ones.
				n := 0
				_ = filepath.WalkDir(filepath.Join(dir, "main-1", "blobs"), func(p string, d os.DirEntry, err error) error {
					if err == nil && strings.HasSuffix(p, ".blob") {
						n++
					}
					return err
				})
				want := 0
				for _, p := range f.points {
					if p.TIDs[f.a.spec.ID] <= c.want.TIDs[f.a.spec.ID] {
						want++
					}
				}
				require.Equal(t, want-1, n, "blob files restored (the root has none)")
			}
			_, _, err = restoreAt(t, f.store, p1.Time.Add(-time.Second), f.specs())
			require.ErrorContains(t, err, "no restorable point at or before")

			res, err := archive.Verify(ctx, f.store, true, nil)
			require.NoError(t, err)
			require.Empty(t, res.Problems)
			require.Equal(t, 3, res.Points)
		})
	}
}

// failingStore fails every Put whose key has the prefix while fail is set.
type failingStore struct {
	archive.Store
	mu     sync.Mutex
	prefix string
}

func (s *failingStore) set(prefix string) { s.mu.Lock(); s.prefix = prefix; s.mu.Unlock() }
func (s *failingStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	s.mu.Lock()
	p := s.prefix
	s.mu.Unlock()
	if p != "" && strings.HasPrefix(key, p) {
		return errors.New("injected failure")
	}
	return s.Store.Put(ctx, key, r, size)
}

// A shipment cut before its timeline record leaves no point; the next one
// ships again past the orphaned objects and restores.
func TestInterruptedShipmentLeavesNoPoint(t *testing.T) {
	ctx := context.Background()
	fs, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	store := &failingStore{Store: fs}
	f := newFixture(t, store)
	a := f.open()
	_, err = a.Ship(ctx, f.points[0])
	require.NoError(t, err)
	f.commitBoth("two")
	p3 := f.commitBoth("three")
	store.set("timeline/")
	_, err = a.Ship(ctx, p3)
	require.ErrorContains(t, err, "injected failure")
	require.False(t, a.Shipped(p3))
	// Crash: the lease is left behind, the process is gone... here the
	// same process: close, reopen (the lease is ours).
	require.NoError(t, a.Close(ctx))
	store.set("")
	rec, err := archive.FindPoint(ctx, store, archive.Selector{})
	require.NoError(t, err)
	require.Equal(t, f.points[0].TIDs[f.a.spec.ID].Hex(), rec.Storages[f.a.spec.ID].TID, "the interrupted shipment made no point")

	p4 := f.commitBoth("four")
	a = f.open()
	_, err = a.Ship(ctx, p4)
	require.NoError(t, err)
	require.NoError(t, a.Close(ctx))
	dir, _, err := restoreAt(t, store, p4.Time, f.specs())
	require.NoError(t, err)
	f.requireRestored(dir, f.a, f.a.b.Bytes(), p4.TIDs[f.a.spec.ID])
	res, err := archive.Verify(ctx, store, true, nil)
	require.NoError(t, err)
	require.Empty(t, res.Problems)
}

// A pack starts a new base (logged); points of the old base still restore
// the old bytes, points of the new one the packed file.
func TestPackStartsNewBase(t *testing.T) {
	ctx := context.Background()
	store, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	f := newFixture(t, store)
	a := f.open()
	defer a.Close(ctx)
	p2 := f.commitBoth("two")
	_, err = a.Ship(ctx, p2)
	require.NoError(t, err)
	oldA := append([]byte(nil), f.a.b.Bytes()...)
	oldEnds := f.a.ends
	var tids []txn.TID
	for _, p := range f.points {
		tids = append(tids, p.TIDs[f.a.spec.ID])
	}
	f.a.pack(t, tids)
	// The pack keeps a blob file of a transaction it kept; the new base
	// references it without uploading it again.
	p3 := f.commitBoth("three")
	r3, err := a.Ship(ctx, p3)
	require.NoError(t, err)
	require.Contains(t, r3.Storages[f.a.spec.ID].NewBase, "pack")
	require.Empty(t, r3.Storages[f.b.spec.ID].NewBase, "the other storage still extends its base")
	require.NotEmpty(t, f.logs.grep("a new base begins"))

	dir, _, err := restoreAt(t, store, p2.Time, f.specs())
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(dir, "main-1", "Data.fs"))
	require.NoError(t, err)
	require.Equal(t, oldA[:oldEnds[p2.TIDs[f.a.spec.ID]]], got, "a point of the old base restores the file before the pack")
	dir, _, err = restoreAt(t, store, p3.Time, f.specs())
	require.NoError(t, err)
	f.requireRestored(dir, f.a, f.a.b.Bytes(), p3.TIDs[f.a.spec.ID])
}

// Retention removes the points before the window (but the one at its
// start), and a base only once every kept point is in a newer one.
func TestRetention(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, mk(t))
			a := f.open()
			defer a.Close(ctx)
			_, err := a.Ship(ctx, f.points[0])
			require.NoError(t, err)
			for i := range 3 {
				f.clock.Add(time.Hour)
				_, err := a.Ship(ctx, f.commitBoth(fmt.Sprint("old", i)))
				require.NoError(t, err)
			}
			var tids []txn.TID
			for _, p := range f.points {
				tids = append(tids, p.TIDs[f.a.spec.ID])
			}
			f.a.pack(t, tids)
			f.clock.Add(time.Hour)
			pPack := f.commitBoth("after pack")
			_, err = a.Ship(ctx, pPack)
			require.NoError(t, err)
			for i := range 3 {
				f.clock.Add(time.Hour)
				_, err := a.Ship(ctx, f.commitBoth(fmt.Sprint("new", i)))
				require.NoError(t, err)
			}
			// Window: the last 3h20m. Kept: the points inside and the one
			// before (the state at the window's start): all in A's new base.
			plan, err := a.Prune(ctx, 200*time.Minute, false)
			require.NoError(t, err)
			require.Len(t, plan.Bases, 0, "A's old base is still needed by the point at the window's start: %v", plan.Summary())
			plan, err = a.Prune(ctx, 90*time.Minute, true)
			require.NoError(t, err)
			t.Log(plan.Summary())
			require.Len(t, plan.Points, 5)
			require.Len(t, plan.Bases, 1, "only A's old base goes (B has one base)")
			require.True(t, strings.HasPrefix(plan.Bases[0], "main-1/0000000001-"), plan.Bases)
			// Every kept point restores, the older ones do not.
			kept := f.points[len(f.points)-3:]
			for _, p := range kept {
				dir, _, err := restoreAt(t, f.store, p.Time, f.specs())
				require.NoError(t, err)
				f.requireRestored(dir, f.a, f.a.b.Bytes(), p.TIDs[f.a.spec.ID])
			}
			_, _, err = restoreAt(t, f.store, f.points[2].Time, f.specs())
			require.Error(t, err)
			res, err := archive.Verify(ctx, f.store, true, nil)
			require.NoError(t, err)
			require.Empty(t, res.Problems)
			sum, err := archive.Summarize(ctx, f.store)
			require.NoError(t, err)
			require.Equal(t, kept[0].Time, sum.First)
		})
	}
}

// Verify --read-data finds a damaged object.
func TestVerifyFindsDamage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := archive.NewFileStore(dir)
	require.NoError(t, err)
	f := newFixture(t, store)
	a := f.open()
	_, err = a.Ship(ctx, f.commitBoth("x"))
	require.NoError(t, err)
	require.NoError(t, a.Close(ctx))
	res, err := archive.Verify(ctx, store, true, nil)
	require.NoError(t, err)
	require.Empty(t, res.Problems)
	segs, err := filepath.Glob(filepath.Join(dir, "data", "cat-1", "*", "*.fs"))
	require.NoError(t, err)
	require.NotEmpty(t, segs)
	b, err := os.ReadFile(segs[0])
	require.NoError(t, err)
	b[len(b)-20] ^= 0xff
	require.NoError(t, os.WriteFile(segs[0], b, 0o644))
	res, err = archive.Verify(ctx, store, false, nil)
	require.NoError(t, err)
	require.Empty(t, res.Problems, "without --read-data only the structure is checked")
	res, err = archive.Verify(ctx, store, true, nil)
	require.NoError(t, err)
	require.NotEmpty(t, res.Problems)
	require.Contains(t, strings.Join(res.Problems, "\n"), "damaged")
	_, _, err = restoreAt(t, store, f.clock.Now(), f.specs())
	require.ErrorContains(t, err, "damaged")
}

// With recipients, what leaves the host is encrypted: no Data.fs or blob
// byte is readable in the store; a restore needs the identity.
func TestEncryptedArchive(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := archive.NewFileStore(dir)
	require.NoError(t, err)
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	f := newFixture(t, store)
	a, err := archive.Open(ctx, archive.Options{Store: store, Storages: f.specs(), Command: "test", Now: f.clock.Now,
		Recipients: []age.Recipient{id.Recipient()}})
	require.NoError(t, err)
	_, err = a.Ship(ctx, f.commitBoth("secret-payload"))
	require.NoError(t, err)
	require.NoError(t, a.Close(ctx))
	n := 0
	require.NoError(t, filepath.WalkDir(filepath.Join(dir), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".fs") || strings.Contains(p, ".blob#")) {
			return err
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		require.True(t, bytes.HasPrefix(b, []byte("age-encryption.org/v1\n")), p)
		require.NotContains(t, string(b), "secret-payload", p)
		require.NotContains(t, string(b), "FS30", p)
		n++
		return nil
	}))
	require.GreaterOrEqual(t, n, 3, "segments of both storages and a blob file")

	rec, err := archive.FindPoint(ctx, store, archive.Selector{})
	require.NoError(t, err)
	_, err = archive.Restore(ctx, store, rec, archive.RestoreOptions{Dest: t.TempDir(), Storages: f.specs()})
	require.ErrorContains(t, err, "--identity")
	out := t.TempDir()
	_, err = archive.Restore(ctx, store, rec, archive.RestoreOptions{Dest: out, Storages: f.specs(), Identities: []age.Identity{id}})
	require.NoError(t, err)
	p := f.points[len(f.points)-1]
	f.requireRestored(out, f.a, f.a.b.Bytes(), p.TIDs[f.a.spec.ID])
	f.requireRestored(out, f.b, f.b.b.Bytes(), p.TIDs[f.b.spec.ID])
	res, err := archive.Verify(ctx, store, true, []age.Identity{id})
	require.NoError(t, err)
	require.Empty(t, res.Problems)
	res, err = archive.Verify(ctx, store, true, nil)
	require.NoError(t, err)
	require.NotEmpty(t, res.Problems, "without the identity --read-data cannot check the content")
}

// An expired lease is taken over (and said); the previous holder then finds
// it lost at its next renewal and ships nothing more.
func TestLeaseTakeover(t *testing.T) {
	ctx := context.Background()
	store, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	f := newFixture(t, store)
	first, err := archive.Open(ctx, archive.Options{Store: store, Storages: f.specs(), Command: "first", Now: f.clock.Now, LeaseTTL: time.Minute})
	require.NoError(t, err)
	_, err = first.Ship(ctx, f.points[0])
	require.NoError(t, err)
	f.clock.Add(2 * time.Minute) // the first one stalls past its lease
	l := &logs{}
	second, err := archive.Open(ctx, archive.Options{Store: store, Storages: f.specs(), Command: "second", Now: f.clock.Now, Logf: l.Logf})
	require.NoError(t, err)
	require.Len(t, l.grep("taking over a stale lock"), 1)
	require.NotEmpty(t, l.grep("lease expired"))
	_, err = first.Ship(ctx, f.commitBoth("late"))
	require.ErrorIs(t, err, archive.ErrLocked)
	require.ErrorContains(t, err, "second")
	p := f.commitBoth("second's")
	_, err = second.Ship(ctx, p)
	require.NoError(t, err)
	require.NoError(t, second.Close(ctx))
	rec, err := archive.FindPoint(ctx, store, archive.Selector{})
	require.NoError(t, err)
	require.Equal(t, p.TIDs[f.a.spec.ID].Hex(), rec.Storages[f.a.spec.ID].TID)
}

// Run ships while the point moves, logs once when the store fails and once
// when it is back, and counts what it did.
func TestRunLogsOutageOnce(t *testing.T) {
	fs, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	store := &failingStore{Store: fs}
	f := newFixture(t, store)
	a := f.open()
	var mu sync.Mutex
	cur := f.points[0]
	src := func(context.Context) (archive.Point, error) {
		mu.Lock()
		defer mu.Unlock()
		return cur, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx, src, archive.RunOptions{Interval: 5 * time.Millisecond}); close(done) }()
	require.Eventually(t, func() bool { return a.Status().Shipments == 1 }, 5*time.Second, 5*time.Millisecond)
	store.set("data/")
	mu.Lock()
	cur = f.commitBoth("during outage")
	mu.Unlock()
	require.Eventually(t, func() bool { return a.Status().Errors >= 3 }, 5*time.Second, 5*time.Millisecond)
	f.clock.Add(3 * time.Second)
	require.Eventually(t, func() bool { return a.Status().LagSeconds >= 3 }, 5*time.Second, 5*time.Millisecond, "the lag grows while the point waits")
	st := a.Status()
	require.True(t, st.Failing)
	require.Greater(t, st.LagBytes, int64(0))
	store.set("")
	require.Eventually(t, func() bool { return a.Status().Shipments == 2 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	<-done
	st = a.Status()
	require.False(t, st.Failing)
	require.Equal(t, 0.0, st.LagSeconds)
	require.Len(t, f.logs.grep("cannot write to the object store"), 1, "logged once for the whole outage")
	require.Len(t, f.logs.grep("the object store is back"), 1)
	require.NoError(t, a.Close(context.Background()))
}

// In place: refused while a ZODB program holds a Data.fs, and without
// --force; then every storage's live files are replaced, kept aside.
func TestRestoreInPlace(t *testing.T) {
	ctx := context.Background()
	store, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	f := newFixture(t, store)
	a := f.open()
	p2 := f.commitBoth("two")
	_, err = a.Ship(ctx, p2)
	require.NoError(t, err)
	require.NoError(t, a.Close(ctx))
	wantA, wantB := append([]byte(nil), f.a.b.Bytes()...), append([]byte(nil), f.b.b.Bytes()...)
	f.commitBoth("after the archive") // the live files move on
	live := map[string]archive.StorageSpec{f.a.spec.ID: f.a.spec, f.b.spec.ID: f.b.spec}
	inPlace := func(id string) (string, string, error) { return live[id].DataFS, live[id].BlobDir, nil }
	rec, err := archive.FindPoint(ctx, store, archive.Selector{})
	require.NoError(t, err)

	_, err = archive.Restore(ctx, store, rec, archive.RestoreOptions{InPlace: inPlace, Aside: ".before"})
	require.ErrorContains(t, err, "--force")
	lock, err := backup.LockDataFS(f.b.spec.DataFS) // a ZEO server holds B
	require.NoError(t, err)
	_, err = archive.Restore(ctx, store, rec, archive.RestoreOptions{InPlace: inPlace, Aside: ".before", Force: true})
	require.ErrorIs(t, err, backup.ErrInUse)
	require.NoError(t, lock.Unlock())
	got, err := os.ReadFile(f.a.spec.DataFS)
	require.NoError(t, err)
	require.Equal(t, f.a.b.Bytes(), got, "nothing written while a storage was held")

	rs, err := archive.Restore(ctx, store, rec, archive.RestoreOptions{InPlace: inPlace, Aside: ".before", Force: true})
	require.NoError(t, err)
	require.Len(t, rs, 2)
	got, err = os.ReadFile(f.a.spec.DataFS)
	require.NoError(t, err)
	require.Equal(t, wantA, got)
	got, err = os.ReadFile(f.b.spec.DataFS)
	require.NoError(t, err)
	require.Equal(t, wantB, got)
	kept, err := os.ReadFile(f.a.spec.DataFS + ".before")
	require.NoError(t, err)
	require.Equal(t, f.a.b.Bytes(), kept, "the replaced file is kept")
	_, err = os.Stat(f.a.spec.BlobDir + ".before")
	require.NoError(t, err, "the replaced blob directory is kept")
	_, err = os.Stat(f.a.spec.DataFS + ".index")
	require.NoError(t, err)
	n := 0
	_ = filepath.WalkDir(f.a.spec.BlobDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".blob") {
			n++
		}
		return err
	})
	require.Equal(t, 1, n, "the blob file of the point (the root has none)")
}

// When Run stops, the point of that moment is shipped once more: a clean
// stop of serve archives its last commits.
func TestRunShipsTheLastPointAtStop(t *testing.T) {
	store, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	f := newFixture(t, store)
	a := f.open()
	var mu sync.Mutex
	cur := f.points[0]
	src := func(context.Context) (archive.Point, error) { mu.Lock(); defer mu.Unlock(); return cur, nil }
	_, err = a.Ship(context.Background(), cur)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// An interval that never ticks: only the stop can ship.
	go func() { a.Run(ctx, src, archive.RunOptions{Interval: time.Hour}); close(done) }()
	mu.Lock()
	cur = f.commitBoth("last")
	mu.Unlock()
	cancel()
	<-done
	require.Len(t, f.logs.grep("shipped the last point at stop"), 1)
	require.True(t, a.Shipped(cur))
	require.NoError(t, a.Close(context.Background()))
	rec, err := archive.FindPoint(context.Background(), store, archive.Selector{})
	require.NoError(t, err)
	require.Equal(t, cur.TIDs[f.a.spec.ID].Hex(), rec.Storages[f.a.spec.ID].TID)
}

// A failure on this host (a storage missing from the point) is not logged
// as the object store's.
func TestLocalFailureLoggedAsSuch(t *testing.T) {
	store, err := archive.NewFileStore(t.TempDir())
	require.NoError(t, err)
	f := newFixture(t, store)
	a := f.open()
	p := f.points[0]
	bad := archive.Point{Time: p.Time, TIDs: map[string]txn.TID{f.a.spec.ID: p.TIDs[f.a.spec.ID]}, Source: "test"}
	var mu sync.Mutex
	cur := bad
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		a.Run(ctx, func(context.Context) (archive.Point, error) { mu.Lock(); defer mu.Unlock(); return cur, nil },
			archive.RunOptions{Interval: 5 * time.Millisecond})
		close(done)
	}()
	require.Eventually(t, func() bool { return a.Status().Errors >= 2 }, 5*time.Second, 5*time.Millisecond)
	mu.Lock()
	cur = p
	mu.Unlock()
	require.Eventually(t, func() bool { return a.Status().Shipments == 1 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	<-done
	require.Len(t, f.logs.grep("cannot ship the published point from this host"), 1)
	require.Contains(t, f.logs.grep("cannot ship")[0], "is not in the point")
	require.Empty(t, f.logs.grep("object store"))
	require.Len(t, f.logs.grep("shipping works again"), 1)
	require.NoError(t, a.Close(context.Background()))
}
