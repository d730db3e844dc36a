package admin_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/cmd/admin"
	"github.com/tidstorage/tidstorage/cmd/admin/admintest"
	"github.com/tidstorage/tidstorage/tracker"
)

// fleetSources has both fleet sources at once (a daemon has one or the
// other), so that one scrape shows every fleet family.
func fleetSources() admin.Sources {
	return admin.Sources{Tracker: tracker.NewService(tracker.ServiceConfig{}), Clock: func() time.Time { return admintest.T0 },
		FleetSidecars: admintest.Sidecars, FleetLink: admintest.Link}
}

func getFleet(t *testing.T, base string) statusdoc.FleetDoc {
	t.Helper()
	code, _, body := request(t, http.MethodGet, base, "/fleet", "", "Authorization", admintest.Bearer)
	require.Equal(t, http.StatusOK, code, body)
	var doc statusdoc.FleetDoc
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	return doc
}

func TestFleetMetricsSidecar(t *testing.T) {
	srv := serve(t, admin.Sources{Tracker: tracker.NewService(tracker.ServiceConfig{}), FleetLink: admintest.Link, Token: admintest.Token}, nil)
	fams := scrape(t, srv.URL)
	// admintest.Link: down, 120 of 1000 pending, the oldest 44 s old.
	want := map[string]float64{
		"tidstorage_fleet_link_connected":                  0.0,
		"tidstorage_fleet_link_connects_total":             4.0,
		"tidstorage_fleet_link_reports_observed_total":     9000.0,
		"tidstorage_fleet_link_reports_sent_total":         8950.0,
		"tidstorage_fleet_link_reports_resent_total":       70.0,
		"tidstorage_fleet_link_reports_acknowledged_total": 8880.0,
		"tidstorage_fleet_link_reports_dropped_total":      0.0,
		"tidstorage_fleet_link_gaps_total":                 1.0,
		"tidstorage_fleet_link_pending_reports":            120.0,
		"tidstorage_fleet_link_capacity_reports":           1000.0,
		"tidstorage_fleet_link_lag_seconds":                44.0,
		"tidstorage_fleet_link_buffer_bytes":               65536.0,
		"tidstorage_fleet_link_buffer_broken":              0.0,
	}
	for name, v := range want {
		require.Equal(t, v, value(t, fams, name), name)
	}
	for name := range fams {
		require.False(t, strings.HasPrefix(name, "tidstorage_fleet_sidecar_"), "%s exported on a sidecar", name)
	}

	doc := getFleet(t, srv.URL)
	require.Equal(t, "sidecar", doc.Role)
	require.NotNil(t, doc.Link)
	require.Equal(t, admintest.Link(), *doc.Link)
	require.Nil(t, doc.Sidecars)
}

func TestFleetMetricsTracker(t *testing.T) {
	srv := serve(t, admin.Sources{Tracker: tracker.NewService(tracker.ServiceConfig{}), FleetSidecars: admintest.Sidecars, Token: admintest.Token,
		Clock: func() time.Time { return admintest.T0 }}, nil)
	fams := scrape(t, srv.URL)
	v := func(name, source string) float64 { t.Helper(); return value(t, fams, name, "source", source) }
	require.Equal(t, 1.0, v("tidstorage_fleet_sidecar_connected", "zope1"))
	require.Equal(t, 0.0, v("tidstorage_fleet_sidecar_connected", "zope2"))
	require.Equal(t, 3.0, v("tidstorage_fleet_sidecar_connects_total", "zope2"))
	require.Equal(t, 1.0, v("tidstorage_fleet_sidecar_restarts_total", "zope2"))
	require.Equal(t, 5010.0, v("tidstorage_fleet_sidecar_reports_received_total", "zope1"))
	require.Equal(t, 5000.0, v("tidstorage_fleet_sidecar_reports_applied_total", "zope1"))
	require.Equal(t, 2.0, v("tidstorage_fleet_sidecar_gaps_total", "zope2"))
	require.Equal(t, 2.0, v("tidstorage_fleet_sidecar_last_report_age_seconds", "zope1"))
	require.Equal(t, 95.0, v("tidstorage_fleet_sidecar_last_report_age_seconds", "zope2"))
	require.Equal(t, 1.5, v("tidstorage_fleet_sidecar_lag_seconds", "zope2"))
	require.Len(t, fams["tidstorage_fleet_sidecar_connected"].Metric, 2, "one series per sidecar")
	for name := range fams {
		require.False(t, strings.HasPrefix(name, "tidstorage_fleet_link_"), "%s exported on a tracker", name)
	}

	doc := getFleet(t, srv.URL)
	require.Equal(t, "tracker", doc.Role)
	require.Equal(t, admintest.Sidecars(), doc.Sidecars)
	require.Nil(t, doc.Link)
}

// All-in-one: no fleet family, and /fleet is 404.
func TestFleetAbsentAllInOne(t *testing.T) {
	srv := serve(t, admin.Sources{Tracker: tracker.NewService(tracker.ServiceConfig{})}, nil)
	for name := range scrape(t, srv.URL) {
		require.False(t, strings.HasPrefix(name, "tidstorage_fleet_"), "%s exported without a fleet role", name)
	}
	code, _ := get(t, srv.URL+"/fleet")
	require.Equal(t, http.StatusNotFound, code)
	_, ok := admin.BuildFleet(&admin.Sources{})
	require.False(t, ok)
}
