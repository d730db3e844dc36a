//go:build !linux

package rawconn

import (
	"io"
	"net"
	"os"
)

// Split returns c's own reader and writer: raw system calls are used on
// Linux only.
func Split(c net.Conn) (io.Reader, io.Writer) { return c, c }

// Wrap returns c (raw system calls are used on Linux only).
func Wrap(c net.Conn) net.Conn { return c }

// WriteFile is f.Write (raw system calls are used on Linux only).
func WriteFile(f *os.File, b []byte) (int, error) { return f.Write(b) }
