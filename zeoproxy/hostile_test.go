package zeoproxy_test

import (
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/zeoproxy"
	"github.com/tidstorage/tidstorage/zrpc"
)

// discardSink is an upstream that announces Z5 and counts and drops
// everything it receives.
func discardSink(t *testing.T) (addr string, received *atomic.Int64) {
	received = new(atomic.Int64)
	ln := zeotest.ServeTCP(t, func(c net.Conn) {
		defer c.Close()
		if _, err := c.Write(frame([]byte("Z5"))); err != nil {
			return
		}
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			received.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	return ln.Addr().String(), received
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// The attack bounded in docs/zeo-protocol.md: 8 connections each announce a 60 MiB first frame
// and send all of it but one byte. The proxy used to read each whole before
// forwarding anything (480 MiB held); now a client that has not proven to be
// ZEO is decoded up to 64 KiB only, so the frames are streamed upstream and
// the heap stays flat, while a real ZODB client commits through the same
// proxy.
func TestPreZEOFramesAreNotHeld(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1"}})
	sinkAddr, received := discardSink(t)
	p := serveProxy(t, zeoproxy.Config{MaxFrameSize: 64 << 20,
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: testWriter{t}}),
		Servers: []zeoproxy.ServerConfig{
			{Name: "zeo", Listen: "127.0.0.1:0", Upstream: srv.Addr},
			{Name: "sink", Listen: "127.0.0.1:0", Upstream: sinkAddr},
		}}, newRecorder())
	zeoAddr, attackAddr := p.Addrs()[0].String(), p.Addrs()[1].String()

	before := heapInuse()
	const conns, size = 8, 60 << 20
	writer := make(chan error, 1)
	go func() {
		_, err := zeotest.PythonErr(t, "zodb_client.py", "--db", "a="+zeoAddr+"/1", "commit", "--count", "3", "--desc", "beside the attack")
		writer <- err
	}()
	chunk := make([]byte, 1<<20)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	attack := make([]net.Conn, conns)
	for i := range attack {
		c, err := net.Dial("tcp", attackAddr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		attack[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			var hdr [4]byte
			binary.BigEndian.PutUint32(hdr[:], size)
			if _, err := c.Write(hdr[:]); err != nil {
				errs <- err
				return
			}
			for left := size - 1; left > 0; left -= min(left, len(chunk)) {
				if _, err := c.Write(chunk[:min(left, len(chunk))]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// Everything sent so far reaches the sink: nothing waits in the proxy
	// for the frames' last bytes.
	const sent = conns * (4 + size - 1)
	for deadline := time.Now().Add(zeotestWait); received.Load() < sent && time.Now().Before(deadline); {
		time.Sleep(pollEvery)
	}
	grown := int64(heapInuse()) - int64(before)
	t.Logf("heap in use grew by %.1f MiB with %d connections each %d MiB into a frame", float64(grown)/(1<<20), conns, size>>20)
	require.Less(t, grown, int64(32<<20), "heap growth while %d connections hold %d MiB frames open", conns, size>>20)
	require.Equal(t, int64(sent), received.Load(), "bytes the sink received")
	select {
	case err := <-writer:
		require.NoError(t, err, "the real client commits through the proxy during the attack")
	case <-time.After(zeotestWait):
		t.Fatal("the real client did not finish")
	}
	for _, c := range attack {
		_, err := c.Write([]byte{0}) // the frames' last byte: each is complete
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return received.Load() == sent+conns }, zeotestWait, pollEvery)
}

// registerClient sends a handshake and a register on c and reads the
// announcement and the register's reply (from a zeoSink).
func registerClient(t *testing.T, addr string) (net.Conn, *zrpc.FrameReader) {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	fr := zrpc.NewFrameReader(c)
	_, err = fr.ReadFrame()
	require.NoError(t, err)
	reg, err := zrpc.EncodeMessage(zrpc.Pickle, zrpc.CallMessage(1, &zrpc.Register{Storage: "1"}))
	require.NoError(t, err)
	_, err = c.Write(zrpc.AppendFrame(frame([]byte("Z5")), reg))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(zeotestWait)))
	_, err = fr.ReadFrame() // the register's reply: the client is proven
	require.NoError(t, err)
	return c, fr
}

func beginFrame(t *testing.T, desc string, size int) []byte {
	d := desc + strings.Repeat(".", size-len(desc))
	p, err := zrpc.EncodeMessage(zrpc.Pickle, zrpc.AsyncMessage(&zrpc.TPCBegin{TxnID: 1, Description: []byte(d), Status: " "}))
	require.NoError(t, err)
	return frame(p)
}

// Before its register is answered a client's frames are decoded up to
// MaxPreRegisterFrame only; after it, up to MaxFrameSize, within the proxy-wide decode
// budget: a frame that cannot get its bytes in the decode wait is relayed
// undecoded (its storage goes blind) rather than held.
func TestDecodeLimitsAndBudget(t *testing.T) {
	rec := newRecorder()
	p := serveProxy(t, zeoproxy.Config{MaxFrameSize: 1 << 20, MaxPreRegisterFrame: 4 << 10, DecodeBudget: 1536 << 10,
		Servers: []zeoproxy.ServerConfig{{Name: "z", Listen: "127.0.0.1:0", Upstream: startZEOSink(t)}}}.WithFixed(zeoproxy.Fixed{DecodeWait: 300 * time.Millisecond}), rec)
	addr := p.Addrs()[0].String()

	// Not proven: a 10 KiB register is over MaxPreRegisterFrame.
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	reg, err := zrpc.EncodeMessage(zrpc.Pickle, zrpc.CallMessage(1, &zrpc.Register{Storage: strings.Repeat("x", 10<<10)}))
	require.NoError(t, err)
	_, err = c.Write(zrpc.AppendFrame(frame([]byte("Z5")), reg))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return p.Metrics().DecodeErrors == 1 }, zeotestWait, pollEvery)
	require.Empty(t, rec.snapshot(), "no storage configured: the unproven connection blinds nothing")
	m := p.Metrics()
	require.Equal(t, [3]int64{1, 0, 0}, [3]int64{m.SkippedPreRegister, m.SkippedLimit, m.SkippedBudget}, "over MaxPreRegisterFrame, counted as such")

	// Proven: A holds 900 KiB of the 1.5 MiB budget with a tpc_begin it has
	// not finished sending; B's 900 KiB tpc_begin cannot get its bytes.
	a, _ := registerClient(t, addr)
	b, _ := registerClient(t, addr)
	fa, fb := beginFrame(t, "A", 900<<10), beginFrame(t, "B", 900<<10)
	_, err = a.Write(fa[:len(fa)-1])
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // A's pump is reading its frame
	_, err = b.Write(fb)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ev := rec.snapshot()
		return len(ev) == 1 && strings.Contains(ev[0], "decode budget")
	}, zeotestWait, pollEvery, "events %v", rec.snapshot())
	m = p.Metrics()
	require.Equal(t, [3]int64{1, 0, 1}, [3]int64{m.SkippedPreRegister, m.SkippedLimit, m.SkippedBudget}, "B's frame: over the budget")
	require.Equal(t, int64(0), m.Unregistered, "A and B registered, the first one is gone")
	_, err = a.Write(fa[len(fa)-1:])
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, ev := range rec.begins {
			if strings.HasPrefix(ev.Info.Description, "A.") {
				return true
			}
		}
		return false
	}, zeotestWait, pollEvery, "A's tpc_begin is decoded once its last byte came; events %v", rec.snapshot())
}

// A connection that never registers is closed after RegisterTimeout.
func TestRegisterTimeout(t *testing.T) {
	sinkAddr, _ := discardSink(t)
	p := serveProxy(t, zeoproxy.Config{RegisterTimeout: 200 * time.Millisecond,
		Servers: []zeoproxy.ServerConfig{{Name: "z", Listen: "127.0.0.1:0", Upstream: sinkAddr}}}, newRecorder())
	c, err := net.Dial("tcp", p.Addrs()[0].String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(frame([]byte("Z5")))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return p.Metrics().Unregistered == 1 }, zeotestWait, pollEvery, "accepted, not registered")
	require.NoError(t, c.SetReadDeadline(time.Now().Add(zeotestWait)))
	start := time.Now()
	_, err = io.Copy(io.Discard, c) // the announcement, then the proxy closes
	require.NoError(t, err)
	require.Less(t, time.Since(start), zeotestWait)
	require.Equal(t, int64(1), p.Metrics().UnregisteredClosed)
	require.Eventually(t, func() bool { return p.Metrics().Unregistered == 0 }, zeotestWait, pollEvery, "closed: no longer counted")
}

// A blind connection is closed after its server's BlindTimeout, and
// counted; a decodable one next to it stays open.
func TestBlindTimeoutClosesBlindConnection(t *testing.T) {
	rec := newRecorder()
	p := serveProxy(t, zeoproxy.Config{RegisterTimeout: 200 * time.Millisecond,
		Servers: []zeoproxy.ServerConfig{{Name: "z", Listen: "127.0.0.1:0", Upstream: startZEOSink(t), BlindTimeout: 300 * time.Millisecond}}}, rec)
	addr := p.Addrs()[0].String()
	blind, _ := registerClient(t, addr)
	good, goodFrames := registerClient(t, addr)
	start := time.Now()
	_, err := blind.Write(frame([]byte("\x80\x03not a pickle")))
	require.NoError(t, err)
	require.NoError(t, blind.SetReadDeadline(time.Now().Add(zeotestWait)))
	_, err = io.Copy(io.Discard, blind) // until the proxy closes it
	require.NoError(t, err)
	took := time.Since(start)
	t.Logf("blind connection closed after %v", took)
	require.GreaterOrEqual(t, took, 300*time.Millisecond)
	require.Equal(t, int64(1), p.Metrics().BlindClosed)
	require.Equal(t, int64(0), p.Metrics().UnregisteredClosed)
	ev := rec.snapshot()
	require.NotEmpty(t, ev)
	require.True(t, strings.HasPrefix(ev[0], "blind "), ev[0])

	// The decodable connection outlived both timeouts and still works.
	_, err = good.Write(pingFrame(t, 2))
	require.NoError(t, err)
	_, err = goodFrames.ReadFrame()
	require.NoError(t, err)
}
