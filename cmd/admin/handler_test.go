package admin_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/fleet"
	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/hashicorp/go-hclog"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/cmd/admin"
	"github.com/tidstorage/tidstorage/cmd/admin/admintest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
)

const (
	sA = admintest.A
	sB = admintest.B
	sC = admintest.C
)

func serve(t *testing.T, src admin.Sources, log hclog.Logger) *httptest.Server {
	srv := httptest.NewServer(admin.NewHandler(src, log))
	t.Cleanup(srv.Close)
	return srv
}

// get sends a GET with the header pairs given.
func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	code, _, body := request(t, http.MethodGet, url, "", "", header...)
	return code, body
}

func post(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	code, _, body := request(t, http.MethodPost, url, "", "", header...)
	return code, body
}

// scrape returns the metric families of /metrics.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code, body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	return fams
}

// value returns the value of the series of name whose labels include
// labels (pairs); it fails if there is not exactly one.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	require.True(t, ok, "no metric %s", name)
	var found []float64
	for _, m := range f.Metric {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			has := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					has = true
				}
			}
			match = match && has
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			found = append(found, m.Gauge.GetValue())
		case m.Counter != nil:
			found = append(found, m.Counter.GetValue())
		case m.Untyped != nil:
			found = append(found, m.Untyped.GetValue())
		}
	}
	require.Len(t, found, 1, "series %s%v", name, labels)
	return found[0]
}

func tidTime(v txn.TID) time.Time { return v.Time() }

// allFamilies scrapes both fixtures and the fleet roles' sources (every
// source present between them).
func allFamilies(t *testing.T) map[string]*dto.MetricFamily {
	fams := scrape(t, serve(t, admintest.New(t).Sources(), nil).URL)
	for name, fam := range scrape(t, serve(t, admintest.NewGroundTruth(t).Sources(), nil).URL) {
		if _, ok := fams[name]; !ok {
			fams[name] = fam
		}
	}
	for _, src := range []admin.Sources{fleetSources(), archiveSources(&statusdoc.ArchiveDoc{})} {
		for name, fam := range scrape(t, serve(t, src, nil).URL) {
			if _, ok := fams[name]; !ok {
				fams[name] = fam
			}
		}
	}
	return fams
}

func TestMetrics(t *testing.T) {
	f := admintest.New(t)
	srv := serve(t, f.Sources(), nil)
	fams := scrape(t, srv.URL)

	v := func(name string, labels ...string) float64 { t.Helper(); return value(t, fams, name, labels...) }
	require.Equal(t, 1.0, v("tidstorage_build_info", "version", "v0.0.0-test"))
	require.Equal(t, 1.0, v("tidstorage_bootstrapped"))
	require.Equal(t, 1.0, v("tidstorage_clean_start"))

	// A and B are held where t1 left them by the partial commit; C by the
	// classic transaction in flight and the blind connection.
	require.Equal(t, float64(f.T1A), v("tidstorage_published_tid", "storage", sA))
	require.Equal(t, float64(f.T1B), v("tidstorage_published_tid", "storage", sB))
	require.Equal(t, float64(f.BootC), v("tidstorage_published_tid", "storage", sC))
	require.InDelta(t, 120, v("tidstorage_published_tid_age_seconds", "storage", sA), 1e-6)
	require.InDelta(t, 300, v("tidstorage_published_tid_age_seconds", "storage", sC), 1e-6)
	require.InDelta(t, float64(admintest.T0.Unix()-120), v("tidstorage_published_tid_timestamp_seconds", "storage", sA), 1e-3)
	require.Equal(t, float64(f.T2A), v("tidstorage_transient_tid", "storage", sA))
	require.InDelta(t, f.T2A.Time().Sub(f.T1A.Time()).Seconds(), v("tidstorage_publication_lag_seconds", "storage", sA), 1e-6)
	require.Greater(t, v("tidstorage_publication_lag_seconds", "storage", sA), 0.0, "A committed T2 after the partial T1: not published")
	require.Equal(t, 0.0, v("tidstorage_publication_lag_seconds", "storage", sB), "B's published TID is its newest")
	require.Equal(t, 1.0, v("tidstorage_storage_busy", "storage", sA))
	require.Equal(t, 1.0, v("tidstorage_storage_blind_connections", "storage", sC))
	require.Equal(t, 0.0, v("tidstorage_storage_blind_connections", "storage", sA))
	require.Equal(t, 1.0, v("tidstorage_blind_storages"))

	require.Equal(t, 1.0, v("tidstorage_pins", "kind", "partial"))
	require.Equal(t, 1.0, v("tidstorage_pins", "kind", "blind"))
	require.Equal(t, 0.0, v("tidstorage_pins", "kind", "lost"))
	require.Equal(t, 0.0, v("tidstorage_pins", "kind", "none"))
	require.Equal(t, 1.0, v("tidstorage_inflight_classic_transactions"))
	require.Equal(t, 1.0, v("tidstorage_inflight_participations"))
	require.Equal(t, 1.0, v("tidstorage_partial_commits_total"))
	require.Equal(t, 3.0, v("tidstorage_tracker_participations_begun_total"))
	require.Equal(t, 1.0, v("tidstorage_tracker_participations_ended_total", "outcome", "committed"))
	require.Equal(t, 1.0, v("tidstorage_tracker_participations_ended_total", "outcome", "aborted"))
	require.Equal(t, 2.0, v("tidstorage_tracker_classic_begun_total"))
	require.Equal(t, 1.0, v("tidstorage_tracker_classic_ended_total", "outcome", "committed"))
	require.Equal(t, 0.0, v("tidstorage_tracker_classic_ended_total", "outcome", "lost"))
	require.Equal(t, 2.0, v("tidstorage_tracker_pins_created_total"))

	// The classic endpoint's counters come from the real server.
	require.Equal(t, 2.0, v("tidstorage_classic_commands_total", "command", "begin"))
	require.Equal(t, 1.0, v("tidstorage_classic_commands_total", "command", "commit"))
	require.Equal(t, 2.0, v("tidstorage_classic_commands_total", "command", "dump"))
	require.Equal(t, 1.0, v("tidstorage_classic_connections_total", "result", "accepted"))
	require.Equal(t, 1.0, v("tidstorage_classic_connections_active"))

	require.Equal(t, 3.0, v("tidstorage_proxy_connections_open"))
	require.Equal(t, 123456.0, v("tidstorage_proxy_bytes_total", "direction", "client_to_server"))
	require.Equal(t, 99.0, v("tidstorage_proxy_frames_total", "direction", "server_to_client"))
	require.Equal(t, 1.0, v("tidstorage_proxy_decode_errors_total"))
	require.Equal(t, 1.0, v("tidstorage_proxy_connections_unregistered"))
	require.Equal(t, 2.0, v("tidstorage_proxy_connections_refused_total"))
	require.Equal(t, 3.0, v("tidstorage_proxy_register_timeouts_total"))
	require.Equal(t, 4.0, v("tidstorage_proxy_frames_undecoded_total", "reason", "pre_register_limit"))
	require.Equal(t, 5.0, v("tidstorage_proxy_frames_undecoded_total", "reason", "decode_limit"))
	require.Equal(t, 6.0, v("tidstorage_proxy_frames_undecoded_total", "reason", "decode_budget"))
	require.Equal(t, 5.0, v("tidstorage_status_file_lines_total"))
	require.Equal(t, 1.0, v("tidstorage_status_file_write_errors_total"))

	// Go and process collectors.
	require.Contains(t, fams, "go_goroutines")
	require.Contains(t, fams, "process_start_time_seconds")

	// Every family has a HELP, and every tidstorage_ metric is documented.
	doc, err := os.ReadFile("../../docs/admin.md")
	require.NoError(t, err)
	for name, fam := range allFamilies(t) {
		require.NotEmpty(t, fam.GetHelp(), name)
		if strings.HasPrefix(name, "tidstorage_") {
			require.Contains(t, string(doc), "`"+name+"`", "docs/admin.md must describe %s", name)
		}
	}

	// Scrapes read the tracker live: accepting the partial moves A.
	require.NoError(t, f.Tracker.AcceptPartial(f.PartialPin))
	fams = scrape(t, srv.URL)
	require.Equal(t, float64(f.T2A), value(t, fams, "tidstorage_published_tid", "storage", sA))
	require.Equal(t, 0.0, value(t, fams, "tidstorage_pins", "kind", "partial"))
	require.Equal(t, 1.0, value(t, fams, "tidstorage_tracker_pins_accepted_total"))
}

// Documented metric names that the code no longer exports are stale docs.
// Two kinds are not the endpoint's: the backup commands' metrics file
// (tidstorage_backup_*, checked in cmd/tidstorage) and the families the
// monitoring mixin declares optional (monitoring/optional-metrics.txt).
func TestDocsListNoUnknownMetric(t *testing.T) {
	fams := allFamilies(t)
	doc, err := os.ReadFile("../../docs/admin.md")
	require.NoError(t, err)
	opt, err := os.ReadFile("../../monitoring/optional-metrics.txt")
	require.NoError(t, err)
	optional := map[string]bool{}
	for _, line := range strings.Split(string(opt), "\n") {
		if name, _, ok := strings.Cut(line, " "); ok && strings.HasPrefix(name, "tidstorage_") {
			optional[name] = true
		}
	}
	names := regexp.MustCompile("`(tidstorage_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1)
	require.NotEmpty(t, names)
	for _, m := range names {
		if strings.HasPrefix(m[1], "tidstorage_backup_") || optional[m[1]] {
			continue
		}
		require.Contains(t, fams, m[1], "docs/admin.md names %s, which /metrics does not export", m[1])
	}
}

func TestMetricsWithoutOptionalParts(t *testing.T) {
	svc := tracker.NewService(tracker.ServiceConfig{})
	srv := serve(t, admin.Sources{Tracker: svc}, nil)
	fams := scrape(t, srv.URL)
	require.Equal(t, 0.0, value(t, fams, "tidstorage_bootstrapped"))
	require.Equal(t, 0.0, value(t, fams, "tidstorage_pins", "kind", "partial"))
	for name := range fams {
		for _, absent := range []string{"tidstorage_proxy_", "tidstorage_classic_", "tidstorage_status_file_", "tidstorage_published_",
			"tidstorage_history_", "tidstorage_journal_"} {
			require.False(t, strings.HasPrefix(name, absent), "%s exported without its source", name)
		}
	}
}

func TestStatus(t *testing.T) {
	f := admintest.New(t)
	srv := serve(t, f.Sources(), nil)
	code, body := get(t, srv.URL+"/status", "Authorization", admintest.Bearer)
	require.Equal(t, http.StatusOK, code, body)
	var doc statusdoc.StatusDoc
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&doc))

	require.Equal(t, admintest.T0, doc.Time)
	require.Equal(t, "v0.0.0-test", doc.Version)
	require.True(t, doc.Bootstrapped)
	require.True(t, doc.CleanStart)
	require.Len(t, doc.Storages, 3)
	a := doc.Storages[0]
	require.Equal(t, sA, a.ID)
	require.NotNil(t, a.Published)
	require.Equal(t, f.T1A, a.Published.Int)
	require.Equal(t, txn.TID(f.T1A).Hex(), a.Published.Hex)
	require.Equal(t, tidTime(f.T1A), a.Published.Time)
	require.InDelta(t, 120, *a.LagSeconds, 1e-6)
	require.Equal(t, f.T2A, a.Transient.Int)
	require.True(t, a.Busy)
	c := doc.Storages[2]
	require.Equal(t, sC, c.ID)
	require.Equal(t, 1, c.BlindConnections)
	require.Equal(t, f.BootC, c.Published.Int)

	require.Len(t, doc.Participations, 1)
	require.Equal(t, statusdoc.PartDoc{ID: 3, Storage: sC, State: "voted", Key: doc.Participations[0].Key,
		Began: admintest.T0.Add(-5 * time.Second), AgeSeconds: 5}, doc.Participations[0])
	require.Contains(t, doc.Participations[0].Key, "/plone/news/add")

	require.Len(t, doc.Classic, 1)
	require.Equal(t, "t2", doc.Classic[0].ID)
	require.Equal(t, []string{sC}, doc.Classic[0].Storages)
	require.InDelta(t, 60, doc.Classic[0].AgeSeconds, 1e-6)

	partials := doc.PartialPins()
	require.Len(t, partials, 1)
	p := partials[0]
	require.Equal(t, f.PartialPin, p.ID)
	require.Equal(t, []string{sA, sB}, p.Storages)
	require.True(t, p.Acceptable)
	require.InDelta(t, 30, p.AgeSeconds, 1e-6)
	require.Contains(t, p.Reason, "127.0.0.1:50000 (pid 4242)")
	require.Contains(t, p.Reason, "/plone/edit")
	require.Equal(t, []uint64{1, 2}, p.Parts)
	require.Equal(t, []statusdoc.HeldDoc{
		{Storage: sA, Published: a.Published},
		{Storage: sB, Published: doc.Storages[1].Published},
	}, p.Held)
	blind, ok := doc.Pin(f.BlindPin)
	require.True(t, ok)
	require.Equal(t, "blind", blind.Kind)
	require.False(t, blind.Acceptable)
	require.Contains(t, blind.Reason, "undecodable frame")

	require.Equal(t, uint64(1), doc.Counters.Partials)
	require.Equal(t, uint64(1), doc.Counters.ClassicCommitted)
	require.Equal(t, int64(123456), doc.Proxy.BytesC2S)
	require.Equal(t, uint64(2), doc.ClassicEndpoint.Commands["begin"])
	require.Equal(t, "/var/lib/tidstorage/status", doc.StatusFile.Path)
	require.Equal(t, admintest.T0.Add(-10*time.Second), *doc.StatusFile.LastWrite)
	require.Contains(t, doc.StatusFile.LastError, "no space left")

	// Optional parts absent: no key at all.
	srv2 := serve(t, admin.Sources{Tracker: f.Tracker, Clock: f.Clock.Now}, nil)
	_, body = get(t, srv2.URL+"/status", "Authorization", admintest.Bearer)
	for _, k := range []string{`"proxy"`, `"classic_endpoint"`, `"status_file"`} {
		require.NotContains(t, body, k)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	svc := tracker.NewService(tracker.ServiceConfig{Config: tracker.Config{Storages: []string{sA}}})
	srv := serve(t, admin.Sources{Tracker: svc}, nil)
	code, body := get(t, srv.URL+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	code, body = get(t, srv.URL+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "not bootstrapped")

	svc.Bootstrap(map[string]txn.TID{sA: admintest.TIDAt(t, 0)}, true)
	code, _ = get(t, srv.URL+"/readyz")
	require.Equal(t, http.StatusOK, code)

	code, body = get(t, srv.URL+"/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "/accept-partial")
	code, _ = get(t, srv.URL+"/nope")
	require.Equal(t, http.StatusNotFound, code)
}

func TestAcceptPartial(t *testing.T) {
	f := admintest.New(t)
	var logBuf bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logBuf, Level: hclog.Info})
	srv := serve(t, f.Sources(), log)
	url := srv.URL + "/accept-partial"

	code, _ := get(t, url+"?pin=1")
	require.Equal(t, http.StatusMethodNotAllowed, code)
	code, body := post(t, url, "Authorization", admintest.Bearer)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "missing pin")
	code, body = post(t, url+"?pin=x", "Authorization", admintest.Bearer)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, `is not a pin number`)
	code, body = post(t, url+"?pin=999", "Authorization", admintest.Bearer)
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, body, "no active pin 999")
	code, body = post(t, url+"?pin="+itoa(f.BlindPin), "Authorization", admintest.Bearer)
	require.Equal(t, http.StatusConflict, code)
	require.Contains(t, body, "blind")

	// A browser page of another origin cannot accept for the operator.
	code, _ = post(t, url+"?pin="+itoa(f.PartialPin), "Sec-Fetch-Site", "cross-site", "Authorization", admintest.Bearer)
	require.Equal(t, http.StatusForbidden, code)
	require.Len(t, f.Tracker.Status().Pins, 2)
	require.Empty(t, logBuf.String())

	code, body = post(t, url+"?pin="+itoa(f.PartialPin), "Authorization", admintest.Bearer)
	require.Equal(t, http.StatusOK, code, body)
	var res statusdoc.AcceptResult
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	require.True(t, res.Accepted)
	require.Equal(t, f.PartialPin, res.Pin.ID)
	require.Equal(t, "partial", res.Pin.Kind)
	// A publishes the commit the pin held back; B never got its half.
	require.Equal(t, []statusdoc.HeldDoc{
		{Storage: sA, Published: ptr(statusdoc.NewTIDDoc(f.T2A))},
		{Storage: sB, Published: ptr(statusdoc.NewTIDDoc(f.T1B))},
	}, res.Published)
	v, _ := f.Tracker.Published(sA)
	require.Equal(t, f.T2A, v)

	logged := logBuf.String()
	require.Contains(t, logged, "[WARN]")
	require.Contains(t, logged, "operator accepted")
	require.Contains(t, logged, "pin="+itoa(f.PartialPin))
	require.Contains(t, logged, "/plone/edit")

	code, body = post(t, url+"?pin="+itoa(f.PartialPin), "Authorization", admintest.Bearer)
	require.Equal(t, http.StatusNotFound, code, body)
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func ptr[T any](v T) *T { return &v }

// /healthz fails once the tracker stopped after an internal failure.
func TestHealthzReportsATrackerFailure(t *testing.T) {
	svc := tracker.NewService(tracker.ServiceConfig{OnRecord: func(tracker.Record) { panic("injected") }})
	srv := serve(t, admin.Sources{Tracker: svc}, nil)
	code, _ := get(t, srv.URL+"/healthz")
	require.Equal(t, 200, code)
	svc.Bootstrap(map[string]txn.TID{"a": 1}, true) // its records reach the panicking hook
	code, body := get(t, srv.URL+"/healthz")
	require.Equal(t, 503, code)
	require.Contains(t, body, "injected")
	require.Contains(t, admin.BuildStatus(&admin.Sources{Tracker: svc}).TrackerFailure, "injected")
}

// Per-storage metrics carry the storage's label (the
// name backups print) beside its id; "" for a storage without one.
func TestMetricsCarryTheStorageLabel(t *testing.T) {
	f := admintest.New(t)
	src := f.Sources()
	src.Labels = map[string]string{admintest.A: "main-A", admintest.B: "main-B"}
	fams := scrape(t, serve(t, src, nil).URL)
	require.Equal(t, float64(f.T1A), value(t, fams, "tidstorage_published_tid", "storage", admintest.A, "label", "main-A"))
	require.Equal(t, 1.0, value(t, fams, "tidstorage_storage_busy", "storage", admintest.B, "label", "main-B"))
	require.Equal(t, float64(f.BootC), value(t, fams, "tidstorage_published_tid", "storage", admintest.C, "label", ""))
	for name, fam := range fams {
		for _, m := range fam.Metric {
			var hasStorage, hasLabel bool
			for _, lp := range m.Label {
				hasStorage = hasStorage || lp.GetName() == "storage"
				hasLabel = hasLabel || lp.GetName() == "label"
			}
			require.Equal(t, hasStorage, hasLabel, "%s: a storage series carries its label", name)
		}
	}
}

// An empty storage (TID 0) has no time: no 1900 timestamp, age or lag.
func TestEmptyStorageHasNoAge(t *testing.T) {
	svc := tracker.NewService(tracker.ServiceConfig{Config: tracker.Config{Storages: []string{"e"}}})
	svc.Bootstrap(map[string]txn.TID{"e": 0}, true)
	src := admin.Sources{Tracker: svc}
	fams := scrape(t, serve(t, src, nil).URL)
	require.Equal(t, 0.0, value(t, fams, "tidstorage_published_tid", "storage", "e"))
	require.NotContains(t, fams, "tidstorage_published_tid_age_seconds")
	require.NotContains(t, fams, "tidstorage_published_tid_timestamp_seconds")
	doc := admin.BuildStatus(&src)
	require.Len(t, doc.Storages, 1)
	require.NotNil(t, doc.Storages[0].Published)
	require.Nil(t, doc.Storages[0].LagSeconds)
}

func TestFleetRetire(t *testing.T) {
	f := admintest.New(t)
	src := f.Sources()
	url := "/fleet/retire"
	srv := serve(t, src, hclog.NewNullLogger())
	code, body := post(t, srv.URL+url+"?name=zope9", "Authorization", admintest.Bearer)
	require.Equal(t, http.StatusNotFound, code, "not a fleet tracker")
	require.Contains(t, body, "not a fleet tracker")

	var retired []string
	src.FleetRetire = func(name string) error {
		if name == "busy" {
			return fmt.Errorf("%w (busy from 10.0.0.7:4242)", fleet.ErrConnected)
		}
		retired = append(retired, name)
		return nil
	}
	srv = serve(t, src, hclog.NewNullLogger())
	code, _ = post(t, srv.URL+url+"?name=zope9")
	require.Equal(t, http.StatusUnauthorized, code, "the admin token is needed")
	code, body = post(t, srv.URL+url, "Authorization", admintest.Bearer)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "missing name")
	code, body = post(t, srv.URL+url+"?name=busy", "Authorization", admintest.Bearer)
	require.Equal(t, http.StatusConflict, code)
	require.Contains(t, body, "stop it first")
	code, body = post(t, srv.URL+url+"?name=zope9", "Authorization", admintest.Bearer)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, []string{"zope9"}, retired)
}
