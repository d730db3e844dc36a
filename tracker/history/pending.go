package history

import (
	"sync"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// pending holds the TIDs of invalidations received but not yet delivered,
// for one connection. The socket reader pushes, the watcher's loop takes.
// Beyond max the TIDs are dropped and overflow is set: the loop then reads
// the storage's iterator instead, so a slow consumer costs at most max TIDs
// of memory and never stalls the reader (which also carries heartbeats).
type pending struct {
	mu       sync.Mutex
	tids     []txn.TID
	max      int
	overflow bool
	ready    chan struct{} // capacity 1: "something to take"
}

func newPending(max int) *pending {
	return &pending{max: max, ready: make(chan struct{}, 1)}
}

func (p *pending) push(t txn.TID) {
	p.mu.Lock()
	switch {
	case p.overflow: // dropped: the iterator will tell it
	case len(p.tids) >= p.max:
		p.overflow = true
		p.tids = p.tids[:0]
	default:
		p.tids = append(p.tids, t)
	}
	p.mu.Unlock()
	select {
	case p.ready <- struct{}{}:
	default:
	}
}

// take returns the buffered TIDs (appended to buf) and whether some were
// dropped since the last take; both are reset.
func (p *pending) take(buf []txn.TID) ([]txn.TID, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	buf = append(buf, p.tids...)
	p.tids = p.tids[:0]
	o := p.overflow
	p.overflow = false
	return buf, o
}

func (p *pending) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.tids)
}

// lose records that a TID could not be kept (an undecodable invalidation).
func (p *pending) lose() {
	p.mu.Lock()
	p.overflow = true
	p.tids = p.tids[:0]
	p.mu.Unlock()
	select {
	case p.ready <- struct{}{}:
	default:
	}
}
