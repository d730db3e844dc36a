package zeoproxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// witnessTimeout bounds a certification; past it the vote reply goes on
// uncertified.
var witnessTimeout = 2 * time.Second

// witness is the proxy's own read-only connection to one storage. ZEO sends
// it the invalidation of every commit, queued for the next event-loop pass;
// a ping sent after a commit is read in a later pass, after those queued
// writes: so once a ping sent now is answered, the invalidation of every
// commit made before now has come in (docs/zeo-protocol.md §4.4).
type witness struct {
	mu   sync.Mutex // serialises dialing
	c    *zrpc.Client
	seen atomic.Uint64 // highest TID committed, from register and the invalidations
}

func (p *Proxy) witnessOf(l *listener, zeoName string) *witness {
	key := l.cfg.Upstream + "\x00" + zeoName
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.witnesses[key]
	if w == nil {
		w = &witness{}
		p.witnesses[key] = w
	}
	return w
}

// certify returns a TID at or above every commit made on the storage before
// it was called. The caller holds a vote reply back meanwhile: the voter then
// holds the commit lock and nothing can commit, so the result is exactly the
// last commit before that vote.
func (p *Proxy) certify(l *listener, zeoName string) (txn.TID, error) {
	w := p.witnessOf(l, zeoName)
	ctx, cancel := context.WithTimeout(p.ctx, witnessTimeout)
	defer cancel()
	w.mu.Lock()
	c := w.c
	if c != nil && c.Err() != nil {
		c.Close()
		c = nil
	}
	if c == nil {
		network, addr := splitAddr(l.cfg.Upstream)
		nc, last, err := zrpc.DialStorage(ctx, network, addr, zeoName, l.clientOptions(zrpc.ClientOptions{OnAsync: w.onAsync}))
		if err != nil {
			w.mu.Unlock()
			return 0, err
		}
		w.note(last)
		w.c, c = nc, nc
	}
	w.mu.Unlock()
	if err := c.Ping(ctx); err != nil {
		c.Close()
		return 0, err
	}
	return txn.TID(w.seen.Load()), nil
}

func (w *witness) note(t txn.TID) {
	for {
		cur := w.seen.Load()
		if uint64(t) <= cur || w.seen.CompareAndSwap(cur, uint64(t)) {
			return
		}
	}
}

func (w *witness) onAsync(m *zrpc.Message) {
	if m.Name != "invalidateTransaction" {
		return
	}
	if args, err := m.CallArgs(); err == nil && len(args) == 2 {
		if b, ok := args[0].([]byte); ok && len(b) == 8 {
			w.note(txn.TIDFromBytes([8]byte(b)))
		}
	}
}

func (p *Proxy) closeWitnesses() {
	p.mu.Lock()
	ws := p.witnesses
	p.mu.Unlock()
	for _, w := range ws {
		w.mu.Lock()
		if w.c != nil {
			w.c.Close()
		}
		w.mu.Unlock()
	}
}
