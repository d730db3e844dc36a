package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
)

// Paired writers on two ZEO servers while things go wrong at random: writer
// processes are SIGKILLed mid-run (possibly between the finishes of one
// commit), and server connections are cut (between the proxy and ZEO) right
// before, inside or right after a tpc_finish. Whatever happens, every published point sampled restores to
// equal paired counters, published TIDs never decrease, and, if no partial
// commit was reported, the point catches up with the storages at the end.
func TestChaosPublishedPointsStayCoherent(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	s := startSite(t,
		zeoSpec{storages: []string{"1"}, dbNames: []string{"a"}},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"c"}, msgpack: true})
	s.client("commit", "--count", "1")
	idA, idC := s.ids["a"], s.ids["c"]

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var mu sync.Mutex
	procs := map[int]context.CancelFunc{}
	var wg sync.WaitGroup
	startWriter := func() {
		wctx, wcancel := context.WithCancel(ctx)
		cmd := zeotest.PythonCommand(wctx, t, "zodb_client.py", append(append([]string{}, s.dbs...),
			"paired", "--count", "1000", "--seconds", "6", "--touch", "a,c", "--desc", "chaos")...)
		require.NoError(t, cmd.Start())
		mu.Lock()
		procs[cmd.Process.Pid] = wcancel
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = cmd.Wait()
			mu.Lock()
			delete(procs, cmd.Process.Pid)
			mu.Unlock()
			wcancel()
		}()
	}
	for i := 0; i < 3; i++ {
		startWriter()
	}

	var samples []map[string]txn.TID
	prev := map[string]txn.TID{}
	deadline := time.Now().Add(6 * time.Second)
	kills, faults := 0, 0
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(50+rng.Intn(150)) * time.Millisecond)
		switch r := rng.Intn(10); {
		case r == 0:
			mu.Lock()
			for pid := range procs {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				kills++
				break
			}
			mu.Unlock()
			startWriter()
		case r <= 2:
			s.cutters[rng.Intn(len(s.cutters))].Arm("1", zeotest.Cut(1+rng.Intn(3)))
			faults++
		}
		p := s.published()
		for k, v := range p {
			require.GreaterOrEqual(t, v, prev[k], "published TID of %s decreased", k)
		}
		if p[idA] != prev[idA] || p[idC] != prev[idC] {
			samples = append(samples, p)
		}
		prev = p
	}
	wg.Wait()
	fired := 0
	for _, c := range s.cutters {
		fired += c.Cuts()
	}
	t.Logf("%d kills, %d connection cuts armed, %d made, %d distinct points", kills, faults, fired, len(samples))

	partial := false
	for _, p := range s.d.Tracker.Status().Pins {
		if p.Kind == tracker.PinPartial {
			partial = true
			t.Logf("partial commit reported: %s", p.Reason)
		}
	}
	if !partial {
		// Resolutions of in-doubt commits may still be running.
		require.Eventually(t, func() bool {
			last := s.last()
			pub := s.published()
			return pub[idA] == last[idA] && pub[idC] == last[idC]
		}, zeotestWait, 100*time.Millisecond, "without a partial commit the point catches up")
		samples = append(samples, s.published())
	}
	step := max(1, len(samples)/15)
	for i := len(samples) - 1; i >= 0; i -= step {
		p := samples[i]
		out := s.client("read-at", "--at", fmt.Sprintf("a=%016x,c=%016x", p[idA], p[idC]))
		var got map[string]struct{ Counter *int }
		require.NoError(t, json.Unmarshal(out, &got), string(out))
		a, c := got["a"].Counter, got["c"].Counter
		require.Equal(t, a == nil, c == nil, "point %d: %s", i, out)
		if a != nil {
			require.Equal(t, *a, *c, "point %d (A %016x, C %016x) restores to unequal counters (seed %d)", i, p[idA], p[idC], seed)
		}
	}
}
