package zeoproxy_test

import (
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/zeoproxy"
)

// holdConns opens n loopback connections to addr and keeps them open until
// the benchmark ends.
func holdConns(b *testing.B, addr string, n int) {
	for range n {
		c, err := net.Dial("tcp", addr)
		require.NoError(b, err)
		b.Cleanup(func() { c.Close() })
	}
}

// BenchmarkConnSetup: one loopback client connection through the proxy per
// op, from dial to the server's announcement relayed, with 0, 1,000 and
// 4,000 other loopback connections open through it. The client identity is
// resolved off this path (identity.go), so setup must not grow with them.
func BenchmarkConnSetup(b *testing.B) {
	sinkAddr := startZEOSink(b)
	setup := func(b *testing.B, addr string) {
		hello := make([]byte, 6)
		b.ResetTimer()
		for range b.N {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, hello); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	}
	b.Run("direct", func(b *testing.B) { setup(b, sinkAddr) }) // the same without the proxy
	for _, open := range []int{0, 1000, 4000} {
		b.Run("open="+strconv.Itoa(open), func(b *testing.B) {
			p := serveProxy(b, zeoproxy.Config{Servers: []zeoproxy.ServerConfig{{Name: "s", Listen: "127.0.0.1:0", Upstream: sinkAddr}}}, newRecorder())
			addr := p.Addrs()[0].String()
			holdConns(b, addr, open)
			setup(b, addr)
		})
	}
}
