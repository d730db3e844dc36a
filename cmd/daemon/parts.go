package daemon

import (
	"github.com/tidstorage/tidstorage/fleet"
	"github.com/tidstorage/tidstorage/internal/statusdoc"
	"github.com/tidstorage/tidstorage/internal/tlsfiles"
	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/tracker/classic"
	"github.com/tidstorage/tidstorage/tracker/history"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// StatusSource is what the admin endpoint reads of the tracker: the
// tracker itself in the roles that publish; a sidecar, which has none,
// answers from what it has.
type StatusSource interface {
	Status() tracker.Status
	Counters() tracker.Counters
	AcceptPartial(pin uint64) error
}

// Parts are what the admin endpoint reads of the running daemon, each nil
// where the role has none: cmd/admin's Sources takes them as they are.
type Parts struct {
	Status       StatusSource
	Accept       func(pin uint64) error // checks the storages' live state first
	Proxy        func() zeoproxy.MetricsSnapshot
	Classic      func() classic.Stats
	StatusFile   func() statusfile.Stats
	Watchers     func() map[string]history.Status
	Journal      func() tracker.JournalStats
	Certificates func() []tlsfiles.Expiry
	Archive      func() *statusdoc.ArchiveDoc
	// A fleet tracker's sidecars, and the retire of one; a sidecar's link.
	FleetSidecars func() []fleet.SourceStats
	FleetRetire   func(name string) error
	FleetLink     func() fleet.LinkStats
}

// Parts gives the parts the daemon's role has.
func (d *Daemon) Parts() Parts {
	p := Parts{Status: d.role.status(), Accept: d.AcceptPartial}
	if px := d.Proxy; px != nil {
		p.Proxy = px.Metrics
	}
	if HasTLS(d.cfg) {
		p.Certificates = d.Certificates
	}
	d.role.parts(&p)
	return p
}

// publishingParts are the parts of the roles that publish.
func (d *Daemon) publishingParts(p *Parts) {
	if cs := d.Classic; cs != nil {
		p.Classic = cs.Stats
	}
	if sf := d.sf; sf != nil {
		p.StatusFile = sf.Stats
	}
	if d.Tracker.JournalStats().Path != "" {
		p.Journal = d.Tracker.JournalStats
	}
	if d.cfg.Archive != nil {
		p.Archive = d.ArchiveDoc
	}
}
