package zeoproxy

import (
	"sync"
	"sync/atomic"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// The commit order of a storage, as the proxy can know it exactly
// (docs/design.md, "In-doubt resolution"; the ZEO facts are in
// docs/zeo-protocol.md §5).
//
// ZEO holds a storage's commit lock from a successful vote until that
// transaction's tpc_finish, tpc_abort or lost connection: a tenure. Nothing
// else commits during a tenure, so tenures are disjoint and a committed
// tenure's TID is the first commit after its vote. The proxy sees the vote
// reply of a tenure before the client can send its tpc_finish or tpc_abort
// (the reply goes through the proxy first), and the tenure's commit comes
// after that tpc_finish. So the order in which the proxy observes successful
// vote replies is the order of the tenures that end by the client's own
// call: a committed or in-doubt tenure with a smaller sequence number ended
// (and committed, if it did) before any tenure with a larger one began.
//
// Every invalidateTransaction relayed on a connection before its tenure
// ended (its tpc_finish reply, or its end as the proxy saw it) is a commit
// made before its vote: a connection is not sent its own commit, and no
// other commit happens during the tenure.

type tenureState uint8

const (
	tenHeld      tenureState = iota // voted; its end not seen yet
	tenCommitted                    // committed with tid (reply seen, or resolved)
	tenNone                         // ended without committing (abort, None reply, resolved not committed)
	tenUnordered                    // lost while voted: did not commit, and may have ended before the proxy saw its vote
	tenInDoubt                      // tpc_finish forwarded, outcome unknown until resolved
)

// tenure is one successful vote on a storage, up to its end.
type tenure struct {
	seq   uint64
	part  txn.PartID
	floor txn.TID        // highest TID known committed on the storage when the vote reply was seen
	live  *atomic.Uint64 // while held: the connection's seen (highest TID relayed to its client)
	bound txn.TID        // seen, frozen when the tenure ended: every commit ≤ bound came before the vote
	state tenureState
	tid   txn.TID // when committed
	// certified: floor is every commit before the vote (the vote reply was
	// held until the storage's witness had seen them all), so a commit
	// above floor came after the vote.
	certified bool
}

// storageOrder is the tenures of one storage in the order their votes were
// seen, from the oldest still needed.
type storageOrder struct {
	mu   sync.Mutex
	seq  uint64
	base txn.TID // highest committed TID of the tenures dropped from tens
	tens []*tenure
}

// order returns the storage's tenure log.
func (p *Proxy) order(storageID string) *storageOrder {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := p.orders[storageID]
	if o == nil {
		o = &storageOrder{}
		p.orders[storageID] = o
	}
	return o
}

// voted records a successful vote reply, seen before it is forwarded.
func (o *storageOrder) voted(part txn.PartID, floor txn.TID, seen *atomic.Uint64, certified bool) *tenure {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seq++
	t := &tenure{seq: o.seq, part: part, floor: max(floor, txn.TID(seen.Load())), live: seen, state: tenHeld, certified: certified}
	o.tens = append(o.tens, t)
	return t
}

// end records how a held tenure ended (state tenCommitted with tid,
// tenNone, tenUnordered or tenInDoubt) and freezes its bound.
func (o *storageOrder) end(t *tenure, state tenureState, tid txn.TID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if t.live != nil {
		t.bound = txn.TID(t.live.Load())
		t.live = nil
	}
	t.state, t.tid = state, tid
	o.prune()
}

// contended reports a tenure held or in doubt: one whose commit the proxy
// may not know yet, made in the same event-loop pass as a vote served now.
func (o *storageOrder) contended() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, t := range o.tens {
		if t.state == tenHeld || t.state == tenInDoubt {
			return true
		}
	}
	return false
}

// settle records an in-doubt tenure's resolution (o.mu held).
func (o *storageOrder) settle(t *tenure, committed bool, tid txn.TID) {
	if committed {
		t.state, t.tid = tenCommitted, tid
	} else {
		t.state = tenNone
	}
	o.prune()
}

// prune drops the settled tenures at the front, keeping their highest
// commit (o.mu held). A tenure still held or in doubt keeps everything
// after it: its resolution, or a later one's, may need them.
func (o *storageOrder) prune() {
	n := 0
	for _, t := range o.tens {
		if t.state == tenHeld || t.state == tenInDoubt {
			break
		}
		if t.state == tenCommitted {
			o.base = max(o.base, t.tid)
		}
		n++
	}
	if n > 0 {
		o.tens = append(o.tens[:0], o.tens[n:]...)
	}
}

// floorOf is the highest commit known to precede t's vote, once every
// earlier tenure is settled (o.mu held): ok is false while one is held or in
// doubt, for its commit comes before t's and may be above the floor.
func (o *storageOrder) floorOf(t *tenure) (floor txn.TID, ok bool) {
	floor = max(o.base, t.floor, t.bound)
	for _, u := range o.tens {
		if u.seq >= t.seq {
			break
		}
		switch u.state {
		case tenHeld, tenInDoubt:
			return 0, false
		case tenCommitted:
			floor = max(floor, u.tid)
		}
	}
	return floor, true
}

// verdict is what the tenure log says of an in-doubt tenure t, given x, the
// first commit on the storage after t's floor (found false: none, read
// after the vote numbered readSeq was seen).
type verdict uint8

const (
	undecided verdict = iota
	isCommitted
	notCommitted
	notCommittedRaced // decided by a later in-doubt tenure's bound (see decide)
)

// decide applies the ordering to t (o.mu held). If t committed, its commit
// is x: nothing commits between t's floor and t's own commit. x is t's iff
// it comes before the first later tenure began:
//   - a later committed tenure: x is t's iff x < its TID;
//   - a later tenure whose bound (commits relayed to its client before it
//     ended, all of them before its vote) reaches x: x is t's;
//   - a later certified tenure (its floor is every commit before its vote)
//     decides: x is t's iff x ≤ its floor;
//   - a later tenure that ended without committing says nothing more: look past it;
//   - a later tenure still held: wait for its end (lost while voted, it may
//     have ended before t began, and is skipped);
//   - no commit after the floor, read once a later tenure had voted (so t's
//     tenure was over on the server): t did not commit.
//
// An uncertified later tenure itself in doubt, whose bound does not reach x, is taken
// as proof that x came after its vote (notCommittedRaced). That is exact
// when ZEO delayed its vote for the lock (the invalidation of x is then
// written before its vote reply); when its vote was served in the same
// event-loop pass as t's tpc_finish, the invalidation follows the vote reply
// and precedes only its tpc_finish reply — relayed in practice, but not
// certainly if the connection was cut at that moment. Documented in
// docs/design.md, "Out of reach".
func (o *storageOrder) decide(t *tenure, x txn.TID, found bool, readSeq uint64) verdict {
	for _, u := range o.tens {
		if u.seq <= t.seq {
			continue
		}
		if u.state == tenHeld {
			// Ordered after t only if it ends by its client's own call: wait
			// for its end (a reply, an abort or its loss), which comes soon.
			return undecided
		}
		if !found {
			if u.state != tenUnordered && u.seq <= readSeq {
				return notCommitted
			}
			continue
		}
		switch {
		case u.state == tenUnordered:
		case u.state == tenCommitted:
			if x < u.tid {
				return isCommitted
			}
			return notCommitted
		case max(u.bound, u.floor) >= x:
			return isCommitted
		case u.certified:
			return notCommitted // x came after u's vote, t's before
		case u.state == tenInDoubt:
			return notCommittedRaced
		}
	}
	return undecided
}

// laterHeld reports a tenure after t still held (o.mu held).
func (o *storageOrder) laterHeld(t *tenure) bool {
	for _, u := range o.tens {
		if u.seq > t.seq && u.state == tenHeld {
			return true
		}
	}
	return false
}
