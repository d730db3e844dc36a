package zeoproxy_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/zeoproxy"
	"github.com/tidstorage/tidstorage/zrpc"
)

// benchClient is a raw ZEO client for the benchmarks: handshake, then
// pre-encoded frames, sync round trips matched by position.
type benchClient struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func dialBench(tb testing.TB, addr string) *benchClient {
	c, err := net.Dial("tcp", addr)
	require.NoError(tb, err)
	return newBenchClient(tb, c)
}

// newBenchClient runs the ZEO handshake on c (a plain or TLS connection).
func newBenchClient(tb testing.TB, c net.Conn) *benchClient {
	tb.Helper()
	tb.Cleanup(func() { c.Close() })
	bc := &benchClient{c: c, br: bufio.NewReaderSize(c, 64<<10), bw: bufio.NewWriterSize(c, 64<<10)}
	bc.readFrame(tb) // Z5
	require.NoError(tb, zrpc.WriteFrame(bc.bw, []byte("Z5")))
	require.NoError(tb, bc.bw.Flush())
	return bc
}

func (bc *benchClient) readFrame(tb testing.TB) int {
	var hdr [4]byte
	if _, err := io.ReadFull(bc.br, hdr[:]); err != nil {
		tb.Fatal(err)
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if _, err := bc.br.Discard(n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func pingFrame(tb testing.TB, msgid int64) []byte {
	p, err := zrpc.EncodeMessage(zrpc.Pickle, zrpc.NewCall(msgid, "ping", zrpc.Tuple{}))
	require.NoError(tb, err)
	return zrpc.AppendFrame(nil, p)
}

func storeaFrame(tb testing.TB, size int) []byte {
	data := make([]byte, size)
	p, err := zrpc.EncodeMessage(zrpc.Pickle, zrpc.NewAsync("storea", zrpc.Tuple{make([]byte, 8), make([]byte, 8), data, int64(12345)}))
	require.NoError(tb, err)
	return zrpc.AppendFrame(nil, p)
}

func benchTargets(b *testing.B) map[string]string {
	sink := startZEOSink(b)
	p := serveProxy(b, zeoproxy.Config{Servers: []zeoproxy.ServerConfig{{Name: "sink", Listen: "127.0.0.1:0", Upstream: sink}}}, newRecorder())
	return map[string]string{"direct": sink, "proxy": p.Addrs()[0].String()}
}

// BenchmarkSyncCall: one small sync call and its reply per op.
func BenchmarkSyncCall(b *testing.B) {
	targets := benchTargets(b)
	for _, name := range []string{"direct", "proxy"} {
		b.Run(name, func(b *testing.B) {
			bc := dialBench(b, targets[name])
			f := pingFrame(b, 7)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				bc.bw.Write(f)
				bc.bw.Flush()
				bc.readFrame(b)
			}
		})
	}
}

// BenchmarkStorea1MiB: one-way 1 MiB storea frames, then one sync call to
// be sure all of them went through.
func BenchmarkStorea1MiB(b *testing.B) {
	targets := benchTargets(b)
	for _, name := range []string{"direct", "proxy"} {
		b.Run(name, func(b *testing.B) {
			bc := dialBench(b, targets[name])
			f := storeaFrame(b, 1<<20)
			ping := pingFrame(b, 9)
			b.SetBytes(int64(len(f)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := bc.bw.Write(f); err != nil {
					b.Fatal(err)
				}
			}
			bc.bw.Write(ping)
			bc.bw.Flush()
			bc.readFrame(b)
		})
	}
}
