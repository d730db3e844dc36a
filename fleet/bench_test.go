package fleet

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
)

// The sidecar's cost on the relay path: number, journal (one write), queue.
func BenchmarkSidecarObserve(b *testing.B) {
	s, err := OpenSidecar(SidecarConfig{Name: "b", Address: "127.0.0.1:1", BufferFile: filepath.Join(b.TempDir(), "buf"),
		BufferEvents: 1 << 30, RotateSize: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	base := s.PartIDBase()
	info := txn.Info{Client: "pid:1/2@127.0.0.1", User: "/ admin", Description: "/plone/edit", Extension: "{}"}
	key := txn.NewKey(info.Client, info.User, info.Description, info.Extension)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p := txn.PartID(base + uint64(i/4) + 1)
		switch i % 4 {
		case 0:
			s.Observe(txn.Event{Kind: txn.Begin, Part: p, Storage: "A", Key: key, Info: info})
		case 1:
			s.Observe(txn.Event{Kind: txn.Vote, Part: p, OK: true})
		case 2:
			s.Observe(txn.Event{Kind: txn.FinishSent, Part: p})
		default:
			s.Observe(txn.Event{Kind: txn.Finished, Part: p, TID: txn.TID(i)})
		}
		if i%100000 == 99999 {
			s.ack(s.Stats().LastSeq) // keep the queue short, as a live tracker does
		}
	}
}

// The tracker's sustained event rate from many sidecars over gRPC on
// loopback (journal on disk, one write per event): every sidecar commits
// single-storage transactions (4 events each) on a storage of its own.
func BenchmarkTrackerFromSidecars(b *testing.B) {
	for _, n := range []int{8} {
		b.Run(fmt.Sprintf("sidecars=%d", n), func(b *testing.B) { benchFleet(b, n) })
	}
}

func benchFleet(b *testing.B, n int) {
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("S%d", i))
	}
	svc := tracker.NewService(tracker.ServiceConfig{Config: tracker.Config{Storages: ids}})
	if _, err := svc.OpenJournal(filepath.Join(b.TempDir(), "journal"), tracker.JournalOptions{}); err != nil {
		b.Fatal(err)
	}
	boot := map[string]txn.TID{}
	for _, id := range ids {
		boot[id] = 1
	}
	svc.Bootstrap(boot, true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := NewServer(ServerConfig{Tracker: svc, Storages: ids})
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	per := max(1, b.N/(4*n)) // commits per sidecar
	var scs []*Sidecar
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range n {
		s, err := OpenSidecar(SidecarConfig{Name: ids[i], Address: ln.Addr().String(), Storages: ids[i : i+1],
			BufferEvents: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		scs = append(scs, s)
		go s.Run(ctx)
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, s := range scs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := s.PartIDBase()
			info := txn.Info{Client: "c", User: "u", Description: "d"}
			key := txn.NewKey("c", "u", "d", "")
			for k := range uint64(per) {
				p := txn.PartID(base + k + 1)
				s.Observe(txn.Event{Kind: txn.Begin, Part: p, Storage: ids[i], Key: key, Info: info})
				s.Observe(txn.Event{Kind: txn.Vote, Part: p, OK: true})
				s.Observe(txn.Event{Kind: txn.FinishSent, Part: p})
				s.Observe(txn.Event{Kind: txn.Finished, Part: p, TID: txn.TID(k + 2)})
			}
		}()
	}
	wg.Wait()
	produced := time.Since(start)
	for _, s := range scs {
		for s.Stats().Pending > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	events := float64(4 * per * n)
	b.ReportMetric(events/el.Seconds(), "events/s")
	b.ReportMetric(events/produced.Seconds(), "observed/s")
	for i, id := range ids {
		if v, _ := svc.Published(id); v != txn.TID(per+1) {
			b.Fatalf("storage %s published %d, want %d", id, v, per+1)
		}
		_ = i
	}
	_ = svc.Close()
}
