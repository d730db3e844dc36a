package zeoproxy

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// resolveDelays are the waits before each look at the storage. A tpc_finish
// frame that reached the server is processed before the server notices the
// lost connection, so the first look normally decides; the later ones cover a
// busy server.
var resolveDelays = []time.Duration{200 * time.Millisecond, time.Second, 3 * time.Second}

// resolveLater settles an in-doubt participation (tpc_finish forwarded, reply
// never seen) by reading the storage's transactions committed after the
// participation began, looking for its user, description and extension
// (docs/design.md, rule 4). Until then the tracker keeps the storage pinned.
//
// What stays ambiguous: a transaction of another client with identical
// metadata committed in the same window would be taken for this one (only
// when the proxy did not see that one's own tpc_finish reply).
func (p *Proxy) resolveLater(l *listener, storageName, storage string, b txn.Event, floor txn.TID) {
	p.metrics.inDoubt.Add(1)
	p.resolveWG.Add(1)
	go func() {
		defer p.resolveWG.Done()
		log := l.log.With("storage", storage, "user", b.Info.User, "description", b.Info.Description)
		backoff := time.Second
		attempt, overlapped := 0, 0
		for {
			if attempt < len(resolveDelays) {
				if !p.sleep(resolveDelays[attempt]) {
					return
				}
			}
			// A transaction of the same client with the same metadata (a
			// retry: ClientDisconnected is a TransientError) may commit
			// while we look. Its TID must not be taken for ours, so its
			// reply must be seen (claimed) before the look, and a look it
			// overlapped is done again.
			p.waitSameKeyFinishes(storage, b)
			seq := p.keyFinishes(b.Key)
			tid, found, err := p.findCommit(l, storageName, storage, b, floor)
			if err == nil && found && p.keyFinishes(b.Key) != seq && overlapped < 20 {
				overlapped++
				continue
			}
			if err != nil {
				log.Warn("cannot read the storage to resolve an in-doubt commit; retrying", "error", err, "retry_in", backoff)
				if !p.sleep(backoff) {
					return
				}
				backoff = min(2*backoff, time.Minute)
				continue
			}
			if found {
				log.Info("in-doubt participation resolved: committed", "tid", tid.Hex())
				p.noteTID(storage, tid)
				p.tracker.Observe(txn.Event{Kind: txn.Resolved, Part: b.Part, OK: true, TID: tid})
				p.metrics.resolvedCommitted.Add(1)
				return
			}
			attempt++
			if attempt >= len(resolveDelays) {
				log.Info("in-doubt participation resolved: not committed")
				p.tracker.Observe(txn.Event{Kind: txn.Resolved, Part: b.Part, OK: false, TID: 0})
				p.metrics.resolvedAborted.Add(1)
				return
			}
		}
	}()
}

func (p *Proxy) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-p.ctx.Done():
		return false
	}
}

// findCommit looks for a transaction with b's metadata after floor.
func (p *Proxy) findCommit(l *listener, storageName, storage string, b txn.Event, floor txn.TID) (txn.TID, bool, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	network, addr := splitAddr(l.cfg.Upstream)
	c, err := zrpc.Dial(ctx, network, addr, nil)
	if err != nil {
		return 0, false, err
	}
	defer c.Close()
	if _, err := c.Register(ctx, storageName, true); err != nil {
		return 0, false, err
	}
	start := (floor + 1).Bytes()
	for {
		txns, more, err := c.Transactions(ctx, start[:], nil, 1000)
		if err != nil {
			return 0, false, err
		}
		for _, ti := range txns {
			tid := ti.TID
			if string(ti.User) == b.Info.User && string(ti.Description) == b.Info.Description && zrpc.CanonicalText(ti.Extension) == b.Info.Extension &&
				!p.claimed(storage, tid) {
				return tid, true, nil
			}
			start = (tid + 1).Bytes()
		}
		if !more {
			return 0, false, nil
		}
	}
}

// unblindLater ends a blind connection's hold on its storage once the
// storage's last TID has been read (after the connection closed, so it
// covers whatever that connection committed unseen). If the server cannot be
// reached it retries for a while, then unblinds with 0 and says so.
func (p *Proxy) unblindLater(l *listener, storageName, storage string) {
	p.resolveWG.Add(1)
	go func() {
		defer p.resolveWG.Done()
		backoff := 200 * time.Millisecond
		for attempt := 0; ; attempt++ {
			ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
			tid, err := p.lastTIDOf(ctx, l, storageName)
			cancel()
			if err == nil {
				p.noteTID(storage, tid)
				p.tracker.Observe(txn.Event{Kind: txn.Unblind, Storage: storage, TID: tid})
				return
			}
			if p.ctx.Err() != nil || attempt == 8 {
				l.log.Error("cannot read the last TID of a storage after a blind connection closed", "storage", storage, "error", err)
				p.tracker.Observe(txn.Event{Kind: txn.Unblind, Storage: storage, TID: 0})
				return
			}
			if !p.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, 10*time.Second)
		}
	}()
}

// keyFinishes counts tpc_finish calls forwarded for correlation keys hashing
// like key (a fixed table: collisions only cost a second look).
func (p *Proxy) keyFinishes(key txn.Key) uint64 {
	return p.finishes[keyBucket(key)].Load()
}

// keyBucket is FNV-1a over the key, without allocating.
func keyBucket(key txn.Key) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(len(finishTable{})))
}

type finishTable [1024]atomic.Uint64

// waitSameKeyFinishes waits (a bounded time) until no other participation of
// the same key on the storage has a tpc_finish reply pending.
func (p *Proxy) waitSameKeyFinishes(storage string, b txn.Event) {
	deadline := time.Now().Add(p.cfg.FinishWait)
	for time.Now().Before(deadline) && p.sameKeyFinishing(storage, b) {
		if !p.sleep(20 * time.Millisecond) {
			return
		}
	}
}

func (p *Proxy) sameKeyFinishing(storage string, b txn.Event) bool {
	p.mu.Lock()
	ls := append([]*listener(nil), p.listeners...)
	p.mu.Unlock()
	for _, l := range ls {
		l.mu.Lock()
		for c := range l.conns {
			c.mu.Lock()
			busy := c.ph == txn.PhaseFinishing && c.part != b.Part && c.storage == storage && c.begin.Key == b.Key
			c.mu.Unlock()
			if busy {
				l.mu.Unlock()
				return true
			}
		}
		l.mu.Unlock()
	}
	return false
}
