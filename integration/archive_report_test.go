//go:build report

package integration

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/archive"
	"github.com/tidstorage/tidstorage/integration/s3test"
	"github.com/tidstorage/tidstorage/integration/zeotest"
)

// The archive's cost on the relay and its loss window with real ZEO
// (BENCHMARKS.md, "archive"): two all-in-one serves on their own ZEO
// servers, one archiving to a local versitygw with the default interval,
// one not; a real ZODB client commits small transactions as fast as it can
// through each in turn (3 rounds of 10 s); the serve process's CPU per
// transaction (its archiver included), and, while the archiving one runs,
// the loss window (now minus the newest restorable point, while the client
// commits) every 50 ms.
//
//	go test -tags report -run TestArchiveRelayReport -v -count 1 ./integration/
func TestArchiveRelayReport(t *testing.T) {
	srv := s3test.Start(t)
	store, err := archive.NewS3Store("tidstorage", "report", archive.StoreOptions{Endpoint: srv.Endpoint, Region: "us-east-1", PathStyle: true})
	require.NoError(t, err)
	require.NoError(t, store.EnsureBucket(context.Background()))
	off := startProcSite(t, procOptions{storageHCLFor: archiveSiteHCL}, zeoSpec{storages: []string{"1"}, dbNames: []string{"a"}})
	on := startProcSite(t, procOptions{storageHCLFor: archiveSiteHCL, extraHCL: fmt.Sprintf(`
archive {
  url        = "s3://tidstorage/report"
  endpoint   = %q
  region     = "us-east-1"
  path_style = true
}
`, srv.Endpoint)}, zeoSpec{storages: []string{"1"}, dbNames: []string{"a"}})
	addr := func(s *procSite) string { return strings.TrimSuffix(strings.TrimPrefix(s.dbs[1], "a="), "/1") }
	type tally struct {
		txns, seconds float64
		cpu           time.Duration
	}
	tallies := map[string]*tally{"off": {}, "on": {}}
	var lags []float64
	for round := range 3 {
		for _, c := range []struct {
			name string
			s    *procSite
		}{{"off", off}, {"on", on}} {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if c.name == "on" {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// While the client commits without pause, now minus the
					// newest restorable point is what the site would lose;
					// the first 2 s of a round are skipped (the point of the
					// idle time before it is still the newest).
					began := time.Now()
					for {
						select {
						case <-stop:
							return
						case <-time.After(50 * time.Millisecond):
						}
						if d := archiveDoc(t, on); d != nil && !d.LastPoint.IsZero() && time.Since(began) > 2*time.Second {
							lags = append(lags, time.Since(d.LastPoint).Seconds())
						}
					}
				}()
			}
			pid := c.s.sv.cmd.Process.Pid
			c0, err := zeotest.ProcessCPU(pid)
			require.NoError(t, err)
			out := zeotest.Python(t, "bench_commits.py", "--addr", addr(c.s), "--storage", "1", "--seconds", "10")
			c1, err := zeotest.ProcessCPU(pid)
			require.NoError(t, err)
			close(stop)
			wg.Wait()
			rate, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
			require.NoError(t, err, string(out))
			tl := tallies[c.name]
			tl.txns += rate * 10
			tl.seconds += 10
			tl.cpu += c1 - c0
			fmt.Printf("round %d archive %-3s %6.0f txn/s, serve CPU %6.1f µs/txn\n", round+1, c.name, rate, float64((c1-c0).Microseconds())/(rate*10))
		}
	}
	for _, n := range []string{"off", "on"} {
		tl := tallies[n]
		fmt.Printf("archive %-3s %6.0f txn/s, serve process CPU %6.1f µs/txn\n", n, tl.txns/tl.seconds, float64(tl.cpu.Microseconds())/tl.txns)
	}
	fmt.Printf("with ÷ without the archiver: serve CPU per transaction %.3f, throughput %.3f\n",
		(float64(tallies["on"].cpu)/tallies["on"].txns)/(float64(tallies["off"].cpu)/tallies["off"].txns),
		tallies["on"].txns/tallies["off"].txns)
	sort.Float64s(lags)
	if len(lags) > 0 {
		p := func(q float64) float64 { return lags[min(len(lags)-1, int(q*float64(len(lags))))] }
		d := archiveDoc(t, on)
		fmt.Printf("loss window (now minus the newest restorable point while committing, every 50 ms, interval 1s): p50 %.2f s, p99 %.2f s, max %.2f s over %d samples; %d shipments\n",
			p(0.5), p(0.99), lags[len(lags)-1], len(lags), d.Shipments)
	}
}
