package classic

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// 1,024 idle connections (the default limit) no longer
// lock patched Zopes and DUMP out: the idlest one makes room, and a new
// client can BEGIN, COMMIT and DUMP at once.
func TestIdleConnectionsDoNotLockOut(t *testing.T) {
	rec := &recorder{Backend: newRefBackend(nil)}
	addr, srv, logs := startServer(t, rec, Options{MaxConns: DefaultMaxConns, IdleTimeout: 10 * time.Minute})
	idle := make([]net.Conn, 0, DefaultMaxConns)
	deadline := time.Now().Add(30 * time.Second)
	for range DefaultMaxConns {
		require.True(t, time.Now().Before(deadline), "opening %d connections took over 30s", DefaultMaxConns)
		idle = append(idle, dialRaw(t, addr))
	}
	require.Eventually(t, func() bool { return srv.Stats().ConnectionsActive == DefaultMaxConns },
		testTimeout, 5*time.Millisecond, "active: %d", srv.Stats().ConnectionsActive)
	time.Sleep(evictMinIdle + 50*time.Millisecond)

	start := time.Now()
	c, err := Dial(addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Begin("t1", []string{"s1"}))
	require.NoError(t, c.Commit("t1", map[string]txn.TID{"s1": 42}))
	_, err = c.Dump()
	require.NoError(t, err)
	took := time.Since(start)
	require.Less(t, took, time.Second, "BEGIN, COMMIT, DUMP took %s", took)
	require.Equal(t, []string{"begin t1 s1", "commit t1 1|s1|42 none="}, rec.Calls())
	st := srv.Stats()
	require.EqualValues(t, 1, st.ConnectionsEvicted)
	require.Zero(t, st.ConnectionsRefused)
	t.Logf("BEGIN/COMMIT/DUMP through a full endpoint took %s", took)

	// One idle connection was closed, and logged.
	closed := closedConns(t, idle)
	require.Len(t, closed, 1)
	requireLogEntry(t, logs, "idle connection closed to admit a new one (max_connections reached)", closed[0].LocalAddr().String())
	// A DUMP poller connecting next evicts another one.
	d, err := Dial(addr, time.Second)
	require.NoError(t, err)
	defer d.Close()
	_, err = d.Dump()
	require.NoError(t, err)
	require.EqualValues(t, 2, srv.Stats().ConnectionsEvicted)
	require.Len(t, closedConns(t, idle), 2)
}

// closedConns returns the connections of ncs the server has closed: each
// is read at once, concurrently, for at most 300ms.
func closedConns(t *testing.T, ncs []net.Conn) []net.Conn {
	t.Helper()
	deadline := time.Now().Add(300 * time.Millisecond)
	shut := make([]bool, len(ncs))
	var wg sync.WaitGroup
	for i, nc := range ncs {
		require.NoError(t, nc.SetReadDeadline(deadline))
		wg.Go(func() {
			_, err := nc.Read(make([]byte, 1))
			var ne net.Error
			shut[i] = err != nil && !(errors.As(err, &ne) && ne.Timeout())
		})
	}
	wg.Wait()
	var closed []net.Conn
	for i, nc := range ncs {
		if shut[i] {
			closed = append(closed, nc)
		}
	}
	return closed
}
