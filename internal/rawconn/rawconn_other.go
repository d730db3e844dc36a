//go:build !linux

package rawconn

import (
	"io"
	"net"
)

// Split returns c's own reader and writer: raw system calls are used on
// Linux only.
func Split(c net.Conn) (io.Reader, io.Writer) { return c, c }
