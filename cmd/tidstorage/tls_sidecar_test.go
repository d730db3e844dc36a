package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/statusdoc"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/classic"
)

// The sidecar that re-originates TLS (docs/deploy.md, "ZEO over TLS"): a
// ZEO 6 server that speaks TLS only and requires client certificates; a
// fleet tracker that watches it over TLS (upstream_tls); a sidecar that
// takes plaintext ZODB clients on loopback and talks TLS to the server.
// Paired writers through the sidecar: every sampled point is coherent; a
// client killed between its two tpc_finish is reported at the tracker and
// its half never published; at the end the tracker publishes the last
// TIDs with nothing blind, held or unaccounted.
func TestTLSSidecarReoriginates(t *testing.T) {
	dir := t.TempDir()
	certs := zeotest.WriteTLSCerts(t)
	zeo := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}, TLS: certs})
	upstreamTLS := fmt.Sprintf("  upstream_tls {\n    ca_file = %q\n    cert_file = %q\n    key_file = %q\n  }\n",
		certs.CA, certs.Upstream, certs.UpstreamKey)
	fleetAddr := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	classicAddr := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	trackerAdm := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	trackerCfg := filepath.Join(dir, "tracker.hcl")
	writeFile(t, trackerCfg, fmt.Sprintf(`
status_file = %q
burst_period = "0s"
unaccounted_grace = "1s"
log {
  file = %q
  level = "debug"
}
classic { listen = %q }
admin { listen = %q }
fleet { listen = %q }
zeo "a" {
  upstream = %q
%s  storage "1" { id = "A1" }
  storage "2" { id = "A2" }
}
`, filepath.Join(dir, "tracker.status"), filepath.Join(dir, "tracker.log"), classicAddr, trackerAdm, fleetAddr, zeo.Addr, upstreamTLS))
	r := run(t, "config", "check", "-c", trackerCfg)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "over TLS")
	startServe(t, trackerCfg, trackerAdm, "/readyz")

	listen := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	sidecarAdm := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	sidecarCfg := filepath.Join(dir, "sidecar.hcl")
	writeFile(t, sidecarCfg, fmt.Sprintf(`
log {
  file = %q
  level = "debug"
}
admin { listen = %q }
tracker {
  address = %q
  name = "zope1"
  buffer_file = %q
}
zeo "a" {
  listen = %q
  upstream = %q
%s  storage "1" { id = "A1" }
  storage "2" { id = "A2" }
}
`, filepath.Join(dir, "sidecar.log"), sidecarAdm, fleetAddr, filepath.Join(dir, "sidecar.buffer"), listen, zeo.Addr, upstreamTLS))
	r = run(t, "config", "check", "-c", sidecarCfg)
	require.Equal(t, 0, r.code, r.stderr)
	require.NotContains(t, r.stderr, "Listener without TLS", "the plaintext listener is on loopback")
	startServe(t, sidecarCfg, sidecarAdm, "/readyz")

	plain := []string{"--db", "a=" + listen + "/1", "--db", "b=" + listen + "/2"} // what Zope's zope.conf names, no <ssl>
	direct := append(certs.PythonArgs(certs.Client, certs.ClientKey), "--db", "a="+zeo.Addr+"/1", "--db", "b="+zeo.Addr+"/2")
	ids := map[string]string{"a": "A1", "b": "A2"}
	last := func() map[string]txn.TID {
		var hex map[string]string
		require.NoError(t, json.Unmarshal(zeotest.Python(t, "zodb_client.py", append(direct, "last")...), &hex))
		out := map[string]txn.TID{}
		for db, h := range hex {
			var v uint64
			_, err := fmt.Sscanf(h, "%x", &v)
			require.NoError(t, err)
			out[ids[db]] = txn.TID(v)
		}
		return out
	}
	dump := func() map[string]txn.TID {
		c, err := classic.Dial(classicAddr, time.Second)
		if err != nil {
			return nil
		}
		defer c.Close()
		p, _ := c.Dump()
		return p
	}
	waitPublished := func(want map[string]txn.TID) {
		t.Helper()
		require.Eventually(t, func() bool {
			got := dump()
			return got != nil && got["A1"] == want["A1"] && got["A2"] == want["A2"]
		}, 30*time.Second, 50*time.Millisecond, "published %v, want %v", dump(), want)
	}
	status := func() statusdoc.StatusDoc {
		r := run(t, "status", "-c", trackerCfg, "--json")
		var doc statusdoc.StatusDoc
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc), r.stderr)
		return doc
	}

	zeotest.Python(t, "zodb_client.py", append(plain, "commit", "--count", "1")...)
	waitPublished(last())

	// Paired writers through the sidecar, published points sampled.
	var mu sync.Mutex
	var samples []map[string]txn.TID
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var prev map[string]txn.TID
		for {
			if p := dump(); p != nil && fmt.Sprint(p) != fmt.Sprint(prev) {
				mu.Lock()
				samples = append(samples, p)
				mu.Unlock()
				prev = p
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			zeotest.Python(t, "zodb_client.py", append(plain, "paired", "--count", "15", "--seconds", "60", "--touch", "a,b")...)
		}()
	}
	wg.Wait()
	before := last()
	waitPublished(before)

	// A client killed between T1's tpc_finish on A1 and on A2.
	_, err := zeotest.PythonErr(t, "zodb_client.py", append(plain, "crash-between", "--first", "a", "--then", "b", "--desc", "T1-tls")...)
	require.Error(t, err, "the client dies inside tpc_finish")
	after := last()
	require.Greater(t, after["A1"], before["A1"], "T1 committed on A1")
	require.Equal(t, before["A2"], after["A2"], "T1 never committed on A2")
	var pin statusdoc.PinDoc
	require.Eventually(t, func() bool {
		for _, p := range status().Pins {
			if p.Kind == "partial" {
				pin = p
				return true
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "partial commit reported; tracker log:\n%s", notable(filepath.Join(dir, "tracker.log"), 20))
	require.Contains(t, pin.Reason, "T1-tls")
	require.Equal(t, before["A1"], dump()["A1"], "T1's half is not published")
	close(stop)
	sampler.Wait()

	// Every sampled point restores to equal counters (read over TLS,
	// straight from ZEO).
	args := []string{"read-at"}
	for _, p := range samples {
		args = append(args, "--at", fmt.Sprintf("a=%016x,b=%016x", p["A1"], p["A2"]))
	}
	require.GreaterOrEqual(t, len(samples), 3)
	lines := strings.Split(strings.TrimSpace(string(zeotest.Python(t, "zodb_client.py", append(direct, args...)...))), "\n")
	require.Len(t, lines, len(samples))
	for i, line := range lines {
		var got map[string]struct{ Counter *int }
		require.NoError(t, json.Unmarshal([]byte(line), &got), line)
		a, b := got["a"].Counter, got["b"].Counter
		require.Equal(t, a == nil, b == nil, "point %d: %s", i, line)
		if a != nil {
			require.Equal(t, *a, *b, "point %d restores to unequal counters", i)
		}
	}

	r = run(t, "accept-partial", "-c", trackerCfg, "--yes", fmt.Sprint(pin.ID))
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	zeotest.Python(t, "zodb_client.py", append(plain, "commit", "--count", "1", "--key", "other")...)
	final := last()
	waitPublished(final)
	doc := status()
	require.Empty(t, doc.Pins)
	for _, st := range doc.Storages {
		require.True(t, st.Watched, st.ID)
		require.Empty(t, st.Unaccounted, "%s: every commit accounted for", st.ID)
		require.Zero(t, st.BlindConnections, st.ID)
	}
	for _, h := range doc.History {
		require.True(t, h.Connected, "the tracker's watcher of %s is connected over TLS", h.Storage)
	}
	t.Logf("%d points coherent through a TLS-re-originating sidecar", len(samples))
}
