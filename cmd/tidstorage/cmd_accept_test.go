package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/cmd/admin/admintest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

func TestAcceptPartial(t *testing.T) {
	f, srv := startAdmin(t)
	tok := tokenFile(t)
	pin := strconv.FormatUint(f.PartialPin, 10)

	// Without --yes: describe, change nothing, exit 2.
	r := run(t, "accept-partial", "-a", srv.URL, "--token-file", tok, pin)
	require.Equal(t, 2, r.code, r.stderr)
	require.Contains(t, r.stdout, "Would accept:\n  pin "+pin+" (partial)")
	require.Contains(t, r.stdout, "held at "+admintest.A+": "+txn.TID(f.T1A).Hex())
	require.Contains(t, r.stdout, "Nothing was changed.")
	require.Contains(t, r.stderr, "add --yes to accept pin "+pin+": tidstorage accept-partial -a "+srv.URL+" --token-file "+tok+" --yes "+pin)
	require.Len(t, f.Tracker.Status().Pins, 2)
	v, _ := f.Tracker.Published(admintest.A)
	require.Equal(t, f.T1A, v)

	// With --yes (flags after the argument work too).
	r = run(t, "accept-partial", "-c", adminConfig(t, srv), pin, "--yes")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "Accepted pin "+pin+" (partial) on 2 storages.")
	require.Contains(t, r.stdout, "voted then not committed on "+admintest.B)
	require.Contains(t, r.stdout, "published now at "+admintest.A+": "+txn.TID(f.T2A).Hex()+"  2026-11-24 11:59:30.000000")
	require.Contains(t, r.stdout, "published now at "+admintest.B+": "+txn.TID(f.T1B).Hex())
	v, _ = f.Tracker.Published(admintest.A)
	require.Equal(t, f.T2A, v)

	// Again: the pin is gone; the remaining ones are listed.
	r = run(t, "accept-partial", "-a", srv.URL, "--token-file", tok, "--yes", pin)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, fmt.Sprintf("tidstorage accept-partial: no active pin %s; the active pins are:\n  pin %d (blind)", pin, f.BlindPin))
	r = run(t, "accept-partial", "-a", srv.URL, "--token-file", tok, pin)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "no active pin "+pin)
}

func TestAcceptPartialRefusals(t *testing.T) {
	f, srv := startAdmin(t)
	tok := tokenFile(t)
	blind := strconv.FormatUint(f.BlindPin, 10)

	r := run(t, "accept-partial", "-a", srv.URL, "--token-file", tok, blind)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "pin "+blind+" is a blind pin: it cannot be accepted (undecodable frame")
	r = run(t, "accept-partial", "-a", srv.URL, "--token-file", tok, "--yes", blind)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "409 Conflict: pin "+blind+" is a blind storage")
	require.Len(t, f.Tracker.Status().Pins, 2)

	require.Equal(t, 2, run(t, "accept-partial", "-a", srv.URL, "--token-file", tok).code)
	r = run(t, "accept-partial", "-a", srv.URL, "--token-file", tok, "x")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, `pin "x" is not a number`)
	require.Equal(t, 2, run(t, "accept-partial", "-a", srv.URL, "--token-file", tok, "1", "2").code)
	require.Equal(t, 2, run(t, "accept-partial", "1").code)
}

// Accept-partial needs the admin token; status works
// without it, redacted, and says so.
func TestAdminCredential(t *testing.T) {
	f, srv := startAdmin(t)
	pin := strconv.FormatUint(f.PartialPin, 10)

	r := run(t, "accept-partial", "-a", srv.URL, "--yes", pin)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "the admin token is needed to accept a pin: no token file: give -c FILE (its admin.token_file) or --token-file FILE")
	wrong := filepath.Join(t.TempDir(), "wrong")
	require.NoError(t, os.WriteFile(wrong, []byte(strings.Repeat("x", 64)), 0o600))
	r = run(t, "accept-partial", "-a", srv.URL, "--token-file", wrong, "--yes", pin)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "401 Unauthorized: 401 unauthorized: the admin token does not match")
	open := filepath.Join(t.TempDir(), "open")
	require.NoError(t, os.WriteFile(open, []byte(admintest.Token), 0o644))
	r = run(t, "accept-partial", "-a", srv.URL, "--token-file", open, "--yes", pin)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "admin token file "+open+" is accessible by group or others (mode 0644)")
	require.Len(t, f.Tracker.Status().Pins, 2, "nothing was accepted")

	r = run(t, "status", "-a", srv.URL)
	require.Equal(t, exitPartial, r.code, r.stderr)
	require.Contains(t, r.stdout, "tidstorage v0.0.0-test at "+srv.URL+" (redacted: no credential), 2026-11-24")
	require.Contains(t, r.stdout, statusdoc.Redacted)
	require.NotContains(t, r.stdout, "pid 4242")
	require.NotContains(t, r.stdout, "/plone")
	r = run(t, "status", "-a", srv.URL, "--json")
	require.Equal(t, exitPartial, r.code)
	require.Contains(t, r.stderr, "(redacted: no credential: no token file")
	// A token file named explicitly must work.
	r = run(t, "status", "-a", srv.URL, "--token-file", open)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "is accessible by group or others")

	// -c FILE finds the token through admin.token_file.
	r = run(t, "accept-partial", "-c", adminConfig(t, srv), "--yes", pin)
	require.Equal(t, 0, r.code, r.stderr)
}
