package zeoproxy

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// A stop that never splits a transaction (docs/admin.md, "Stopping").
//
// ZODB sends every tpc_begin of a transaction, then every vote, then the
// tpc_finish calls (docs/zeo-protocol.md §7). Once Drain has begun:
//
//   - A tpc_begin is forwarded only when its transaction may already be under
//     way through this proxy: a forwarded participation with the same
//     correlation key (docs/design.md, rule 2) is open and not yet sent
//     tpc_finish. Any other is held: not forwarded, not answered, until the
//     connection is closed; its client retries on the next process. Decided
//     under the gate, one at a time, so a transaction's begins are either
//     all forwarded or all held: a key whose set of such participations is
//     empty during the stop stays empty (nothing joins an empty set), and a
//     transaction that had one begin forwarded keeps a member of the set
//     until its first tpc_finish, which comes after its last begin.
//   - Votes and tpc_finish calls go on (they are also decided under the
//     gate), so every transaction that has voted runs to its end on every
//     storage.
//   - Connections are closed when no participation stands between its vote
//     and its tpc_finish reply (VOTING, VOTED, FINISHING): a transaction
//     between its first vote and its last finish always has one there. The
//     gate then refuses every further vote and tpc_finish (held like a
//     begin), and every connection is closed at once.
//   - A participation that stays there without a step for the silence
//     timeout (a client that stopped talking mid-commit) is cut: the
//     connections are closed all the same, and the cut is named in the log.
//
// Safety rests on the third point alone (a cut for silence aside: it is
// logged, and the stop counts as unclean). A tpc_begin held by mistake
// (its transaction's connections do not share a key) costs time, never a
// split: the connection's vote is behind the held frame, so the transaction
// never has every vote answered, never sends tpc_finish, and is aborted
// everywhere when the connections close.
//
// Lock order: gate, then a listener's mu, then a conn's mu (then p.mu).

// stopState is the proxy's stop (fields of Proxy).
type stopState struct {
	stopping atomic.Bool // Drain has begun; read on the 2PC calls' path
	gate     sync.Mutex
	closing  bool          // gate held: every further 2PC call is held
	released chan struct{} // closed once every connection was closed: held frames return
	release  sync.Once
	held     atomic.Int64 // frames held by the stop
}

// CutCommit is a transaction a stop cut: its participations through this
// proxy that stood between their vote and their tpc_finish reply.
type CutCommit struct {
	Client      string
	User        string
	Description string
	Key         txn.Key
	Storages    []string // storage id and phase of each cut participation
	Silent      time.Duration
}

// DrainResult says how a stop went.
type DrainResult struct {
	Held   int64         // tpc_begin and other 2PC frames held (not forwarded)
	Waited time.Duration // from the start of the stop to the closing of every connection
	Cut    []CutCommit   // none unless a client stopped talking mid-commit (or ctx ended)
}

// admitBegin decides a tpc_begin that came during a stop (c.mu not held).
func (p *Proxy) admitBegin(c *conn, info txn.Info, key txn.Key) {
	p.stop.gate.Lock()
	if !p.stop.closing && p.linkedOpen(c, key) {
		c.mu.Lock()
		c.apply(c.tx.tpcBegin(p.newPartID(), c.storageID, info, key))
		c.mu.Unlock()
		p.stop.gate.Unlock()
		c.log.Debug("stopping: tpc_begin forwarded, its transaction is under way", "storage", c.storageID)
		return
	}
	p.stop.gate.Unlock()
	c.hold("tpc_begin", "storage", c.storageID, "identity", info.Client, "user", info.User, "description", info.Description)
}

// admitCall decides a vote or tpc_finish that came during a stop (c.mu not
// held): forwarded until the connections are being closed.
func (p *Proxy) admitCall(c *conn, m zrpc.Method, msgid int64) {
	p.stop.gate.Lock()
	if !p.stop.closing {
		c.mu.Lock()
		c.apply(c.tx.call(m, msgid))
		c.mu.Unlock()
		p.stop.gate.Unlock()
		return
	}
	p.stop.gate.Unlock()
	c.hold(m.String(), "storage", c.storageID)
}

// hold keeps the frame being relayed from the server until every connection
// is closed; then the pump's writes fail and the frame never leaves.
func (c *conn) hold(what string, args ...any) {
	c.l.p.stop.held.Add(1)
	c.log.Debug("stopping: "+what+" held until the connection is closed; the client retries on the next process", args...)
	<-c.l.p.stop.released
}

// linkedOpen reports whether another connection has a forwarded
// participation with key that is open and not yet sent tpc_finish (gate
// held).
func (p *Proxy) linkedOpen(self *conn, key txn.Key) bool {
	found := false
	p.eachConn(func(c *conn) bool {
		if c == self {
			return true
		}
		c.mu.Lock()
		k, ok := c.tx.linkable()
		c.mu.Unlock()
		found = ok && k == key
		return !found
	})
	return found
}

// eachConn calls f on every open connection until it returns false.
func (p *Proxy) eachConn(f func(*conn) bool) {
	ls := p.listenersNow()
	for _, l := range ls {
		l.mu.Lock()
		for c := range l.conns {
			if !f(c) {
				l.mu.Unlock()
				return
			}
		}
		l.mu.Unlock()
	}
}

// committingConn is a participation found between its vote and its
// tpc_finish reply.
type committingConn struct {
	c     *conn
	part  txn.PartID
	steps uint64
	ph    txn.Phase
	begin txn.Event
}

// committing lists the participations between their vote and their
// tpc_finish reply (gate held).
func (p *Proxy) committing() []committingConn {
	var out []committingConn
	p.eachConn(func(c *conn) bool {
		c.mu.Lock()
		if c.tx.committing() {
			out = append(out, committingConn{c: c, part: c.tx.part, steps: c.tx.steps, ph: c.tx.ph, begin: c.tx.begin})
		}
		c.mu.Unlock()
		return true
	})
	return out
}

// drainPoll is how often a stop looks at the transactions in their commit.
const drainPoll = 10 * time.Millisecond

// Drain stops the proxy without splitting a transaction: it stops
// accepting, holds new transactions, lets every transaction that has voted
// run to its end on every storage, then closes every connection at once. A
// participation that makes no step for silence while in its commit (its
// client stopped talking), or the end of ctx, cuts the wait short: those
// transactions are returned and logged. Close must still be called.
func (p *Proxy) Drain(ctx context.Context, silence time.Duration) DrainResult {
	began := time.Now()
	p.StopAccepting()
	p.stop.gate.Lock()
	p.stop.stopping.Store(true)
	p.stop.gate.Unlock()
	type mark struct {
		part  txn.PartID
		steps uint64
		since time.Time
	}
	marks := map[*conn]mark{}
	var cut []committingConn
	var silent map[*conn]time.Duration
	logged := time.Time{}
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		now := time.Now()
		p.stop.gate.Lock()
		busy := p.committing()
		stuck := ctx.Err() != nil
		next := make(map[*conn]mark, len(busy))
		silent = make(map[*conn]time.Duration, len(busy))
		for _, b := range busy {
			m, ok := marks[b.c]
			if !ok || m.part != b.part || m.steps != b.steps {
				m = mark{b.part, b.steps, now}
			}
			next[b.c] = m
			silent[b.c] = now.Sub(m.since)
			if silent[b.c] >= silence {
				stuck = true
			}
		}
		marks = next
		done := len(busy) == 0 || stuck
		if done {
			p.stop.closing = true
			cut = busy
		}
		p.stop.gate.Unlock()
		if done {
			break
		}
		if now.Sub(logged) >= 5*time.Second {
			logged = now
			p.log.Info("stopping: waiting for transactions between their vote and their last tpc_finish", "committing", len(busy))
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	p.closeConns()
	res := DrainResult{Held: p.stop.held.Load(), Waited: time.Since(began), Cut: cutCommits(cut, silent)}
	for _, cc := range res.Cut {
		p.log.Error("stop timeout: closing the connections of a transaction in its commit; its client stopped talking (or the stop was cut short)",
			"identity", cc.Client, "user", cc.User, "description", cc.Description, "storages", cc.Storages,
			"silent", cc.Silent.Round(time.Millisecond), "shutdown_timeout", silence, "key", string(cc.Key))
	}
	return res
}

// cutCommits groups the participations a stop cut by transaction (key).
func cutCommits(cut []committingConn, silent map[*conn]time.Duration) []CutCommit {
	byKey := map[txn.Key]*CutCommit{}
	var out []*CutCommit
	for _, b := range cut {
		cc := byKey[b.begin.Key]
		if cc == nil {
			i := b.begin.Info
			cc = &CutCommit{Client: i.Client, User: i.User, Description: i.Description, Key: b.begin.Key}
			byKey[b.begin.Key] = cc
			out = append(out, cc)
		}
		cc.Storages = append(cc.Storages, b.begin.Storage+" ("+b.ph.String()+")")
		cc.Silent = max(cc.Silent, silent[b.c])
	}
	res := make([]CutCommit, len(out))
	for i, cc := range out {
		sort.Strings(cc.Storages)
		res[i] = *cc
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Key < res[j].Key })
	return res
}

// closeConns closes every connection at once, then lets the held frames go
// (their writes fail on the closed connections).
func (p *Proxy) closeConns() {
	ls := p.listenersNow()
	for _, l := range ls {
		l.closeAll()
	}
	p.stop.release.Do(func() { close(p.stop.released) })
}
