package zeoproxy

import (
	"bufio"
	"bytes"
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

	identity string // client identity for correlation (peer host or pid)
	label    string // ZEO client-label, when the client sent one

	mu         sync.Mutex
	c2sFrames  int
	s2cFrames  int
	enc        zrpc.Encoding
	encKnown   bool
	ruok       bool
	unsup      string // why the protocol is not observed (e.g. ZEO 4), "" if observed
	storage    string // storage id once registered
	storName   string
	registered bool
	blind      bool
	hsValid    bool       // the client's handshake names a real protocol: it may go on to commit
	blinded    []blindRef // storages this connection made blind
	part       txn.PartID
	ph         txn.Phase // where part stands, up to PhaseFinishing
	begin      txn.Event
	floor      txn.TID // last TID known on the storage when begin was seen
	voteID     int64
	finishID   int64
	finishDone chan struct{} // closed when the pending finish reply is seen

	// pending counts outstanding calls whose reply the proxy must see; the
	// server→client hot path only peeks frames while it is non-zero.
	pending atomic.Int32
	cs, sc  *pump
}

func (c *conn) serve() {
	defer c.l.connDone(c)
	c.cs = &pump{
		src: bufio.NewReaderSize(c.client, bufSize), dst: bufio.NewWriterSize(writeTagger{c.server}, bufSize),
		insp: c2sInspector{c}, maxWhole: c.l.p.cfg.MaxDecode, maxFrame: c.l.p.cfg.MaxFrame,
		srcConn: c.client, dstConn: c.server,
		framesCtr: &c.l.p.metrics.framesC2S, bytesCtr: &c.l.p.metrics.bytesC2S,
	}
	c.sc = &pump{
		src: bufio.NewReaderSize(c.server, bufSize), dst: bufio.NewWriterSize(writeTagger{c.client}, bufSize),
		insp: s2cInspector{c}, maxWhole: c.l.p.cfg.MaxDecode, maxFrame: c.l.p.cfg.MaxFrame,
		srcConn: c.server, dstConn: c.client,
		framesCtr: &c.l.p.metrics.framesS2C, bytesCtr: &c.l.p.metrics.bytesS2C,
	}
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
			case <-time.After(c.l.p.cfg.FinishWait):
				c.log.Warn("client left during tpc_finish; no reply from the server in time", "wait", c.l.p.cfg.FinishWait)
			}
		}
	}
	_ = c.server.Close()
	_ = c.client.Close()
	<-scDone
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
	t := c.l.p.tracker
	if c.part != 0 {
		switch c.ph {
		case txn.PhaseFinishing:
			c.log.Warn("connection lost after tpc_finish was forwarded: outcome in doubt, resolving",
				"storage", c.storage, "user", c.begin.Info.User, "description", c.begin.Info.Description)
			t.Observe(txn.Event{Kind: txn.Lost, Part: c.part})
			c.l.p.resolveLater(c.l, c.storName, c.storage, c.begin, c.floor)
		case txn.PhaseIdle:
		default:
			if c.ph == txn.PhaseVoted {
				c.log.Warn("connection lost while voted: the server aborts the transaction",
					"storage", c.storage, "user", c.begin.Info.User, "description", c.begin.Info.Description)
			}
			t.Observe(txn.Event{Kind: txn.Lost, Part: c.part})
		}
		c.part, c.ph = 0, txn.PhaseIdle
	}
	for _, b := range c.blinded {
		c.l.p.unblindLater(c.l, b.name, b.id)
	}
	c.blinded, c.blind = nil, false
}

// blindRef is a storage made blind by a connection.
type blindRef struct{ name, id string }

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
	switch {
	case c.registered:
		c.blind = true
		c.log.Error("storage is blind: relaying a connection the proxy cannot decode", "storage", c.storage, "reason", reason)
		c.l.p.tracker.Observe(txn.Event{Kind: txn.Blind, Storage: c.storage, Reason: reason})
		c.blinded = append(c.blinded, blindRef{c.storName, c.storage})
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

// lockedMarkBlind is markBlind for callers that do not hold c.mu.
func (c *conn) lockedMarkBlind(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.markBlind(reason)
}

var setClientLabel = []byte("set_client_label")

// c2sInspector observes client → server frames.
type c2sInspector struct{ c *conn }

func (i c2sInspector) unseen(reason string) { i.c.lockedMarkBlind("client stream: " + reason) }

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
	case zrpc.MethodRegister, zrpc.MethodTPCBegin:
		return true
	case zrpc.MethodUnknown:
		if c.l.p.cfg.LabelIdentity && bytes.Equal(h.Name, setClientLabel) {
			return true
		}
	case zrpc.MethodVote, zrpc.MethodTPCFinish, zrpc.MethodTPCAbort:
		c.c2sFrames++
		c.mu.Lock()
		c.onCall(h.Method, h.MsgID)
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
		c.storName = reg.Storage
		c.storage = c.l.storageID(reg.Storage)
		// c.log stays as it is: the other direction's goroutine reads it.
		c.log.Info("client registered", "storage", c.storage, "identity", c.identity, "read_only", reg.ReadOnly)
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
// (Config.LabelIdentity). c.mu held.
func (c *conn) clientID() string {
	if c.l.p.cfg.LabelIdentity && c.label != "" {
		return c.identity + " label:" + c.label
	}
	return c.identity
}

// onBegin starts a participation (c.mu held).
func (c *conn) onBegin(tb *zrpc.TPCBegin) {
	t := c.l.p.tracker
	if !c.registered {
		c.log.Warn("tpc_begin before register; ignored")
		return
	}
	if c.part != 0 && c.ph != txn.PhaseIdle {
		// ZEO allows one transaction per connection; a new tpc_begin means
		// the server will refuse it or the old one ended unseen. Either way
		// the old participation did not commit through this connection.
		c.log.Warn("tpc_begin while a transaction is open on the connection; the open one did not commit here", "storage", c.storage, "phase", c.ph.String())
		t.Observe(txn.Event{Kind: txn.Lost, Part: c.part})
		c.pending.Store(0)
		if c.finishDone != nil {
			close(c.finishDone)
			c.finishDone = nil
		}
	}
	ext := canonText(tb.Extension)
	c.part = c.l.p.newPartID()
	c.floor = c.l.p.floorTID(c.storage)
	c.ph = txn.PhaseBegun
	info := txn.Info{Client: c.clientID(), User: string(tb.User), Description: string(tb.Description), Extension: ext}
	c.begin = txn.Event{Kind: txn.Begin, Part: c.part, Storage: c.storage, Info: info,
		Key: txn.NewKey(info.Client, info.User, info.Description, ext)}
	t.Observe(c.begin)
	c.l.p.metrics.begins.Add(1)
}

// onCall records a sync 2PC call before it is forwarded (c.mu held).
func (c *conn) onCall(m zrpc.Method, msgid int64) {
	t := c.l.p.tracker
	switch m {
	case zrpc.MethodVote:
		if c.part == 0 {
			return
		}
		c.ph = txn.PhaseVoting
		c.voteID = msgid
		c.pending.Add(1)
	case zrpc.MethodTPCFinish:
		if c.part == 0 {
			return
		}
		c.ph = txn.PhaseFinishing
		c.finishID = msgid
		c.finishDone = make(chan struct{})
		c.pending.Add(1)
		c.l.p.finishes[keyBucket(c.begin.Key)].Add(1)
		t.Observe(txn.Event{Kind: txn.FinishSent, Part: c.part})
	case zrpc.MethodTPCAbort:
		if c.part == 0 || c.ph == txn.PhaseFinishing {
			return // after a finish, tpc_abort is the transaction package's no-op cleanup
		}
		t.Observe(txn.Event{Kind: txn.Aborted, Part: c.part})
		c.l.p.metrics.aborts.Add(1)
		c.part, c.ph = 0, txn.PhaseIdle
	}
}

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
