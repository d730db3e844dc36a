//go:build linux

package zeoproxy

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkSockDiag: the inode of one loopback client socket from its exact
// 4-tuple, with 0, 1,000 and 4,000 other loopback connections open: the
// kernel looks it up in its hash table, no scan.
func BenchmarkSockDiag(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.Cleanup(func() { c.Close() })
		}
	}()
	o := &owners{nl: -1, req: make([]byte, diagReqLen), buf: make([]byte, 8192)}
	defer o.closeNetlink()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, open := range []int{0, 1000, 4000} {
		for len(conns) < open+1 {
			c, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(b, err)
			conns = append(conns, c)
		}
		c := conns[0]
		client, us := c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr)
		b.Run("open="+strconv.Itoa(open), func(b *testing.B) {
			for range b.N {
				inode, _, err := o.diag(client, us)
				if err != nil || inode == 0 {
					b.Fatal(inode, err)
				}
			}
		})
	}
}
