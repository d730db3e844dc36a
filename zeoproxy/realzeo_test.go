package zeoproxy_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/zeoproxy"
	"github.com/tidstorage/tidstorage/zrpc"
)

func startProxy(t *testing.T, tr zeoproxy.Tracker, servers ...*zeotest.Server) (*zeoproxy.Proxy, []string) {
	t.Helper()
	cfg := zeoproxy.Config{Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}})}
	for i, s := range servers {
		cfg.Servers = append(cfg.Servers, zeoproxy.ServerConfig{
			Name: "zeo" + string(rune('a'+i)), Listen: "127.0.0.1:0", Upstream: s.Addr,
		})
	}
	p := serveProxy(t, cfg, tr)
	var addrs []string
	for _, a := range p.Addrs() {
		addrs = append(addrs, a.String())
	}
	return p, addrs
}

// serveProxy starts a proxy with cfg reporting to tr, closed at the end of
// the test.
func serveProxy(tb testing.TB, cfg zeoproxy.Config, tr zeoproxy.Tracker) *zeoproxy.Proxy {
	tb.Helper()
	p := zeoproxy.New(cfg, tr)
	require.NoError(tb, p.Listen())
	p.Serve()
	tb.Cleanup(p.Close)
	return p
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func parseLines(t *testing.T, out []byte) []map[string]string {
	var res []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var m map[string]string
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		res = append(res, m)
	}
	return res
}

// Through the proxy, a multi-database client commits on two servers; every
// committed TID the client reports is observed, in order, per storage.
func TestObserveMultiDatabaseCommits(t *testing.T) {
	for _, msgpack := range []bool{false, true} {
		t.Run(map[bool]string{false: "pickle", true: "msgpack"}[msgpack], func(t *testing.T) {
			a := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}, Msgpack: msgpack})
			b := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1"}, Msgpack: msgpack})
			rec := newRecorder()
			_, addrs := startProxy(t, rec, a, b)
			dbs := []string{"--db", "a=" + addrs[0] + "/1", "--db", "b=" + addrs[0] + "/2", "--db", "c=" + addrs[1] + "/1"}
			out := zeotest.Python(t, "zodb_client.py", append(dbs, "commit", "--count", "5", "--touch", "a,b,c", "--desc", "multi")...)
			out2 := zeotest.Python(t, "zodb_client.py", append(dbs, "commit", "--count", "3", "--touch", "b", "--desc", "single")...)
			want := map[string][]string{}
			ids := map[string]string{
				"a": zeoproxy.StorageIDOf(addrs[0], "1"),
				"b": zeoproxy.StorageIDOf(addrs[0], "2"),
				"c": zeoproxy.StorageIDOf(addrs[1], "1"),
			}
			for _, line := range append(parseLines(t, out), parseLines(t, out2)...) {
				for db, tid := range line {
					want[ids[db]] = append(want[ids[db]], tid)
				}
			}
			// The clients' processes have exited; their connections are closed
			// once the proxy has seen both ends go.
			// Each database's first open also commits its root object: one
			// more TID per storage, before the workload's.
			require.Eventually(t, func() bool { return equalCommitted(rec.committed(), want, 1) }, zeotestWait, pollEvery,
				"observed %v\nwant %v", rec.committed(), want)
			for _, ev := range rec.snapshot() {
				require.NotContains(t, ev, "blind", "no storage may be blind on ordinary traffic")
			}
		})
	}
}

// equalCommitted: got[s] is extra TIDs followed by exactly want[s], for every s.
func equalCommitted(got, want map[string][]string, extra int) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if len(got[k]) != len(v)+extra || strings.Join(got[k][extra:], ",") != strings.Join(v, ",") {
			return false
		}
	}
	return true
}

// The proxy changes no byte: taps on both sides of it record identical
// streams, connection by connection, in both directions, for a workload with
// commits, conflicts-free loads, and both encodings.
func TestRelayIsByteExact(t *testing.T) {
	for _, msgpack := range []bool{false, true} {
		t.Run(map[bool]string{false: "pickle", true: "msgpack"}[msgpack], func(t *testing.T) {
			srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}, Msgpack: msgpack, Blobs: true})
			inner := startTap(t, srv.Addr)
			rec := newRecorder()
			cfg := zeoproxy.Config{Servers: []zeoproxy.ServerConfig{{Name: "z", Listen: "127.0.0.1:0", Upstream: inner.Addr()}}}
			p := serveProxy(t, cfg, rec)
			outer := startTap(t, p.Addrs()[0].String())
			dbs := []string{"--db", "a=" + outer.Addr() + "/1", "--db", "b=" + outer.Addr() + "/2"}
			zeotest.Python(t, "zodb_client.py", append(dbs, "commit", "--count", "20", "--touch", "a,b", "--desc", "bytes")...)
			zeotest.Python(t, "zodb_client.py", append(dbs, "read")...)
			// The proxy may have dialled a spare upstream connection ahead of
			// a client that never came (proxy.go, upstream): it carries the
			// server's announcement and nothing from a client.
			got, want := outer.digests(), withoutSpares(inner.digests())
			require.NotEmpty(t, want)
			require.Equal(t, want, got)
			m := p.Metrics()
			require.Positive(t, m.FramesC2S)
			require.Positive(t, m.BytesS2C)
		})
	}
}

// withoutSpares drops the tapped connections to which no client sent a
// byte (digests read "c2s/s2c/c2s bytes+s2c bytes").
func withoutSpares(ds []string) []string {
	var out []string
	for _, d := range ds {
		if !strings.Contains(d, "/0+") {
			out = append(out, d)
		}
	}
	return out
}

// A registered connection sends a frame the proxy cannot decode: the storage
// goes blind at once, every byte still reaches the server (which closes the
// connection on the bad message), and once the connection is gone the
// storage is unblinded with its last TID read from the server.
func TestBlindThenUnblind(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1"}})
	rec := newRecorder()
	_, addrs := startProxy(t, rec, srv)
	dbs := []string{"--db", "a=" + addrs[0] + "/1"}
	var last map[string]string
	zeotest.Python(t, "zodb_client.py", append(dbs, "commit", "--count", "2")...)
	require.NoError(t, json.Unmarshal(zeotest.Python(t, "zodb_client.py", append(dbs, "last")...), &last))

	c, err := net.Dial("tcp", addrs[0])
	require.NoError(t, err)
	defer c.Close()
	fr := zrpc.NewFrameReader(c)
	hello, err := fr.ReadFrame()
	require.NoError(t, err)
	require.Equal(t, "Z5", string(hello))
	reg, err := zrpc.EncodeMessage(zrpc.Pickle, zrpc.CallMessage(1, &zrpc.Register{Storage: "1"}))
	require.NoError(t, err)
	var out []byte
	out = zrpc.AppendFrame(out, []byte("Z5"))
	out = zrpc.AppendFrame(out, reg)
	out = zrpc.AppendFrame(out, []byte("\x80\x03garbage that is no pickle"))
	_, err = c.Write(out)
	require.NoError(t, err)
	id := zeoproxy.StorageIDOf(addrs[0], "1")
	require.Eventually(t, func() bool {
		ev := rec.snapshot()
		return len(ev) > 0 && strings.HasPrefix(ev[len(ev)-1], "unblind "+id)
	}, zeotestWait, pollEvery, "events: %v", rec.snapshot())
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Equal(t, 0, rec.blind[id])
	require.Equal(t, last["a"], rec.lastUnblind, "unblinded with the storage's last TID")
}

// Clients may reach the proxy over a Unix socket (as zope.conf allows); the
// storage id then names the socket path.
func TestUnixSocketListener(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1"}})
	sock := t.TempDir() + "/zeo.sock"
	rec := newRecorder()
	serveProxy(t, zeoproxy.Config{Servers: []zeoproxy.ServerConfig{{Name: "u", Listen: "unix:" + sock, Upstream: srv.Addr}}}, rec)
	out := zeotest.Python(t, "zodb_client.py", "--db", "a=unix:"+sock+"/1", "commit", "--count", "2", "--desc", "over unix")
	lines := parseLines(t, out)
	require.Len(t, lines, 2)
	id := zeoproxy.StorageIDOf("unix:"+sock, "1")
	require.Contains(t, id, sock)
	require.Eventually(t, func() bool {
		c := rec.committed()[id]
		return len(c) == 3 && c[2] == lines[1]["a"]
	}, zeotestWait, pollEvery, "committed %v", rec.committed())
}

// With ClientLabelIdentity, the ZEO client-label a client sends joins its identity
// (the correlation key of its participations); without it, it is ignored.
func TestClientLabelIdentity(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}})
	for _, on := range []bool{false, true} {
		rec := newRecorder()
		p := zeoproxy.New(zeoproxy.Config{ClientLabelIdentity: on,
			Servers: []zeoproxy.ServerConfig{{Name: "z", Listen: "127.0.0.1:0", Upstream: srv.Addr}}}, rec)
		require.NoError(t, p.Listen())
		p.Serve()
		addr := p.Addrs()[0].String()
		zeotest.Python(t, "zodb_client.py", "--label", "zope-7", "--db", "a="+addr+"/1", "--db", "b="+addr+"/2",
			"commit", "--count", "2", "--desc", "labelled")
		rec.mu.Lock()
		n := 0
		for _, b := range rec.begins {
			if b.Info.Description != "labelled" {
				continue
			}
			n++
			if on {
				require.Contains(t, b.Info.Client, "label:zope-7")
				require.Contains(t, b.Key, "label:zope-7")
			} else {
				require.NotContains(t, b.Info.Client, "zope-7")
			}
		}
		rec.mu.Unlock()
		require.Equal(t, 4, n, "two transactions on two storages")
		p.Close()
	}
}
