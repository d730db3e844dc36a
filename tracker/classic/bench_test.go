package classic

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// countingBackend is the trivial backend of the benchmark: it only counts,
// so the figures measure the endpoint, not a tracker.
type countingBackend struct{ begins, commits atomic.Uint64 }

func (c *countingBackend) ClassicBegin(string, []string)                      { c.begins.Add(1) }
func (c *countingBackend) ClassicCommit(string, map[string]txn.TID, []string) { c.commits.Add(1) }
func (c *countingBackend) ClassicAbort(string)                                {}
func (c *countingBackend) Dump() map[string]txn.TID                           { return nil }
func (c *countingBackend) Bootstrapped() bool                                 { return true }

// BenchmarkBeginCommitPairs measures BEGIN+COMMIT pairs per second through
// the server over loopback TCP, spread over 1, 16 and 256 connections. Like
// patched Zopes, the clients never wait for a reply: they pipeline their
// pairs, then each ends with a DUMP round trip, so the clock stops only once
// the server has handed every pair to the backend. Each pair names two
// storages with ids in the form patched Zopes use.
//
//	go test -run '^$' -bench BeginCommitPairs -benchtime 3s ./tracker/classic/
//
// The pairs go out 256 per write. The write=pair variant sends each pair in
// its own write, closer to a Zope thread that commits one transaction at a
// time (the original's clients even sent each field with its own send()).
func BenchmarkBeginCommitPairs(b *testing.B) {
	for _, conns := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) { benchPairs(b, conns, 256) })
	}
	b.Run("conns=16/write=pair", func(b *testing.B) { benchPairs(b, 16, 1) })
}

func benchPairs(b *testing.B, conns, pairsPerWrite int) {
	backend := &countingBackend{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := NewServer(backend, Options{MaxConns: conns + 1, Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn})})
	go srv.Serve(l)
	defer srv.Close()

	type client struct {
		nc    net.Conn
		chunk []byte // pairsPerWrite pairs, all the same length
		pair  int    // length of one pair
		n     int    // pairs to send
	}
	clients := make([]client, conns)
	storages := []string{"((('localhost', 8100),), '1')", "((('localhost', 8200),), '2')"}
	for i := range clients {
		nc, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		id := fmt.Sprintf("10.0.%d.%d:8080_7f3a%04x", i/256, i%256, i)
		var chunk []byte
		for range pairsPerWrite {
			bc := command{kind: kindBegin, id: id, storages: storages}
			cc := command{kind: kindCommit, id: id, tids: map[string]txn.TID{
				storages[0]: 0x03d1a2b3c4d5e6f7, storages[1]: 0x03d1a2b3c4d5e6f8,
			}}
			if chunk, err = bc.appendTo(chunk); err != nil {
				b.Fatal(err)
			}
			if chunk, err = cc.appendTo(chunk); err != nil {
				b.Fatal(err)
			}
		}
		clients[i] = client{nc: nc, chunk: chunk, pair: len(chunk) / pairsPerWrite, n: b.N / conns}
		if i < b.N%conns {
			clients[i].n++
		}
	}
	b.SetBytes(int64(clients[0].pair))

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left := c.n; left > 0; {
				k := min(left, pairsPerWrite)
				if _, err := c.nc.Write(c.chunk[:k*c.pair]); err != nil {
					errs <- err
					return
				}
				left -= k
			}
			if _, err := io.WriteString(c.nc, "DUMP\n"); err != nil {
				errs <- err
				return
			}
			reply := make([]byte, 2)
			if _, err := io.ReadFull(c.nc, reply); err != nil || string(reply) != "0\n" {
				errs <- fmt.Errorf("DUMP reply %q: %v", reply, err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	if got := backend.commits.Load(); got != uint64(b.N) || backend.begins.Load() != uint64(b.N) {
		b.Fatalf("backend saw %d BEGIN, %d COMMIT; want %d each", backend.begins.Load(), got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pairs/s")
}
