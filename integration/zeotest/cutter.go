package zeotest

import (
	"bufio"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tidstorage/tidstorage/zrpc"
)

// Cut says where a Cutter severs a storage connection around a two-phase
// commit's end. Either side of the connection sees a connection lost, as it
// would if the network failed at that point.
type Cut int

const (
	// CutBeforeFinish: right after the vote reply is relayed, so that the
	// connection is lost while voted and before any tpc_finish can go out.
	// The server aborts; with a multi-storage transaction whose other
	// storages finish, that is a partial commit, and the relay knows that
	// the finish never left.
	CutBeforeFinish Cut = iota + 1
	// CutInsideFinish: after half of the tpc_finish frame. The server
	// aborts, but the relay, which sent the whole frame, cannot know it: in
	// doubt, resolved as not committed.
	CutInsideFinish
	// CutAfterFinish: right after the whole tpc_finish frame, before any
	// reply. The server commits and the reply is lost: in doubt, resolved as
	// committed.
	CutAfterFinish
)

// Cutter is a TCP forwarder to a ZEO server that follows the frames going
// through it and, when armed, severs one connection at a chosen point of a
// tpc_finish. Tests put it between the relay and the real server (the relay's
// upstream is the cutter), so the relay sees genuine connection losses and
// carries no test hook of its own.
type Cutter struct {
	ln     net.Listener
	target string
	// srvTLS and cliTLS (StartTLSCutter): TLS terminated from the relay and
	// re-originated to the server, the frames followed in between.
	srvTLS, cliTLS *tls.Config
	armed          atomic.Pointer[armedCut]
	cuts           atomic.Int64

	connsMu sync.Mutex
	conns   map[*cutConn]struct{} // open forwarded connections
}

type armedCut struct {
	storage string
	cut     Cut
}

// StartCutter forwards connections accepted on 127.0.0.1 to target until
// the test ends.
func StartCutter(tb testing.TB, target string) *Cutter {
	tb.Helper()
	c := &Cutter{target: target}
	c.ln = ServeTCP(tb, c.handle)
	return c
}

// StartTLSCutter is StartCutter for a ZEO server with <ssl>: it presents
// certs.ZEO to the relay (requiring a client certificate of certs.CA) and
// certs.Upstream to the server.
func StartTLSCutter(tb testing.TB, target string, certs *TLSCerts) *Cutter {
	tb.Helper()
	srv, err := certs.ServerConfig(certs.ZEO, certs.ZEOKey)
	if err != nil {
		tb.Fatal(err)
	}
	cli, err := certs.ClientConfig(certs.Upstream, certs.UpstreamKey)
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cutter{target: target, srvTLS: srv, cliTLS: cli}
	c.ln = ServeTCP(tb, c.handle)
	return c
}

// Addr is where to dial the server through the cutter.
func (c *Cutter) Addr() string { return c.ln.Addr().String() }

// Arm makes the next two-phase commit on a connection registered to the
// storage named storage lose its connection where cut says. One shot: a
// later Arm replaces one that has not fired.
func (c *Cutter) Arm(storage string, cut Cut) {
	c.armed.Store(&armedCut{storage: storage, cut: cut})
}

// Cuts counts the connections severed so far.
func (c *Cutter) Cuts() int { return int(c.cuts.Load()) }

// take disarms and returns the armed cut if it is for storage and is made
// at a tpc_finish (atFinish) or at a vote reply (!atFinish).
func (c *Cutter) take(storage string, atFinish bool) Cut {
	a := c.armed.Load()
	if a == nil || a.storage != storage || (a.cut != CutBeforeFinish) != atFinish || !c.armed.CompareAndSwap(a, nil) {
		return 0
	}
	return a.cut
}

// cutConn is one forwarded connection: down is the client (the relay), up
// the server.
type cutConn struct {
	c        *Cutter
	down, up net.Conn
	close    sync.Once

	mu         sync.Mutex
	enc        zrpc.Encoding
	storage    string
	readOnly   bool // registered read-only
	cutOnReply bool // CutBeforeFinish taken at the vote call
	voteMsgID  int64
}

func (c *Cutter) handle(down net.Conn) {
	up, err := net.Dial("tcp", c.target)
	if err != nil {
		_ = down.Close()
		return
	}
	if c.srvTLS != nil {
		down, up = tls.Server(down, c.srvTLS), tls.Client(up, c.cliTLS)
	}
	cc := &cutConn{c: c, down: down, up: up}
	c.connsMu.Lock()
	if c.conns == nil {
		c.conns = map[*cutConn]struct{}{}
	}
	c.conns[cc] = struct{}{}
	c.connsMu.Unlock()
	defer func() {
		c.connsMu.Lock()
		delete(c.conns, cc)
		c.connsMu.Unlock()
	}()
	go cc.serverToClient()
	cc.clientToServer()
}

// SeverReadOnly severs, now, every open connection registered read-only (a
// history watcher's, not a relayed client's) and returns how many.
func (c *Cutter) SeverReadOnly() int {
	c.connsMu.Lock()
	var ro []*cutConn
	for cc := range c.conns {
		cc.mu.Lock()
		if cc.readOnly {
			ro = append(ro, cc)
		}
		cc.mu.Unlock()
	}
	c.connsMu.Unlock()
	for _, cc := range ro {
		cc.sever()
	}
	c.cuts.Add(int64(len(ro)))
	return len(ro)
}

func (cc *cutConn) sever() {
	cc.close.Do(func() {
		_ = cc.down.Close()
		_ = cc.up.Close()
	})
}

// frames calls each with every frame read from src (n counts from 1) until
// it returns false or src ends, then severs the connection.
func (cc *cutConn) frames(src net.Conn, each func(n int, payload []byte) bool) {
	defer cc.sever()
	fr := zrpc.NewFrameReader(bufio.NewReader(src))
	for n := 1; ; n++ {
		payload, err := fr.ReadFrame()
		if err != nil || !each(n, payload) {
			return
		}
	}
}

// clientToServer relays the client's frames, noting the encoding, the
// registered storage and the vote, and cuts at a tpc_finish when armed.
func (cc *cutConn) clientToServer() {
	cc.frames(cc.down, func(n int, payload []byte) bool {
		frame := zrpc.AppendFrame(nil, payload)
		if n == 1 {
			if hs, err := zrpc.ParseClientHandshake(payload); err == nil {
				cc.mu.Lock()
				cc.enc = hs.Protocol.Encoding
				cc.mu.Unlock()
			}
		} else if cut := cc.inspectCall(payload); cut != 0 {
			cc.c.cuts.Add(1)
			// The client side goes first, so that no reply can slip back.
			_ = cc.down.Close()
			if cut == CutInsideFinish {
				frame = frame[:len(frame)/2]
			}
			_, _ = cc.up.Write(frame)
			return false
		}
		_, err := cc.up.Write(frame)
		return err == nil
	})
}

// inspectCall looks at one client call and returns the cut to make at it
// (CutInsideFinish or CutAfterFinish at a tpc_finish), or 0.
func (cc *cutConn) inspectCall(payload []byte) Cut {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.enc == 0 || cc.c.armed.Load() == nil && cc.storage != "" {
		return 0
	}
	pk, err := zrpc.PeekMessage(cc.enc, payload)
	if err != nil {
		return 0
	}
	switch pk.Method {
	case zrpc.MethodRegister:
		if m, err := zrpc.DecodeMessage(cc.enc, payload); err == nil {
			if reg, ok := zrpc.DecodeCall(m); ok == nil {
				if r, isReg := reg.(*zrpc.Register); isReg {
					cc.storage, cc.readOnly = r.Storage, r.ReadOnly
				}
			}
		}
	case zrpc.MethodVote:
		if cc.c.take(cc.storage, false) != 0 {
			cc.cutOnReply, cc.voteMsgID = true, pk.MsgID
		}
	case zrpc.MethodTPCFinish:
		return cc.c.take(cc.storage, true)
	}
	return 0
}

// serverToClient relays the server's frames; after the vote reply of a
// CutBeforeFinish it severs the connection: lost while voted.
func (cc *cutConn) serverToClient() {
	cc.frames(cc.up, func(n int, payload []byte) bool {
		if _, err := cc.down.Write(zrpc.AppendFrame(nil, payload)); err != nil {
			return false
		}
		if n > 1 && cc.isVoteReply(payload) {
			cc.c.cuts.Add(1)
			return false
		}
		return true
	})
}

func (cc *cutConn) isVoteReply(payload []byte) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.cutOnReply {
		return false
	}
	pk, err := zrpc.PeekMessage(cc.enc, payload)
	return err == nil && pk.Method == zrpc.MethodReply && pk.MsgIDKind == zrpc.MsgIDInt && pk.MsgID == cc.voteMsgID
}
