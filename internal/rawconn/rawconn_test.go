package rawconn_test

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/rawconn"
)

// pair returns the two ends of a connection of network (tcp or unix).
func pair(t *testing.T, network string) (net.Conn, net.Conn) {
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	ln, err := net.Listen(network, addr)
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial(network, ln.Addr().String())
	require.NoError(t, err)
	b := <-accepted
	require.NotNil(t, b)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// Bytes go through both ways, large writes whole (past the socket buffer:
// the writer waits for the poller), and a closed peer reads as io.EOF.
func TestSplitReadWrite(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			a, b := pair(t, network)
			ar, aw := rawconn.Split(a)
			br, _ := rawconn.Split(b)
			if runtime.GOOS == "linux" {
				_, isConn := ar.(net.Conn)
				require.False(t, isConn, "raw reader on Linux")
			}
			big := make([]byte, 8<<20)
			for i := range big {
				big[i] = byte(i * 7)
			}
			done := make(chan error, 1)
			go func() {
				n, err := aw.Write(big)
				if err == nil && n != len(big) {
					err = io.ErrShortWrite
				}
				done <- err
			}()
			got := make([]byte, len(big))
			_, err := io.ReadFull(br, got)
			require.NoError(t, err)
			require.NoError(t, <-done)
			require.Equal(t, big, got)
			n, err := aw.Write(nil)
			require.NoError(t, err)
			require.Zero(t, n)
			require.NoError(t, a.Close())
			n, err = br.Read(got)
			require.Zero(t, n)
			require.ErrorIs(t, err, io.EOF)
			_ = ar
		})
	}
}

// Close from another goroutine ends a waiting read with net.ErrClosed; a
// read deadline with os.ErrDeadlineExceeded; a write to a peer that is
// gone fails (EPIPE or ECONNRESET) instead of killing the process.
func TestSplitCloseDeadlineBrokenPeer(t *testing.T) {
	a, b := pair(t, "tcp")
	ar, aw := rawconn.Split(a)
	buf := make([]byte, 16)
	require.NoError(t, a.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err := ar.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, a.SetReadDeadline(time.Time{}))

	done := make(chan error, 1)
	go func() { _, err := ar.Read(buf); done <- err }()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, a.Close())
	require.ErrorIs(t, <-done, net.ErrClosed)

	c, d := pair(t, "tcp")
	_, cw := rawconn.Split(c)
	require.NoError(t, d.Close())
	var werr error
	for range 100 { // the first write may still be accepted by the kernel
		if _, werr = cw.Write(buf); werr != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.Error(t, werr)
	_ = aw
	_ = b
}

// Connections that are not sockets keep their own Read and Write.
func TestSplitOtherConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	r, w := rawconn.Split(a)
	require.Equal(t, a, r)
	require.Equal(t, a, w)
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	require.NoError(t, err)
	for _, s := range []string{"abc", "", "defg"} {
		n, err := rawconn.WriteFile(f, []byte(s))
		require.NoError(t, err)
		require.Equal(t, len(s), n)
	}
	require.NoError(t, f.Close())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "abcdefg", string(b))
	_, err = rawconn.WriteFile(f, []byte("x"))
	require.ErrorContains(t, err, "closed")

	ro, err := os.Open(path)
	require.NoError(t, err)
	defer ro.Close()
	_, err = rawconn.WriteFile(ro, []byte("x"))
	require.Error(t, err, "a file opened read-only")
}

// Wrap keeps the connection's other methods and reads and writes raw.
func TestWrap(t *testing.T) {
	a, b := pair(t, "tcp")
	wa := rawconn.Wrap(a)
	require.Equal(t, a.RemoteAddr(), wa.RemoteAddr())
	_, err := wa.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(rawconn.Wrap(b), buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf))
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	require.Equal(t, p, rawconn.Wrap(p))
}
