package admin

import (
	"time"

	"github.com/tidstorage/tidstorage/fleet"
)

// The fleet link's metrics (docs/deploy.md, "The link: figures"): a sidecar's end
// (tidstorage_fleet_link_*, one link, no label) and the tracker's, one
// series per sidecar (tidstorage_fleet_sidecar_*{source}: as many as the
// fleet has sidecars). Read at scrape time from Sources.FleetLink and
// Sources.FleetSidecars, like every other family.
var (
	// Sidecar.
	mLinkConnected   = gauge("fleet_link_connected", "1 while the report stream to the tracker is up, else 0.")
	mLinkConnects    = counter("fleet_link_connects_total", "Times the report stream to the tracker came up (a tracker's welcome).")
	mLinkObserved    = counter("fleet_link_reports_observed_total", "Reports numbered by the sidecar (events of its proxy, recovers, gaps), dropped ones included.")
	mLinkSent        = counter("fleet_link_reports_sent_total", "Reports sent to the tracker, resends included.")
	mLinkResent      = counter("fleet_link_reports_resent_total", "Reports sent again after a reconnect (sent before, not acknowledged).")
	mLinkAcked       = counter("fleet_link_reports_acknowledged_total", "Reports the tracker acknowledged (each counted once).")
	mLinkDropped     = counter("fleet_link_reports_dropped_total", "Reports dropped because the send buffer was full (a declared gap: their commits are held as unaccounted).")
	mLinkGaps        = counter("fleet_link_gaps_total", "Gaps declared in the report stream (a first start without a send buffer, a damaged or lost buffer, an overflow).")
	mLinkPending     = gauge("fleet_link_pending_reports", "Reports held unacknowledged: the send buffer's fill.")
	mLinkCapacity    = gauge("fleet_link_capacity_reports", "Reports the send buffer holds at most (buffer_events); past it reports are dropped.")
	mLinkLag         = gauge("fleet_link_lag_seconds", "Age of the oldest unacknowledged report (0 when none is pending).")
	mLinkBufferBytes = gauge("fleet_link_buffer_bytes", "Size of the send buffer file (absent without buffer_file).")
	mLinkBufferBroke = gauge("fleet_link_buffer_broken", "1 once appending to the send buffer file failed (reports kept in memory only: a restart is then a gap), else 0.")
	mLinkRefused     = gauge("fleet_link_refused", "1 while the tracker refuses this sidecar (a name another live sidecar holds, a name its certificate does not carry, unknown storages), else 0.")

	// Tracker, per sidecar.
	mSidecarConnected = gauge("fleet_sidecar_connected", "1 while the sidecar's report stream is up, else 0; by source (the sidecar's name).", "source")
	mSidecarConnects  = counter("fleet_sidecar_connects_total", "Report streams the sidecar opened since the tracker started.", "source")
	mSidecarRestarts  = counter("fleet_sidecar_restarts_total", "Streams that came from a new run of the sidecar (it restarted) since the tracker started.", "source")
	mSidecarReceived  = counter("fleet_sidecar_reports_received_total", "Reports received from the sidecar, resends included.", "source")
	mSidecarApplied   = counter("fleet_sidecar_reports_applied_total", "Reports of the sidecar applied by the tracker (resends of applied reports are not).", "source")
	mSidecarGaps      = counter("fleet_sidecar_gaps_total", "Gaps the sidecar declared in its reports (their commits are held as unaccounted until accepted).", "source")
	mSidecarAge       = gauge("fleet_sidecar_last_report_age_seconds", "Now minus the time the newest applied report of the sidecar was observed (by the sidecar's clock); grows while its proxy is idle. Absent before its first report.", "source")
	mSidecarRefused   = counter("fleet_sidecar_streams_refused_total", "Streams refused under the sidecar's name since the tracker started (a second live sidecar with that name, a name its certificate does not carry, a numbering behind the tracker's).", "source")
	mSidecarLag       = gauge("fleet_sidecar_lag_seconds", "Time from observed on the sidecar to applied on the tracker, of the last report received (sidecar's clock against the tracker's).", "source")
)

var fleetLinkMetrics = []metric{mLinkConnected, mLinkConnects, mLinkObserved, mLinkSent, mLinkResent, mLinkAcked,
	mLinkDropped, mLinkGaps, mLinkPending, mLinkCapacity, mLinkLag, mLinkBufferBytes, mLinkBufferBroke, mLinkRefused}

var fleetSidecarMetrics = []metric{mSidecarConnected, mSidecarConnects, mSidecarRestarts, mSidecarReceived,
	mSidecarApplied, mSidecarGaps, mSidecarAge, mSidecarLag, mSidecarRefused}

// fleetMetrics are the fleet families the sources export.
func (c collector) fleetMetrics() []metric {
	var ms []metric
	if c.src.FleetLink != nil {
		ms = append(ms, fleetLinkMetrics...)
	}
	if c.src.FleetSidecars != nil {
		ms = append(ms, fleetSidecarMetrics...)
	}
	return ms
}

// collectFleet emits the fleet families of the sources that are set.
func (e emitter) collectFleet(src *Sources) {
	if src.FleetLink != nil {
		e.collectFleetLink(src.FleetLink())
	}
	if src.FleetSidecars != nil {
		e.collectFleetSidecars(src.FleetSidecars(), src.now())
	}
}

func (e emitter) collectFleetLink(l fleet.LinkStats) {
	e.emit(mLinkConnected, b2f(l.Connected))
	e.emit(mLinkConnects, float64(l.Connects))
	e.emit(mLinkObserved, float64(l.Observed))
	e.emit(mLinkSent, float64(l.Sent))
	e.emit(mLinkResent, float64(l.Resent))
	e.emit(mLinkAcked, float64(l.AckedReports))
	e.emit(mLinkDropped, float64(l.Dropped))
	e.emit(mLinkGaps, float64(l.Gaps))
	e.emit(mLinkPending, float64(l.Pending))
	e.emit(mLinkCapacity, float64(l.Capacity))
	e.emit(mLinkLag, l.LagSeconds)
	if l.BufferFile != "" {
		e.emit(mLinkBufferBytes, float64(l.BufferSize))
	}
	e.emit(mLinkBufferBroke, b2f(l.BufferError != ""))
	e.emit(mLinkRefused, b2f(l.Refused != ""))
}

func (e emitter) collectFleetSidecars(sources []fleet.SourceStats, now time.Time) {
	for _, s := range sources {
		e.emit(mSidecarConnected, b2f(s.Connected), s.Source)
		e.emit(mSidecarConnects, float64(s.Connects), s.Source)
		e.emit(mSidecarRestarts, float64(s.Restarts), s.Source)
		e.emit(mSidecarReceived, float64(s.Reports), s.Source)
		e.emit(mSidecarApplied, float64(s.AppliedReports), s.Source)
		e.emit(mSidecarGaps, float64(s.Gaps), s.Source)
		if !s.LastReport.IsZero() {
			e.emit(mSidecarAge, now.Sub(s.LastReport).Seconds(), s.Source)
		}
		e.emit(mSidecarLag, s.LagSeconds, s.Source)
		e.emit(mSidecarRefused, float64(s.Refused), s.Source)
	}
}
