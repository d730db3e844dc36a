package admin_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/cmd/admin"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
)

// Scrapes and /status run while the tracker is fed from other goroutines:
// everything read at request time must go through the Service's lock (run
// with -race). Bounded: a fixed number of transactions and requests.
func TestScrapeWhileCommitting(t *testing.T) {
	svc := tracker.NewService(tracker.ServiceConfig{})
	svc.Bootstrap(map[string]txn.TID{sA: 1000, sB: 1000}, true)
	srv := serve(t, admin.Sources{Tracker: svc}, nil)

	const writers, txns, readers, reqs = 4, 200, 2, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range txns {
				id := fmt.Sprintf("w%d-%d", w, i)
				tid := txn.TID(2000 + i*writers + w)
				svc.ClassicBegin(id, []string{sA, sB})
				svc.ClassicCommit(id, map[string]txn.TID{sA: tid, sB: tid}, nil)
			}
		})
	}
	errs := make(chan error, readers*reqs*2)
	for range readers {
		wg.Go(func() {
			for range reqs {
				for _, path := range []string{"/metrics", "/status"} {
					resp, err := http.Get(srv.URL + path)
					if err != nil {
						errs <- err
						continue
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						errs <- fmt.Errorf("%s: %d %s", path, resp.StatusCode, b)
					} else if path == "/status" && !json.Valid(b) {
						errs <- fmt.Errorf("/status: invalid JSON")
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	last := uint64(2000 + (txns-1)*writers + writers - 1)
	fams := scrape(t, srv.URL)
	require.Equal(t, float64(last), value(t, fams, "tidstorage_published_tid", "storage", sA))
	require.Equal(t, float64(writers*txns), value(t, fams, "tidstorage_tracker_classic_ended_total", "outcome", "committed"))
}

// BenchmarkScrape measures one /metrics and one /status request with 100
// storages (run: go test -bench Scrape ./cmd/admin/).
func BenchmarkScrape(b *testing.B) {
	svc := tracker.NewService(tracker.ServiceConfig{})
	boot := map[string]txn.TID{}
	for i := range 100 {
		boot[fmt.Sprintf("((('zeo%d', 8100),), '%d')", i/10, i)] = 0x03ed000000000000 + txn.TID(i)
	}
	svc.Bootstrap(boot, true)
	h := admin.NewHandler(admin.Sources{Tracker: svc}, nil)
	for _, path := range []string{"/metrics", "/status"} {
		b.Run(path[1:], func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
