package statusdoc

// Redacted replaces, in a /status document served without the credential,
// every string that identifies a client or names a file (docs/admin.md,
// "Running the admin endpoint safely").
const Redacted = "<redacted>"

// Redact blanks what identifies clients, their users and transactions, and
// the daemon's files, keeping the document's shape: ids of storages, TIDs,
// states and counters stay.
func (d *StatusDoc) Redact() {
	red := func(s *string) {
		if *s != "" {
			*s = Redacted
		}
	}
	red(&d.TrackerFailure)
	for i := range d.Participations {
		red(&d.Participations[i].Key)
	}
	for i := range d.Classic {
		red(&d.Classic[i].ID)
	}
	for i := range d.Pins {
		p := &d.Pins[i]
		red(&p.Reason)
		red(&p.Key)
		red(&p.Txn)
		for j := range p.Participations {
			red(&p.Participations[j].Key)
		}
	}
	if sf := d.StatusFile; sf != nil {
		for _, s := range []*string{&sf.Path, &sf.LastError, &sf.Broken, &sf.LastAside} {
			red(s)
		}
	}
	if j := d.Journal; j != nil {
		for _, s := range []*string{&j.Path, &j.Broken, &j.Damage, &j.Reserve} {
			red(s)
		}
	}
	for i := range d.History {
		red(&d.History[i].Addr)
		red(&d.History[i].LastError)
	}
}
