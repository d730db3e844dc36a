package zeoproxy_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// events returns the recorder's events for one storage's participations, as
// "kind" words in order (begin, vote, finishsent, ...).
func (r *recorder) kinds(storage string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		f := strings.Fields(ev)
		if len(f) < 2 || f[0] == "blind" || f[0] == "unblind" {
			continue
		}
		id, err := strconv.ParseUint(f[1], 10, 64)
		if err == nil && r.begins[txn.PartID(id)].Storage == storage {
			out = append(out, f[0])
		}
	}
	return out
}

// The seed's scenario, first half: the client process dies between T1's
// tpc_finish on A and on B. The proxy reports A committed and B aborted
// after a successful vote (the tracker then sees a partial commit).
func TestClientDiesBetweenFinishes(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}})
	rec := newRecorder()
	_, addrs := startProxy(t, rec, srv)
	dbs := []string{"--db", "a=" + addrs[0] + "/1", "--db", "b=" + addrs[0] + "/2"}
	zeotest.Python(t, "zodb_client.py", append(dbs, "commit", "--count", "1")...) // roots exist
	out, err := zeotest.PythonErr(t, "zodb_client.py", append(dbs, "crash-between", "--first", "a", "--then", "b", "--desc", "T1")...)
	require.Error(t, err, "the client must die in tpc_finish")
	require.Contains(t, string(out), `"pid"`)
	idA, idB := zeoproxy.StorageIDOf(addrs[0], "1"), zeoproxy.StorageIDOf(addrs[0], "2")
	require.Eventually(t, func() bool {
		a, b := rec.kinds(idA), rec.kinds(idB)
		return len(a) > 0 && a[len(a)-1] == "finished" && len(b) > 0 && b[len(b)-1] == "lost"
	}, zeotestWait, pollEvery, "A: %v B: %v", rec.kinds(idA), rec.kinds(idB))
	b := rec.kinds(idB)
	require.Equal(t, []string{"begin", "vote", "lost"}, b[len(b)-3:], "B voted, then its connection was lost without a finish")
}

// B's server connection is lost around tpc_finish (a forwarder between the
// proxy and ZEO cuts it): right after the vote reply, before the finish can
// go out (B aborts, and the proxy knows nothing is in doubt); inside the
// tpc_finish frame (B aborts, but the proxy sent the whole frame: in doubt,
// resolved as not committed); or right after the frame (B commits without a
// reply: in doubt, then resolved as committed with the TID the storage holds).
func TestServerConnectionCutAroundFinish(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  zeotest.Cut
		want string // B's last events
	}{
		{"before", zeotest.CutBeforeFinish, "begin vote lost"},
		{"inside", zeotest.CutInsideFinish, "begin vote finishsent lost resolved"},
		{"after", zeotest.CutAfterFinish, "begin vote finishsent lost resolved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}})
			cutter := zeotest.StartCutter(t, srv.Addr)
			rec := newRecorder()
			cfg := zeoproxy.Config{Servers: []zeoproxy.ServerConfig{{Name: "z", Listen: "127.0.0.1:0", Upstream: cutter.Addr()}}}
			p := serveProxy(t, cfg, rec)
			addr := p.Addrs()[0].String()
			dbs := []string{"--db", "a=" + addr + "/1", "--db", "b=" + addr + "/2"}
			zeotest.Python(t, "zodb_client.py", append(dbs, "commit", "--count", "1")...)
			cutter.Arm("2", tc.cut)
			// The client sees ClientDisconnected in tpc_finish on B and exits
			// with an error; what matters is what the proxy reports.
			_, _ = zeotest.PythonErr(t, "zodb_client.py", append(dbs, "commit", "--count", "1", "--desc", "cut-"+tc.name)...)
			require.Equal(t, 1, cutter.Cuts(), "the connection was cut")
			idB := zeoproxy.StorageIDOf(addr, "2")
			var last map[string]string
			out := zeotest.Python(t, "zodb_client.py", append(dbs, "last")...)
			require.NoError(t, json.Unmarshal(out, &last))
			n := len(strings.Fields(tc.want))
			require.Eventually(t, func() bool {
				k := rec.kinds(idB)
				return len(k) >= n && strings.Join(k[len(k)-n:], " ") == tc.want
			}, zeotestWait, pollEvery, "B: %v", rec.kinds(idB))
			resolved := ""
			for _, e := range rec.snapshot() {
				if strings.HasPrefix(e, "resolved") {
					resolved = e
				}
			}
			m := p.Metrics()
			switch tc.cut {
			case zeotest.CutBeforeFinish:
				require.Empty(t, resolved, "nothing was in doubt")
				require.EqualValues(t, 0, m.InDoubt)
			case zeotest.CutInsideFinish:
				require.Contains(t, resolved, "false", "a torn tpc_finish never commits")
				require.EqualValues(t, 1, m.ResolvedAborted)
			case zeotest.CutAfterFinish:
				require.Contains(t, resolved, "true "+last["b"], "resolution must find the commit the storage holds")
				require.EqualValues(t, 1, m.ResolvedCommitted)
			}
		})
	}
}
