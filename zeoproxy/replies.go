package zeoproxy

import (
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// Server → client: the replies to vote and tpc_finish, seen before they are
// forwarded.

// s2cInspector observes server → client frames.
type s2cInspector struct{ c *conn }

func (i s2cInspector) unseen(reason string) { i.c.lockedMarkBlind("server stream: " + reason) }

func (i s2cInspector) head(prefix []byte, size int) bool {
	c := i.c
	c.s2cFrames++
	if c.s2cFrames == 1 {
		return true // the server's announcement
	}
	if c.pending.Load() == 0 {
		return false
	}
	h, err := zrpc.PeekMessage(c.enc, prefix)
	if err != nil {
		c.lockedMarkBlind("server frame " + itoa(c.s2cFrames) + ": " + err.Error())
		return false
	}
	if h.Method != zrpc.MethodReply || h.MsgIDKind != zrpc.MsgIDInt {
		return false
	}
	c.mu.Lock()
	want := (c.ph == txn.PhaseVoting && h.MsgID == c.voteID) || (c.ph == txn.PhaseFinishing && h.MsgID == c.finishID)
	c.mu.Unlock()
	return want
}

func (i s2cInspector) whole(payload []byte) {
	c := i.c
	if c.s2cFrames == 1 {
		if p, err := zrpc.ParseServerHandshake(payload); err != nil {
			c.log.Warn("unrecognised server announcement", "error", err)
		} else {
			c.log.Trace("server announced", "protocol", p.String())
		}
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := decodeReply(c.enc, payload)
	if err != nil {
		c.markBlind("server frame " + itoa(c.s2cFrames) + ": " + err.Error())
		return
	}
	t := c.l.p.tracker
	switch {
	case c.ph == txn.PhaseVoting && r.MsgID == c.voteID:
		c.pending.Add(-1)
		switch {
		case r.IsError():
			c.ph = txn.PhaseVoteFailed
			t.Observe(txn.Event{Kind: txn.Vote, Part: c.part, OK: false})
			c.l.p.metrics.votesFailed.Add(1)
		case !r.Voted():
			c.ph = txn.PhaseBegun // conflicts: the client resolves them and votes again
		default:
			c.ph = txn.PhaseVoted
			t.Observe(txn.Event{Kind: txn.Vote, Part: c.part, OK: true})
		}
	case c.ph == txn.PhaseFinishing && r.MsgID == c.finishID:
		c.pending.Add(-1)
		tid, ok := r.TID()
		switch {
		case r.IsError():
			// The storage failed inside tpc_finish: whether anything was
			// written is unknown until the storage is read.
			c.log.Error("tpc_finish failed on the server: outcome in doubt, resolving", "storage", c.storage, "error", r.ErrorClass())
			t.Observe(txn.Event{Kind: txn.Lost, Part: c.part})
			c.l.p.resolveLater(c.l, c.storName, c.storage, c.begin, c.floor)
		case ok:
			t.Observe(txn.Event{Kind: txn.Finished, Part: c.part, TID: tid})
			c.l.p.noteTID(c.storage, tid)
			c.l.p.metrics.commits.Add(1)
		default:
			// None: the server had no matching transaction: nothing committed.
			t.Observe(txn.Event{Kind: txn.Resolved, Part: c.part, OK: false, TID: 0})
		}
		close(c.finishDone)
		c.finishDone = nil
		c.part, c.ph = 0, txn.PhaseIdle
	}
}
