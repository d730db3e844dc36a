package zeoproxy

import (
	"context"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// resolveWait bounds how long an in-doubt participation waits for a later
// vote on its storage to decide it exactly (see storageOrder.decide); past
// it, the storage's transactions decide alone (see fallback). A later vote
// still held when it passes is waited for up to resolveHeldWait.
var (
	resolveWait     = 3 * time.Second
	resolveHeldWait = 30 * time.Second
	resolvePoll     = 100 * time.Millisecond
)

// resolveLater settles an in-doubt participation (tpc_finish forwarded,
// reply never seen) from the order of the commit lock on its storage
// (docs/design.md, "In-doubt resolution"): if it committed, its commit is
// the first one on the storage after the floor of its tenure, and whether
// that commit is its own is told by the tenures that voted after it. Until
// then the tracker keeps the storage pinned.
func (p *Proxy) resolveLater(l *listener, zeoName, storageID string, b txn.Event, t *tenure) {
	p.metrics.inDoubt.Add(1)
	p.resolveWG.Add(1)
	go func() {
		defer p.resolveWG.Done()
		log := l.log.With("storage", storageID, "user", b.Info.User, "description", b.Info.Description)
		o := p.order(storageID)
		r := &storageReader{p: p, l: l, zeoName: zeoName}
		defer r.close()
		var (
			floor     txn.TID
			haveFloor bool
			x         *zrpc.TransactionInfo
			since     time.Time
			backoff   = time.Second
		)
		for {
			o.mu.Lock()
			if !haveFloor {
				if floor, haveFloor = o.floorOf(t); haveFloor {
					since = time.Now()
				}
			}
			readSeq := o.seq
			o.mu.Unlock()
			if haveFloor && x == nil {
				ti, err := r.first(floor)
				if err != nil {
					log.Warn("cannot read the storage to resolve an in-doubt commit; retrying", "error", err, "retry_in", backoff)
					if !p.sleep(backoff) {
						return
					}
					backoff = min(2*backoff, time.Minute)
					continue
				}
				x = ti
			}
			if haveFloor {
				var xTID txn.TID
				if x != nil {
					xTID = x.TID
				}
				o.mu.Lock()
				v := o.decide(t, xTID, x != nil, readSeq)
				how := "from the commit order"
				if v == notCommittedRaced {
					how = "from the commit order (a later in-doubt vote had not seen the commit)"
				}
				if waited := time.Since(since); v == undecided && waited >= resolveWait && (waited >= resolveHeldWait || !o.laterHeld(t)) {
					v, how = fallback(x, b), "from the storage alone: no later vote on it to compare with"
				}
				if v != undecided {
					committed := v == isCommitted
					if committed && p.claimed(storageID, xTID) {
						// Another participation's finish reply carried it.
						committed, how = false, "the first commit after its floor belongs to another participation"
					}
					o.settle(t, committed, xTID)
					if committed {
						p.noteTID(storageID, xTID)
					}
					o.mu.Unlock()
					if committed {
						log.Info("in-doubt participation resolved: committed", "tid", xTID.Hex(), "floor", floor.Hex(), "how", how)
						p.tracker.Observe(txn.Event{Kind: txn.Resolved, Part: b.Part, OK: true, TID: xTID})
						p.metrics.resolvedCommitted.Add(1)
					} else {
						log.Info("in-doubt participation resolved: not committed", "floor", floor.Hex(), "how", how)
						p.tracker.Observe(txn.Event{Kind: txn.Resolved, Part: b.Part, OK: false, TID: 0})
						p.metrics.resolvedAborted.Add(1)
					}
					return
				}
				o.mu.Unlock()
			}
			if !p.sleep(resolvePoll) {
				return
			}
		}
	}()
}

// fallback decides an in-doubt participation when no later vote on its
// storage came to tell (the storage went quiet). The server processes a
// whole tpc_finish frame before it notices the lost connection, so by now
// its outcome is in the storage: no commit after the floor means it did not
// commit; a first commit with its user, description and extension is taken
// for its own. What this cannot tell apart: a client that bypasses the proxy
// (or another proxy) committing with identical metadata right after it
// (docs/design.md, "Out of reach").
func fallback(x *zrpc.TransactionInfo, b txn.Event) verdict {
	if x != nil && string(x.User) == b.Info.User && string(x.Description) == b.Info.Description &&
		zrpc.CanonicalText(x.Extension) == b.Info.Extension {
		return isCommitted
	}
	return notCommitted
}

func (p *Proxy) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-p.ctx.Done():
		return false
	}
}

// storageReader is a resolution's own read-only connection to the storage.
type storageReader struct {
	p       *Proxy
	l       *listener
	zeoName string
	c       *zrpc.Client
}

// first returns the first transaction committed after floor, nil if none.
func (r *storageReader) first(floor txn.TID) (*zrpc.TransactionInfo, error) {
	ctx, cancel := context.WithTimeout(r.p.ctx, 30*time.Second)
	defer cancel()
	if r.c == nil {
		network, addr := splitAddr(r.l.cfg.Upstream)
		c, _, err := zrpc.DialStorage(ctx, network, addr, r.zeoName, r.l.clientOptions(zrpc.ClientOptions{}))
		if err != nil {
			return nil, err
		}
		r.c = c
	}
	start := (floor + 1).Bytes()
	txns, _, err := r.c.Transactions(ctx, start[:], nil, 1)
	if err != nil {
		r.close()
		return nil, err
	}
	if len(txns) == 0 {
		return nil, nil
	}
	return txns[0], nil
}

func (r *storageReader) close() {
	if r.c != nil {
		r.c.Close()
		r.c = nil
	}
}

// unblindLater ends a blind connection's hold on its storage once the
// storage's last TID has been read (after the connection closed, so it
// covers whatever that connection committed unseen). If the server cannot be
// reached it retries for a while, then unblinds with 0 and says so.
func (p *Proxy) unblindLater(l *listener, zeoName, storageID string) {
	p.resolveWG.Add(1)
	go func() {
		defer p.resolveWG.Done()
		backoff := 200 * time.Millisecond
		for attempt := 0; ; attempt++ {
			ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
			tid, err := p.lastTIDOf(ctx, l, zeoName)
			cancel()
			if err == nil {
				p.noteTID(storageID, tid)
				p.tracker.Observe(txn.Event{Kind: txn.Unblind, Storage: storageID, TID: tid})
				return
			}
			if p.ctx.Err() != nil || attempt == 8 {
				l.log.Error("cannot read the last TID of a storage after a blind connection closed", "storage", storageID, "error", err)
				p.tracker.Observe(txn.Event{Kind: txn.Unblind, Storage: storageID, TID: 0})
				return
			}
			if !p.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, 10*time.Second)
		}
	}()
}
