package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/cmd/admin"
	"github.com/tidstorage/tidstorage/cmd/admin/admintest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
)

// startAdmin serves the admin endpoint of a real tracker in the state of
// admintest.New (a partial commit on A and B, a blind C).
func startAdmin(t *testing.T) (*admintest.Fixture, *httptest.Server) {
	f := admintest.New(t)
	srv := httptest.NewServer(admin.NewHandler(f.Sources(), hclog.NewNullLogger()))
	t.Cleanup(srv.Close)
	return f, srv
}

// adminConfig writes a configuration whose admin endpoint is srv.
func adminConfig(t *testing.T, srv *httptest.Server) string {
	cfg := filepath.Join(t.TempDir(), "t.hcl")
	addr := strings.TrimPrefix(srv.URL, "http://")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("admin {\n  listen = %q\n  token_file = %q\n}\n", addr, tokenFile(t))), 0o644))
	return cfg
}

// tokenFile writes the fixtures' admin token to a file of its own.
func tokenFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "admin.token")
	require.NoError(t, os.WriteFile(p, []byte(admintest.Token+"\n"), 0o600))
	return p
}

func TestStatusSummary(t *testing.T) {
	f, srv := startAdmin(t)
	tok := tokenFile(t)
	r := run(t, "status", "-a", srv.URL, "--token-file", tok)
	require.Equal(t, exitPartial, r.code, "partial commits pending: exit 3\n%s", r.stderr)
	require.Empty(t, r.stderr)
	out := r.stdout
	t.Log(out)
	require.Contains(t, out, "tidstorage v0.0.0-test at "+srv.URL+", 2026-11-24 12:00:00 UTC")
	require.Contains(t, out, "Bootstrap: done (the previous run stopped cleanly)")

	// One row per storage: id, published hex, its UTC time, lag, state.
	row := func(id string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), id) {
				return l
			}
		}
		t.Fatalf("no row for %s in\n%s", id, out)
		return ""
	}
	a := row(admintest.A)
	require.Contains(t, a, txn.TID(f.T1A).Hex()+"  2026-11-24 11:58:00.000000  2m0s")
	require.Contains(t, a, "busy: waits for a transaction or pin to end, publishes together with "+admintest.B)
	require.Contains(t, a, "committed up to "+txn.TID(f.T2A).Hex())
	c := row(admintest.C)
	require.Contains(t, c, txn.TID(f.BootC).Hex()+"  2026-11-24 11:55:00.000000  5m0s")
	require.Contains(t, c, "BLIND (1 connection)")

	require.Contains(t, out, "In flight: 1 participation, 1 classic transaction")
	require.Contains(t, out, "participation 3 on "+admintest.C+": voted, for 5s")
	require.Contains(t, out, "classic t2 on "+admintest.C+": for 1m0s")

	require.Contains(t, out, "!! 1 PARTIAL COMMIT:")
	require.Contains(t, out, fmt.Sprintf("!! pin %d (partial) since 2026-11-24 11:59:30 UTC (30s ago) on %s, %s", f.PartialPin, admintest.A, admintest.B))
	require.Contains(t, out, `client "127.0.0.1:50000 (pid 4242)", user "/plone admin", description "/plone/edit"`)
	require.Contains(t, out, "!!   held at "+admintest.A+": "+txn.TID(f.T1A).Hex())
	require.Contains(t, out, fmt.Sprintf("tidstorage accept-partial -a %s --token-file %s --yes %d", srv.URL, tok, f.PartialPin))
	require.Contains(t, out, "Other pins (holding published TIDs back):")
	require.Contains(t, out, fmt.Sprintf("  pin %d (blind) since 2026-11-24 11:59:50 UTC (10s ago) on %s", f.BlindPin, admintest.C))
	require.Contains(t, out, "undecodable frame from 127.0.0.1:50001")

	require.Contains(t, out, "Proxy: 3 connections open (7 accepted)")
	require.Contains(t, out, "Classic endpoint: 1 connection active (1 accepted, 0 refused, 0 denied); 2 BEGIN, 1 COMMIT")
	require.Contains(t, out, "Status file: /var/lib/tidstorage/status, 12 lines (5 written since start), last at 2026-11-24 11:59:50 UTC; 1 WRITE ERROR, last: statusfile: write: no space left on device")

	// Partial accepted: exit 0, no partial section.
	require.NoError(t, f.Tracker.AcceptPartial(f.PartialPin))
	r = run(t, "status", "-a", strings.TrimPrefix(srv.URL, "http://"))
	require.Equal(t, 0, r.code, r.stderr)
	require.NotContains(t, r.stdout, "PARTIAL")
	require.Regexp(t, regexp.QuoteMeta(txn.TID(f.T2A).Hex()+"  2026-11-24 11:59:30.000000")+` +- +idle: its last commit is published\n`, r.stdout,
		"an idle storage has no lag, however old its last commit")
}

func TestStatusJSONAndConfig(t *testing.T) {
	f, srv := startAdmin(t)
	cfg := adminConfig(t, srv)
	r := run(t, "status", "-c", cfg, "--json")
	require.Equal(t, exitPartial, r.code, r.stderr)
	var doc statusdoc.StatusDoc
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc))
	require.Equal(t, admin.BuildStatus(ptr(f.Sources())), doc, "--json prints the document unchanged")

	r = run(t, "status", "--config", cfg)
	require.Equal(t, exitPartial, r.code, r.stderr)
	require.Contains(t, r.stdout, fmt.Sprintf("tidstorage accept-partial -c %s --yes %d", cfg, f.PartialPin))
}

func TestStatusBeforeBootstrap(t *testing.T) {
	svc := tracker.NewService(tracker.ServiceConfig{Config: tracker.Config{Storages: []string{admintest.A}}})
	srv := httptest.NewServer(admin.NewHandler(admin.Sources{Tracker: svc, Version: "dev"}, nil))
	defer srv.Close()
	r := run(t, "status", "-a", srv.URL)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "Bootstrap: NOT DONE")
	require.Regexp(t, `\n  \(\(\('localhost', 8100\),\), 'A'\) +- +- +- +no published TID yet\n`, r.stdout)

	empty := httptest.NewServer(admin.NewHandler(admin.Sources{Tracker: tracker.NewService(tracker.ServiceConfig{})}, nil))
	defer empty.Close()
	r = run(t, "status", "-a", empty.URL)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "Storages:\n  none known yet\n")
	require.Contains(t, r.stdout, "In flight: 0 participations, 0 classic transactions")
	require.NotContains(t, r.stdout, "Proxy:")
}

func TestStatusErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	r := run(t, "status", "-a", addr, "--timeout", "2s")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "tidstorage status: cannot reach the admin endpoint at http://"+addr+" (is 'tidstorage serve' running?)")
	require.Contains(t, r.stderr, "connection refused")

	// Something that is not the admin endpoint.
	other := httptest.NewServer(nil) // 404 for everything
	defer other.Close()
	r = run(t, "status", "-a", other.URL)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "GET "+other.URL+"/status: 404 Not Found")

	require.Equal(t, 2, run(t, "status").code)
	require.Equal(t, 2, run(t, "status", "-a", addr, "-c", "x.hcl").code)
	require.Equal(t, 2, run(t, "status", "extra").code)
	r = run(t, "status", "-a", "ftp://x:1")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "is not HOST:PORT or an http:// URL")

	cfg := filepath.Join(t.TempDir(), "off.hcl")
	require.NoError(t, os.WriteFile(cfg, []byte("admin {\n  enabled = false\n}\n"), 0o644))
	r = run(t, "status", "-c", cfg)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "the admin endpoint is disabled")
	r = run(t, "status", "-c", "../../config/testdata/bad_cidr.hcl")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "bad_cidr.hcl:")
}

func ptr[T any](v T) *T { return &v }

// The wording is truthful on a first start, for an empty
// storage, a storage without a value yet and one whose ZEO is unreachable.
func TestStatusWordingFirstStartEmptyUnreachable(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	zero := statusdoc.NewTIDDoc(0)
	lag := now.Sub(zero.Time).Seconds()
	tb, err := txn.TIDFromTime(now.Add(-time.Minute))
	require.NoError(t, err)
	pubB := statusdoc.NewTIDDoc(tb)
	lagB := 60.0
	errAt := now.Add(-5 * time.Second)
	d := &statusdoc.StatusDoc{Time: now, Version: "v", Bootstrapped: true, CleanStart: true, PreviousRun: "none",
		Storages: []statusdoc.StorageDoc{
			{ID: "a", Published: &zero, LagSeconds: &lag, Watched: true},
			{ID: "b", Published: &pubB, LagSeconds: &lagB, Watched: true},
			{ID: "c", Watched: true},
		},
		History: []statusdoc.HistoryDoc{
			{Storage: "a", Connected: true},
			{Storage: "b", LastError: "dial tcp 127.0.0.1:8100: connect: connection refused", LastErrorAt: &errAt},
		},
	}
	var b strings.Builder
	printStatus(&b, d, "http://x", "-a x", printOptions{})
	out := b.String()
	t.Log(out)
	require.Contains(t, out, "Bootstrap: done (first start: the status file was new or empty)")
	require.NotContains(t, out, "previous run stopped cleanly")
	require.NotContains(t, out, "1900")
	require.Regexp(t, `\n  a +0000000000000000 +empty +- +empty \(no transaction yet\)\n`, out)
	require.Regexp(t, `\n  b +\S+ +2026-11-24 11:59:00.000000 +1m0s +ZEO UNREACHABLE \(history watcher\): dial tcp 127.0.0.1:8100: connect: connection refused\n`, out)
	require.Regexp(t, `\n  c +- +- +- +no published TID yet\n`, out)

	d.Bootstrapped = false
	d.ClassicEndpoint = &statusdoc.ClassicEndpointDoc{}
	b.Reset()
	printStatus(&b, d, "http://x", "-a x", printOptions{})
	require.Contains(t, b.String(), "Bootstrap: NOT DONE: classic-only, nothing is published until every storage has had a commit of a transaction begun after the start")
	d.Bootstrapped, d.ClassicEndpoint = true, nil

	d.PreviousRun = "unknown"
	b.Reset()
	printStatus(&b, d, "http://x", "-a x", printOptions{})
	require.Contains(t, b.String(), "Bootstrap: done (no status file, so how a previous run stopped is not tracked)")
	d.PreviousRun = "clean"
	b.Reset()
	printStatus(&b, d, "http://x", "-a x", printOptions{})
	require.Contains(t, b.String(), "Bootstrap: done (the previous run stopped cleanly)")
}
