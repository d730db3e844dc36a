package rawconn

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Split returns c's reader and writer: raw system calls when c is a TCP or
// Unix socket, c itself otherwise (TLS, pipes).
func Split(c net.Conn) (io.Reader, io.Writer) {
	if r, w, ok := split(c); ok {
		return r, w
	}
	return c, c
}

// Wrap returns c with its Read and Write replaced by Split's (c itself
// when it is not a plain socket): for a connection handed to a library
// (gRPC) that only sees a net.Conn.
func Wrap(c net.Conn) net.Conn {
	if r, w, ok := split(c); ok {
		return &conn{Conn: c, r: r, w: w}
	}
	return c
}

type conn struct {
	net.Conn
	r *rawReader
	w *rawWriter
}

func (c *conn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *conn) Write(p []byte) (int, error) { return c.w.Write(p) }

func split(c net.Conn) (*rawReader, *rawWriter, bool) {
	var sc syscall.Conn
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil, nil, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, nil, false
	}
	r := &rawReader{rc: rc}
	r.fn = r.read
	w := &rawWriter{rc: rc}
	w.fn = w.write
	return r, w, true
}

// rawReader reads a socket; fn is its read method bound once, so that a
// Read does not allocate a closure.
type rawReader struct {
	rc    syscall.RawConn
	fn    func(fd uintptr) bool
	p     []byte
	n     int
	errno syscall.Errno
}

func (r *rawReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.errno = p, 0, 0
	err := r.rc.Read(r.fn)
	r.p = nil
	switch {
	case err != nil:
		return 0, err
	case r.errno != 0:
		return 0, os.NewSyscallError("read", r.errno)
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

// read is called by RawConn.Read until it returns true; false waits until
// the socket is readable.
func (r *rawReader) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.p[0])), uintptr(len(r.p)))
		switch e {
		case 0:
			r.n = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.errno = e
		return true
	}
}

// rawWriter writes a socket, the whole buffer or an error.
type rawWriter struct {
	rc    syscall.RawConn
	fn    func(fd uintptr) bool
	p     []byte
	n     int
	errno syscall.Errno
}

func (w *rawWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	w.p, w.n, w.errno = p, 0, 0
	err := w.rc.Write(w.fn)
	w.p = nil
	switch {
	case err != nil:
		return w.n, err
	case w.errno != 0:
		return w.n, os.NewSyscallError("write", w.errno)
	}
	return w.n, nil
}

// write is called by RawConn.Write until it returns true; false waits
// until the socket is writable. A broken connection's write fails with
// EPIPE (the runtime ignores SIGPIPE for sockets).
func (w *rawWriter) write(fd uintptr) bool {
	for w.n < len(w.p) {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&w.p[w.n])), uintptr(len(w.p)-w.n))
		switch e {
		case 0:
			w.n += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			w.errno = e
			return true
		}
	}
	return true
}

// WriteFile writes b to f with raw write(2) calls (f's RawConn): for the
// small appends of a write-ahead log on the relay's path (tracker/journal),
// which, through os.File.Write, would wake sysmon as a socket write does.
// A regular file's write never waits for the poller; it may sleep in the
// kernel (a disk too slow for the dirty pages), holding its Go P
// meanwhile, which the caller accepts: the journal's caller holds the
// tracker's lock through the write anyway.
func WriteFile(f *os.File, b []byte) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return f.Write(b)
	}
	w := rawWriter{rc: rc, p: b}
	if err := rc.Write(w.write); err != nil {
		return w.n, &os.PathError{Op: "write", Path: f.Name(), Err: err} // a closed file
	}
	if w.errno != 0 {
		return w.n, &os.PathError{Op: "write", Path: f.Name(), Err: w.errno}
	}
	return w.n, nil
}
