package admin_test

import (
	"errors"
	"html"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/cmd/admin"
	"github.com/tidstorage/tidstorage/cmd/admin/admintest"
	"github.com/tidstorage/tidstorage/internal/statusdoc"
)

const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// GET / from a browser is the status page: the storages, the partial
// commit with the command that resolves it, the blind storage, the
// backups; redacted without the token exactly where /status is, whole with
// it. Other clients get the endpoint list as text.
func TestStatusPage(t *testing.T) {
	f := admintest.New(t)
	src := f.Sources()
	src.ConfigFile = "/etc/tidstorage/site.hcl"
	src.Labels = map[string]string{sA: "main-A", sB: "main-B"}
	src.Backups = func() ([]admin.BackupRun, error) {
		return []admin.BackupRun{
			{Command: "backup", LastRun: admintest.T0.Add(-3 * time.Hour), LastSuccess: admintest.T0.Add(-3 * time.Hour), OK: true},
			{Command: "verify", LastRun: admintest.T0.Add(-time.Hour), LastSuccess: admintest.T0.Add(-50 * time.Hour), OK: false},
		}, nil
	}
	src.Archive = func() *statusdoc.ArchiveDoc {
		return &statusdoc.ArchiveDoc{Store: "s3://secret-bucket/site", State: "running", LastPoint: admintest.T0.Add(-4 * time.Second),
			LagSeconds: 4, Errors: 2, LastError: "PUT s3://secret-bucket: refused"}
	}
	srv := serve(t, src, nil)

	code, hdr, page := request(t, http.MethodGet, srv.URL, "/", "", "Accept", browser)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "text/html; charset=utf-8", hdr.Get("Content-Type"))
	require.Contains(t, hdr.Get("Content-Security-Policy"), "default-src 'none'", "nothing external can load")
	require.NotContains(t, page, "<script")
	require.NotRegexp(t, `(src|href)="?https?:`, page, "no external asset")

	doc := admin.BuildStatus(&src)
	for _, s := range doc.Storages {
		require.Contains(t, page, s.Published.Hex, "storage %s's published TID", s.ID)
	}
	require.Contains(t, page, ">main-A<")
	require.Contains(t, page, "2026-11-24 11:58:00", "A's published time")
	require.Contains(t, page, "Partial commit")
	pin := doc.PartialPins()[0]
	require.Contains(t, page, "tidstorage accept-partial -c CONFIG --yes "+strconv.FormatUint(pin.ID, 10), "the command, without the config's path")
	require.Contains(t, page, "BLIND (1 connection(s))")
	require.Contains(t, page, "HELD by a partial commit (pin "+strconv.FormatUint(pin.ID, 10)+")")
	require.Contains(t, page, "redacted: no credential")
	require.Contains(t, page, "Last success")
	require.Contains(t, page, "3h0m0s ago")
	require.Contains(t, page, "FAILED 1h0m0s ago")
	require.Contains(t, page, `<td class="ok">running</td><td>4s ago</td><td>4s</td><td>2</td>`, "the archive")
	require.NotContains(t, page, "secret-bucket", "the store is not shown")

	// Redacted as /status is: what it hides, the page does not show.
	full := admin.BuildStatus(&src)
	require.NotEmpty(t, full.PartialPins()[0].Reason)
	for _, secret := range []string{full.PartialPins()[0].Reason, "plone", "pid 4242", "/etc/tidstorage/site.hcl"} {
		require.NotContains(t, page, secret)
	}
	require.Contains(t, page, html.EscapeString(statusdoc.Redacted))

	// With the token: whole.
	_, _, whole := request(t, http.MethodGet, srv.URL, "/", "", "Accept", browser, "Authorization", admintest.Bearer)
	require.Contains(t, whole, "/plone/edit")
	require.Contains(t, whole, "tidstorage accept-partial -c /etc/tidstorage/site.hcl --yes "+strconv.FormatUint(pin.ID, 10))
	require.NotContains(t, whole, "redacted: no credential")

	// curl: the list, as before.
	code, hdr, text := request(t, http.MethodGet, srv.URL, "/", "")
	require.Equal(t, http.StatusOK, code)
	require.True(t, strings.HasPrefix(hdr.Get("Content-Type"), "text/plain"))
	require.Contains(t, text, "GET  /metrics")

	// A backup metrics file that cannot be read is said so (redacted).
	src.Backups = func() ([]admin.BackupRun, error) { return nil, errors.New("open /var/secret.prom: permission denied") }
	_, _, page = request(t, http.MethodGet, serve(t, src, nil).URL, "/", "", "Accept", browser)
	require.Contains(t, page, "The backup metrics file cannot be read")
	require.NotContains(t, page, "/var/secret.prom")
}

// The lag history samples every Step, keeps at most Window/Step samples,
// and the page draws it as an inline SVG sparkline per storage.
func TestLagHistorySparkline(t *testing.T) {
	f := admintest.New(t)
	src := f.Sources()
	h := admin.NewLagHistory(f.Tracker)
	start := admintest.T0.Add(-2 * time.Hour)
	for i := range 2 * 3600 {
		h.Tick(start.Add(time.Duration(i) * time.Second)) // a sample every 10 s
	}
	require.Equal(t, 360, h.Len(), "one hour of samples, bounded")
	src.LagHistory = h
	_, _, page := request(t, http.MethodGet, serve(t, src, nil).URL, "/", "", "Accept", browser)
	require.Equal(t, 3, strings.Count(page, `<svg class="spark"`), "one per storage")
	require.Contains(t, page, "<polyline points=")
	require.Contains(t, page, "publication lag over the last 1h0m0s: max 1m30s", "A: T2 is 90 s after its published T1")
}
