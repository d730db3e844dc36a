package main

import (
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/cmd/admin"
	"github.com/tidstorage/tidstorage/cmd/admin/admintest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
)

// startGroundTruth serves the admin endpoint of a tracker in the state of
// admintest.NewGroundTruth (B held by an unaccounted commit).
func startGroundTruth(t *testing.T) (*admintest.GroundTruth, *httptest.Server) {
	f := admintest.NewGroundTruth(t)
	srv := httptest.NewServer(admin.NewHandler(f.Sources(), hclog.NewNullLogger()))
	t.Cleanup(srv.Close)
	return f, srv
}

func TestStatusGroundTruth(t *testing.T) {
	f, srv := startGroundTruth(t)
	tok := tokenFile(t)
	r := run(t, "status", "-a", srv.URL, "--token-file", tok)
	require.Equal(t, exitPartial, r.code, "an unaccounted pin waits for the operator: exit 3\n%s", r.stderr)
	out := r.stdout
	t.Log(out)
	line := func(prefix string) string {
		t.Helper()
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return l
			}
		}
		t.Fatalf("no line %q in\n%s", prefix, out)
		return ""
	}
	require.Contains(t, line(admintest.A+"  "), "1 awaiting history")
	require.Contains(t, line(admintest.B+"  "), "HELD by 1 unaccounted commit")
	require.Contains(t, line(admintest.C+"  "), "warn-only (1 unaccounted commit reported, not held)")

	b2 := txn.TID(f.TB2)
	require.Contains(t, out, "!! 1 STORAGE HELD by commits that nothing accounted for")
	require.Contains(t, out, "!! "+admintest.B+": published "+txn.TID(f.TB1).Hex())
	require.Contains(t, out, "!!   unaccounted commit "+b2.Hex()+"  2026-11-24 11:58:30.000000 (1m30s ago)")
	pin := strconv.FormatUint(f.UnaccountedPin, 10)
	require.Contains(t, out, "   pin "+pin+" (unaccounted) since 2026-11-24 11:59:30 UTC covers the commits up to "+b2.Hex())
	require.Contains(t, out, "tidstorage accept-partial -a "+srv.URL+" --token-file "+tok+" --yes "+pin)
	require.NotContains(t, out, "Other pins")

	require.Contains(t, out, "History watchers (each storage's own commits, read from its ZEO server):")
	w := line(admintest.C + "  DISCONNECTED")
	require.Contains(t, w, "2026-11-24 11:59:40")
	require.Contains(t, w, "connection refused (2s ago)")
	require.Regexp(t, `connected +2026-11-24 11:45:00 +`+txn.TID(f.TA1).Hex()+` +1m50s +0 +-`, line(admintest.A+"  connected"))

	require.Regexp(t, `Journal: .*status\.journal, [0-9.]+ KiB, [0-9]+ records, 1 rotation\n`, out)
	require.Contains(t, out, "Tracker: 5 publications, 0 partial commits, 2 unaccounted commits")

	// While the grace lasts, the storage is held and not reported yet.
	f.Tracker.History(txn.Commit{Storage: admintest.A, TID: f.TA2})
	f.Tracker.History(txn.Commit{Storage: admintest.A, TID: admintest.TIDAt(t, -1)})
	r = run(t, "status", "-a", srv.URL, "--token-file", tok)
	require.Contains(t, r.stdout, "!! 2 STORAGES HELD")
	require.Contains(t, r.stdout, "not reported yet: waiting for a late report")
}

func TestAcceptUnaccounted(t *testing.T) {
	f, srv := startGroundTruth(t)
	tok := tokenFile(t)
	pin := strconv.FormatUint(f.UnaccountedPin, 10)
	b2 := txn.TID(f.TB2).Hex()

	r := run(t, "accept-partial", "-a", srv.URL, "--token-file", tok, pin)
	require.Equal(t, 2, r.code, r.stderr)
	t.Log(r.stdout)
	require.Contains(t, r.stdout, "Would accept:\n  pin "+pin+" (unaccounted)")
	require.Contains(t, r.stdout, "    unaccounted commit "+b2+"  2026-11-24 11:58:30.000000 (1m30s ago)\n")
	require.Contains(t, r.stdout, "Accepting says you have decided that these commits of "+admintest.B)
	require.Contains(t, r.stdout, "are whole transactions or halves you accept")
	require.Contains(t, r.stdout, "publication passes them, up to "+b2+";\nlater commits are checked as usual. Nothing was changed.")
	require.Len(t, f.Tracker.Status().Pins, 1)

	r = run(t, "accept-partial", "-a", srv.URL, "--token-file", tok, "--yes", pin)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "Accepted pin "+pin+" (unaccounted) on 1 storage.")
	require.Contains(t, r.stdout, fmt.Sprintf("published now at %s: %s", admintest.B, b2))
	v, _ := f.Tracker.Published(admintest.B)
	require.Equal(t, f.TB2, v)

	r = run(t, "status", "-a", srv.URL, "--token-file", tok)
	require.Equal(t, 0, r.code, r.stderr)
	require.NotContains(t, r.stdout, "HELD")
}

// Many unaccounted commits (a crash, a long outage) make a report, not a
// flood: status and the accept dry run summarise each storage's (count,
// first and last with their times, a sample) unless --all; the pin's
// reason names the whole range it covers, also once it grew.
func TestUnaccountedSummaries(t *testing.T) {
	f, srv := startGroundTruth(t)
	tok := tokenFile(t)
	const n = 300
	var last txn.TID
	for i := range n {
		last = admintest.TIDAt(t, -80*time.Second+time.Duration(i)*100*time.Millisecond)
		f.Tracker.History(txn.Commit{Storage: admintest.B, TID: last})
	}
	f.Clock.Set(admintest.T0.Add(5 * time.Minute))
	f.Tracker.Tick()
	first := txn.TID(f.TB2)
	pin := strconv.FormatUint(f.UnaccountedPin, 10)
	var p tracker.PinInfo
	for _, q := range f.Tracker.Status().Pins {
		if q.ID == f.UnaccountedPin {
			p = q
		}
	}
	require.Equal(t, last, p.Upto, "the pin grew to cover the new commits")
	require.Contains(t, p.Reason, "commits from "+first.Hex()+" to "+last.Hex()+" that nothing accounted for")

	r := run(t, "status", "-a", srv.URL, "--token-file", tok)
	require.Equal(t, exitPartial, r.code, r.stderr)
	t.Log(r.stdout)
	require.Less(t, strings.Count(r.stdout, "\n"), 60, "a summary, not one line per commit")
	require.Contains(t, r.stdout, fmt.Sprintf("!!   %d unaccounted commits over ", n+1))
	require.Contains(t, r.stdout, ", from "+first.Hex()+"  2026-11-24 11:58:30.000000 (6m30s ago) to "+last.Hex())
	require.Contains(t, r.stdout, "the first ones: "+first.Hex()+", ")
	require.Contains(t, r.stdout, "(--all lists every one;")
	require.Contains(t, r.stdout, "covers the commits up to "+last.Hex())
	r = run(t, "status", "-a", srv.URL, "--token-file", tok, "--all")
	require.Equal(t, n+1, strings.Count(r.stdout, "!!   unaccounted commit "))

	r = run(t, "accept-partial", "-a", srv.URL, "--token-file", tok, pin)
	require.Equal(t, 2, r.code, r.stderr)
	require.Less(t, strings.Count(r.stdout, "\n"), 20, r.stdout)
	require.Contains(t, r.stdout, fmt.Sprintf("    %d unaccounted commits over ", n+1))
	require.Contains(t, r.stdout, "commits from "+first.Hex()+" to "+last.Hex())
	r = run(t, "accept-partial", "-a", srv.URL, "--token-file", tok, "--all", pin)
	require.Equal(t, 2, r.code, r.stderr)
	require.Equal(t, n+1, strings.Count(r.stdout, "    unaccounted commit "))
}
