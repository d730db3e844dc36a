package statusdoc

import "github.com/tidstorage/tidstorage/fleet"

// FleetDoc is the JSON document of GET /fleet: a fleet tracker's sidecars,
// or a sidecar's link to its tracker (docs/deploy.md, "The link: figures").
type FleetDoc struct {
	Role string `json:"role"` // "tracker" or "sidecar"
	// Sidecars: every sidecar the tracker saw since it started, by name.
	Sidecars []fleet.SourceStats `json:"sidecars,omitempty"`
	// Link: the sidecar's link to its tracker.
	Link *fleet.LinkStats `json:"link,omitempty"`
}

// Redact blanks, as for /status, what identifies hosts and files: peer
// addresses, certificate subjects, the tracker's address, the buffer file
// and error texts (which name them). Names, states and counters stay: an
// unauthenticated monitor still sees a link down or a gap.
func (d *FleetDoc) Redact() {
	red := func(s *string) {
		if *s != "" {
			*s = Redacted
		}
	}
	for i := range d.Sidecars {
		sc := &d.Sidecars[i]
		for _, s := range []*string{&sc.Peer, &sc.Identity, &sc.LastError} {
			red(s)
		}
	}
	if l := d.Link; l != nil {
		for _, s := range []*string{&l.Tracker, &l.LastError, &l.BufferFile, &l.BufferError} {
			red(s)
		}
	}
}
