package zeotest

import (
	"net"
	"testing"
)

// ServeTCP listens on 127.0.0.1 (a free port) and runs handle on each
// connection it accepts, in a goroutine of its own, until the test ends.
// handle owns the connection and must close it.
func ServeTCP(tb testing.TB, handle func(net.Conn)) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("zeotest: listen: %v", err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed at the end of the test (or broken: the test sees no answer)
			}
			go handle(c)
		}
	}()
	return ln
}
