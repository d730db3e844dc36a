package zeoproxy_test

import (
	"bytes"
	"io"
	"math/rand"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/zeoproxy"
	"github.com/tidstorage/tidstorage/zrpc"
)

// sink is a unit-test stand-in for a ZEO server: it sends a fixed byte
// string on accept and records everything it receives. (Real-ZEO behaviour is
// tested against runzeo; this only checks the relay's byte handling.)
type sink struct {
	ln    net.Listener
	hello []byte
	mu    sync.Mutex
	got   [][]byte
	done  chan struct{}
}

func startSink(t *testing.T, hello []byte) *sink {
	s := &sink{hello: hello, done: make(chan struct{}, 16)}
	s.ln = zeotest.ServeTCP(t, func(c net.Conn) {
		defer c.Close()
		_, _ = c.Write(s.hello)
		b, _ := io.ReadAll(c)
		s.mu.Lock()
		s.got = append(s.got, b)
		s.mu.Unlock()
		s.done <- struct{}{}
	})
	return s
}

func frame(payload []byte) []byte { return zrpc.AppendFrame(nil, payload) }

func proxyTo(t *testing.T, upstream string, rec zeoproxy.Tracker, maxFrame int) string {
	p := serveProxy(t, zeoproxy.Config{
		Servers: []zeoproxy.ServerConfig{{Name: "u", Listen: "127.0.0.1:0", Upstream: upstream}}}.WithFixed(zeoproxy.Fixed{MaxParsedFrame: maxFrame}), rec)
	return p.Addrs()[0].String()
}

// sendAll writes b to the proxy, reads what the sink announced, closes, and
// returns what the sink received.
func sendAll(t *testing.T, s *sink, addr string, b []byte, wantHello int) []byte {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	hello := make([]byte, wantHello)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadFull(c, hello)
	require.NoError(t, err)
	require.Equal(t, s.hello, hello, "server bytes relayed unchanged")
	// Write in odd-sized pieces so frames straddle reads.
	rng := rand.New(rand.NewSource(1))
	for len(b) > 0 {
		n := min(len(b), 1+rng.Intn(7000))
		_, err := c.Write(b[:n])
		require.NoError(t, err)
		b = b[n:]
	}
	require.NoError(t, c.Close())
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("sink did not see the connection end")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[len(s.got)-1]
}

func TestRelayUnitBytes(t *testing.T) {
	hello := frame([]byte("Z5"))
	rng := rand.New(rand.NewSource(42))
	big := make([]byte, 3<<20) // larger than every buffer: streamed
	rng.Read(big)

	t.Run("garbage after a good handshake is relayed and blinds the storage", func(t *testing.T) {
		s := startSink(t, hello)
		rec := newRecorder()
		addr := proxyTo(t, s.ln.Addr().String(), rec, 0)
		reg, err := zrpc.EncodeMessage(zrpc.Pickle, zrpc.CallMessage(1, &zrpc.Register{Storage: "1"}))
		require.NoError(t, err)
		var in []byte
		in = append(in, frame([]byte("Z5"))...)
		in = append(in, frame(reg)...)
		in = append(in, frame([]byte("\x80\x03not a pickle at all"))...)
		in = append(in, frame(big)...)
		got := sendAll(t, s, addr, in, len(hello))
		require.True(t, bytes.Equal(in, got), "every byte relayed in order")
		// Blind at once; unblinding needs the storage's last TID, which this
		// fake cannot give (tested against runzeo in TestBlindThenUnblind).
		require.Eventually(t, func() bool { return len(rec.snapshot()) >= 1 }, zeotestWait, pollEvery)
		require.Contains(t, rec.snapshot()[0], "blind ")
	})

	t.Run("garbage without handshake changes nothing", func(t *testing.T) {
		s := startSink(t, hello)
		rec := newRecorder()
		addr := proxyTo(t, s.ln.Addr().String(), rec, 0)
		in := []byte("GET / HTTP/1.0\r\n\r\n")
		got := sendAll(t, s, addr, in, len(hello))
		require.Equal(t, in, got)
		require.Empty(t, rec.snapshot())
	})

	t.Run("a frame past the limit switches to raw relay", func(t *testing.T) {
		s := startSink(t, hello)
		rec := newRecorder()
		addr := proxyTo(t, s.ln.Addr().String(), rec, 1<<20)
		reg, err := zrpc.EncodeMessage(zrpc.Msgpack, zrpc.CallMessage(1, &zrpc.Register{Storage: "x"}))
		require.NoError(t, err)
		in := append(frame([]byte("M5")), frame(reg)...)
		in = append(in, frame(big)...)
		in = append(in, frame([]byte("after"))...)
		got := sendAll(t, s, addr, in, len(hello))
		require.True(t, bytes.Equal(in, got))
		require.Eventually(t, func() bool { return len(rec.snapshot()) >= 1 }, zeotestWait, pollEvery)
		require.Contains(t, rec.snapshot()[0], "exceeds the limit")
	})

	t.Run("a torn last frame is relayed as far as it came", func(t *testing.T) {
		s := startSink(t, hello)
		addr := proxyTo(t, s.ln.Addr().String(), newRecorder(), 0)
		in := append(frame([]byte("Z5")), 0, 0, 1, 0, 'a', 'b', 'c')
		got := sendAll(t, s, addr, in, len(hello))
		require.Equal(t, in, got)
	})

	t.Run("many random frames", func(t *testing.T) {
		s := startSink(t, hello)
		addr := proxyTo(t, s.ln.Addr().String(), newRecorder(), 0)
		in := frame([]byte("Z5"))
		for i := 0; i < 500; i++ {
			p := make([]byte, rng.Intn(20000))
			rng.Read(p)
			in = append(in, frame(p)...)
		}
		got := sendAll(t, s, addr, in, len(hello))
		require.True(t, bytes.Equal(in, got))
	})
}

// Every frame is seen, whatever its size and however frames share reads:
// many commits' worth of frames written at once, with storea payloads around
// the peek and buffer sizes, give one begin and one finish-sent each.
func TestRelaySeesEveryFrame(t *testing.T) {
	hello := frame([]byte("Z5"))
	for _, enc := range []zrpc.Encoding{zrpc.Pickle, zrpc.Msgpack} {
		t.Run(enc.String(), func(t *testing.T) {
			s := startSink(t, hello)
			rec := newRecorder()
			addr := proxyTo(t, s.ln.Addr().String(), rec, 0)
			msg := func(m *zrpc.Message) []byte {
				p, err := zrpc.EncodeMessage(enc, m)
				require.NoError(t, err)
				return frame(p)
			}
			in := frame([]byte{byte(enc), '5'})
			in = append(in, msg(zrpc.CallMessage(1, &zrpc.Register{Storage: "1"}))...)
			const n = 300
			id := int64(2)
			sizes := []int{0, 50, 100, 120, 128, 129, 140, 500, 8000, 8200, 20000, 70000}
			for i := 0; i < n; i++ {
				in = append(in, msg(zrpc.AsyncMessage(&zrpc.TPCBegin{TxnID: uint64(1000 + i), Description: []byte("t"), Status: " "}))...)
				data := make([]byte, sizes[i%len(sizes)])
				in = append(in, msg(zrpc.NewAsync("storea", zrpc.Tuple{make([]byte, 8), make([]byte, 8), data, int64(1000 + i)}))...)
				in = append(in, msg(zrpc.CallMessage(id, &zrpc.Vote{TxnID: uint64(1000 + i)}))...)
				in = append(in, msg(zrpc.CallMessage(id+1, &zrpc.TPCFinish{TxnID: uint64(1000 + i)}))...)
				id += 2
			}
			// A last tpc_begin ends the last participation, so that the
			// proxy does not keep the sink side waiting for a finish reply.
			in = append(in, msg(zrpc.AsyncMessage(&zrpc.TPCBegin{TxnID: 1, Status: " "}))...)
			got := sendAll(t, s, addr, in, len(hello))
			require.True(t, bytes.Equal(in, got))
			count := map[string]int{}
			require.Eventually(t, func() bool {
				count = map[string]int{}
				for _, e := range rec.snapshot() {
					count[strings.Fields(e)[0]]++
				}
				return count["begin"] == n+1 && count["finishsent"] == n
			}, zeotestWait, pollEvery, "counts %v", count)
		})
	}
}

// A client whose handshake names a protocol the proxy relays but does not
// observe (ZEO 4) may register and commit unseen: every storage configured
// for that server goes blind at once.
func TestZEO4ClientBlindsTheServersStorages(t *testing.T) {
	s := startSink(t, frame([]byte("Z4")))
	rec := newRecorder()
	p := serveProxy(t, zeoproxy.Config{Servers: []zeoproxy.ServerConfig{{Name: "old", Listen: "127.0.0.1:0",
		Upstream: s.ln.Addr().String(), Storages: map[string]string{"1": "id-1", "2": "id-2"}}}}, rec)
	in := append(frame([]byte("Z4")), frame([]byte("(opaque ZEO 4 traffic)"))...)
	sendAll(t, s, p.Addrs()[0].String(), in, 6)
	// The proxy's own connection (the last TID read when the storage is
	// unblinded) may reach the sink too, before or after the client's.
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, b := range s.got {
			if bytes.Equal(b, in) {
				return true
			}
		}
		return false
	}, zeotestWait, pollEvery, "relayed unchanged")
	require.Eventually(t, func() bool { return len(rec.snapshot()) >= 2 }, zeotestWait, pollEvery)
	ev := rec.snapshot()
	require.True(t, strings.HasPrefix(ev[0], "blind id-1 "), ev[0])
	require.True(t, strings.HasPrefix(ev[1], "blind id-2 "), ev[1])
}
