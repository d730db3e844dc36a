package classic

import (
	"maps"
	"sync"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// refBackend reproduces the coherency algorithm of the original daemon
// (docs/classic-protocol.md, "The coherency algorithm of the original daemon"), so
// that the scenario tests expect the DUMP results the original gave. It is a
// test oracle, not the product: the real tracker lives in package tracker.
//
// Where the original misbehaved (a COMMIT carrying None or naming other
// storages than its BEGIN wedged the group; an empty or duplicated BEGIN
// half-registered), this oracle ends the transaction and keeps what is valid;
// no scenario depends on those faults.
//
// Bootstrap follows the original's observable order: a transaction end is
// first used to publish (if bootstrap is done), otherwise to check whether
// every configured storage has had a commit; so the first values appear at
// the transaction end after the one that completed bootstrap. With no
// configured storage, the first transaction end completes bootstrap (the
// original without a bootstrap URL).
type refBackend struct {
	mu           sync.Mutex
	configured   []string
	bootstrapped bool
	seen         map[string]bool                // storages committed since the start
	inflight     map[string][]string            // transaction id → its storages
	storageTxns  map[string]map[string]struct{} // storage → transactions in flight on it
	group        map[string]*refGroup           // storage → its group
	transient    map[string]txn.TID             // committed, not yet published
	published    map[string]txn.TID
	refused      []string // storages whose publication would have decreased (CRITICAL in the original)
}

// refGroup is a set of storages linked by in-flight transactions; it holds
// the members that still have a transaction in flight. Storages whose
// transactions ended keep pointing at the group until it drains or merges.
type refGroup struct{ busy map[string]struct{} }

func newRefBackend(configured []string) *refBackend {
	return &refBackend{
		configured:  configured,
		seen:        make(map[string]bool),
		inflight:    make(map[string][]string),
		storageTxns: make(map[string]map[string]struct{}),
		group:       make(map[string]*refGroup),
		transient:   make(map[string]txn.TID),
		published:   make(map[string]txn.TID),
	}
}

func (b *refBackend) ClassicBegin(id string, storages []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, busy := b.inflight[id]; busy || len(storages) == 0 {
		return // the original refused a second BEGIN and asserted a non-empty list
	}
	uniq := make([]string, 0, len(storages))
	merged := &refGroup{busy: make(map[string]struct{})}
	old := make(map[*refGroup]bool)
	for _, s := range storages {
		if _, dup := merged.busy[s]; dup {
			continue
		}
		uniq = append(uniq, s)
		merged.busy[s] = struct{}{}
		if b.storageTxns[s] == nil {
			b.storageTxns[s] = make(map[string]struct{})
		}
		b.storageTxns[s][id] = struct{}{}
		if g := b.group[s]; g != nil {
			old[g] = true
			for m := range g.busy {
				merged.busy[m] = struct{}{}
			}
		}
	}
	b.inflight[id] = uniq
	// Every storage of a merged group, busy or not, joins the new group:
	// an idle member may hold a transient value that must wait too.
	for s, g := range b.group {
		if old[g] {
			b.group[s] = merged
		}
	}
	for s := range merged.busy {
		b.group[s] = merged
	}
}

func (b *refBackend) ClassicCommit(id string, tids map[string]txn.TID, none []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.inflight[id]; !ok {
		return // "Commit received, but never began"
	}
	for s, v := range tids {
		b.seen[s] = true
		if v > b.transient[s] {
			b.transient[s] = v
		}
	}
	b.end(id)
}

func (b *refBackend) ClassicAbort(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.inflight[id]; !ok {
		return // "Abort received, but never began"
	}
	b.end(id)
}

func (b *refBackend) end(id string) {
	for _, s := range b.inflight[id] {
		txns := b.storageTxns[s]
		delete(txns, id)
		if len(txns) == 0 {
			delete(b.storageTxns, s)
			delete(b.group[s].busy, s)
		}
	}
	delete(b.inflight, id)
	if !b.bootstrapped {
		done := true
		for _, s := range b.configured {
			done = done && b.seen[s]
		}
		b.bootstrapped = done
		return
	}
	for s, g := range b.group {
		v, ok := b.transient[s]
		if !ok || len(g.busy) != 0 {
			continue
		}
		delete(b.transient, s)
		if v > b.published[s] {
			b.published[s] = v
		} else {
			b.refused = append(b.refused, s)
		}
	}
}

func (b *refBackend) Dump() map[string]txn.TID {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.published)
}

func (b *refBackend) Bootstrapped() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bootstrapped
}
