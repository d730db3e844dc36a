package zeoproxy_test

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// countingUpstream announces Z5 on every connection and keeps it; it
// counts the connections accepted and can close every one (a restart).
type countingUpstream struct {
	addr     string
	accepted atomic.Int64
	open     atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

func startCountingUpstream(t *testing.T) *countingUpstream {
	u := &countingUpstream{}
	ln := zeotest.ServeTCP(t, func(c net.Conn) {
		u.accepted.Add(1)
		u.open.Add(1)
		defer u.open.Add(-1)
		u.mu.Lock()
		u.conns = append(u.conns, c)
		u.mu.Unlock()
		_, _ = c.Write(frame([]byte("Z5")))
		_, _ = io.Copy(io.Discard, c)
	})
	u.addr = ln.Addr().String()
	return u
}

func (u *countingUpstream) closeAll() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range u.conns {
		c.Close()
	}
	u.conns = nil
}

// dialHello connects through addr and reads the server's announcement.
func dialHello(t *testing.T, addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	hello := make([]byte, 6)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.ReadFull(c, hello)
	require.NoError(t, err)
	require.Equal(t, "\x00\x00\x00\x02Z5", string(hello))
	return c
}

// A lone connection dials its upstream and leaves no spare; connections in
// a burst get a spare dialled ahead, which is closed when not taken within
// a second; a spare whose server went away meanwhile is never handed out.
func TestUpstreamSpares(t *testing.T) {
	u := startCountingUpstream(t)
	p := serveProxy(t, zeoproxy.Config{Servers: []zeoproxy.ServerConfig{{Name: "s", Listen: "127.0.0.1:0", Upstream: u.addr}}}, newRecorder())
	addr := p.Addrs()[0].String()

	dialHello(t, addr)
	time.Sleep(1100 * time.Millisecond) // past the burst window
	dialHello(t, addr)
	time.Sleep(100 * time.Millisecond)
	require.EqualValues(t, 2, u.accepted.Load(), "connections apart: no spare")

	dialHello(t, addr) // within a second of the previous one: a spare follows
	require.Eventually(t, func() bool { return u.accepted.Load() == 4 }, 5*time.Second, 5*time.Millisecond)
	dialHello(t, addr) // takes it, and a new spare is dialled
	require.Eventually(t, func() bool { return u.accepted.Load() == 5 }, 5*time.Second, 5*time.Millisecond)
	require.EqualValues(t, 4, p.Metrics().ConnsOpen)

	u.closeAll() // the server restarts: every connection, the spare's too, is gone
	require.Eventually(t, func() bool { return u.open.Load() == 0 }, 5*time.Second, 5*time.Millisecond)
	dialHello(t, addr) // a fresh connection (the dead spare is not handed out), then a new spare
	require.Eventually(t, func() bool { return u.accepted.Load() == 7 }, 5*time.Second, 5*time.Millisecond)

	// The last spare is closed a second after it was dialled.
	require.Eventually(t, func() bool { return u.open.Load() == 1 }, 5*time.Second, 10*time.Millisecond,
		"only the live client's upstream connection remains")
	require.EqualValues(t, 7, u.accepted.Load())
}
