package classic

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 5 * time.Second

// logBuffer collects a server's log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// entries parses the JSON log lines.
func (l *logBuffer) entries() []map[string]any {
	var out []map[string]any
	for line := range strings.SplitSeq(l.String(), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// requireLogEntry waits (bounded) for a log entry with this message and
// peer, and returns it.
func requireLogEntry(t *testing.T, logs *logBuffer, message, peer string) map[string]any {
	t.Helper()
	var found map[string]any
	require.Eventually(t, func() bool {
		for _, e := range logs.entries() {
			if e["@message"] == message && e["peer"] == peer {
				found = e
				return true
			}
		}
		return false
	}, testTimeout, 5*time.Millisecond, "no log entry %q for peer %s in:\n%s", message, peer, logs)
	return found
}

// startServer serves backend on a loopback port until the test ends.
func startServer(t *testing.T, backend Backend, opts Options) (string, *Server, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if opts.Logger == nil {
		opts.Logger = hclog.New(&hclog.LoggerOptions{Name: "test", Output: logs, Level: hclog.Debug, JSONFormat: true})
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := NewServer(backend, opts)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		require.NoError(t, srv.Close())
		select {
		case err := <-done:
			require.ErrorIs(t, err, ErrServerClosed)
		case <-time.After(testTimeout):
			t.Error("Serve did not return after Close")
		}
	})
	return l.Addr().String(), srv, logs
}

func dial(t *testing.T, addr string) *Client {
	t.Helper()
	c, err := Dial(addr, testTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	return nc
}

// requireClosedByPeer reads until the server closes nc; a timeout fails.
func requireClosedByPeer(t *testing.T, nc net.Conn) {
	t.Helper()
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(testTimeout)))
	buf := make([]byte, 4096)
	for {
		_, err := nc.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "server did not close the connection: %v", err)
		if err != io.EOF {
			// A reset also means closed: the server closed with unread input.
			require.True(t, isReset(err), "unexpected read error: %v", err)
		}
		return
	}
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}

// recorder wraps a Backend and records the calls it receives.
type recorder struct {
	Backend
	mu    sync.Mutex
	calls []string
}

func (r *recorder) record(s string) {
	r.mu.Lock()
	r.calls = append(r.calls, s)
	r.mu.Unlock()
}

func (r *recorder) ClassicBegin(id string, storages []string) {
	r.record("begin " + id + " " + strings.Join(storages, ","))
	r.Backend.ClassicBegin(id, storages)
}

func (r *recorder) ClassicCommit(id string, tids map[string]txn.TID, none []string) {
	r.record("commit " + id + " " + formatTIDs(tids) + " none=" + strings.Join(none, ","))
	r.Backend.ClassicCommit(id, tids, none)
}

func (r *recorder) ClassicAbort(id string) {
	r.record("abort " + id)
	r.Backend.ClassicAbort(id)
}

func (r *recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func formatTIDs(m map[string]txn.TID) string {
	b, _ := appendDict(nil, m)
	return strings.ReplaceAll(strings.TrimSuffix(string(b), "\n"), "\n", "|")
}
