// Package admin is the daemon's HTTP admin endpoint: /metrics (Prometheus),
// /status (JSON), /healthz, /readyz and POST /accept-partial.
//
// Everything is read from the sources at request time: the handler keeps no
// state of its own and starts no goroutine, so a scrape always shows the
// tracker as it is, and an idle daemon does no work for its metrics.
package admin

import (
	"time"

	"github.com/tidstorage/tidstorage/fleet"
	"github.com/tidstorage/tidstorage/internal/statusdoc"
	"github.com/tidstorage/tidstorage/internal/tlsfiles"
	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/tracker/classic"
	"github.com/tidstorage/tidstorage/tracker/history"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// TrackerSource is what the admin endpoint needs of the tracker;
// *tracker.Service satisfies it.
type TrackerSource interface {
	Status() tracker.Status
	Counters() tracker.Counters
	AcceptPartial(pin uint64) error
}

// Sources are the parts of the daemon the endpoint reads. Tracker is
// required; a nil func means the part is not running (no ZEO block, classic
// endpoint disabled, no status file) and its metrics are not exported.
type Sources struct {
	Tracker    TrackerSource
	Proxy      func() zeoproxy.MetricsSnapshot // nil if no proxy
	Classic    func() classic.Stats            // nil if the classic endpoint is disabled
	StatusFile func() statusfile.Stats         // nil if no status file
	// Watchers gives each watched storage's history watcher (ground
	// truth), by storage id; nil if the daemon watches none (no proxy).
	Watchers func() map[string]history.Status
	// Journal gives the tracker's journal figures; nil without a journal.
	Journal func() tracker.JournalStats
	// Certificates gives every loaded TLS certificate file (zeo blocks'
	// tls and upstream_tls, the fleet link) with when it expires
	// (tidstorage_certificate_expiry_timestamp_seconds); nil without TLS.
	Certificates func() []tlsfiles.Expiry
	// Accept, if set, replaces Tracker.AcceptPartial for POST
	// /accept-partial (the daemon checks the storages' live state first).
	Accept func(pin uint64) error
	// Labels gives each configured storage's label (the name backups use:
	// the id when it is a plain name, else "<zeo>-<name>" or the id's safe
	// form; docs/backup.md, "Names"), by storage id: the "label" label of the
	// per-storage metrics, and /status's label where it differs from the id.
	// Nil: every label is "".
	Labels  map[string]string
	Clock   func() time.Time // default time.Now; lags and ages are measured with it
	Version string
	// PreviousRun says how the run before this one ended: "clean",
	// "unclean", "none" (a first start) or "unknown" (not tracked: no
	// status file); "" leaves StatusDoc.CleanStart alone to say it.
	PreviousRun string

	// FleetSidecars gives a fleet tracker's sidecars (every one seen since
	// start), FleetLink a sidecar's link to its tracker; nil in other
	// roles. Either is served as JSON on GET /fleet (FleetDoc) and
	// exported as the tidstorage_fleet_* metrics (docs/deploy.md).
	FleetSidecars func() []fleet.SourceStats
	FleetLink     func() fleet.LinkStats
	// FleetRetire forgets a sidecar gone for good (POST /fleet/retire;
	// a fleet tracker only).
	FleetRetire func(name string) error

	// Archive gives the continuous archive's state; nil without an archive
	// block (it returns a document with State "starting" before the store
	// was reached).
	Archive func() *statusdoc.ArchiveDoc

	// For the status page (GET / from a browser): LagHistory, the storages'
	// publication lag over the last hour (the daemon ticks it; nil: no
	// sparklines); Backups, the backup commands' last runs from the backup
	// metrics file (nil: none configured); ConfigFile, the configuration's
	// path for the commands the page suggests (shown with the token only).
	LagHistory *LagHistory
	Backups    func() ([]BackupRun, error)
	ConfigFile string

	// Token is the bearer token (the admin token file's content) that
	// POST requests need and that /status needs to show what identifies
	// clients; "" refuses every POST and always redacts /status.
	Token string
	// AllowedHosts are Host header values accepted besides the address a
	// request came in on: "name:port", or "name" for any port.
	AllowedHosts []string
}

func (s *Sources) now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return time.Now()
}
