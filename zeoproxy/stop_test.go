package zeoproxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zeoproxy"
	"github.com/tidstorage/tidstorage/zrpc"
)

// Through a real ZEO server with two storages: transaction T began and voted
// on storage 1 before the stop; its tpc_begin on storage 2 comes during the
// stop (the proxy may see it after the vote on storage 1: two sockets) and
// is forwarded (T is under way), while a new transaction's is held and never
// reaches the server. Drain waits while T is between its first
// vote and its last tpc_finish, then closes every connection at once; T is
// on both storages, the new transaction on neither.
func TestDrainLetsAStartedTransactionFinishOnEveryStorage(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}})
	rec := newRecorder()
	p := serveProxy(t, zeoproxy.Config{
		Logger:  hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: testWriter{t}}),
		Servers: []zeoproxy.ServerConfig{{Name: "z", Listen: "127.0.0.1:0", Upstream: srv.Addr}},
	}, rec)
	addr := p.Addrs()[0].String()
	ctx, cancel := context.WithTimeout(context.Background(), zeotestWait)
	defer cancel()

	bases := map[string]txn.TID{}
	oracles := map[string]*zrpc.Client{}
	for _, st := range []string{"1", "2"} {
		o, err := zrpc.Dial(ctx, "tcp", srv.Addr, nil)
		require.NoError(t, err)
		defer o.Close()
		bases[st], err = o.Register(ctx, st, true)
		require.NoError(t, err)
		oracles[st] = o
	}
	dial := func(storage string) *zrpc.Client {
		c, err := zrpc.Dial(ctx, "tcp", addr, nil)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		_, err = c.Register(ctx, storage, false)
		require.NoError(t, err)
		return c
	}
	// One process, so one client identity: the description tells T from
	// the new transaction.
	begin := func(c *zrpc.Client, txnid uint64, desc string) {
		require.NoError(t, c.Async(ctx, &zrpc.TPCBegin{TxnID: txnid, Description: []byte(desc), Status: " "}))
	}
	call := func(c *zrpc.Client, method string, txnid uint64) error {
		_, err := c.Call(ctx, method, zrpc.Tuple{zrpc.Uint64Value(txnid)})
		return err
	}
	a, b, n := dial("1"), dial("2"), dial("2")
	begin(a, 1, "T")
	require.NoError(t, call(a, "vote", 1))

	drained := make(chan zeoproxy.DrainResult, 1)
	go func() { drained <- p.Drain(context.Background(), time.Minute) }()
	require.Eventually(t, p.Stopping, zeotestWait, pollEvery)
	notYet := func(what string) {
		t.Helper()
		select {
		case <-drained:
			t.Fatalf("Drain returned %s", what)
		case <-time.After(150 * time.Millisecond):
		}
	}

	begin(b, 2, "T")
	begin(n, 3, "new")
	newVote := make(chan error, 1)
	go func() { newVote <- call(n, "vote", 3) }()
	notYet("while T had voted on storage 1")
	require.NoError(t, call(b, "vote", 2), "T's tpc_begin on storage 2 came during the stop: it must have been forwarded")
	require.NoError(t, call(a, "tpc_finish", 1))
	notYet("between T's tpc_finish on storage 1 and on storage 2")
	select {
	case err := <-newVote:
		t.Fatalf("the new transaction's vote was answered (%v): its tpc_begin was not held", err)
	default:
	}
	require.NoError(t, call(b, "tpc_finish", 2))
	select {
	case res := <-drained:
		require.Empty(t, res.Cut)
		require.GreaterOrEqual(t, res.Held, int64(1))
	case <-time.After(zeotestWait):
		t.Fatal("Drain did not return once T had finished everywhere")
	}
	select {
	case err := <-newVote:
		require.Error(t, err, "the held transaction's connection is closed")
	case <-time.After(zeotestWait):
		t.Fatal("the held transaction's connection was not closed")
	}
	_, err := a.LastTransaction(ctx)
	require.Error(t, err, "every connection is closed")

	for st, o := range oracles {
		start := (bases[st] + 1).Bytes()
		txns, _, err := o.Transactions(ctx, start[:], nil, 10)
		require.NoError(t, err)
		var descs []string
		for _, ti := range txns {
			descs = append(descs, string(ti.Description))
		}
		require.Equal(t, []string{"T"}, descs, "storage %s holds T only", st)
	}
}
