package classic

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// readReply reads n bytes of reply from a raw connection.
func readReply(t *testing.T, r io.Reader, n int) string {
	t.Helper()
	buf := make([]byte, n)
	_, err := io.ReadFull(r, buf)
	require.NoError(t, err)
	return string(buf)
}

// The server's bytes, as a client written from the README sees them.
func TestServerWireBytes(t *testing.T) {
	addr, srv, _ := startServer(t, newRefBackend(nil), Options{})
	nc := dialRaw(t, addr)
	require.NoError(t, nc.SetDeadline(time.Now().Add(testTimeout)))

	_, err := io.WriteString(nc, "dump\r\n")
	require.NoError(t, err)
	require.Equal(t, "0\n", readReply(t, nc, 2), "an empty dict is the single field 0")
	_, err = io.WriteString(nc, "BootStraped\r\n")
	require.NoError(t, err)
	require.Equal(t, "0\n", readReply(t, nc, 2))

	// Two transactions sent in one write, fields split with \r\n and mixed
	// case, TIDs with an L suffix. Only DUMP and BOOTSTRAPED answer.
	_, err = io.WriteString(nc, "Begin\r\nt1\r\n1\r\nb\r\ncommit\nt1\n1\nb\n7L\n"+
		"BEGIN\nt2\n2\na\nb\nCoMmIt\r\nt2\r\n2\r\na\r\nb\r\n18446744073709551615\r\n9\r\n"+
		"DUMP\nBOOTSTRAPED\n")
	require.NoError(t, err)
	want := "2\na\nb\n18446744073709551615\n9\n" + "1\n"
	require.Equal(t, want, readReply(t, nc, len(want)))

	_, err = io.WriteString(nc, "quit\n")
	require.NoError(t, err)
	requireClosedByPeer(t, nc)

	st := srv.Stats()
	require.Equal(t, CommandStats{Begin: 2, Commit: 2, Dump: 2, Bootstraped: 2, Quit: 1}, st.Commands)
	require.Zero(t, st.ProtocolErrors)
}

// Replies to pipelined requests come back in order, all of them, even when
// they exceed the batching threshold.
func TestServerPipelinedReplies(t *testing.T) {
	b := newRefBackend(nil)
	addr, _, _ := startServer(t, b, Options{})
	c := dial(t, addr)
	require.NoError(t, c.Begin("t", []string{"s"}))
	require.NoError(t, c.Commit("t", tids{"s": 1}))
	require.NoError(t, c.Begin("t", []string{"s"}))
	require.NoError(t, c.Commit("t", tids{"s": 123456}))
	m, err := c.Dump()
	require.NoError(t, err)
	require.Equal(t, tids{"s": 123456}, m)

	nc := dialRaw(t, addr)
	require.NoError(t, nc.SetDeadline(time.Now().Add(testTimeout)))
	const n = 20000 // 20000 * "1\ns\n123456\n" is well over flushThreshold
	go io.WriteString(nc, strings.Repeat("DUMP\nbootstraped\n", n))
	r := bufio.NewReader(nc)
	for i := range n {
		require.Equal(t, "1\ns\n123456\n1\n", readReply(t, r, 13), "reply %d", i)
	}
}

func TestServerPassesNoneAndIDsThrough(t *testing.T) {
	rec := &recorder{Backend: newRefBackend(nil)}
	addr, _, _ := startServer(t, rec, Options{})
	nc := dialRaw(t, addr)
	_, err := io.WriteString(nc, "BEGIN\n10.0.0.1:8080_7f3a\n2\n((('localhost', 8100),), '1')\n((('localhost', 8200),), '2')\n"+
		"COMMIT\n10.0.0.1:8080_7f3a\n2\n((('localhost', 8100),), '1')\n((('localhost', 8200),), '2')\n5\nNone\n"+
		"ABORT\nx\nDUMP\n")
	require.NoError(t, err)
	require.Equal(t, "0\n", readReply(t, nc, 2))
	require.Equal(t, []string{
		"begin 10.0.0.1:8080_7f3a ((('localhost', 8100),), '1'),((('localhost', 8200),), '2')",
		"commit 10.0.0.1:8080_7f3a 1|((('localhost', 8100),), '1')|5 none=((('localhost', 8200),), '2')",
		"abort x",
	}, rec.Calls())
}

// Every bad input closes the offending connection with a log line naming
// the peer and what was wrong; what came before it stays recorded; other
// connections carry on.
func TestServerBadInput(t *testing.T) {
	long := strings.Repeat("x", DefaultMaxFieldSize+1)
	cases := []struct {
		name  string
		input string
		log   string
	}{
		{"unknown command", "FROB\nDUMP\n", `command name: protocol violation: unknown command: "FROB"`},
		{"empty line", "\n", `unknown command: ""`},
		{"field too long", "BEGIN\n" + long + "\n1\ns\n", "BEGIN field 1 (transaction id): protocol violation: field too long: more than 65536 bytes"},
		{"field too long, no newline", "ABORT\n" + long + long, "ABORT field 1 (transaction id): protocol violation: field too long"},
		{"count not a number", "BEGIN\nt2\nabc\n", `BEGIN field 2 (storage count): protocol violation: bad count: "abc"`},
		{"negative count", "BEGIN\nt2\n-1\n", `bad count: "-1"`},
		{"absurd count", "BEGIN\nt2\n100001\n", "BEGIN field 2 (storage count): protocol violation: bad count: 100001 is more than the limit of 100000"},
		{"absurd dict count", "COMMIT\nt2\n4000000000\n", "COMMIT field 2 (storage count): protocol violation: bad count"},
		{"TID not a number", "BEGIN\nt2\n1\ns2\nCOMMIT\nt2\n1\ns2\n0x5\n", `COMMIT field 4 (TID of storage "s2"): protocol violation: not a number: "0x5"`},
		{"command too long", "BEGIN\nt2\n100\n" + strings.Repeat(strings.Repeat("x", 16<<10)+"\n", 100),
			"BEGIN field 66 (storage id 64 of 100): protocol violation: command too long: more than 1048576 bytes"},
		{"TID overflow", "BEGIN\nt2\n1\ns2\nCOMMIT\nt2\n1\ns2\n18446744073709551616\n", `not a number: "18446744073709551616"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{Backend: newRefBackend(nil)}
			addr, srv, logs := startServer(t, rec, Options{})
			good := dial(t, addr)
			require.NoError(t, good.Begin("boot", []string{"boot"}))
			require.NoError(t, good.Commit("boot", tids{"boot": 1})) // completes bootstrap

			bad := dialRaw(t, addr)
			peer := bad.LocalAddr().String()
			_, err := io.WriteString(bad, "BEGIN\nt1\n1\ns1\nCOMMIT\nt1\n1\ns1\n7\n")
			require.NoError(t, err)
			// The server may close while this is still being written.
			_, _ = io.WriteString(bad, tc.input)
			requireClosedByPeer(t, bad)

			e := requireLogEntry(t, logs, "closing connection: bad input", peer)
			require.Equal(t, "error", e["@level"])
			require.Contains(t, e["error"], tc.log)

			got, err := good.Dump()
			require.NoError(t, err)
			require.Equal(t, tids{"boot": 1, "s1": 7}, got, "what was recorded before the bad input is kept")
			for _, call := range rec.Calls() {
				require.NotContains(t, call, "commit t2", "a COMMIT with a bad field is not applied")
			}
			st := srv.Stats()
			require.EqualValues(t, 1, st.ProtocolErrors)
			require.Eventually(t, func() bool { return srv.Stats().ConnectionsActive == 1 }, testTimeout, time.Millisecond)

			// The good connection carries on.
			require.NoError(t, good.Begin("t3", []string{"s1"}))
			require.NoError(t, good.Commit("t3", tids{"s1": 8}))
			got, err = good.Dump()
			require.NoError(t, err)
			require.Equal(t, tids{"boot": 1, "s1": 8}, got)
		})
	}
}

// A COMMIT whose connection ends before its last field is discarded whole.
func TestServerTornCommit(t *testing.T) {
	rec := &recorder{Backend: newRefBackend(nil)}
	addr, srv, logs := startServer(t, rec, Options{})
	nc := dialRaw(t, addr)
	peer := nc.LocalAddr().String()
	_, err := io.WriteString(nc, "BEGIN\nt1\n2\na\nb\nCOMMIT\nt1\n2\na\nb\n5\n")
	require.NoError(t, err)
	require.NoError(t, nc.(*net.TCPConn).CloseWrite())
	requireClosedByPeer(t, nc)

	e := requireLogEntry(t, logs, "connection ended inside a command; command discarded", peer)
	require.Equal(t, `COMMIT field 6 (TID of storage "b"): unexpected EOF`, e["error"])
	require.Equal(t, []string{"begin t1 a,b"}, rec.Calls())
	require.EqualValues(t, 1, srv.Stats().TornCommands)
	require.Zero(t, srv.Stats().ProtocolErrors)
}

func TestServerConnectionLimit(t *testing.T) {
	addr, srv, logs := startServer(t, newRefBackend(nil), Options{MaxConns: 2})
	c1, c2 := dial(t, addr), dial(t, addr)
	for _, c := range []*Client{c1, c2} {
		_, err := c.Dump()
		require.NoError(t, err)
		require.NoError(t, c.Abort("x"), "a reporter: never evicted")
	}
	time.Sleep(evictMinIdle + 50*time.Millisecond)
	extra := dialRaw(t, addr)
	requireClosedByPeer(t, extra)
	e := requireLogEntry(t, logs, "connection refused: too many connections", extra.LocalAddr().String())
	require.EqualValues(t, 2, e["max_conns"])
	require.EqualValues(t, 1, srv.Stats().ConnectionsRefused)

	_, err := c1.Dump()
	require.NoError(t, err, "admitted connections are unaffected")
	require.NoError(t, c2.Quit())
	require.Eventually(t, func() bool { return srv.Stats().ConnectionsActive == 1 }, testTimeout, time.Millisecond)
	c3 := dial(t, addr)
	_, err = c3.Dump()
	require.NoError(t, err, "a slot freed is usable again")

	// Zero means no limit, as in the configuration.
	addr, srv, _ = startServer(t, newRefBackend(nil), Options{})
	for range 50 {
		_, err = dial(t, addr).Dump()
		require.NoError(t, err)
	}
	require.Zero(t, srv.Stats().ConnectionsRefused)
}

func TestServerAllowList(t *testing.T) {
	_, tenNet, _ := net.ParseCIDR("10.0.0.0/8")
	addr, srv, logs := startServer(t, newRefBackend(nil), Options{Allow: []*net.IPNet{tenNet}})
	nc := dialRaw(t, addr)
	requireClosedByPeer(t, nc)
	requireLogEntry(t, logs, "connection denied: peer not in the allow-list", nc.LocalAddr().String())
	require.EqualValues(t, 1, srv.Stats().ConnectionsDenied)
	require.Zero(t, srv.Stats().ConnectionsAccepted)

	addr, srv, _ = startServer(t, newRefBackend(nil), Options{Allow: []*net.IPNet{}})
	requireClosedByPeer(t, dialRaw(t, addr))
	require.EqualValues(t, 1, srv.Stats().ConnectionsDenied, "an empty, non-nil allow-list accepts nobody")

	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	addr, _, _ = startServer(t, newRefBackend(nil), Options{Allow: []*net.IPNet{tenNet, loopback}})
	_, err := dial(t, addr).Dump()
	require.NoError(t, err)
}

// Idle connections are kept unless an idle timeout is set.
func TestServerIdle(t *testing.T) {
	addr, _, _ := startServer(t, newRefBackend(nil), Options{})
	c := dial(t, addr)
	time.Sleep(300 * time.Millisecond)
	_, err := c.Dump()
	require.NoError(t, err)

	addr, _, logs := startServer(t, newRefBackend(nil), Options{IdleTimeout: 100 * time.Millisecond})
	nc := dialRaw(t, addr)
	requireClosedByPeer(t, nc)
	requireLogEntry(t, logs, "closing idle connection", nc.LocalAddr().String())
}

// Close ends idle connections too, and Serve returns.
func TestServerClose(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := NewServer(newRefBackend(nil), Options{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	nc := dialRaw(t, l.Addr().String())
	_, err = io.WriteString(nc, "DUMP\n")
	require.NoError(t, err)
	require.Equal(t, "0\n", readReply(t, nc, 2))
	require.NoError(t, srv.Close())
	requireClosedByPeer(t, nc)
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrServerClosed)
	case <-time.After(testTimeout):
		t.Fatal("Serve did not return")
	}
	require.ErrorIs(t, srv.Serve(l), ErrServerClosed)
}

// Many clients at once, each like a Zope thread reusing its transaction id,
// over random overlapping storages. Once all are done every group has
// drained, so each storage publishes its highest committed TID.
func TestServerConcurrentClients(t *testing.T) {
	const clients, txns, storages = 32, 150, 6
	addr, srv, _ := startServer(t, newRefBackend(nil), Options{})
	var (
		tid   atomic.Uint64
		mu    sync.Mutex
		max   = tids{}
		total CommandStats
		wg    sync.WaitGroup
	)
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(addr, testTimeout)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			id := fmt.Sprintf("127.0.0.1:8080_%x", i)
			var local CommandStats
			for j := range txns {
				var ss []string
				for s := range storages {
					if rng.IntN(3) == 0 {
						ss = append(ss, fmt.Sprintf("s%d", s))
					}
				}
				if len(ss) == 0 {
					ss = []string{"s0"}
				}
				if err := c.Begin(id, ss); err != nil {
					errs <- err
					return
				}
				local.Begin++
				if j%7 == 3 {
					if err := c.Abort(id); err != nil {
						errs <- err
						return
					}
					local.Abort++
					continue
				}
				m := tids{}
				for _, s := range ss {
					m[s] = txn.TID(tid.Add(1))
				}
				mu.Lock()
				for s, v := range m {
					if v > max[s] {
						max[s] = v
					}
				}
				mu.Unlock()
				if err := c.Commit(id, m); err != nil {
					errs <- err
					return
				}
				local.Commit++
				if j%25 == 0 {
					if _, err := c.Dump(); err != nil {
						errs <- err
						return
					}
					local.Dump++
				}
			}
			_, err = c.Dump() // all of this client's commands were processed
			if err != nil {
				errs <- err
				return
			}
			local.Dump++
			mu.Lock()
			total.Begin += local.Begin
			total.Abort += local.Abort
			total.Commit += local.Commit
			total.Dump += local.Dump
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	c := dial(t, addr)
	got, err := c.Dump()
	require.NoError(t, err)
	total.Dump++
	require.Equal(t, max, got)
	st := srv.Stats()
	require.Equal(t, total, st.Commands)
	require.EqualValues(t, clients+1, st.ConnectionsAccepted)
	require.Zero(t, st.ProtocolErrors)
}

// Replies owed for the commands before a bad one are still sent: the stream
// was valid up to there.
func TestServerRepliesBeforeBadInput(t *testing.T) {
	addr, _, logs := startServer(t, newRefBackend(nil), Options{})
	nc := dialRaw(t, addr)
	require.NoError(t, nc.SetDeadline(time.Now().Add(testTimeout)))
	_, err := io.WriteString(nc, "DUMP\nBOOTSTRAPED\nFROB\nDUMP\n")
	require.NoError(t, err)
	require.Equal(t, "0\n0\n", readReply(t, nc, 4))
	requireClosedByPeer(t, nc)
	requireLogEntry(t, logs, "closing connection: bad input", nc.LocalAddr().String())
}

// fixedBackend publishes a fixed map.
type fixedBackend struct{ m map[string]txn.TID }

func (fixedBackend) ClassicBegin(string, []string)                      {}
func (fixedBackend) ClassicCommit(string, map[string]txn.TID, []string) {}
func (fixedBackend) ClassicAbort(string)                                {}
func (f fixedBackend) Dump() map[string]txn.TID                         { return f.m }
func (fixedBackend) Bootstrapped() bool                                 { return true }

// A storage id the protocol cannot carry is left out of DUMP (and logged)
// rather than breaking every DUMP.
func TestServerDumpUnsendableKey(t *testing.T) {
	addr, _, logs := startServer(t, fixedBackend{tids{"a\nb": 1, "c": 2}}, Options{})
	nc := dialRaw(t, addr)
	require.NoError(t, nc.SetDeadline(time.Now().Add(testTimeout)))
	_, err := io.WriteString(nc, "DUMP\n")
	require.NoError(t, err)
	require.Equal(t, "1\nc\n2\n", readReply(t, nc, 6))
	e := requireLogEntry(t, logs, `DUMP: storage ids containing \n or \r left out of the reply`, nc.LocalAddr().String())
	require.Equal(t, []any{"a\nb"}, e["storages"])
}

// A peer that asks for replies and never reads them is dropped after
// WriteTimeout instead of holding its goroutine forever.
func TestServerWriteTimeout(t *testing.T) {
	big := tids{}
	for i := range 1000 {
		big[fmt.Sprintf("((('zeo-%04d.example', 8100),), '1')", i)] = txn.TID(i)
	}
	addr, srv, logs := startServer(t, fixedBackend{big}, Options{WriteTimeout: 200 * time.Millisecond})
	nc := dialRaw(t, addr)
	require.NoError(t, nc.SetWriteDeadline(time.Now().Add(testTimeout)))
	go func() {
		for {
			if _, err := io.WriteString(nc, strings.Repeat("DUMP\n", 100)); err != nil {
				return
			}
		}
	}()
	e := requireLogEntry(t, logs, "could not send reply; closing connection", nc.LocalAddr().String())
	require.Contains(t, e["error"], "timeout")
	require.Eventually(t, func() bool { return srv.Stats().ConnectionsActive == 0 }, testTimeout, time.Millisecond)
}

// A client's connect, quit and disconnect are logged at DEBUG, never above:
// a site that polls DUMP opens a connection per poll.
func TestConnectQuitLoggedAtDebug(t *testing.T) {
	addr, _, logs := startServer(t, fixedBackend{tids{"a": 1}}, Options{})
	c := dial(t, addr)
	peer := c.nc.LocalAddr().String()
	_, err := c.Dump()
	require.NoError(t, err)
	require.NoError(t, c.Quit())
	for _, msg := range []string{"client connected", "client quit"} {
		e := requireLogEntry(t, logs, msg, peer)
		require.Equal(t, "debug", e["@level"], msg)
	}
	c2 := dial(t, addr)
	peer2 := c2.nc.LocalAddr().String()
	_, err = c2.Dump()
	require.NoError(t, err)
	c2.Close()
	e := requireLogEntry(t, logs, "client disconnected", peer2)
	require.Equal(t, "debug", e["@level"])
}
