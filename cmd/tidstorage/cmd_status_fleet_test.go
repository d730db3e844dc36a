package main

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/cmd/admin"
	"github.com/tidstorage/tidstorage/cmd/admin/admintest"
)

// serveSources serves the admin endpoint of the fixture's sources, changed
// by edit.
func serveSources(t *testing.T, edit func(*admin.Sources)) *httptest.Server {
	src := admintest.New(t).Sources()
	edit(&src)
	srv := httptest.NewServer(admin.NewHandler(src, hclog.NewNullLogger()))
	t.Cleanup(srv.Close)
	return srv
}

// fleetStatus prints the status of the fixture's sources changed by edit.
func fleetStatus(t *testing.T, edit func(*admin.Sources)) string {
	t.Helper()
	r := run(t, "status", "-a", serveSources(t, edit).URL, "--token-file", tokenFile(t))
	require.Equal(t, exitPartial, r.code, "the fixture's partial commit: exit 3\n%s", r.stderr)
	t.Log(r.stdout)
	return r.stdout
}

func TestStatusFleetTracker(t *testing.T) {
	out := fleetStatus(t, func(s *admin.Sources) { s.FleetSidecars = admintest.Sidecars })
	require.Contains(t, out, "\nFleet: tracker, 2 sidecars (1 connected):\n")
	require.Regexp(t, `\n  SIDECAR +STATE +APPLIED +NEWEST REPORT +LAG +GAPS +RESTARTS +LAST ERROR\n`, out)
	require.Regexp(t, `\n  zope1 +connected since 2026-11-24 11:00:00 UTC \(1h0m0s\) +5000 +2s ago +4ms +0 +0 +-\n`, out)
	require.Regexp(t, `\n  zope2 +DOWN since 2026-11-24 11:58:30 UTC \(1m30s ago\) +650 +1m35s ago +1.5s +2 +1 +`+
		regexp.QuoteMeta("rpc error: code = Unavailable desc = transport is closing")+`\n`, out)
	require.Contains(t, out, "  zope2 declared 2 gaps in its reports: the commits of those periods are held as unaccounted until accepted\n")
	require.NotContains(t, out, "zope1 declared")

	out = fleetStatus(t, func(s *admin.Sources) { s.FleetSidecars = admintest.NoSidecars })
	require.Contains(t, out, "\nFleet: tracker; no sidecar has connected since it started\n")
}

func TestStatusFleetSidecar(t *testing.T) {
	out := fleetStatus(t, func(s *admin.Sources) { s.FleetLink = admintest.Link })
	require.Contains(t, out, "\nFleet: sidecar \"zope1\" reporting to the tracker at 10.0.0.5:9010 (a sidecar publishes nothing: watch the tracker's status)\n"+
		"  link: DOWN since 2026-11-24 11:59:15 UTC (45s ago), 4 connects; last error: Unavailable: connection refused\n"+
		"  pending: 120 of 1000 reports, the oldest 44s old; buffer file /var/lib/tidstorage/sidecar.buffer, 64.0 KiB\n"+
		"  reports: 9000 observed, 8950 sent, 8880 acknowledged, 70 resent, 0 dropped; 1 gap declared\n")
	require.NotContains(t, out, "full")
	require.Contains(t, out, "Role: sidecar: it proxies")
	require.NotContains(t, out, "Bootstrap:", "a sidecar's empty admin tracker is not shown as the site's state")

	out = fleetStatus(t, func(s *admin.Sources) { s.FleetLink = admintest.LinkFull })
	require.Contains(t, out, "  link: connected since 2026-11-24 11:59:55 UTC (5s), 5 connects\n")
	require.Contains(t, out, "!! the send buffer is 90% full: past it reports are dropped")
	require.Contains(t, out, "!! the buffer file is no longer written (reports in memory only: a restart is a gap): write: no space left on device\n")
}

// All-in-one: no fleet section; a /fleet that fails is said, and the rest
// is printed.
func TestStatusFleetAbsentOrFailing(t *testing.T) {
	require.NotContains(t, fleetStatus(t, func(*admin.Sources) {}), "\nFleet:")

	h := admin.NewHandler(admintest.New(t).Sources(), hclog.NewNullLogger())
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/fleet" {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, req)
	}))
	defer broken.Close()
	r := run(t, "status", "-a", broken.URL)
	require.Equal(t, exitPartial, r.code, r.stderr)
	require.Contains(t, r.stdout, "Storages:")
	require.Contains(t, r.stdout, "\nFleet: cannot read the link's figures: GET "+broken.URL+"/fleet: 500 Internal Server Error: boom\n")
}

// The status names a refused or colliding sidecar, on both ends, and the
// sidecars a restarted tracker still waits for.
func TestStatusFleetRefused(t *testing.T) {
	out := fleetStatus(t, func(s *admin.Sources) { s.FleetSidecars = admintest.SidecarsRefused })
	require.Contains(t, out, `!! zope1: 2 streams refused under this name, the last 10s ago, from 10.0.0.13:40300: the name "zope1" is held by a live stream from 10.0.0.11:40100`)
	require.Regexp(t, `\n  zope3 +DOWN: expected, not back since the tracker started 2m0s ago +0 +- `, out)
	require.Contains(t, out, "zope3 is down: ")
	require.Contains(t, out, "tidstorage fleet retire zope3")

	out = fleetStatus(t, func(s *admin.Sources) { s.FleetLink = admintest.LinkRefused })
	require.Contains(t, out, `!! the tracker refuses this sidecar (it retries; its reports stay buffered): the name "zope1" is held by a live stream from 10.0.0.11:40100`)
}
