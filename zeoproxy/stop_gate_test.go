package zeoproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// The stop's gate without sockets to ZEO (the end to end tests run real
// writers through `tidstorage serve`, integration/stop_test.go): which
// tpc_begin is forwarded during a stop, when Drain closes, what it cuts.

type gateObserver struct {
	mu     sync.Mutex
	events []txn.Event
}

func (o *gateObserver) Observe(e txn.Event) {
	o.mu.Lock()
	o.events = append(o.events, e)
	o.mu.Unlock()
}

func (o *gateObserver) kinds() []txn.EventKind {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []txn.EventKind
	for _, e := range o.events {
		out = append(out, e.Kind)
	}
	return out
}

// gateProxy is a proxy with one listener whose connections are pipes.
func gateProxy(t *testing.T) (*Proxy, *listener, *gateObserver) {
	obs := &gateObserver{}
	p := New(Config{}, obs)
	l := &listener{p: p, log: hclog.NewNullLogger(), conns: map[*conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l.ln = ln
	p.listeners = append(p.listeners, l)
	t.Cleanup(func() { p.Close() })
	return p, l, obs
}

// gateConn adds a connection registered on storage.
func gateConn(t *testing.T, l *listener, storage string) *conn {
	c1, c2 := net.Pipe()
	s1, s2 := net.Pipe()
	t.Cleanup(func() { _ = c2.Close(); _ = s2.Close() })
	c := &conn{l: l, client: c1, server: s1, log: hclog.NewNullLogger(), idDone: make(chan struct{}),
		registered: true, storageID: storage, zeoName: storage}
	l.mu.Lock()
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	return c
}

func keyOf(client, desc string) (txn.Info, txn.Key) {
	i := txn.Info{Client: client, Description: desc}
	return i, txn.NewKey(i.Client, i.User, i.Description, i.Extension)
}

// begin forwards a tpc_begin as before a stop.
func (c *conn) testBegin(info txn.Info, key txn.Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apply(c.tx.tpcBegin(c.l.p.newPartID(), c.storageID, info, key))
}

// testMove drives the machine alone (no tenure, no events): enough for the
// gate, which looks at phases only.
func (c *conn) testMove(f func(m *twoPC)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.tx)
}

// admitted runs admitBegin and reports whether it returned within wait
// (forwarded) or stays held. done yields, once it returns, whether the
// server side was closed by then.
func admitted(p *Proxy, c *conn, info txn.Info, key txn.Key, wait time.Duration) (bool, <-chan bool) {
	done := make(chan bool, 1)
	go func() { p.admitBegin(c, info, key); done <- serverClosed(c) }()
	select {
	case <-done:
		return true, nil
	case <-time.After(wait):
		return false, done
	}
}

// serverClosed reports whether the connection's server side is closed (a
// write fails at once with the pipe closed, not by its deadline).
func serverClosed(c *conn) bool {
	_ = c.server.SetWriteDeadline(time.Now())
	_, err := c.server.Write([]byte{0})
	return errors.Is(err, io.ErrClosedPipe)
}

func startStopping(p *Proxy) {
	p.stop.gate.Lock()
	p.stop.stopping.Store(true)
	p.stop.gate.Unlock()
}

func TestStopGateLinksTheRestOfATransactionAndHoldsNewOnes(t *testing.T) {
	p, l, obs := gateProxy(t)
	a, b, c, d := gateConn(t, l, "A"), gateConn(t, l, "B"), gateConn(t, l, "C"), gateConn(t, l, "D")
	info, key := keyOf("host-1", "T")
	a.testBegin(info, key) // before the stop: T began on A
	startStopping(p)

	// T's begin on B comes during the stop: forwarded, T is under way.
	ok, _ := admitted(p, b, info, key, time.Second)
	require.True(t, ok, "the rest of a transaction already begun must be forwarded")
	require.Equal(t, txn.PhaseBegun, b.tx.ph)

	// Another transaction (another key) is held, and so is its next begin.
	info2, key2 := keyOf("host-1", "T2")
	ok, heldC := admitted(p, c, info2, key2, 200*time.Millisecond)
	require.False(t, ok, "a new transaction's tpc_begin must be held")
	require.Equal(t, txn.PhaseIdle, c.tx.ph)
	ok, heldD := admitted(p, d, info2, key2, 200*time.Millisecond)
	require.False(t, ok, "nothing joins a transaction whose begins are held")

	// Once T was sent tpc_finish somewhere, it gains no participation: a
	// begin with its key is a new transaction.
	finishing := func(m *twoPC) { m.call(zrpc.MethodVote, 1); m.ph = txn.PhaseVoted; m.call(zrpc.MethodTPCFinish, 2) }
	a.testMove(finishing)
	b.testMove(finishing)
	e := gateConn(t, l, "E")
	ok, heldE := admitted(p, e, info, key, 200*time.Millisecond)
	require.False(t, ok, "a begin whose key's transaction was sent tpc_finish everywhere is a new transaction")
	require.Equal(t, []txn.EventKind{txn.Begin, txn.Begin}, obs.kinds(), "held begins are never reported")

	// Drain closes every connection at once, and only then the held
	// frames return.
	a.testMove(func(m *twoPC) { m.ph = txn.PhaseIdle })
	b.testMove(func(m *twoPC) { m.ph = txn.PhaseIdle })
	res := p.Drain(context.Background(), time.Minute)
	require.Empty(t, res.Cut)
	require.EqualValues(t, 3, res.Held)
	for _, h := range []<-chan bool{heldC, heldD, heldE} {
		select {
		case closed := <-h:
			require.True(t, closed, "a held frame is let go only once its connection is closed")
		case <-time.After(5 * time.Second):
			t.Fatal("a held frame did not return after the connections were closed")
		}
	}
}

func TestStopGateLinksEvenWhenTheFirstParticipationVoted(t *testing.T) {
	// The proxy may see A's vote before B's tpc_begin (two sockets): B must
	// still be forwarded, or T would stand voted on A with B held.
	p, l, _ := gateProxy(t)
	a, b := gateConn(t, l, "A"), gateConn(t, l, "B")
	info, key := keyOf("host-1", "T")
	a.testBegin(info, key)
	a.testMove(func(m *twoPC) { m.call(zrpc.MethodVote, 1); m.ph = txn.PhaseVoted })
	startStopping(p)
	ok, _ := admitted(p, b, info, key, time.Second)
	require.True(t, ok)
}

func TestDrainWaitsForVotedTransactionsThenClosesAtOnce(t *testing.T) {
	p, l, _ := gateProxy(t)
	a, b := gateConn(t, l, "A"), gateConn(t, l, "B")
	info, key := keyOf("host-1", "T")
	a.testBegin(info, key)
	b.testBegin(info, key)
	a.testMove(func(m *twoPC) { m.call(zrpc.MethodVote, 1); m.ph = txn.PhaseVoted })

	done := make(chan DrainResult, 1)
	go func() { done <- p.Drain(context.Background(), time.Minute) }()
	// Drain waits while T is in its commit; T's votes and finishes go on.
	for i := 0; i < 4; i++ {
		select {
		case <-done:
			t.Fatal("Drain returned while a transaction had voted")
		case <-time.After(100 * time.Millisecond):
		}
		a.testMove(func(m *twoPC) { m.steps++ }) // the client keeps talking
	}
	p.admitCall(b, zrpc.MethodVote, 3)
	require.Equal(t, txn.PhaseVoting, b.tx.ph, "a vote during the stop is forwarded")
	b.testMove(func(m *twoPC) { m.ph = txn.PhaseVoted })
	a.testMove(func(m *twoPC) { m.ph = txn.PhaseIdle }) // A finished
	select {
	case <-done:
		t.Fatal("Drain returned while B had voted and not finished")
	case <-time.After(100 * time.Millisecond):
	}
	b.testMove(func(m *twoPC) { m.ph = txn.PhaseIdle }) // B finished
	select {
	case res := <-done:
		require.Empty(t, res.Cut)
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return once no transaction was in its commit")
	}
	for _, c := range []*conn{a, b} {
		require.True(t, serverClosed(c))
	}
	// Closing: a vote or tpc_finish now is held, never forwarded.
	held := make(chan struct{})
	a.testMove(func(m *twoPC) { m.tpcBegin(99, "A", txn.Info{}, "k") })
	go func() { p.admitCall(a, zrpc.MethodVote, 5); close(held) }()
	select {
	case <-held:
		require.Equal(t, txn.PhaseBegun, a.tx.ph, "a vote after the closing must not be forwarded")
	case <-time.After(5 * time.Second):
		t.Fatal("a held vote did not return after the closing")
	}
}

func TestDrainCutsASilentClientAndNamesIt(t *testing.T) {
	p, l, _ := gateProxy(t)
	a, b, c := gateConn(t, l, "A"), gateConn(t, l, "B"), gateConn(t, l, "C")
	info, key := keyOf("host-7 pid:42", "stuck")
	a.testBegin(info, key)
	b.testBegin(info, key)
	a.testMove(func(m *twoPC) { m.ph = txn.PhaseFinishing })
	b.testMove(func(m *twoPC) { m.ph = txn.PhaseVoted })
	c.testBegin(keyOf("host-8", "idle"))
	began := time.Now()
	res := p.Drain(context.Background(), 300*time.Millisecond)
	require.GreaterOrEqual(t, time.Since(began), 300*time.Millisecond)
	require.Len(t, res.Cut, 1)
	cut := res.Cut[0]
	require.Equal(t, "host-7 pid:42", cut.Client)
	require.Equal(t, "stuck", cut.Description)
	require.Equal(t, key, cut.Key)
	require.Equal(t, []string{"A (finish-sent)", "B (voted)"}, cut.Storages)
	require.GreaterOrEqual(t, cut.Silent, 300*time.Millisecond)
}

func TestDrainEndsWithItsContext(t *testing.T) {
	p, l, _ := gateProxy(t)
	a := gateConn(t, l, "A")
	a.testBegin(keyOf("h", "d"))
	a.testMove(func(m *twoPC) { m.ph = txn.PhaseVoted })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res := p.Drain(ctx, time.Hour)
	require.Len(t, res.Cut, 1)
}
