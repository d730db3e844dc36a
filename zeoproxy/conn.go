package zeoproxy

import (
	"errors"
	"io"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// conn is one client connection and its own upstream connection.
type conn struct {
	l      *listener
	id     uint64
	client net.Conn
	server net.Conn
	log    hclog.Logger // set once, before the pumps start

	// identity is the client identity for correlation (peer host or
	// process), set once by setIdentity, off the relay's path for loopback
	// clients; idDone is closed then. host is the peer host's identity.
	identity atomic.Pointer[string]
	idDone   chan struct{}
	host     string
	label    string // ZEO client-label, when the client sent one

	mu         sync.Mutex
	c2sFrames  int
	s2cFrames  int
	enc        zrpc.Encoding
	encKnown   bool
	ruok       bool
	unsup      string // why the protocol is not observed (e.g. ZEO 4), "" if observed
	storageID  string // once registered: the storage id (txn.Event.Storage)
	zeoName    string // the storage's name on its ZEO server, as register names it
	registered bool
	blind      bool
	hsValid    bool       // the client's handshake names a real protocol: it may go on to commit
	blinded    []blindRef // storages this connection made blind
	// tx is the connection's two-phase commit (docs/zeo-protocol.md §10);
	// apply does what its steps say.
	tx         twoPC
	ten        *tenure       // the commit-lock tenure of tx.part, from its vote reply to its end
	finishDone chan struct{} // open while a tpc_finish reply is awaited (tx in FINISHING)

	// proven: the server answered a register of this client without error;
	// until then its frames are decoded up to Config.MaxPreRegisterFrame only.
	// regWait is the msgid of the register whose reply is awaited (0: none).
	proven   atomic.Bool
	regLeft  atomic.Bool // counted out of Metrics.unregistered (proven, or ended)
	regWait  atomic.Int64
	regTimer *time.Timer // closes the connection if it never proves to be ZEO
	// blindTimer closes the connection once it has been blind for the
	// server's BlindTimeout (c.mu).
	blindTimer *time.Timer

	// pending counts outstanding calls whose reply the proxy must see; the
	// server→client path only looks for replies while it is non-zero.
	pending atomic.Int32
	// seen is the highest TID relayed to the client in an
	// invalidateTransaction or in its own tpc_finish reply: every commit up
	// to it was made before this connection's next vote (docs/design.md,
	// "In-doubt resolution"). Written by the server→client pump only.
	seen atomic.Uint64
	// scEnc is the encoding, as the server→client pump knows it (its own
	// copy, taken under mu once the client's handshake is seen); scSkip:
	// that direction is not observed (unknown, ZEO 4 or ruok).
	scEnc  zrpc.Encoding
	scSkip bool
	cs, sc *pump
}

func (c *conn) serve() {
	defer c.l.connDone(c)
	m := &c.l.p.metrics
	c.cs = newPump(c.client, c.server, c2sInspector{c}, c.l.p, &m.framesC2S, &m.bytesC2S)
	c.sc = newPump(c.server, c.client, s2cInspector{c}, c.l.p, &m.framesS2C, &m.bytesS2C)
	c.regTimer = time.AfterFunc(c.l.p.cfg.RegisterTimeout, c.registerExpired)
	defer c.regTimer.Stop()
	scDone := make(chan struct{})
	go func() {
		err, _ := c.sc.run()
		c.logEnd("server", err)
		// The server side is gone: nothing more can reach the client.
		_ = c.client.Close()
		_ = c.server.Close()
		close(scDone)
	}()
	err, writeSide := c.cs.run()
	c.logEnd("client", err)
	if !writeSide {
		// The client left. If a tpc_finish is on its way, keep the server side
		// until its reply tells the outcome (docs/design.md, rule 3).
		c.mu.Lock()
		wait := c.finishDone
		c.mu.Unlock()
		if wait != nil {
			select {
			case <-wait:
			case <-scDone:
			case <-time.After(c.l.p.cfg.finishWait):
				c.log.Warn("client left during tpc_finish; no reply from the server in time", "wait", c.l.p.cfg.finishWait)
			}
		}
	}
	_ = c.server.Close()
	_ = c.client.Close()
	<-scDone
	c.cs.release()
	c.sc.release()
	c.finish()
}

func (c *conn) logEnd(side string, err error) {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return
	}
	c.log.Debug("stream ended", "from", side, "error", err)
}

// finish settles the connection's participation once both directions ended.
func (c *conn) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apply(c.tx.lost())
	for _, b := range c.blinded {
		c.l.p.unblindLater(c.l, b.zeoName, b.storageID)
	}
	c.blinded, c.blind = nil, false
	if c.blindTimer != nil {
		c.blindTimer.Stop()
		c.blindTimer = nil
	}
}

// apply does what a step of the connection's two-phase commit says (c.mu
// held), before the frame that caused it is forwarded (docs/design.md,
// rule 1): a successful vote's tenure starts before the vote is reported;
// the events are reported in order; then the tenure ends as the step says,
// or the outcome in doubt is resolved.
func (c *conn) apply(s step) {
	p := c.l.p
	b := &c.tx.begin
	switch s.kind {
	case stepNone:
		return
	case stepBeginUnregister:
		c.log.Warn("tpc_begin before register; ignored")
		return
	case stepBegun:
		if s.replaced {
			c.log.Warn("tpc_begin while a transaction is open on the connection; the open one did not commit here",
				"storage", c.storageID, "phase", s.from.String())
		}
	case stepVoted:
		if c.ten != nil { // not a ZEO client's way: a second vote
			c.endTenure(tenUnordered, 0)
		}
		c.ten = c.voted(s.part)
	case stepLost:
		if s.from == txn.PhaseVoted {
			c.log.Warn("connection lost while voted: the server aborts the transaction",
				"storage", c.storageID, "user", b.Info.User, "description", b.Info.Description)
		}
	case stepLostFinishing:
		c.log.Warn("connection lost after tpc_finish was forwarded: outcome in doubt, resolving",
			"storage", c.storageID, "user", b.Info.User, "description", b.Info.Description)
	}
	for _, e := range s.events() {
		p.tracker.Observe(e)
	}
	switch s.kind {
	case stepBegun:
		if s.replaced {
			c.endTenure(tenUnordered, 0)
		}
		p.metrics.begins.Add(1)
	case stepVoteFailed:
		p.metrics.votesFailed.Add(1)
	case stepCommitted:
		tid := s.ev[0].TID
		p.noteTID(c.storageID, tid)
		c.endTenure(tenCommitted, tid)
		if uint64(tid) > c.seen.Load() {
			c.seen.Store(uint64(tid))
		}
		p.metrics.commits.Add(1)
	case stepNotCommitted:
		c.endTenure(tenNone, 0)
	case stepAborted:
		c.endTenure(tenNone, 0) // before the abort reaches the server
		p.metrics.aborts.Add(1)
	case stepLost:
		c.endTenure(tenUnordered, 0)
	case stepFinishFailed, stepLostFinishing:
		p.resolveLater(c.l, c.zeoName, c.storageID, *b, c.endInDoubt(s.part))
	}
	c.pending.Store(c.tx.awaiting())
	switch finishing := c.tx.ph == txn.PhaseFinishing; {
	case finishing && c.finishDone == nil:
		c.finishDone = make(chan struct{})
	case !finishing && c.finishDone != nil:
		close(c.finishDone)
		c.finishDone = nil
	}
}

// prove records that the server accepted the client's register: the client
// speaks ZEO, and its frames may be decoded up to Config.MaxFrameSize.
func (c *conn) prove() {
	c.proven.Store(true)
	c.regTimer.Stop()
	c.leaveUnregistered()
}

// leaveUnregistered takes the connection out of the count of those not yet
// registered, once: when it proves to be ZEO, or when it ends.
func (c *conn) leaveUnregistered() {
	if c.regLeft.CompareAndSwap(false, true) {
		c.l.p.metrics.unregistered.Add(-1)
	}
}

// registerExpired closes a connection that has not proven to be ZEO within
// Config.RegisterTimeout of its accept: a real client registers at once.
// A blind one is left to its server's BlindTimeout.
func (c *conn) registerExpired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proven.Load() || c.blind {
		return
	}
	c.l.p.metrics.unregisteredClosed.Add(1)
	c.log.Warn("closing a connection that did not register in time", "register_timeout", c.l.p.cfg.RegisterTimeout,
		"frames_c2s", c.c2sFrames, "unobserved", c.unsup)
	c.closeBoth()
}

// blindExpired closes a connection that stayed blind for its server's
// BlindTimeout, so that its storages can be published again once it is
// gone (docs/zeo-protocol.md §1, "Blind connections").
func (c *conn) blindExpired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.blind {
		return
	}
	c.l.p.metrics.blindClosed.Add(1)
	ids := make([]string, len(c.blinded))
	for i, b := range c.blinded {
		ids[i] = b.storageID
	}
	c.log.Error("closing a connection blind for longer than blind_timeout; its storages are published again once it is gone and their last TID is read",
		"blind_timeout", c.l.cfg.BlindTimeout, "storages", ids, "identity", c.ident())
	c.closeBoth()
}

// identityWait bounds how long a tpc_begin waits for its connection's
// identity; the resolver answers within a scan of /proc, so this is only a
// guard against a stuck one.
const identityWait = 30 * time.Second

// setIdentity records the connection's client identity (once).
func (c *conn) setIdentity(id string) {
	c.identity.Store(&id)
	close(c.idDone)
}

// ident is the identity if known yet, else "".
func (c *conn) ident() string {
	if id := c.identity.Load(); id != nil {
		return *id
	}
	return ""
}

// awaitIdentity waits until the identity is known, at most identityWait;
// the caller does not hold c.mu.
func (c *conn) awaitIdentity() {
	if c.identity.Load() != nil {
		return // known: no timer on the transaction's path
	}
	select {
	case <-c.idDone:
	case <-time.After(identityWait):
		c.log.Error("client identity not resolved in time; using the peer host", "wait", identityWait, "identity", c.host)
	}
}

func (c *conn) closeBoth() {
	_ = c.client.Close()
	_ = c.server.Close()
}

// blindRef is a storage made blind by a connection.
type blindRef struct{ zeoName, storageID string }

// markBlind is called with c.mu held. After register, the connection's
// storage goes blind. Before it, a connection whose handshake named a real
// protocol may yet register and commit unseen, so every storage of this
// server goes blind; one that never made a valid handshake (a health check,
// a scanner, garbage) cannot commit: it is only logged.
func (c *conn) markBlind(reason string) {
	if c.blind {
		return
	}
	c.l.p.metrics.decodeErrors.Add(1)
	defer c.startBlindTimer()
	switch {
	case c.registered:
		c.blind = true
		c.log.Error("storage is blind: relaying a connection the proxy cannot decode", "storage", c.storageID, "reason", reason)
		c.l.p.tracker.Observe(txn.Event{Kind: txn.Blind, Storage: c.storageID, Reason: reason})
		c.blinded = append(c.blinded, blindRef{c.zeoName, c.storageID})
	case c.hsValid:
		c.blind = true
		names := make([]string, 0, len(c.l.cfg.Storages))
		for name := range c.l.cfg.Storages {
			names = append(names, name)
		}
		sort.Strings(names)
		if len(names) == 0 {
			c.log.Error("undecodable connection before register, and no storage configured for this server to hold back", "reason", reason)
			return
		}
		c.log.Error("every storage of this server is blind: a connection the proxy cannot decode may register and commit unseen", "reason", reason)
		for _, name := range names {
			id := c.l.storageID(name)
			c.l.p.tracker.Observe(txn.Event{Kind: txn.Blind, Storage: id, Reason: reason})
			c.blinded = append(c.blinded, blindRef{name, id})
		}
	default:
		c.log.Warn("undecodable traffic without a valid handshake; relaying unobserved (it cannot commit)", "reason", reason)
	}
}

// startBlindTimer arms the blind timeout once the connection is blind (c.mu
// held).
func (c *conn) startBlindTimer() {
	if c.blind && c.blindTimer == nil && c.l.cfg.BlindTimeout > 0 {
		c.blindTimer = time.AfterFunc(c.l.cfg.BlindTimeout, c.blindExpired)
	}
}

// lockedMarkBlind is markBlind for callers that do not hold c.mu.
func (c *conn) lockedMarkBlind(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.markBlind(reason)
}

// endTenure ends the participation's tenure, if it has one (c.mu held).
func (c *conn) endTenure(state tenureState, tid txn.TID) {
	if c.ten != nil {
		c.l.p.order(c.storageID).end(c.ten, state, tid)
		c.ten = nil
	}
}

// endInDoubt ends participation part's tenure in doubt and returns it for
// the resolution (c.mu held). A tpc_finish forwarded without a vote reply
// seen (not a ZEO client's way) gets its tenure now: the proxy sees it
// before the tpc_finish reaches the server, so it is ordered all the same.
func (c *conn) endInDoubt(part txn.PartID) *tenure {
	t := c.ten
	if t == nil {
		c.log.Warn("tpc_finish without a vote reply seen; ordering it from its tpc_finish", "storage", c.storageID)
		t = c.l.p.order(c.storageID).voted(part, c.l.p.floorTID(c.storageID), &c.seen, false)
	}
	c.ten = t
	c.endTenure(tenInDoubt, 0)
	return t
}
