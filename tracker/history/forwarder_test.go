package history_test

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// forwarder relays TCP connections from 127.0.0.1 to a target, and lets a
// test sever them (both sockets closed) or stall them (bytes read are
// dropped and nothing more is relayed, as from a hung peer or network).
type forwarder struct {
	ln     net.Listener
	target string
	// drop, if set, is asked about every server→client frame payload
	// (the stream is then relayed frame by frame); true drops the frame.
	drop func(payload []byte) bool
	// refuse closes new connections at once (a server out of reach).
	refuse atomic.Bool
	mu     sync.Mutex
	pairs  []*pair
}

type pair struct {
	client, server net.Conn
	stalled        atomic.Bool
	dead           chan struct{}
	once           sync.Once
}

func (p *pair) close() {
	p.once.Do(func() {
		close(p.dead)
		p.client.Close()
		p.server.Close()
	})
}

func newForwarder(t *testing.T, target string) *forwarder {
	return newFilter(t, target, nil)
}

// newFilter is a forwarder that drops the server's frames that drop selects.
func newFilter(t *testing.T, target string, drop func([]byte) bool) *forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &forwarder{ln: ln, target: target, drop: drop}
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *forwarder) Addr() string { return f.ln.Addr().String() }

func (f *forwarder) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		if f.refuse.Load() {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		p := &pair{client: c, server: s, dead: make(chan struct{})}
		f.mu.Lock()
		f.pairs = append(f.pairs, p)
		f.mu.Unlock()
		go p.pump(c, s)
		if f.drop != nil {
			go p.pumpFrames(s, c, f.drop)
		} else {
			go p.pump(s, c)
		}
	}
}

func (p *pair) pump(src, dst net.Conn) {
	defer p.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if p.stalled.Load() {
				<-p.dead // hold the sockets open, relay nothing
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed socket: the pair ends both ways
		}
	}
}

func (p *pair) pumpFrames(src, dst net.Conn, drop func([]byte) bool) {
	defer p.close()
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return
		}
		payload := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(src, payload); err != nil {
			return
		}
		if drop(payload) {
			continue
		}
		if _, err := dst.Write(append(hdr[:], payload...)); err != nil {
			return
		}
	}
}

// Sever closes every current connection.
func (f *forwarder) Sever() int {
	f.mu.Lock()
	ps := f.pairs
	f.pairs = nil
	f.mu.Unlock()
	for _, p := range ps {
		p.close()
	}
	return len(ps)
}

// Stall stops relaying on every current connection; new ones work.
func (f *forwarder) Stall() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.pairs {
		p.stalled.Store(true)
	}
}

func (f *forwarder) close() {
	f.ln.Close()
	f.Sever()
}
