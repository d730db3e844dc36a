package zeoproxy

import (
	"bytes"

	"github.com/tidstorage/tidstorage/zrpc"
)

// Client → server: the handshake, register, tpc_begin and the 2PC calls,
// seen before they are forwarded.

var setClientLabel = []byte("set_client_label")

// c2sInspector observes client → server frames.
type c2sInspector struct{ c *conn }

func (i c2sInspector) unseen(reason string) { i.c.lockedMarkBlind("client stream: " + reason) }

// limit: until the server has accepted its register, a client is held to
// what real ZEO clients send before it (docs/zeo-protocol.md §1, "Memory").
func (i c2sInspector) limit() int {
	if i.c.proven.Load() {
		return i.c.l.p.cfg.MaxFrameSize
	}
	return i.c.l.p.cfg.MaxPreRegisterFrame
}

// skipped: a frame the proxy wanted whole was relayed undecoded. A
// handshake that is not decoded leaves the connection unobserved.
func (i c2sInspector) skipped(overBudget bool, reason string) {
	c := i.c
	c.l.p.metrics.countSkipped(overBudget, !c.proven.Load())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c2sFrames++
	if c.c2sFrames == 1 {
		c.unsup = "handshake not decoded: " + reason
	}
	c.markBlind("client frame " + itoa(c.c2sFrames) + ": " + reason)
}

func (i c2sInspector) head(prefix []byte, size int) bool {
	c := i.c
	if c.c2sFrames == 0 {
		return true // the handshake answer: tiny
	}
	if !c.encKnown || c.unsup != "" {
		c.c2sFrames++
		return false
	}
	h, err := zrpc.PeekMessage(c.enc, prefix)
	if err != nil {
		c.c2sFrames++
		c.lockedMarkBlind("client frame " + itoa(c.c2sFrames) + ": " + err.Error())
		return false
	}
	switch h.Method {
	case zrpc.MethodRegister:
		if h.MsgIDKind == zrpc.MsgIDInt && !c.proven.Load() {
			c.regWait.Store(h.MsgID) // its reply proves the client
		}
		return true
	case zrpc.MethodTPCBegin:
		c.awaitIdentity() // the participation's key names the client
		return true
	case zrpc.MethodUnknown:
		if c.l.p.cfg.ClientLabelIdentity && bytes.Equal(h.Name, setClientLabel) {
			return true
		}
	case zrpc.MethodVote, zrpc.MethodTPCFinish, zrpc.MethodTPCAbort:
		c.c2sFrames++
		c.mu.Lock()
		if h.Method != zrpc.MethodTPCAbort && c.l.p.stop.stopping.Load() {
			// Read under c.mu: a stop's closing scan sees this call.
			c.mu.Unlock()
			c.l.p.admitCall(c, h.Method, h.MsgID) // may hold the frame
			return false
		}
		c.apply(c.tx.call(h.Method, h.MsgID))
		c.mu.Unlock()
		return false
	}
	c.c2sFrames++
	return false
}

func (i c2sInspector) whole(payload []byte) {
	c := i.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c2sFrames++
	if c.c2sFrames == 1 {
		hs, err := zrpc.ParseClientHandshake(payload)
		switch {
		case err != nil:
			c.unsup = err.Error()
			c.log.Warn("unrecognised client handshake; relaying unobserved", "error", err)
		case hs.Ruok:
			c.ruok = true
			c.unsup = "ruok probe"
		case hs.Protocol.ZEO4():
			c.hsValid = true
			c.unsup = "protocol " + hs.Protocol.String() + " (ZEO 4) is relayed but not observed"
			c.markBlind(c.unsup)
		default:
			c.hsValid = true
			c.enc, c.encKnown = hs.Protocol.Encoding, true
		}
		return
	}
	call, err := decodeCall(c.enc, payload)
	if err != nil {
		c.markBlind("client frame " + itoa(c.c2sFrames) + ": " + err.Error())
		return
	}
	switch call := call.(type) {
	case *zrpc.Register:
		reg := call
		if c.registered || c.blind {
			return // ZEO refuses a second register; the first one stands
		}
		c.registered = true
		c.zeoName = reg.Storage
		c.storageID = c.l.storageID(reg.Storage)
		// c.log stays as it is: the other direction's goroutine reads it.
		c.log.Info("client registered", "storage", c.storageID, "identity", c.ident(), "read_only", reg.ReadOnly)
	case *zrpc.TPCBegin:
		c.onBegin(call)
	case *zrpc.UnknownCall:
		if call.Name == "set_client_label" && len(call.Arguments) == 1 {
			if label, err := zrpc.AsString(call.Arguments[0]); err == nil {
				c.label = label
			}
		}
	}
}

// clientID is the client identity of a participation: the peer host or
// process, plus the ZEO client-label when the operator opted in
// (Config.ClientLabelIdentity). c.mu held.
func (c *conn) clientID() string {
	id := c.ident()
	if id == "" {
		id = c.host
	}
	if c.l.p.cfg.ClientLabelIdentity && c.label != "" {
		return id + " label:" + c.label
	}
	return id
}

// onBegin starts a participation (c.mu held). While the proxy stops, the
// stop's gate decides first, and a new transaction's tpc_begin is held
// (docs/admin.md, "Stopping"); c.mu is released meanwhile.
func (c *conn) onBegin(tb *zrpc.TPCBegin) {
	p := c.l.p
	info, key := beginOf(tb, c.clientID())
	if p.stop.stopping.Load() && c.registered {
		c.mu.Unlock()
		p.admitBegin(c, info, key) // may hold the frame
		c.mu.Lock()
		return
	}
	c.apply(c.tx.tpcBegin(p.newPartID(), c.storageID, info, key))
}
