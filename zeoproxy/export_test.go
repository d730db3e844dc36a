package zeoproxy

import "github.com/tidstorage/tidstorage/internal/txn"

// StorageIDOf is the id the relay gives a storage that the configuration does
// not list, reached by clients at addr (for the external tests).
var StorageIDOf = txn.ClassicStorageIDOf

// ClientIdentities lists the client identities of the open connections
// ("" while one is not resolved yet).
func (p *Proxy) ClientIdentities() []string {
	var out []string
	p.eachConn(func(c *conn) bool { out = append(out, c.ident()); return true })
	return out
}

// Stopping reports whether Drain has begun holding new transactions.
func (p *Proxy) Stopping() bool { return p.stop.stopping.Load() }
