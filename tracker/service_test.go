package tracker_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/tracker/classic"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
)

// The classic server's backend is satisfied structurally.
var _ classic.Backend = (*tracker.Service)(nil)

const (
	sA = "((('localhost', 8100),), 'A')"
	sB = "((('localhost', 8200),), 'B')"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestServiceStatusFileAndClassic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	sf, err := statusfile.Open(path, statusfile.Options{BurstPeriod: 30 * time.Second, FullDumpPeriod: 300 * time.Second})
	require.NoError(t, err)
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	var recs []tracker.Record
	svc := tracker.NewService(tracker.ServiceConfig{
		Clock:      clk.now,
		Logger:     hclog.NewNullLogger(),
		StatusFile: sf,
		OnRecord:   func(r tracker.Record) { recs = append(recs, r) },
	})
	require.False(t, svc.Bootstrapped())
	require.Empty(t, svc.Dump())
	svc.Bootstrap(map[string]txn.TID{sA: 10, sB: 20}, true)
	sf.Wait() // the writer's goroutine coalesces: let it take each step
	require.True(t, svc.Bootstrapped())
	require.Equal(t, map[string]txn.TID{sA: 10, sB: 20}, svc.Dump())

	clk.add(time.Second)
	svc.ClassicBegin("t1", []string{sA, sB})
	svc.ClassicCommit("t1", map[string]txn.TID{sA: 11, sB: 21}, nil)
	require.Equal(t, map[string]txn.TID{sA: 11, sB: 21}, svc.Dump())
	clk.add(40 * time.Second)
	svc.ClassicBegin("t2", []string{sA})
	svc.ClassicCommit("t2", map[string]txn.TID{sA: 12}, nil)
	sf.Wait()

	// Proxy participations.
	svc.Observe(txn.Event{Kind: txn.Begin, Part: 1, Storage: sB, Key: txn.Key("k")})
	svc.Observe(txn.Event{Kind: txn.Vote, Part: 1, OK: true})
	svc.Observe(txn.Event{Kind: txn.FinishSent, Part: 1})
	svc.Observe(txn.Event{Kind: txn.Finished, Part: 1, TID: 22})
	v, ok := svc.Published(sB)
	require.True(t, ok)
	require.Equal(t, txn.TID(22), v)

	svc.ClassicAbort("nope")
	st := svc.Status()
	require.True(t, st.Bootstrapped)
	require.Len(t, st.Storages, 2)
	require.Equal(t, uint64(1), svc.Counters().Warnings)
	require.NoError(t, svc.Close())

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.Equal(t, []string{
		`1700000000.00 f {"((('localhost', 8100),), 'A')": 10, "((('localhost', 8200),), 'B')": 20}`,
		`1700000041.00 d {"((('localhost', 8100),), 'A')": 12, "((('localhost', 8200),), 'B')": 21}`,
		`1700000041.00 f {"((('localhost', 8100),), 'A')": 12, "((('localhost', 8200),), 'B')": 22}`,
	}, lines)
	res, err := statusfile.Replay(strings.NewReader(string(b)), statusfile.ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, map[string]txn.TID{sA: 12, sB: 22}, res.Point)
	require.NotEmpty(t, recs)
}

func TestServiceConcurrentUse(t *testing.T) {
	svc := tracker.NewService(tracker.ServiceConfig{})
	svc.Bootstrap(map[string]txn.TID{sA: 1, sB: 1}, true)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				id := txn.PartID(g*1000 + i + 1)
				key := txn.Key(rune('a' + g))
				svc.Observe(txn.Event{Kind: txn.Begin, Part: id, Storage: sA, Key: key})
				svc.Observe(txn.Event{Kind: txn.Vote, Part: id, OK: true})
				svc.Observe(txn.Event{Kind: txn.FinishSent, Part: id})
				svc.Observe(txn.Event{Kind: txn.Finished, Part: id, TID: txn.TID(1000 + g*1000 + i)})
				_ = svc.Dump()
			}
		}(g)
	}
	wg.Wait()
	st := svc.Status()
	require.Empty(t, st.Parts)
	v, _ := svc.Published(sA)
	require.Equal(t, txn.TID(1000+3*1000+499), v)
}
