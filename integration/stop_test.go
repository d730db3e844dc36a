package integration

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// Paired writers (each transaction writes storages a and c, on two ZEO
// servers, with a description unique to it) commit through `tidstorage
// serve` while it is stopped with TERM (or INT) and started again, over and
// over, as `systemctl restart` does. Every stop must be clean (exit 0, no
// connection cut mid-commit), and at the end the oracle reads every
// transaction of both storages from the ZEO servers themselves: each
// description must be on both or on neither — no transaction on one storage
// only (docs/admin.md, "Stopping").
func TestTermRestartsUnderPairedLoadNeverSplitATransaction(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	began := time.Now()
	s := startProcSite(t, procOptions{topHCL: `shutdown_timeout = "30s"`},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"a"}},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"c"}, msgpack: true})
	const desc = "stoptest"
	s.client("commit", "--count", "1", "--touch", "a,c") // the roots exist before the writers race

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	paired := []string{"--touch", "a,c", "--desc", desc, "--unique-desc"}
	// One slow client: each of its transactions stands committed on its first
	// storage (by sort key) and voted on the other for 150 ms, where a stop
	// that closes connections splits it.
	writers := [][]string{append(slices.Clone(paired), "--between-ms", "150"), paired, paired, paired}
	const stops = 8
	var durations []time.Duration
	runs, failed := s.underPairedLoad(ctx, writers, func() {
		for i := 0; i < stops; i++ {
			time.Sleep(time.Duration(400+rng.Intn(1100)) * time.Millisecond)
			sig := syscall.SIGTERM
			if i%4 == 3 {
				sig = syscall.SIGINT
			}
			durations = append(durations, s.stopWith(sig))
			s.start()
		}
	})
	require.Empty(t, s.pins("partial"), "the tracker reported a partial commit")
	s.stopWith(syscall.SIGTERM)
	t.Logf("%d stops in %v (each %v), %d writer runs (%d failed)", stops+1, time.Since(began), durations, runs, failed)

	// What the stops logged: none cut a transaction. How many frames they
	// held, and how many tpc_begins they forwarded as the rest of a
	// transaction under way, is told.
	var held, linked float64
	for _, r := range s.logRecords() {
		msg := fmt.Sprint(r["@message"])
		require.False(t, strings.HasPrefix(msg, "stop timeout"), "a stop cut a transaction: %v", r)
		if strings.HasPrefix(msg, "stopping: no transaction in its commit") {
			h, _ := r["held"].(float64)
			held += h
		}
		if strings.HasPrefix(msg, "stopping: tpc_begin forwarded") {
			linked++
		}
	}
	t.Logf("frames held by the stops: %v; tpc_begins forwarded during a stop as the rest of a transaction under way: %v", held, linked)

	// The oracle: every transaction of both storages, from ZEO itself.
	onA := s.descriptions(0, desc)
	onC := s.descriptions(1, desc)
	var split []string
	for d, tid := range onA {
		if _, ok := onC[d]; !ok {
			split = append(split, fmt.Sprintf("%q on a@%s only", d, tid.Hex()))
		}
	}
	for d, tid := range onC {
		if _, ok := onA[d]; !ok {
			split = append(split, fmt.Sprintf("%q on c@%s only", d, tid.Hex()))
		}
	}
	sort.Strings(split)
	require.Empty(t, split, "transactions committed on one storage only")
	require.Greater(t, len(onA), 20, "the writers committed too little for the test to mean anything")
	t.Logf("%d paired transactions, each on both storages; total %v", len(onA), time.Since(began))
}

// stopWith signals serve and requires a clean exit (status 0) in bounded
// time; it returns how long the stop took.
func (s *procSite) stopWith(sig syscall.Signal) time.Duration {
	s.t.Helper()
	start := time.Now()
	require.NoError(s.t, s.sv.cmd.Process.Signal(sig))
	select {
	case <-s.sv.done:
		require.NoError(s.t, s.sv.err, s.sv.out.String())
	case <-time.After(zeotestWait):
		s.t.Fatalf("serve did not stop within %v after %v", zeotestWait, sig)
	}
	return time.Since(start).Round(time.Millisecond)
}

// descriptions reads every transaction of server i's storage "1" straight
// from ZEO (its iterator) and returns those whose description starts with
// prefix, by description; a description met twice fails the test.
func (s *procSite) descriptions(i int, prefix string) map[string]txn.TID {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), zeotestWait)
	defer cancel()
	c, err := zrpc.Dial(ctx, "tcp", s.servers[i].Addr, nil)
	require.NoError(s.t, err)
	defer c.Close()
	_, err = c.Register(ctx, "1", true)
	require.NoError(s.t, err)
	it, err := c.Iterate(ctx, 0, 0)
	require.NoError(s.t, err)
	out := map[string]txn.TID{}
	for {
		ti, err := it.Next(ctx)
		require.NoError(s.t, err)
		if ti == nil {
			return out
		}
		d := string(ti.Description)
		if !strings.HasPrefix(d, prefix+" ") {
			continue
		}
		prev, dup := out[d]
		require.False(s.t, dup, "description %q committed twice on server %d (%s and %s)", d, i, prev.Hex(), ti.TID.Hex())
		out[d] = ti.TID
	}
}
