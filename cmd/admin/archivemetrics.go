package admin

import "github.com/tidstorage/tidstorage/internal/statusdoc"

// The continuous archive's metrics (docs/admin.md, docs/backup.md
// "Continuous archive"), read at scrape time from Sources.Archive.
var (
	mArchiveLagSeconds = gauge("archive_lag_seconds", "The loss window: now minus the newest restorable point while the published point has moved past it (0 once shipped): what the site would lose with its whole host.")
	mArchiveLagBytes   = gauge("archive_lag_bytes", "Committed bytes of the archived Data.fs files not shipped yet.")
	mArchiveLastOK     = gauge("archive_last_success_timestamp_seconds", "Unix time of the last shipment that made a point restorable (0 before the first of this run).")
	mArchiveLastPoint  = gauge("archive_last_point_timestamp_seconds", "Unix time of the newest restorable point in the archive.")
	mArchiveShipments  = counter("archive_shipments_total", "Points made restorable by this run.")
	mArchiveBytes      = counter("archive_shipped_bytes_total", "Bytes uploaded (Data.fs segments and blob files) by this run.")
	mArchiveErrors     = counter("archive_errors_total", "Failed shipments and lease renewals (object store unreachable, refused...).")
	mArchiveFailing    = gauge("archive_failing", "1 while the object store cannot be written (the log said so once), else 0.")
)

var archiveMetrics = []metric{mArchiveLagSeconds, mArchiveLagBytes, mArchiveLastOK, mArchiveLastPoint,
	mArchiveShipments, mArchiveBytes, mArchiveErrors, mArchiveFailing}

func unixOrZero(d *statusdoc.ArchiveDoc) (ok, point float64) {
	if !d.LastShipment.IsZero() {
		ok = float64(d.LastShipment.UnixNano()) / 1e9
	}
	if !d.LastPoint.IsZero() {
		point = float64(d.LastPoint.UnixNano()) / 1e9
	}
	return ok, point
}

func (e emitter) collectArchive(d *statusdoc.ArchiveDoc) {
	if d == nil {
		d = &statusdoc.ArchiveDoc{}
	}
	ok, point := unixOrZero(d)
	e.emit(mArchiveLagSeconds, d.LagSeconds)
	e.emit(mArchiveLagBytes, float64(d.LagBytes))
	e.emit(mArchiveLastOK, ok)
	e.emit(mArchiveLastPoint, point)
	e.emit(mArchiveShipments, float64(d.Shipments))
	e.emit(mArchiveBytes, float64(d.BytesShipped))
	e.emit(mArchiveErrors, float64(d.Errors))
	e.emit(mArchiveFailing, b2f(d.Failing))
}
