package history_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/history"
)

// Several real ZODB clients commit concurrently: the watcher sees every
// commit, in TID order, exactly once, from invalidations alone; the ones
// committed before it started (after Config.After) come from the iterator.
func TestWatcherConcurrentClients(t *testing.T) {
	for _, e := range encodings {
		t.Run(e.name, func(t *testing.T) {
			srv := zeotest.StartServer(t, zeotest.ServerOptions{Msgpack: e.msgpack})
			db := "a=" + srv.Addr + "/1"
			before := commitTIDs(t, zeotest.Python(t, "zodb_client.py", "--db", db, "commit", "--count", "4", "--desc", "before"))
			after := before[0] // the three later ones are a gap to fill at start

			col := &collector{}
			w, err := history.New(history.Config{Storage: "s1", Addr: srv.Addr, After: after, Sink: col.sink})
			require.NoError(t, err)
			run(t, w)
			waitCaughtUp(t, w, before[3], 30*time.Second)
			// The fill counts its commits once it has delivered them all:
			// the last delivery can be seen a moment before the count.
			require.Eventually(t, func() bool { return w.Snapshot().FromIterator >= 3 }, 5*time.Second, 5*time.Millisecond)
			require.EqualValues(t, 3, w.Snapshot().FromIterator)

			wait := load(t, srv.Addr, 4, func(i int) []string {
				return []string{"commit", "--count", "25", "--key", fmt.Sprintf("k%d", i), "--desc", fmt.Sprintf("client %d", i)}
			})
			committed := wait()
			require.Len(t, committed, 100)
			last := lastTID(t, srv.Addr, "1")
			waitCaughtUp(t, w, last, 30*time.Second)

			oracle := storageTIDs(t, srv.Addr, "1", after)
			got := col.tids()
			requireExactlyOnce(t, got, oracle)
			for _, c := range committed {
				_, found := slices.BinarySearch(got, c)
				require.True(t, found, "commit %s reported by its client was not delivered", c.Hex())
			}
			st := w.Snapshot()
			require.True(t, st.Connected)
			require.EqualValues(t, 3, st.FromIterator, "live commits came from invalidations")
			require.EqualValues(t, len(oracle), st.Delivered)
			require.Equal(t, last, st.LastTID)
			require.Zero(t, st.Lag)
			require.Zero(t, st.Repairs)
			require.Zero(t, st.Reconnects)

			// metadata of any commit, by lookup
			m, err := w.Lookup(context.Background(), committed[0])
			require.NoError(t, err)
			require.Contains(t, m.Description, "client ")
			_, err = w.Lookup(context.Background(), committed[0]+1)
			require.ErrorIs(t, err, history.ErrNotFound)
		})
	}
}

// The watcher's connection is cut several times and the ZEO server is
// restarted while clients commit: the gaps are filled from the iterator,
// and the storage's own history afterwards matches what was delivered.
func TestWatcherGapFillAcrossCutsAndRestart(t *testing.T) {
	for _, e := range encodings {
		t.Run(e.name, func(t *testing.T) {
			srv := zeotest.StartServer(t, zeotest.ServerOptions{Msgpack: e.msgpack})
			fwd := newForwarder(t, srv.Addr)
			start := commitTIDs(t, zeotest.Python(t, "zodb_client.py", "--db", "a="+srv.Addr+"/1", "commit", "--count", "1"))[0]

			col := &collector{}
			w, err := history.New(history.Config{Storage: "s1", Addr: fwd.Addr(), After: start, Sink: col.sink,
				MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
				Heartbeat: 200 * time.Millisecond, HeartbeatTimeout: time.Second, Poll: 300 * time.Millisecond})
			require.NoError(t, err)
			run(t, w)
			require.Eventually(t, func() bool { return w.Snapshot().Connected }, 30*time.Second, 10*time.Millisecond)

			// paired retries after ClientDisconnected, so it survives the restart;
			// 5 s of load covers the whole sequence of cuts below
			wait := load(t, srv.Addr, 2, func(i int) []string {
				return []string{"paired", "--count", "5000", "--seconds", "5", "--desc", fmt.Sprintf("load %d", i)}
			})
			cuts := 0
			for i := range 4 {
				time.Sleep(300 * time.Millisecond)
				switch i {
				case 1: // out of reach for a while: a longer gap to fill
					fwd.refuse.Store(true)
					cuts += fwd.Sever()
					time.Sleep(700 * time.Millisecond)
					fwd.refuse.Store(false)
				case 2:
					srv.Restart()
				default:
					require.Eventually(t, func() bool { return w.Snapshot().Connected }, 30*time.Second, 10*time.Millisecond)
					cuts += fwd.Sever()
				}
			}
			committed := wait()
			require.NotEmpty(t, committed)
			last := lastTID(t, srv.Addr, "1")
			waitCaughtUp(t, w, last, 60*time.Second)

			oracle := storageTIDs(t, srv.Addr, "1", start)
			requireExactlyOnce(t, col.tids(), oracle)
			// a second oracle, without ZEO: the Data.fs file read by ZODB itself
			var fromFile []txn.TID
			for _, h := range zeotest.ReadFS(t, "--fs", srv.DataFS("1")).TIDs {
				tid, err := txn.ParseTID(h, txn.FormatHex)
				require.NoError(t, err)
				if tid > start {
					fromFile = append(fromFile, tid)
				}
			}
			require.Equal(t, fromFile, col.tids())
			st := w.Snapshot()
			require.GreaterOrEqual(t, cuts, 3)
			require.GreaterOrEqual(t, st.Reconnects, uint64(4), "%+v", st)
			require.Zero(t, st.Anomalies)
			// The writer commits on during the refused spell: those commits come
			// from the iterator (how many depends on the machine's load).
			require.GreaterOrEqual(t, st.FromIterator, uint64(1), "the refused spell left a gap")
			t.Logf("%d commits, %d from the iterator, %d reconnects, last error %q", len(oracle), st.FromIterator, st.Reconnects, st.LastError)
		})
	}
}

// A ZEO connection that stops relaying anything (a hung server or network)
// is noticed by the heartbeat within a bounded time; the watcher reconnects
// and delivers what was committed meanwhile.
func TestWatcherHeartbeatDetectsStall(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Msgpack: true})
	initRoot(t, srv.Addr)
	fwd := newForwarder(t, srv.Addr)
	col := &collector{}
	w, err := history.New(history.Config{Storage: "s1", Addr: fwd.Addr(), Sink: col.sink,
		MinBackoff: 20 * time.Millisecond, Heartbeat: 100 * time.Millisecond, HeartbeatTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	run(t, w)
	require.Eventually(t, func() bool { return w.Snapshot().Connected }, 30*time.Second, 10*time.Millisecond)

	fwd.Stall()
	stalled := time.Now()
	committed := commitTIDs(t, zeotest.Python(t, "zodb_client.py", "--db", "a="+srv.Addr+"/1", "commit", "--count", "2"))
	require.Eventually(t, func() bool { return w.Snapshot().Reconnects >= 1 }, 10*time.Second, 5*time.Millisecond)
	took := time.Since(stalled)
	st := w.Snapshot()
	require.Contains(t, st.LastError, "heartbeat")
	waitCaughtUp(t, w, committed[1], 30*time.Second)
	require.Equal(t, committed, col.tids())
	// interval + timeout = 400 ms; the Python client's start-up is in the
	// measure too (the commit ran while the stall went unnoticed or not)
	t.Logf("stall noticed %v after it began: %s", took, st.LastError)
}

// A sink that blocks does not block the connection: heartbeats go on,
// invalidations beyond MaxPending are dropped and later read from the
// iterator, and every commit still arrives once, in order.
func TestWatcherSlowSinkOverflow(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{})
	initRoot(t, srv.Addr)
	gate := make(chan struct{})
	col := &collector{gate: gate}
	w, err := history.New(history.Config{Storage: "s1", Addr: srv.Addr, Sink: col.sink, MaxPending: 2,
		Heartbeat: 50 * time.Millisecond, HeartbeatTimeout: 500 * time.Millisecond})
	require.NoError(t, err)
	start := lastTID(t, srv.Addr, "1")
	run(t, w)
	require.Eventually(t, func() bool { return w.Snapshot().Connected }, 30*time.Second, 10*time.Millisecond)

	committed := commitTIDs(t, zeotest.Python(t, "zodb_client.py", "--db", "a="+srv.Addr+"/1", "commit", "--count", "10"))
	time.Sleep(300 * time.Millisecond) // several heartbeats while the sink is stuck
	st := w.Snapshot()
	require.True(t, st.Connected)
	require.Zero(t, st.Reconnects)
	require.LessOrEqual(t, st.Pending, 2)
	require.Positive(t, st.Lag, "the server is ahead of the sink")
	close(gate)

	waitCaughtUp(t, w, committed[9], 30*time.Second)
	requireExactlyOnce(t, col.tids(), storageTIDs(t, srv.Addr, "1", start))
	st = w.Snapshot()
	require.Positive(t, st.Overflows)
	require.Zero(t, st.Reconnects)
	require.Zero(t, st.Lag)
}

// A BatchSink gets every commit once, in order, with or without metadata,
// while clients commit concurrently and the connection is cut: batches of
// invalidations, and metadata fills that start after the last commit the
// connection has seen and end at the commit announced; with a metadata
// linger, fills that read several commits at once (pipelined
// iterator_next calls).
func TestWatcherBatchSink(t *testing.T) {
	for _, mode := range []struct {
		meta   bool
		linger time.Duration
	}{{false, 0}, {true, 0}, {true, 5 * time.Millisecond}} {
		meta := mode.meta
		t.Run(fmt.Sprintf("metadata=%v,linger=%v", meta, mode.linger), func(t *testing.T) {
			srv := zeotest.StartServer(t, zeotest.ServerOptions{})
			fwd := newForwarder(t, srv.Addr)
			start := commitTIDs(t, zeotest.Python(t, "zodb_client.py", "--db", "a="+srv.Addr+"/1", "commit", "--count", "1"))[0]
			col := &collector{}
			w, err := history.New(history.Config{Storage: "s1", Addr: fwd.Addr(), After: start, BatchSink: col.batchSink,
				Metadata: meta, MetadataLinger: mode.linger, MinBackoff: 20 * time.Millisecond})
			require.NoError(t, err)
			run(t, w)
			require.Eventually(t, func() bool { return w.Snapshot().Connected }, 30*time.Second, 10*time.Millisecond)
			wait := load(t, srv.Addr, 3, func(i int) []string {
				return []string{"commit", "--count", "30", "--key", fmt.Sprintf("k%d", i), "--desc", fmt.Sprintf("client %d", i)}
			})
			time.Sleep(300 * time.Millisecond)
			require.Positive(t, fwd.Sever())
			committed := wait()
			require.Len(t, committed, 90)
			last := lastTID(t, srv.Addr, "1")
			waitCaughtUp(t, w, last, 30*time.Second)
			requireExactlyOnce(t, col.tids(), storageTIDs(t, srv.Addr, "1", start))
			col.mu.Lock()
			defer col.mu.Unlock()
			n, multi := 0, 0
			for _, b := range col.batches {
				require.Positive(t, b)
				require.LessOrEqual(t, b, history.MaxBatch)
				n += b
				if b > 1 {
					multi++
				}
			}
			require.Equal(t, len(col.commits), n)
			if mode.linger > 0 {
				// Three clients commit at once: some fills read several.
				require.Positive(t, multi, "batches %v", col.batches)
			}
			st := w.Snapshot()
			withMeta := 0
			for _, c := range col.commits {
				if c.Meta == nil {
					require.False(t, meta, "commit %s has no metadata", c.TID.Hex())
					continue
				}
				withMeta++
				require.Contains(t, c.Meta.Description, "client ")
			}
			if !meta {
				// Without Metadata only the commits read from the iterator
				// (the gap the cut left) carry it.
				// (a fill counts them once it has delivered them all).
				require.Eventually(t, func() bool { return uint64(withMeta) <= w.Snapshot().FromIterator }, 5*time.Second, 5*time.Millisecond,
					"%d commits with metadata", withMeta)
			}
			require.EqualValues(t, len(col.commits), st.Delivered)
			require.Zero(t, st.Anomalies)
			require.Positive(t, st.Reconnects)
		})
	}
}

// With Metadata every commit carries user, description and extension.
func TestWatcherMetadata(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Msgpack: true})
	initRoot(t, srv.Addr)
	col := &collector{}
	w, err := history.New(history.Config{Storage: "s1", Addr: srv.Addr, Sink: col.sink, Metadata: true})
	require.NoError(t, err)
	run(t, w)
	require.Eventually(t, func() bool { return w.Snapshot().Connected }, 30*time.Second, 10*time.Millisecond)
	committed := commitTIDs(t, zeotest.Python(t, "zodb_client.py", "--db", "a="+srv.Addr+"/1", "commit", "--count", "3", "--desc", "with meta", "--user", "carol"))
	waitCaughtUp(t, w, committed[2], 30*time.Second)
	col.mu.Lock()
	defer col.mu.Unlock()
	require.Len(t, col.commits, 3)
	for i, c := range col.commits {
		require.Equal(t, committed[i], c.TID)
		require.Equal(t, "s1", c.Storage)
		require.NotNil(t, c.Meta)
		require.Equal(t, "with meta", c.Meta.Description)
		require.Contains(t, c.Meta.User, "carol")
		require.Equal(t, " ", c.Meta.Status)
		require.WithinDuration(t, time.Now(), c.Time(), time.Minute)
	}
}

// A storage whose last transaction is below what was already delivered
// (restored from an old backup) stops the watcher: no order-preserving
// continuation exists.
func TestWatcherRewound(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{})
	future, err := txn.TIDFromTime(time.Now().Add(24 * time.Hour))
	require.NoError(t, err)
	w, err := history.New(history.Config{Storage: "s1", Addr: srv.Addr, After: future, Sink: (&collector{}).sink})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = w.Run(ctx)
	require.ErrorIs(t, err, history.ErrRewound)
	require.Error(t, w.Run(ctx), "a watcher runs once")
}

func TestConfigErrors(t *testing.T) {
	sink := (&collector{}).sink
	for _, c := range []history.Config{{Addr: "x:1", Sink: sink}, {Storage: "s", Sink: sink}, {Storage: "s", Addr: "x:1"}} {
		_, err := history.New(c)
		require.Error(t, err)
	}
}

// Invalidations that never arrive (dropped here by a filtering relay) are
// caught by the lastTransaction poll and read from the iterator.
func TestWatcherRepairsLostInvalidations(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Msgpack: true})
	initRoot(t, srv.Addr)
	fwd := newFilter(t, srv.Addr, func(p []byte) bool { return bytes.Contains(p, []byte("invalidateTransaction")) })
	start := lastTID(t, srv.Addr, "1")
	col := &collector{}
	w, err := history.New(history.Config{Storage: "s1", Addr: fwd.Addr(), Sink: col.sink, Poll: 100 * time.Millisecond})
	require.NoError(t, err)
	run(t, w)
	require.Eventually(t, func() bool { return w.Snapshot().Connected }, 30*time.Second, 10*time.Millisecond)
	committed := commitTIDs(t, zeotest.Python(t, "zodb_client.py", "--db", "a="+srv.Addr+"/1", "commit", "--count", "5"))
	waitCaughtUp(t, w, committed[4], 10*time.Second)
	requireExactlyOnce(t, col.tids(), storageTIDs(t, srv.Addr, "1", start))
	st := w.Snapshot()
	require.Positive(t, st.Repairs)
	require.EqualValues(t, 5, st.FromIterator)
	require.Zero(t, st.Reconnects)
}

// A server out of reach at start: the watcher keeps trying with backoff,
// says why in its status, and catches up once the server is there.
func TestWatcherServerUnreachableAtStart(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{})
	start := commitTIDs(t, zeotest.Python(t, "zodb_client.py", "--db", "a="+srv.Addr+"/1", "commit", "--count", "1"))[0]
	fwd := newForwarder(t, srv.Addr)
	fwd.refuse.Store(true)
	col := &collector{}
	w, err := history.New(history.Config{Storage: "s1", Addr: fwd.Addr(), After: start, Sink: col.sink,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	require.NoError(t, err)
	run(t, w)
	require.Eventually(t, func() bool { return w.Snapshot().Reconnects >= 3 }, 10*time.Second, 5*time.Millisecond)
	st := w.Snapshot()
	require.False(t, st.Connected)
	require.NotEmpty(t, st.LastError)
	require.Equal(t, start, st.LastTID)

	committed := commitTIDs(t, zeotest.Python(t, "zodb_client.py", "--db", "a="+srv.Addr+"/1", "commit", "--count", "3"))
	fwd.refuse.Store(false)
	waitCaughtUp(t, w, committed[2], 10*time.Second)
	require.Equal(t, committed, col.tids())
	st = w.Snapshot()
	require.True(t, st.Connected)
	require.EqualValues(t, 1, st.Connects)
	// Usually all three come from the iterator; under heavy load a connection
	// queued in the forwarder's backlog may register before the last commits,
	// which then come as invalidations: exactly once either way (above).
	require.LessOrEqual(t, st.FromIterator, uint64(3))
}
