package zeoproxy

import (
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// Server → client: the replies to vote and tpc_finish, seen before they are
// forwarded, and the TID of every invalidateTransaction.

// s2cInspector observes server → client frames.
type s2cInspector struct{ c *conn }

func (i s2cInspector) unseen(reason string) { i.c.lockedMarkBlind("server stream: " + reason) }

func (i s2cInspector) skipped(overBudget bool, reason string) {
	i.c.l.p.metrics.countSkipped(overBudget, false)
	i.c.lockedMarkBlind("server frame " + itoa(i.c.s2cFrames) + ": " + reason)
}

// limit: the server is the configured upstream; its frames are held to
// Config.MaxFrameSize (and the decode budget) only.
func (i s2cInspector) limit() int { return i.c.l.p.cfg.MaxFrameSize }

func (i s2cInspector) head(prefix []byte, size int) bool {
	c := i.c
	c.s2cFrames++
	if c.s2cFrames == 1 {
		return true // the server's announcement
	}
	if c.scEnc == 0 {
		if c.scSkip || !c.learnEncoding() {
			return false
		}
	}
	if tupleMsgID(c.scEnc, prefix) {
		return false // a loadBefore reply: neither an invalidation nor a 2PC reply
	}
	h, err := zrpc.PeekMessage(c.scEnc, prefix)
	if err != nil {
		c.lockedMarkBlind("server frame " + itoa(c.s2cFrames) + ": " + err.Error())
		return false
	}
	if h.Method == zrpc.MethodInvalidateTransaction {
		// Every commit of another connection, in commit order, before this
		// connection's next vote reply or tpc_finish reply (docs/design.md,
		// "In-doubt resolution").
		if tid, err := zrpc.PeekArgTID(c.scEnc, prefix, &h); err == nil {
			if uint64(tid) > c.seen.Load() {
				c.seen.Store(uint64(tid))
			}
		} else {
			c.lockedMarkBlind("server frame " + itoa(c.s2cFrames) + ": invalidateTransaction: " + err.Error())
		}
		return false
	}
	if h.Method != zrpc.MethodReply || h.MsgIDKind != zrpc.MsgIDInt {
		return false
	}
	if w := c.regWait.Load(); w != 0 && h.MsgID == w {
		c.regWait.Store(0)
		if !h.IsError() {
			c.prove()
		}
		return false
	}
	if c.pending.Load() == 0 {
		return false
	}
	c.mu.Lock()
	want := c.tx.awaits(h.MsgID)
	c.mu.Unlock()
	return want
}

// learnEncoding copies the connection's encoding for the server→client pump
// once the client's handshake has been seen; false while it is not known.
// A direction that is not observed stops asking.
func (c *conn) learnEncoding() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.unsup != "":
		c.scSkip = true
	case c.encKnown:
		c.scEnc = c.enc
	}
	return c.scEnc != 0
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
	st := c.tx.reply(r)
	if st.kind == stepFinishFailed {
		c.log.Error("tpc_finish failed on the server: outcome in doubt, resolving", "storage", c.storageID, "error", r.ErrorClass())
	}
	c.apply(st)
}

// voted starts the tenure of part's successful vote (c.mu held). When another
// tenure of the storage is still held or in doubt, its commit may have been
// made in the event-loop pass that served this vote, with its invalidation
// written after this vote reply: the reply is then held back until the
// storage's witness has seen every commit made so far (docs/design.md,
// "In-doubt resolution"). The voter holds the commit lock meanwhile, so that
// is exactly every commit before this vote.
func (c *conn) voted(part txn.PartID) *tenure {
	p := c.l.p
	o := p.order(c.storageID)
	floor := p.floorTID(c.storageID)
	certified := false
	if o.contended() {
		if cert, err := p.certify(c.l, c.zeoName); err != nil {
			c.log.Warn("cannot read the storage's commits before a vote; the vote stays uncertified", "storage", c.storageID, "error", err)
		} else {
			floor, certified = max(floor, cert), true
		}
	}
	return o.voted(part, floor, &c.seen, certified)
}

// tupleMsgID recognises, from its first bytes, a frame whose msgid is not an
// int: the reply to a loadBefore (msgid (oid, tid)), most of a server's
// traffic. Invalidations (msgid 0) and the 2PC replies (int msgids) never
// are. Anything it does not recognise is peeked in full.
func tupleMsgID(enc zrpc.Encoding, p []byte) bool {
	switch enc {
	case zrpc.Pickle: // PROTO 3, MARK, then the msgid: bytes or MARK start a tuple
		return len(p) > 3 && p[0] == 0x80 && p[2] == '(' && (p[3] == 'C' || p[3] == 'B' || p[3] == '(')
	case zrpc.Msgpack: // array(4), then the msgid: an array
		return len(p) > 1 && p[0] == 0x94 && (p[1]&0xf0 == 0x90 || p[1] == 0xdc)
	}
	return false
}
