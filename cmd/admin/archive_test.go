package admin_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/cmd/admin"
	"github.com/tidstorage/tidstorage/internal/statusdoc"
	"github.com/tidstorage/tidstorage/tracker"
)

func archiveSources(d *statusdoc.ArchiveDoc) admin.Sources {
	return admin.Sources{Tracker: tracker.NewService(tracker.ServiceConfig{}), Archive: func() *statusdoc.ArchiveDoc { return d }}
}

// The archive's state reaches /metrics and /status as the archiver gives it.
func TestArchiveMetricsAndStatus(t *testing.T) {
	last := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	d := &statusdoc.ArchiveDoc{Store: "s3://b/p", LastShipment: last, LastPoint: last.Add(-time.Second), LagSeconds: 1.5,
		LagBytes: 4096, Shipments: 7, BytesShipped: 1 << 20, Errors: 2, Failing: true, LastError: "unreachable", State: "running"}
	srv := serve(t, archiveSources(d), nil)
	fams := scrape(t, srv.URL)
	require.Equal(t, 1.5, value(t, fams, "tidstorage_archive_lag_seconds"))
	require.Equal(t, 4096.0, value(t, fams, "tidstorage_archive_lag_bytes"))
	require.Equal(t, float64(last.Unix()), value(t, fams, "tidstorage_archive_last_success_timestamp_seconds"))
	require.Equal(t, 7.0, value(t, fams, "tidstorage_archive_shipments_total"))
	require.Equal(t, 2.0, value(t, fams, "tidstorage_archive_errors_total"))
	require.Equal(t, 1.0, value(t, fams, "tidstorage_archive_failing"))
	// Without an archive, no archive metric.
	for name := range scrape(t, serve(t, admin.Sources{Tracker: tracker.NewService(tracker.ServiceConfig{})}, nil).URL) {
		require.NotContains(t, name, "tidstorage_archive_")
	}
}
