package integration

import (
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
)

// Paired writers on two ZEO servers through `tidstorage serve`, which is
// SIGKILLed at random moments (at least 20 times) and restarted each time on
// the same configuration, status file and journal. The writers tolerate the
// proxy going away (they retry after ClientDisconnected, and are restarted
// if they die). Every sampled published point restores to equal paired
// counters; published TIDs never go down across restarts (nor does the
// status file start a new epoch); at rest, the point reaches every storage's
// last TID with no operator action — unless a kill made a real partial
// commit (a writer between its two finishes), which the databases show
// (a counter value committed on one storage only): then it must have been
// reported, and once accepted the point reaches the last TIDs.
func TestServeKilledRepeatedlyUnderPairedLoad(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	began := time.Now()
	s := startProcSite(t, procOptions{},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"a"}},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"c"}, msgpack: true})
	idA, idC := s.ids["a"], s.ids["c"]
	s.client("commit", "--count", "1", "--touch", "a,c")
	s.waitPublished(s.last())
	s.startSampling()

	// Phase 1: paired writers (a and c in each transaction); a kill may
	// catch one between its two finishes. After each restart the test, as
	// the operator, accepts the pins it finds, so that publication goes on.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	runs, failed := s.killsUnderLoad(ctx, rng, 22, s.acceptNow, [][]string{
		{"--touch", "a,c", "--desc", "killserve"}, {"--touch", "a,c", "--desc", "killserve"}, {"--touch", "a,c", "--desc", "killserve"}})
	t.Logf("phase 1: %d kills, %d starts, %d writer runs (%d failed) in %v", s.kills, s.starts, runs, failed, time.Since(began))

	halves := s.pairedHalves("a", "c")
	last := s.last()
	if len(halves) == 0 {
		s.waitPublished(last)
		require.Empty(t, s.pins(""), "no partial commit happened: nothing may stay held")
		s.requireAtRest(last)
	} else {
		// A real partial commit: it must be reported; the operator accepts.
		s.requireHalvesReported(halves)
	}
	s.requirePinsExplained(halves)
	samples := s.stopSampling()
	n := s.checkPairedAccepted(samples, s.sampleAt, "a", "c", halves)
	t.Logf("phase 1: %d distinct published points sampled, %d restored to equal counters or to a half accepted before", len(samples), n)

	if len(halves) > 0 {
		s.acceptAll()
		s.waitPublished(last)
		require.Empty(t, s.pins(""))
	}
	s.requireAtRest(last)
	final := s.published()
	require.Equal(t, last[idA], final[idA])
	require.Equal(t, last[idC], final[idC])

	// Phase 2: single-storage writers only (another key, so the paired
	// counters stay as they are): no kill can make a partial commit, so
	// every in-flight commit must be resolved by the restart alone, and at
	// rest the point reaches the last TIDs with nothing held and no
	// operator action.
	s.startSampling()
	runs, failed = s.killsUnderLoad(ctx, rng, 10, nil, [][]string{
		{"--touch", "a", "--key", "solo", "--desc", "solo-a"}, {"--touch", "c", "--key", "solo", "--desc", "solo-c"}})
	t.Logf("phase 2: %d kills in all, %d writer runs (%d failed), at %v", s.kills, runs, failed, time.Since(began))
	last = s.last()
	s.waitPublished(last)
	require.Empty(t, s.pins(""), "no partial commit is possible in phase 2: nothing may stay held")
	s.requireAtRest(last)
	samples = s.stopSampling()
	t.Logf("phase 2: %d distinct published points sampled, %d checked", len(samples), s.checkPairedAccepted(samples, s.sampleAt, "a", "c", halves))
	final = s.published()

	// The status file: one epoch (no restart lowered a published TID), and it
	// replays to the final point after a clean stop.
	s.stopClean()
	epochs, err := filepath.Glob(s.statusPath + ".epoch-*")
	require.NoError(t, err)
	require.Empty(t, epochs, "a restart started a new status file epoch: a published TID went down")
	f, err := os.Open(s.statusPath)
	require.NoError(t, err)
	defer f.Close()
	res, err := statusfile.Replay(f, statusfile.ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, map[string]txn.TID{idA: final[idA], idC: final[idC]}, res.Point)
	t.Logf("total %v", time.Since(began))
}

// Paired writers through the proxy while the history watchers' connections
// are cut (a Cutter between tidstorage and ZEO severs the read-only
// connections) and one ZEO server is restarted. The watchers reconnect and
// fill the gap from the storage's iterator: no commit is missed (the point
// reaches every storage's last TID at rest) and no false hold remains (no
// pin, unless the databases show a real partial commit, which a server
// restart between a client's two finishes can make); every sampled point
// restores to equal counters.
func TestWatcherCutAndServerRestartUnderLoad(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	s := startProcSite(t, procOptions{},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"a"}},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"c"}, msgpack: true})
	s.client("commit", "--count", "1", "--touch", "a,c")
	s.waitPublished(s.last())
	s.startSampling()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stopWriters atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stopWriters.Load() && ctx.Err() == nil {
				cmd := zeotest.PythonCommand(ctx, t, "zodb_client.py", append(append([]string{"--wait-timeout", "20"}, s.dbs...),
					"paired", "--count", "100000", "--seconds", "6", "--touch", "a,c", "--desc", "watchercut")...)
				_ = cmd.Run()
			}
		}()
	}
	cuts := 0
	for i := 0; i < 8; i++ {
		time.Sleep(time.Duration(300+rng.Intn(700)) * time.Millisecond)
		cuts += s.cutters[rng.Intn(len(s.cutters))].SeverReadOnly()
		if i == 4 {
			s.servers[1].Restart()
		}
	}
	time.Sleep(time.Second)
	stopWriters.Store(true)
	wg.Wait()
	require.Greater(t, cuts, 0, "watcher connections were cut")
	t.Logf("%d watcher connections cut, one server restarted", cuts)

	halves := s.pairedHalves("a", "c")
	last := s.last()
	if len(halves) == 0 {
		s.waitPublished(last)
		require.Empty(t, s.pins(""), "no false hold at rest")
		doc := s.requireAtRest(last)
		for _, st := range doc.Storages {
			require.Zero(t, st.UnaccountedTotal, "%s: nothing was reported unaccounted", st.ID)
		}
	} else {
		s.requireHalvesReported(halves)
		s.requirePinsExplained(halves)
	}
	samples := s.stopSampling()
	n := s.checkPaired(samples, "a", "c")
	t.Logf("%d distinct published points sampled, %d restored to equal counters", len(samples), n)
	if len(halves) > 0 {
		s.acceptAll()
		s.waitPublished(last)
		require.Empty(t, s.pins(""))
	}
	doc := s.requireAtRest(last)
	var reconnects, fromIterator uint64
	for _, h := range doc.History {
		reconnects += h.Reconnects
		fromIterator += h.FromIterator
	}
	t.Logf("watchers: %d reconnects, %d commits read from the iterator", reconnects, fromIterator)
	require.Positive(t, reconnects, "the watchers reconnected after the cuts")
	require.Positive(t, fromIterator, "the gaps were filled from the iterator")
}

// killsUnderLoad runs one writer loop per element of writers (paired
// arguments; a writer that exits is replaced) while serve is SIGKILLed kills
// times at random moments and restarted each time on the same files (then
// afterStart runs, if given). It
// returns the writer runs and how many of them failed.
func (s *procSite) killsUnderLoad(ctx context.Context, rng *rand.Rand, kills int, afterStart func(), writers [][]string) (int64, int64) {
	s.t.Helper()
	return s.underPairedLoad(ctx, writers, func() {
		for i := 0; i < kills; i++ {
			time.Sleep(time.Duration(200+rng.Intn(1300)) * time.Millisecond)
			s.kill()
			time.Sleep(time.Duration(rng.Intn(300)) * time.Millisecond)
			s.start()
			if afterStart != nil {
				afterStart()
			}
		}
	})
}

// underPairedLoad runs one `paired` writer per entry of writers (its extra
// arguments), each restarted when it ends, through the proxy while during
// runs; it returns the writer runs and how many of them failed.
func (s *procSite) underPairedLoad(ctx context.Context, writers [][]string, during func()) (int64, int64) {
	s.t.Helper()
	var stop atomic.Bool
	var runs, failed atomic.Int64
	var wg sync.WaitGroup
	for _, args := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() && ctx.Err() == nil {
				cmd := zeotest.PythonCommand(ctx, s.t, "zodb_client.py", append(append(append([]string{"--wait-timeout", "10"}, s.dbs...),
					"paired", "--count", "100000", "--seconds", "8"), args...)...)
				errOut := &zeotest.SyncBuffer{}
				cmd.Stderr = errOut
				if err := cmd.Run(); err != nil {
					failed.Add(1)
					msg := errOut.String()
					s.t.Logf("writer %v ended with %v: %s", args, err, msg[max(0, len(msg)-600):])
				}
				runs.Add(1)
			}
		}()
	}
	during()
	stop.Store(true)
	wg.Wait()
	return runs.Load(), failed.Load()
}
