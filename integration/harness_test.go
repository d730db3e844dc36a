package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/cmd/daemon"
	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// site is a running tidstorage in front of real ZEO servers.
type site struct {
	t       *testing.T
	d       *daemon.Daemon
	cfg     *config.Config
	dir     string
	servers []*zeotest.Server
	cutters []*zeotest.Cutter // per server, between the proxy and ZEO: tests cut connections there
	listen  []string          // proxy address per server
	dbs     []string          // --db arguments of zodb_client.py
	ids     map[string]string
	stopped bool
}

// zeoSpec describes one ZEO server of a site: storage names and the db
// names clients use for them.
type zeoSpec struct {
	storages []string
	dbNames  []string
	msgpack  bool
	blobs    bool // every storage of the server has a blob directory
}

func startSite(t *testing.T, specs ...zeoSpec) *site {
	t.Helper()
	s := &site{t: t, dir: t.TempDir(), ids: map[string]string{}}
	var b strings.Builder
	fmt.Fprintf(&b, "status_file = %q\nburst_period = \"0s\"\nfull_dump_period = \"1m\"\n", filepath.Join(s.dir, "tidstorage.status"))
	b.WriteString("log {\n  level = \"debug\"\n}\nclassic {\n  listen = \"127.0.0.1:0\"\n}\nadmin {\n  listen = \"127.0.0.1:0\"\n}\n")
	for i, sp := range specs {
		srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: sp.storages, Msgpack: sp.msgpack, Blobs: sp.blobs})
		s.servers = append(s.servers, srv)
		cutter := zeotest.StartCutter(t, srv.Addr)
		s.cutters = append(s.cutters, cutter)
		listen := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
		s.listen = append(s.listen, listen)
		fmt.Fprintf(&b, "zeo \"z%d\" {\n  listen = %q\n  upstream = %q\n", i, listen, cutter.Addr())
		for j, name := range sp.storages {
			fmt.Fprintf(&b, "  storage %q {}\n", name)
			s.dbs = append(s.dbs, "--db", sp.dbNames[j]+"="+listen+"/"+name)
		}
		b.WriteString("}\n")
	}
	path := filepath.Join(s.dir, "tidstorage.hcl")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	cfg, err := config.Load(path)
	require.NoError(t, err)
	s.cfg = cfg
	for i, sp := range specs {
		for j := range sp.storages {
			s.ids[sp.dbNames[j]] = cfg.ZEO[i].Storages[j].ID
		}
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *site) start() {
	d, err := daemon.Start(daemon.Options{Config: s.cfg, Version: "test", Stderr: logWriter{s.t}})
	require.NoError(s.t, err)
	s.d = d
	s.stopped = false
}

func (s *site) stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(s.t, s.d.Shutdown(ctx))
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// client runs zodb_client.py against every database of the site.
func (s *site) client(args ...string) []byte {
	s.t.Helper()
	return zeotest.Python(s.t, "zodb_client.py", append(append([]string{}, s.dbs...), args...)...)
}

// last returns each database's lastTransaction, read through the proxy.
func (s *site) last() map[string]txn.TID {
	s.t.Helper()
	var hex map[string]string
	require.NoError(s.t, json.Unmarshal(s.client("last"), &hex))
	return s.byID(hex)
}

// byID turns {db name: tid hex} into {storage id: tid}.
func (s *site) byID(hex map[string]string) map[string]txn.TID {
	out := map[string]txn.TID{}
	for db, h := range hex {
		var v uint64
		_, err := fmt.Sscanf(h, "%x", &v)
		require.NoError(s.t, err, h)
		out[s.ids[db]] = txn.TID(v)
	}
	return out
}

// published returns the tracker's published point (DUMP).
func (s *site) published() map[string]txn.TID { return s.d.Tracker.Dump() }

func (s *site) waitPublished(want map[string]txn.TID) {
	s.t.Helper()
	require.Eventually(s.t, func() bool {
		got := s.published()
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "published %v, want %v", s.published(), want)
}

func parseTID(t *testing.T, h string) uint64 {
	var v uint64
	_, err := fmt.Sscanf(h, "%x", &v)
	require.NoError(t, err, h)
	return v
}

// parseLines decodes zodb_client.py's JSON lines.
func parseLines(t *testing.T, out []byte) []map[string]string {
	t.Helper()
	var res []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]string
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		res = append(res, m)
	}
	return res
}
