package zeoproxy

// StorageIDOf is the id the relay gives a storage that the configuration does
// not list, reached by clients at addr (for the external tests).
var StorageIDOf = classicStorageID

// ClientIdentities lists the client identities of the open connections
// ("" while one is not resolved yet).
func (p *Proxy) ClientIdentities() []string {
	p.mu.Lock()
	ls := append([]*listener(nil), p.listeners...)
	p.mu.Unlock()
	var out []string
	for _, l := range ls {
		l.mu.Lock()
		for c := range l.conns {
			out = append(out, c.ident())
		}
		l.mu.Unlock()
	}
	return out
}

// Stopping reports whether Drain has begun holding new transactions.
func (p *Proxy) Stopping() bool { return p.stop.stopping.Load() }
