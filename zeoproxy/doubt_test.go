package zeoproxy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zeoproxy"
	"github.com/tidstorage/tidstorage/zrpc"
)

// Two clients commit on one storage with identical metadata (user "",
// description "chaos", extension {}: what the chaos writers send), and the
// connection of each is cut around its tpc_finish, so both are in doubt.
// Metadata cannot tell their commits apart; the resolution must give each
// participation its own outcome and TID, as the storage holds them. The
// first case is the order that fooled the metadata resolver: the first
// tpc_finish torn (not committed), the second committed — the first was
// resolved as committed with the second's TID, and the second as not
// committed. Client 2 votes either while client 1 holds the commit lock (ZEO
// delays its vote) or after client 1 was cut.
func TestInDoubtIdenticalMetadataResolvedByCommitOrder(t *testing.T) {
	cuts := []struct {
		name          string
		first, second zeotest.Cut
	}{
		{"torn-then-committed", zeotest.CutInsideFinish, zeotest.CutAfterFinish},
		{"committed-then-torn", zeotest.CutAfterFinish, zeotest.CutInsideFinish},
		{"both-committed", zeotest.CutAfterFinish, zeotest.CutAfterFinish},
	}
	for _, tc := range cuts {
		for _, waiting := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/waiting=%v", tc.name, waiting), func(t *testing.T) {
				inDoubtPair(t, tc.first, tc.second, waiting)
			})
		}
	}
}

func inDoubtPair(t *testing.T, first, second zeotest.Cut, waiting bool) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1"}})
	cutter := zeotest.StartCutter(t, srv.Addr)
	rec := newRecorder()
	cfg := zeoproxy.Config{
		Logger:  hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: testWriter{t}}),
		Servers: []zeoproxy.ServerConfig{{Name: "z", Listen: "127.0.0.1:0", Upstream: cutter.Addr()}},
	}
	p := serveProxy(t, cfg, rec)
	addr := p.Addrs()[0].String()
	ctx, cancel := context.WithTimeout(context.Background(), zeotestWait)
	defer cancel()

	oracle, err := zrpc.Dial(ctx, "tcp", srv.Addr, nil)
	require.NoError(t, err)
	defer oracle.Close()
	base, err := oracle.Register(ctx, "1", true)
	require.NoError(t, err)

	dial := func() *zrpc.Client {
		c, err := zrpc.Dial(ctx, "tcp", addr, nil)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		_, err = c.Register(ctx, "1", false)
		require.NoError(t, err)
		return c
	}
	begin := func(c *zrpc.Client, txnid uint64) {
		require.NoError(t, c.Async(ctx, &zrpc.TPCBegin{TxnID: txnid, Description: []byte("chaos"), Status: " "}))
	}
	vote := func(c *zrpc.Client, txnid uint64) error {
		_, err := c.Call(ctx, "vote", zrpc.Tuple{zrpc.Uint64Value(txnid)})
		return err
	}
	finish := func(c *zrpc.Client, txnid uint64) {
		_, err := c.Call(ctx, "tpc_finish", zrpc.Tuple{zrpc.Uint64Value(txnid)})
		require.Error(t, err, "the connection is cut around tpc_finish")
	}

	c1, c2 := dial(), dial()
	begin(c1, 1)
	require.NoError(t, vote(c1, 1))
	voted2 := make(chan error, 1)
	if waiting {
		begin(c2, 2)
		go func() { voted2 <- vote(c2, 2) }() // waits for the commit lock
		time.Sleep(100 * time.Millisecond)
	}
	cutter.Arm("1", first)
	finish(c1, 1)
	if !waiting {
		begin(c2, 2)
		go func() { voted2 <- vote(c2, 2) }()
	}
	require.NoError(t, <-voted2)
	cutter.Arm("1", second)
	finish(c2, 2)
	require.Equal(t, 2, cutter.Cuts())

	// The oracle: what the storage holds after base, once the server has
	// processed the last tpc_finish (a torn one never commits).
	commits := 0
	for _, c := range []zeotest.Cut{first, second} {
		if c == zeotest.CutAfterFinish {
			commits++
		}
	}
	var held []txn.TID
	require.Eventually(t, func() bool {
		start := (base + 1).Bytes()
		txns, _, err := oracle.Transactions(ctx, start[:], nil, 10)
		require.NoError(t, err)
		held = held[:0]
		for _, ti := range txns {
			require.Equal(t, "chaos", string(ti.Description))
			held = append(held, ti.TID)
		}
		return len(held) >= commits
	}, zeotestWait, pollEvery)
	want := make([]string, 2) // outcome of client 1's and client 2's participation
	switch {
	case first == zeotest.CutInsideFinish:
		require.Len(t, held, 1)
		want[0], want[1] = "false 0000000000000000", fmt.Sprintf("true %016x", held[0])
	case second == zeotest.CutInsideFinish:
		require.Len(t, held, 1)
		want[0], want[1] = fmt.Sprintf("true %016x", held[0]), "false 0000000000000000"
	default:
		require.Len(t, held, 2)
		want[0], want[1] = fmt.Sprintf("true %016x", held[0]), fmt.Sprintf("true %016x", held[1])
	}

	resolved := func() []string {
		var got []string
		for _, e := range rec.snapshot() {
			if f := strings.Fields(e); len(f) == 4 && f[0] == "resolved" {
				got = append(got, e)
			}
		}
		return got
	}
	require.Eventually(t, func() bool { return len(resolved()) == 2 }, zeotestWait, pollEvery, "%v", rec.snapshot())
	parts := map[string]string{}
	for _, e := range resolved() {
		f := strings.Fields(e)
		parts[f[1]] = f[2] + " " + f[3]
	}
	// Participation ids follow the tpc_begin order: client 1 began first.
	var ids []string
	for _, e := range rec.snapshot() {
		if f := strings.Fields(e); f[0] == "begin" {
			ids = append(ids, f[1])
		}
	}
	require.Len(t, ids, 2)
	require.Equal(t, want[0], parts[ids[0]], "client 1's participation (events %v)", rec.snapshot())
	require.Equal(t, want[1], parts[ids[1]], "client 2's participation (events %v)", rec.snapshot())
	require.EqualValues(t, 2, p.Metrics().InDoubt)
}
