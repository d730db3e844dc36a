package history

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// ErrRewound is returned by Run when the storage's last transaction is
// below a commit already delivered: the storage was restored or replaced,
// and no order-preserving continuation exists. The operator must decide.
var ErrRewound = errors.New("history: storage went back in time")

// ErrNotConnected is returned by Watcher.Lookup while there is no connection.
var ErrNotConnected = errors.New("history: not connected")

// fatal marks errors that end Run instead of causing a reconnection.
type fatal struct{ err error }

func (f fatal) Error() string { return f.err.Error() }
func (f fatal) Unwrap() error { return f.err }

// Watcher follows one storage. Create it with New, run it with Run; its
// other methods are safe to call from any goroutine.
type Watcher struct {
	cfg     Config
	running atomic.Bool

	// loop goroutine only
	last    txn.TID
	started bool
	batch   []Commit // commits read, not delivered yet
	// checked: last was delivered (or found in the iterator) on the
	// current connection, so a fill need not read it again to see that
	// the storage still holds it.
	checked bool

	serverTID atomic.Uint64 // highest TID the server mentioned

	mu     sync.Mutex
	client *zrpc.Client // registered connection, for Lookup
	p      *pending     // the current connection's, for Status
	st     Status
}

// New checks cfg and returns a watcher that has not connected yet.
func New(cfg Config) (*Watcher, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	w := &Watcher{cfg: cfg}
	w.st = Status{Storage: cfg.Storage, Addr: cfg.Addr, Name: cfg.Name, LastTID: cfg.After}
	return w, nil
}

// Run connects, delivers commits and reconnects after every failure, with
// backoff, until ctx ends (it then returns ctx's cause), the sink fails
// (its error), or the storage rewinds (ErrRewound). A Watcher runs once.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return fmt.Errorf("history: storage %s: Run called twice", w.cfg.Storage)
	}
	backoff := w.cfg.MinBackoff
	for {
		registered, err := w.session(ctx)
		if ctx.Err() != nil {
			w.disconnected(nil) // a shutdown, not a failure
			return context.Cause(ctx)
		}
		w.disconnected(err)
		var f fatal
		if errors.As(err, &f) {
			w.cfg.Logger.Error("watcher stopped", "storage", w.cfg.Storage, "error", f.err)
			return f.err
		}
		if registered {
			backoff = w.cfg.MinBackoff // it worked for a while: retry soon
		}
		w.count(func(s *Status) { s.Reconnects++ })
		w.cfg.Logger.Warn("watcher disconnected, reconnecting", "storage", w.cfg.Storage, "addr", w.cfg.Addr, "in", backoff, "error", err)
		// ±20 % jitter so that the watchers of one restarted server spread out
		wait := backoff + time.Duration(rand.Int64N(int64(backoff)*2/5+1)) - backoff/5
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
		backoff = min(backoff*2, w.cfg.MaxBackoff)
	}
}

// session is one connection's life. registered reports whether it got
// as far as register.
func (w *Watcher) session(ctx context.Context) (registered bool, err error) {
	cfg := &w.cfg
	p := newPending(cfg.MaxPending)
	opts := &zrpc.ClientOptions{
		CallTimeout:      cfg.CallTimeout,
		Encoding:         cfg.Encoding,
		Heartbeat:        cfg.Heartbeat,
		HeartbeatTimeout: cfg.HeartbeatTimeout,
		OnAsync:          func(m *zrpc.Message) { w.onAsync(p, m) },
		OnInvalidate:     func(t txn.TID) { w.maxServerTID(t); p.push(t) },
	}
	if cfg.TLS != nil {
		opts.TLS = cfg.TLS()
	}
	c, r, err := zrpc.DialStorage(ctx, cfg.Network, cfg.Addr, cfg.Name, opts)
	if err != nil {
		return false, fmt.Errorf("history: storage %s: %w", cfg.Storage, err)
	}
	defer c.Close()
	w.maxServerTID(r)
	if !w.started {
		w.started = true
		w.last = cfg.After
		if w.last == 0 && !cfg.AfterExact {
			w.last = r
		}
	}
	w.connected(c, p)
	w.checked = false
	if r < w.last {
		return true, fatal{fmt.Errorf("history: storage %s at %s: last transaction %s (%s) is below the last commit seen %s (%s): %w",
			cfg.Storage, cfg.Addr, r.Hex(), r, w.last.Hex(), w.last, ErrRewound)}
	}
	// Every commit after r reaches us as an invalidation (we were in the
	// server's list before register read r); the ones up to r are read now.
	if r > w.last {
		if err := w.fill(ctx, c, 0, 0); err != nil {
			return true, err
		}
	}
	return true, w.follow(ctx, c, p)
}

// follow delivers invalidations until the connection or ctx ends.
func (w *Watcher) follow(ctx context.Context, c *zrpc.Client, p *pending) error {
	cfg := &w.cfg
	poll := time.NewTicker(cfg.Poll)
	defer poll.Stop()
	var behind txn.TID // the server's last TID at the previous poll, if ahead of us
	var buf []txn.TID
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-c.Done():
			return fmt.Errorf("history: storage %s: %w", cfg.Storage, c.Err())
		case <-p.ready:
			if cfg.Metadata && cfg.MetadataLinger > 0 {
				// Let the commits of the next few milliseconds join this
				// fill: one iterator per batch instead of per commit.
				linger.Reset(cfg.MetadataLinger)
				select {
				case <-ctx.Done():
					return context.Cause(ctx)
				case <-c.Done():
					return fmt.Errorf("history: storage %s: %w", cfg.Storage, c.Err())
				case <-linger.C:
				}
			}
			var overflow bool
			buf, overflow = p.take(buf[:0])
			if overflow {
				// Some were dropped (or undecodable): the iterator has them all.
				w.count(func(s *Status) { s.Overflows++ })
				if err := w.fill(ctx, c, 0, 0); err != nil {
					return err
				}
				continue
			}
			if cfg.Metadata {
				if top := maxTID(buf); top > w.last {
					if err := w.fill(ctx, c, top, countAbove(buf, w.last)); err != nil {
						return err
					}
				}
				continue
			}
			top := w.last
			for _, t := range buf {
				if t <= top {
					continue // already read from the iterator
				}
				top = t
				if err := w.add(ctx, Commit{Storage: cfg.Storage, TID: t}); err != nil {
					return err
				}
			}
			if err := w.flush(ctx); err != nil {
				return err
			}
		case <-poll.C:
			lt, err := c.LastTransaction(ctx)
			if err != nil {
				return fmt.Errorf("history: storage %s: %w", cfg.Storage, err)
			}
			w.maxServerTID(lt)
			// An invalidation may trail the lastTransaction reply that already
			// counts its commit (ZEO queues invalidations to the next turn of
			// its event loop), so only a commit still missing one whole poll
			// later means an invalidation was lost: read the iterator.
			if behind != 0 && w.last < behind && p.len() == 0 {
				cfg.Logger.Warn("commits not announced by invalidations; reading them from the iterator",
					"storage", cfg.Storage, "last_seen", w.last.Hex(), "server_last", behind.Hex())
				w.count(func(s *Status) { s.Repairs++ })
				if err := w.fill(ctx, c, 0, 0); err != nil {
					return err
				}
			}
			behind = 0
			if lt > w.last {
				behind = lt
			}
		}
	}
}

// fill delivers, from the storage's iterator, every commit after w.last up
// to stop (0: the storage's last when the server opens the iterator). It
// starts at w.last itself to check that the storage still holds it.
//
// Once the current connection has seen w.last, the fill starts after it,
// and a fill bounded by stop ends at stop without asking for more. want
// is how many commits the range is known to hold (announced by
// invalidations; 0: not known): they are asked for at once, one round
// trip for all (zrpc.Iterator.NextN), then the rest one by one (with
// Config.Metadata, every commit is read so).
func (w *Watcher) fill(ctx context.Context, c *zrpc.Client, stop txn.TID, want int) error {
	cfg := &w.cfg
	from := w.last
	start := from
	if w.checked {
		start = from + 1
	}
	if stop != 0 && start > stop {
		return nil
	}
	it, err := c.Iterate(ctx, start, stop)
	if err != nil {
		return fmt.Errorf("history: storage %s: fill from %s: %w", cfg.Storage, from.Hex(), err)
	}
	defer it.Close(ctx)
	first := !w.checked
	n := 0
	var ahead []*zrpc.TransactionInfo // read at once, not looked at yet
	if want > 1 && w.checked && stop != 0 {
		if ahead, err = it.NextN(ctx, want); err != nil {
			return fmt.Errorf("history: storage %s: fill from %s: %w", cfg.Storage, from.Hex(), err)
		}
	}
	for {
		var ti *zrpc.TransactionInfo
		if len(ahead) > 0 {
			ti, ahead = ahead[0], ahead[1:]
		} else if ti, err = it.Next(ctx); err != nil {
			return fmt.Errorf("history: storage %s: fill from %s after %d commits: %w", cfg.Storage, from.Hex(), n, err)
		}
		if ti == nil {
			break
		}
		if first {
			first = false
			if from != 0 && ti.TID != from {
				// Packed away, or the storage was replaced by one that
				// shares no history up to here: nothing proves a gap, say it.
				cfg.Logger.Warn("the last commit seen is no longer in the storage; continuing after it",
					"storage", cfg.Storage, "tid", from.Hex(), "next", ti.TID.Hex())
				w.count(func(s *Status) { s.Anomalies++ })
			}
		}
		if ti.TID <= w.readUpTo() {
			w.checked = w.checked || ti.TID == w.last
			continue
		}
		if err := w.add(ctx, Commit{Storage: cfg.Storage, TID: ti.TID, Meta: metaOf(ti)}); err != nil {
			return err
		}
		n++
		if ti.TID == stop {
			break // the server would only answer that the iterator ended
		}
	}
	if err := w.flush(ctx); err != nil {
		return err
	}
	if n > 0 {
		w.count(func(s *Status) { s.FromIterator += uint64(n) })
		if stop == 0 { // a gap; with Metadata every commit is read so, not worth a line each
			cfg.Logger.Debug("filled from the iterator", "storage", cfg.Storage, "from", from.Hex(), "commits", n)
		}
	}
	return nil
}

// readUpTo is the last TID read, delivered or not.
func (w *Watcher) readUpTo() txn.TID {
	if n := len(w.batch); n > 0 {
		return w.batch[n-1].TID
	}
	return w.last
}

// add queues a commit for delivery (a Sink gets it at once; a BatchSink
// when MaxBatch are queued or at the next flush).
func (w *Watcher) add(ctx context.Context, c Commit) error {
	w.batch = append(w.batch, c)
	if w.cfg.BatchSink != nil && len(w.batch) < MaxBatch {
		return nil
	}
	return w.flush(ctx)
}

// flush hands the queued commits to the sink and moves w.last.
func (w *Watcher) flush(ctx context.Context) error {
	if len(w.batch) == 0 {
		return nil
	}
	defer func() {
		clear(w.batch)
		w.batch = w.batch[:0]
	}()
	var err error
	if w.cfg.BatchSink != nil {
		err = w.cfg.BatchSink(ctx, w.batch)
	} else {
		for _, c := range w.batch {
			if err = w.cfg.Sink(ctx, c); err != nil {
				break
			}
			w.delivered(c.TID, 1)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fatal{fmt.Errorf("history: storage %s: sink refused %s: %w", w.cfg.Storage, w.readUpTo().Hex(), err)}
	}
	if w.cfg.BatchSink != nil {
		w.delivered(w.readUpTo(), len(w.batch))
	}
	return nil
}

func (w *Watcher) delivered(t txn.TID, n int) {
	w.last, w.checked = t, true
	w.count(func(s *Status) { s.LastTID = t; s.Delivered += uint64(n) })
}

// onAsync runs on the connection's reader goroutine: it must not block.
func (w *Watcher) onAsync(p *pending, m *zrpc.Message) {
	if m.Name != "invalidateTransaction" {
		return // info and the like say nothing about commits
	}
	args, err := m.CallArgs()
	var t txn.TID
	if err == nil && len(args) == 2 {
		t, err = zrpc.ParseTID(args[0])
	} else if err == nil {
		err = fmt.Errorf("%d arguments", len(args))
	}
	if err != nil {
		// A commit we cannot read: let the iterator say what it was.
		w.cfg.Logger.Warn("undecodable invalidation; reading the iterator instead", "storage", w.cfg.Storage, "error", err)
		p.lose()
		return
	}
	w.maxServerTID(t)
	p.push(t)
}

func (w *Watcher) maxServerTID(t txn.TID) {
	for {
		old := w.serverTID.Load()
		if uint64(t) <= old || w.serverTID.CompareAndSwap(old, uint64(t)) {
			return
		}
	}
}

// countAbove counts the TIDs of ts above after, in increasing order (as
// a server announces them); anything out of order is not counted, so the
// count never exceeds the distinct commits named.
func countAbove(ts []txn.TID, after txn.TID) int {
	n, prev := 0, after
	for _, t := range ts {
		if t > prev {
			n, prev = n+1, t
		}
	}
	return n
}

func maxTID(ts []txn.TID) txn.TID {
	var m txn.TID
	for _, t := range ts {
		m = max(m, t)
	}
	return m
}
