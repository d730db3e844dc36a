package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/cmd/admin"
	"github.com/tidstorage/tidstorage/cmd/admin/admintest"
)

// request sends method to base+path with the Host header host ("" keeps
// the URL's) and the header pairs given.
func request(t *testing.T, method, base, path, host string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	require.NoError(t, err)
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

func pinActive(f *admintest.Fixture, id uint64) bool {
	for _, p := range f.Tracker.Status().Pins {
		if p.ID == id {
			return true
		}
	}
	return false
}

// What a browser sends after DNS rebinding (the page's
// own name, resolved to the endpoint) is refused before anything else,
// the pin stays, and /status does not leak.
func TestDNSRebindingIsRefused(t *testing.T) {
	f := admintest.New(t)
	srv := serve(t, f.Sources(), nil)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	evil := "rebind.evil.example:" + u.Port()
	browser := []string{"Origin", "http://" + evil, "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors"}
	pin := "/accept-partial?pin=" + itoa(f.PartialPin)

	for _, withToken := range []bool{false, true} {
		h := browser
		if withToken {
			h = append(append([]string{}, browser...), "Authorization", admintest.Bearer)
		}
		code, _, body := request(t, http.MethodPost, srv.URL, pin, evil, h...)
		require.Equal(t, http.StatusMisdirectedRequest, code, body)
		require.Contains(t, body, `the Host header "rebind.evil.example:`+u.Port()+`" does not name this endpoint`)
		require.Contains(t, body, "admin { allowed_hosts }")
		require.True(t, pinActive(f, f.PartialPin), "the pin was accepted through a rebinding request")

		code, _, body = request(t, http.MethodGet, srv.URL, "/status", evil, h...)
		require.Equal(t, http.StatusMisdirectedRequest, code)
		require.NotContains(t, body, "plone")
		require.NotContains(t, body, "pid")
	}
	// Every path, the open ones included.
	for _, p := range []string{"/", "/metrics", "/healthz", "/readyz", "/fleet", "/nope"} {
		code, _, _ := request(t, http.MethodGet, srv.URL, p, evil)
		require.Equal(t, http.StatusMisdirectedRequest, code, p)
	}
	// The same origin under the endpoint's own address works.
	code, _, body := request(t, http.MethodPost, srv.URL, pin, "", "Authorization", admintest.Bearer)
	require.Equal(t, http.StatusOK, code, body)
	require.False(t, pinActive(f, f.PartialPin))
}

// The Host header may name the address the request came in on, localhost
// on loopback, or a configured name; nothing else.
func TestHostHeader(t *testing.T) {
	src := admintest.New(t).Sources()
	src.AllowedHosts = []string{"backup.example:9000", "metrics.example"}
	srv := serve(t, src, nil)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	port := u.Port()
	for host, want := range map[string]int{
		"127.0.0.1:" + port:      200,
		"localhost:" + port:      200,
		"LocalHost:" + port:      200,
		"backup.example:9000":    200,
		"BACKUP.example:9000":    200,
		"metrics.example:1234":   200,
		"metrics.example":        200,
		"backup.example:9001":    421,
		"backup.example":         421,
		"127.0.0.1:1":            421,
		"127.0.0.2:" + port:      421,
		"localhost":              421, // port 80
		"[::1]:" + port:          421, // not the address it came in on
		"localhost.evil:" + port: 421,
		"evil.example:" + port:   421,
	} {
		code, _, body := request(t, http.MethodGet, srv.URL, "/healthz", host)
		require.Equal(t, want, code, "Host %q: %s", host, body)
	}
}

// POSTs need the token; a wrong one is refused on every guarded path.
func TestTokenGuardsChanges(t *testing.T) {
	f := admintest.New(t)
	srv := serve(t, f.Sources(), nil)
	pin := "/accept-partial?pin=" + itoa(f.PartialPin)

	code, hdr, body := request(t, http.MethodPost, srv.URL, pin, "")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, `Bearer realm="tidstorage"`, hdr.Get("WWW-Authenticate"))
	require.Contains(t, body, "send Authorization: Bearer <token>, the content of admin { token_file }")
	for _, bad := range []string{"Bearer nope", "Basic " + admintest.Token, admintest.Token, "Bearer " + admintest.Token + "x", "Bearer"} {
		code, _, body = request(t, http.MethodPost, srv.URL, pin, "", "Authorization", bad)
		require.Equal(t, http.StatusUnauthorized, code, bad)
		code, _, _ = request(t, http.MethodGet, srv.URL, "/status", "", "Authorization", bad)
		require.Equal(t, http.StatusUnauthorized, code, "a wrong token on /status is an error, not a redaction")
	}
	require.Contains(t, body, "does not match")
	require.True(t, pinActive(f, f.PartialPin))
	// Probes and scrapes need nothing, and ignore a stale token.
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		code, _, _ := request(t, http.MethodGet, srv.URL, p, "", "Authorization", "Bearer stale")
		require.Equal(t, http.StatusOK, code, p)
	}
	// The status page is redacted as /status is: a wrong token is an error.
	code, _, _ = request(t, http.MethodGet, srv.URL, "/", "", "Authorization", "Bearer stale")
	require.Equal(t, http.StatusUnauthorized, code)
	code, _, body = request(t, http.MethodPost, srv.URL, pin, "", "Authorization", "bearer  "+admintest.Token+" ")
	require.Equal(t, http.StatusOK, code, body)
	require.False(t, pinActive(f, f.PartialPin))

	// No token configured: nothing can be changed, /status is redacted.
	g := admintest.New(t)
	src := g.Sources()
	src.Token = ""
	srv = serve(t, src, nil)
	code, _, body = request(t, http.MethodPost, srv.URL, "/accept-partial?pin="+itoa(g.PartialPin), "", "Authorization", "Bearer ")
	require.Equal(t, http.StatusForbidden, code, body)
	require.Contains(t, body, "no admin token is configured")
	require.True(t, pinActive(g, g.PartialPin))
	_, _, body = request(t, http.MethodGet, srv.URL, "/status", "")
	require.Contains(t, body, statusdoc.Redacted)
}

// /status without the credential keeps its shape and hides what names
// clients, users, transactions and files.
func TestStatusRedactedWithoutToken(t *testing.T) {
	f := admintest.New(t)
	srv := serve(t, f.Sources(), nil)
	_, _, full := request(t, http.MethodGet, srv.URL, "/status", "", "Authorization", admintest.Bearer)
	code, _, red := request(t, http.MethodGet, srv.URL, "/status", "")
	require.Equal(t, http.StatusOK, code)
	for _, secret := range []string{"pid 4242", "/plone", "127.0.0.1:5000", "/var/lib/tidstorage", "no space left"} {
		require.Contains(t, full, secret)
		require.NotContains(t, red, secret)
	}
	var doc, all statusdoc.StatusDoc
	dec := json.NewDecoder(strings.NewReader(red))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&doc))
	require.NoError(t, json.Unmarshal([]byte(full), &all))
	require.Equal(t, len(all.Pins), len(doc.Pins))
	require.Equal(t, all.Storages, doc.Storages, "storage ids, TIDs and states stay")
	require.Equal(t, all.Counters, doc.Counters)
	p, ok := doc.Pin(f.PartialPin)
	require.True(t, ok)
	require.Equal(t, statusdoc.Redacted, p.Reason)
	require.Equal(t, statusdoc.Redacted, p.Key)
	require.Equal(t, "partial", p.Kind)
	require.NotEmpty(t, doc.Participations)
	for _, pd := range doc.Participations {
		require.Equal(t, statusdoc.Redacted, pd.Key)
	}
	require.Equal(t, statusdoc.Redacted, doc.StatusFile.Path)
	require.Equal(t, statusdoc.Redacted, doc.StatusFile.LastError)
	require.Equal(t, all.StatusFile.Lines, doc.StatusFile.Lines)
}

// Metrics are scraped without a credential: no label may identify a
// client (peer, pid, user, description, transaction).
func TestMetricsLabelsIdentifyNoClient(t *testing.T) {
	allowed := map[string]bool{"storage": true, "label": true, "kind": true, "outcome": true, "direction": true,
		"command": true, "result": true, "reason": true, "source": true, "version": true, "goversion": true,
		"side": true, "block": true, "attribute": true,
		"cause": true} // promhttp's own error counter
	fams := allFamilies(t)
	require.NotEmpty(t, fams)
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				require.True(t, allowed[l.GetName()], "%s has label %q", name, l.GetName())
				require.NotContains(t, l.GetValue(), "pid", "%s{%s=%q}", name, l.GetName(), l.GetValue())
				require.NotContains(t, l.GetValue(), "plone", "%s{%s=%q}", name, l.GetName(), l.GetValue())
			}
		}
	}
}

// /fleet without the credential names no host, certificate or file; the
// sidecars' names, states and counters stay.
func TestFleetRedactedWithoutToken(t *testing.T) {
	for _, tc := range []struct {
		set     func(*admin.Sources)
		secrets []string
	}{
		{func(s *admin.Sources) { s.FleetSidecars = admintest.Sidecars }, []string{"10.0.0.11:40100", "CN=zope1"}},
		{func(s *admin.Sources) { s.FleetLink = admintest.Link }, []string{"10.0.0.5:9010", "/var/lib/tidstorage/sidecar.buffer", "connection refused"}},
	} {
		src := admintest.New(t).Sources()
		tc.set(&src)
		srv := serve(t, src, nil)
		_, _, full := request(t, http.MethodGet, srv.URL, "/fleet", "", "Authorization", admintest.Bearer)
		code, _, red := request(t, http.MethodGet, srv.URL, "/fleet", "")
		require.Equal(t, http.StatusOK, code)
		for _, secret := range tc.secrets {
			require.Contains(t, full, secret)
			require.NotContains(t, red, secret)
		}
		require.Contains(t, red, `"zope1"`, "names stay")
		require.Contains(t, red, statusdoc.Redacted)
	}
}
