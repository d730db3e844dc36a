package history_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/tracker/history"
)

// cpuTime is this process's user + system CPU time. The ZODB clients are
// child processes and the ZEO server another one: neither is counted, so
// the difference over a burst is the watcher's cost (plus the harness's:
// starting the client process and polling, measured alone as "none").
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The watcher's CPU per commit, over bursts of commits by a real ZODB
// client, in both encodings: from invalidations alone, and with Metadata
// (iterator per batch). Also the delivery delay: the sink's clock minus
// the commit's TID time (same host, so the same clock).
// Run: go test ./tracker/history -run '^$' -bench WatcherCPU -benchtime 3x
func BenchmarkWatcherCPUPerCommit(b *testing.B) {
	const burst = 300
	for _, e := range encodings {
		for _, mode := range []struct {
			name       string
			meta, none bool
		}{{"none", false, true}, {"invalidations", false, false}, {"metadata", true, false}} {
			b.Run(e.name+"/"+mode.name, func(b *testing.B) {
				srv := zeotest.StartServer(b, zeotest.ServerOptions{Msgpack: e.msgpack})
				zeotest.Python(b, "zodb_client.py", "--db", "a="+srv.Addr+"/1", "last")
				var mu sync.Mutex
				var delays []time.Duration
				sink := func(_ context.Context, c history.Commit) error {
					d := time.Since(c.Time())
					mu.Lock()
					delays = append(delays, d)
					mu.Unlock()
					return nil
				}
				w, err := history.New(history.Config{Storage: "s1", Addr: srv.Addr, Sink: sink, Metadata: mode.meta})
				if err != nil {
					b.Fatal(err)
				}
				if !mode.none { // "none": the harness alone, to subtract
					stop := runB(b, w)
					defer stop()
					deadline := time.Now().Add(30 * time.Second)
					for !w.Snapshot().Connected && time.Now().Before(deadline) {
						time.Sleep(10 * time.Millisecond)
					}
				}
				var cpu time.Duration
				var commits int
				b.ResetTimer()
				for range b.N {
					before := cpuTime(b)
					start := w.Snapshot().Delivered
					zeotest.Python(b, "zodb_client.py", "--db", "a="+srv.Addr+"/1", "commit", "--count", strconv.Itoa(burst))
					deadline := time.Now().Add(60 * time.Second)
					for !mode.none && w.Snapshot().Delivered < start+burst {
						if time.Now().After(deadline) {
							b.Fatalf("watcher stuck: %+v", w.Snapshot())
						}
						time.Sleep(20 * time.Millisecond)
					}
					cpu += cpuTime(b) - before
					commits += burst
				}
				b.StopTimer()
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(commits), "cpu-ns/commit")
				b.ReportMetric(0, "ns/op")
				mu.Lock()
				defer mu.Unlock()
				if len(delays) > 0 {
					slices.Sort(delays)
					b.ReportMetric(float64(delays[len(delays)/2].Microseconds()), "delay-µs-p50")
					b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds()), "delay-µs-p99")
				}
			})
		}
	}
}
