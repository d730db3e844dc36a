package classic

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClientRefusesNewlines(t *testing.T) {
	rec := &recorder{Backend: newRefBackend(nil)}
	addr, _, _ := startServer(t, rec, Options{})
	c := dial(t, addr)
	require.ErrorIs(t, c.Begin("t\n1", []string{"a"}), ErrForbiddenByte)
	require.ErrorIs(t, c.Begin("t1", []string{"a\r"}), ErrForbiddenByte)
	require.ErrorIs(t, c.Abort("t\r\n"), ErrForbiddenByte)
	require.ErrorIs(t, c.Commit("t1", tids{"a\nb": 1}), ErrForbiddenByte)
	// Nothing was sent, so the connection is still in step.
	m, err := c.Dump()
	require.NoError(t, err)
	require.Empty(t, m)
	require.Empty(t, rec.Calls())
}

// fakeServer accepts one connection and answers with script(reader, conn).
func fakeServer(t *testing.T, script func(r *bufio.Reader, w net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		script(bufio.NewReader(nc), nc)
	}()
	return l.Addr().String()
}

// A server that never answers: the call ends at the timeout, and the client
// refuses further calls (its stream is out of step).
func TestClientTimeout(t *testing.T) {
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	addr := fakeServer(t, func(r *bufio.Reader, w net.Conn) { <-hold })
	c, err := Dial(addr, 100*time.Millisecond)
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	_, err = c.Dump()
	require.Error(t, err)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())
	require.Less(t, time.Since(start), testTimeout)
	_, err = c.Bootstraped()
	require.ErrorIs(t, err, ErrClientClosed)
}

func TestClientBadReplies(t *testing.T) {
	for name, reply := range map[string]string{
		"bootstraped not 0 or 1":   "2\n",
		"bootstraped not a number": "yes\n",
		"torn":                     "1",
	} {
		t.Run(name, func(t *testing.T) {
			addr := fakeServer(t, func(r *bufio.Reader, w net.Conn) {
				r.ReadString('\n')
				io.WriteString(w, reply)
			})
			c, err := Dial(addr, testTimeout)
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Bootstraped()
			require.Error(t, err)
		})
	}
	addr := fakeServer(t, func(r *bufio.Reader, w net.Conn) {
		r.ReadString('\n')
		io.WriteString(w, "2\r\nb\r\na\r\n2L\r\n1\r\n") // \r dropped, L accepted, any key order
	})
	c := dial(t, addr)
	m, err := c.Dump()
	require.NoError(t, err)
	require.Equal(t, tids{"a": 1, "b": 2}, m)
}
