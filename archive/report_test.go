//go:build report

package archive_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/archive"
	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/backup/fsdata/fsdatatest"
	"github.com/tidstorage/tidstorage/integration/s3test"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// countingStore counts the requests an archive makes.
type countingStore struct {
	archive.Store
	n atomic.Int64
}

func (s *countingStore) Put(ctx context.Context, k string, r io.Reader, n int64) error {
	s.n.Add(1)
	return s.Store.Put(ctx, k, r, n)
}
func (s *countingStore) PutIfAbsent(ctx context.Context, k string, b []byte) error {
	s.n.Add(1)
	return s.Store.PutIfAbsent(ctx, k, b)
}
func (s *countingStore) Get(ctx context.Context, k string) (io.ReadCloser, error) {
	s.n.Add(1)
	return s.Store.Get(ctx, k)
}
func (s *countingStore) List(ctx context.Context, p string) ([]archive.Object, error) {
	s.n.Add(1)
	return s.Store.List(ctx, p)
}
func (s *countingStore) Delete(ctx context.Context, k string) error {
	s.n.Add(1)
	return s.Store.Delete(ctx, k)
}

func sizeMB() int {
	if n, err := strconv.Atoi(os.Getenv("SIZE_MB")); err == nil && n > 0 {
		return n
	}
	return 1024
}

// TestArchiveReport measures, side by side in one run against a local
// versitygw (docs: BENCHMARKS.md, "archive"): shipping a SIZE_MB base
// against one plain multipart upload of the same file by the same client;
// restoring it from the server against a backup set's restore from a local
// repository; the lag and the requests per hour with a writer appending at
// full rate and the default interval (ONLY_LAG=1: that part alone).
func TestArchiveReport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv := s3test.Start(t)
	open := func(prefix string) *archive.S3Store {
		s, err := archive.NewS3Store("bench", prefix, archive.StoreOptions{Endpoint: srv.Endpoint, Region: "us-east-1", PathStyle: true})
		require.NoError(t, err)
		require.NoError(t, s.EnsureBucket(ctx))
		return s
	}
	if os.Getenv("ONLY_LAG") != "" {
		lagReport(t, ctx, open("lag"), dir)
		return
	}
	// A Data.fs of SIZE_MB: transactions of one 1 MiB record each.
	dataFS := filepath.Join(dir, "Data.fs")
	b := fsdatatest.New(fsdata.MagicFS30)
	payload := make([]byte, 1<<20-200)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	tid := txn.TID(0x03f0000000000000)
	for i := range sizeMB() {
		tid += 0x1000
		b.Add(fsdatatest.Txn{TID: tid, User: "/ bench", Recs: []fsdatatest.Rec{{OID: uint64(i % 97), Data: payload}}})
	}
	require.NoError(t, os.WriteFile(dataFS, b.Bytes(), 0o644))
	size := int64(len(b.Bytes()))
	b = nil
	spec := archive.StorageSpec{ID: "s", Label: "s", DataFS: dataFS}
	mib := float64(size) / (1 << 20)
	warm := func() {
		f, err := os.Open(dataFS)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, f)
		f.Close()
	}

	var plain, ship time.Duration
	for range 3 {
		warm()
		s := open(fmt.Sprintf("plain-%d", time.Now().UnixNano()))
		f, err := os.Open(dataFS)
		require.NoError(t, err)
		t0 := time.Now()
		require.NoError(t, s.Put(ctx, "Data.fs", f, size))
		d := time.Since(t0)
		f.Close()
		if plain == 0 || d < plain {
			plain = d
		}
		warm()
		s = open(fmt.Sprintf("ship-%d", time.Now().UnixNano()))
		a, err := archive.Open(ctx, archive.Options{Store: s, Storages: []archive.StorageSpec{spec}, Command: "bench"})
		require.NoError(t, err)
		t0 = time.Now()
		_, err = a.Ship(ctx, archive.Point{Time: time.Now(), TIDs: map[string]txn.TID{"s": tid}, Source: "bench"})
		require.NoError(t, err)
		d = time.Since(t0)
		require.NoError(t, a.Close(ctx))
		if ship == 0 || d < ship {
			ship = d
		}
	}
	fmt.Printf("ship base: %.0f MiB: plain multipart upload %.2f s (%.0f MiB/s), archive ship %.2f s (%.0f MiB/s): %.2f× the plain upload's throughput\n",
		mib, plain.Seconds(), mib/plain.Seconds(), ship.Seconds(), mib/ship.Seconds(), plain.Seconds()/ship.Seconds())

	// Restore from the server against restore of a backup set.
	s := open("restore")
	a, err := archive.Open(ctx, archive.Options{Store: s, Storages: []archive.StorageSpec{spec}, Command: "bench"})
	require.NoError(t, err)
	_, err = a.Ship(ctx, archive.Point{Time: time.Now(), TIDs: map[string]txn.TID{"s": tid}, Source: "bench"})
	require.NoError(t, err)
	require.NoError(t, a.Close(ctx))
	repo := filepath.Join(dir, "repo")
	_, err = backup.Backup([]backup.Spec{{ID: "s", Label: "s", DataFS: dataFS, Repository: repo}}, map[string]txn.TID{"s": tid}, backup.Options{PointSource: "bench"})
	require.NoError(t, err)
	var fromS3, fromRepo time.Duration
	for range 3 {
		out := filepath.Join(dir, "out-archive")
		os.RemoveAll(out)
		t0 := time.Now()
		rec, err := archive.FindPoint(ctx, s, archive.Selector{})
		require.NoError(t, err)
		_, err = archive.Restore(ctx, s, rec, archive.RestoreOptions{Dest: out, Storages: []archive.StorageSpec{spec}})
		require.NoError(t, err)
		if d := time.Since(t0); fromS3 == 0 || d < fromS3 {
			fromS3 = d
		}
		out = filepath.Join(dir, "out-repo")
		os.RemoveAll(out)
		t0 = time.Now()
		m, err := backup.FindSet([]string{repo}, "")
		require.NoError(t, err)
		_, err = backup.Restore(m, out, backup.RestoreOptions{})
		require.NoError(t, err)
		if d := time.Since(t0); fromRepo == 0 || d < fromRepo {
			fromRepo = d
		}
	}
	fmt.Printf("restore: %.0f MiB: from the S3 server %.2f s, from a local repository %.2f s: %.2f×\n",
		mib, fromS3.Seconds(), fromRepo.Seconds(), fromS3.Seconds()/fromRepo.Seconds())

	// Lag and requests with a writer appending at full rate.
	lagReport(t, ctx, open("lag"), dir)
}

func lagReport(t *testing.T, ctx context.Context, s3 archive.Store, dir string) {
	secs := 60
	if n, err := strconv.Atoi(os.Getenv("LAG_SECONDS")); err == nil && n > 0 {
		secs = n
	}
	dataFS := filepath.Join(dir, "live.fs")
	b := fsdatatest.New(fsdata.MagicFS30)
	require.NoError(t, os.WriteFile(dataFS, b.Bytes(), 0o644))
	f, err := os.OpenFile(dataFS, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	defer f.Close()
	var mu sync.Mutex
	var last txn.TID
	stop := make(chan struct{})
	var commits atomic.Int64
	go func() { // the writer: 1 KiB transactions, appended as fast as it goes
		tid := txn.TID(0x03f0000000000000)
		rec := make([]byte, 1000)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n := len(b.Bytes())
			tid += 0x100
			b.Add(fsdatatest.Txn{TID: tid, Recs: []fsdatatest.Rec{{OID: uint64(tid % 1000), Data: rec}}})
			_, err := f.Write(b.Bytes()[n:])
			if err != nil {
				return
			}
			mu.Lock()
			last = tid
			mu.Unlock()
			commits.Add(1)
			time.Sleep(200 * time.Microsecond) // about what a ZEO commit takes at best
		}
	}()
	cs := &countingStore{Store: s3}
	a, err := archive.Open(ctx, archive.Options{Store: cs, Storages: []archive.StorageSpec{{ID: "s", Label: "s", DataFS: dataFS}}, Command: "bench"})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		a.Run(runCtx, func(context.Context) (archive.Point, error) {
			mu.Lock()
			defer mu.Unlock()
			return archive.Point{Time: time.Now(), TIDs: map[string]txn.TID{"s": last}, Source: "bench"}, nil
		}, archive.RunOptions{Interval: time.Second})
		close(done)
	}()
	// What the site would lose with its host, sampled every 50 ms while
	// the writer commits without pause: now minus the newest restorable
	// point.
	var lags []float64
	start := time.Now()
	reqs0 := cs.n.Load()
	for time.Since(start) < time.Duration(secs)*time.Second {
		time.Sleep(50 * time.Millisecond)
		if st := a.Status(); !st.LastPoint.IsZero() {
			lags = append(lags, time.Since(st.LastPoint).Seconds())
		}
	}
	reqs := cs.n.Load() - reqs0
	elapsed := time.Since(start)
	close(stop)
	cancel()
	<-done
	require.NoError(t, a.Close(ctx))
	sort.Float64s(lags)
	p := func(q float64) float64 { return lags[min(len(lags)-1, int(q*float64(len(lags))))] }
	fmt.Printf("lag: interval 1s, a writer appending %.0f transactions/s for %.0f s: loss window p50 %.2f s, p99 %.2f s, max %.2f s; %d requests (%.0f per hour), %d shipments\n",
		float64(commits.Load())/elapsed.Seconds(), elapsed.Seconds(), p(0.5), p(0.99), lags[len(lags)-1], reqs, float64(reqs)/elapsed.Seconds()*3600, a.Status().Shipments)
}
