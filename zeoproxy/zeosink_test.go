package zeoproxy_test

import (
	"bufio"
	"crypto/tls"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/zrpc"
)

// zeoSink is a minimal Go ZEO-speaking server for benchmarks only: it
// announces Z5, answers every sync call with a reply carrying the same msgid
// and None, and swallows async calls. It shows the proxy's own ceiling, with
// no storage behind it.
func startZEOSink(tb testing.TB) string { return startZEOSinkWith(tb, nil) }

// startZEOSinkWith is startZEOSink speaking TLS with cfg (nil: plaintext).
func startZEOSinkWith(tb testing.TB, cfg *tls.Config) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if cfg != nil {
				c = tls.Server(c, cfg)
			}
			go serveSink(c)
		}
	}()
	return ln.Addr().String()
}

func serveSink(c net.Conn) {
	defer c.Close()
	w := bufio.NewWriterSize(c, 64<<10)
	if zrpc.WriteFrame(w, []byte("Z5")) != nil || w.Flush() != nil {
		return
	}
	br := bufio.NewReaderSize(c, 64<<10)
	var reply []byte
	first := true
	for {
		hdr, err := br.Peek(zrpc.HeaderSize)
		if err != nil {
			return
		}
		n := int(zrpc.ParseFrameHeader([zrpc.HeaderSize]byte(hdr)).Size)
		_, _ = br.Discard(zrpc.HeaderSize)
		head, err := br.Peek(min(n, 64))
		if err != nil {
			return
		}
		var pk zrpc.Peek
		var perr error
		if !first {
			pk, perr = zrpc.PeekMessage(zrpc.Pickle, head)
		}
		if _, err := br.Discard(n); err != nil {
			return
		}
		if first {
			first = false
			continue
		}
		if perr == nil && pk.Flags == 0 && pk.MsgIDKind == zrpc.MsgIDInt && pk.MsgID > 0 {
			reply, _ = zrpc.AppendMessage(reply[:0], zrpc.Pickle, zrpc.NewReply(pk.MsgID, nil))
			if zrpc.WriteFrame(w, reply) != nil {
				return
			}
		}
		if br.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}
