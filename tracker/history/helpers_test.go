package history_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/history"
	"github.com/tidstorage/tidstorage/zrpc"
)

var encodings = []struct {
	name    string
	msgpack bool
}{{"pickle", false}, {"msgpack", true}}

// collector is a sink that records every commit; while gate is non-nil
// it blocks until gate is closed (a slow consumer).
type collector struct {
	mu      sync.Mutex
	commits []history.Commit
	gate    chan struct{}
	batches []int // sizes of the batches a BatchSink got
}

func (c *collector) sink(ctx context.Context, cm history.Commit) error {
	c.mu.Lock()
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	c.commits = append(c.commits, cm)
	c.mu.Unlock()
	return nil
}

// batchSink is sink for a BatchSink: it copies the batch (the watcher
// reuses the slice) and records its size.
func (c *collector) batchSink(ctx context.Context, cs []history.Commit) error {
	for _, cm := range cs {
		if err := c.sink(ctx, cm); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.batches = append(c.batches, len(cs))
	c.mu.Unlock()
	return nil
}

func (c *collector) tids() []txn.TID {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]txn.TID, len(c.commits))
	for i, cm := range c.commits {
		out[i] = cm.TID
	}
	return out
}

// run starts w.Run in the background; the returned func stops it and
// returns Run's result. Cleanup stops it too.
func run(t *testing.T, w *history.Watcher) func() error { return runB(t, w) }

func runB(t testing.TB, w *history.Watcher) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("watcher did not stop within 10 s")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func dial(t *testing.T, addr, name string) *zrpc.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := zrpc.Dial(ctx, "tcp", addr, nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_, err = c.Register(ctx, name, true)
	require.NoError(t, err)
	return c
}

// storageTIDs is the oracle: every TID after `after` that the storage's own
// iterator lists, read on a fresh connection once the load is over.
func storageTIDs(t *testing.T, addr, name string, after txn.TID) []txn.TID {
	t.Helper()
	c := dial(t, addr, name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	it, err := c.Iterate(ctx, after+1, 0)
	require.NoError(t, err)
	var out []txn.TID
	for range 1_000_000 {
		ti, err := it.Next(ctx)
		require.NoError(t, err)
		if ti == nil {
			return out
		}
		out = append(out, ti.TID)
	}
	t.Fatal("oracle: iterator did not end")
	return nil
}

func lastTID(t *testing.T, addr, name string) txn.TID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lt, err := dial(t, addr, name).LastTransaction(ctx)
	require.NoError(t, err)
	return lt
}

// waitCaughtUp waits until the watcher delivered `want`.
func waitCaughtUp(t *testing.T, w *history.Watcher, want txn.TID, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return w.Snapshot().LastTID >= want }, within, 10*time.Millisecond,
		"watcher stuck at %+v, want %s", w.Snapshot(), want.Hex())
}

// commitTIDs parses zodb_client.py commit/paired output (one JSON line a
// transaction, {"a": hex}).
func commitTIDs(t *testing.T, out []byte) []txn.TID {
	t.Helper()
	var tids []txn.TID
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
		s, ok := m["a"].(string)
		if !ok {
			continue
		}
		b, err := hex.DecodeString(s)
		require.NoError(t, err)
		tids = append(tids, txn.TIDFromBytes([8]byte(b)))
	}
	return tids
}

// load runs procs zodb_client.py processes in the background, each with
// its own args; wait returns every TID they reported.
func load(t *testing.T, addr string, procs int, args func(i int) []string) (wait func() []txn.TID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), zeotest.PythonTimeout)
	type result struct {
		out    []byte
		stderr string
		err    error
	}
	results := make(chan result, procs)
	for i := range procs {
		cmd := zeotest.PythonCommand(ctx, t, "zodb_client.py", append([]string{"--db", "a=" + addr + "/1"}, args(i)...)...)
		var stdout bytes.Buffer
		stderr := &zeotest.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = &stdout, stderr
		require.NoError(t, cmd.Start())
		go func() {
			err := cmd.Wait()
			results <- result{stdout.Bytes(), stderr.String(), err}
		}()
	}
	return func() []txn.TID {
		defer cancel()
		var all []txn.TID
		for range procs {
			r := <-results
			require.NoError(t, r.err, "client failed: %s", r.stderr)
			all = append(all, commitTIDs(t, r.out)...)
		}
		return all
	}
}

// requireExactlyOnce checks the delivered sequence against the oracle:
// the same TIDs, strictly increasing, none twice, none missing.
func requireExactlyOnce(t *testing.T, got, oracle []txn.TID) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		require.Greater(t, got[i], got[i-1], "delivery %d not after %d", i, i-1)
	}
	require.Equal(t, len(oracle), len(got))
	require.Equal(t, oracle, got)
}

// initRoot has a ZODB client open the storage once: on an empty storage
// that commits the root object, a transaction the test did not ask for.
func initRoot(t *testing.T, addr string) {
	t.Helper()
	zeotest.Python(t, "zodb_client.py", "--db", "a="+addr+"/1", "last")
}
