package zeoproxy

import (
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
)

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

// Fixed are the relay's settings that no configuration sets (the
// unexported fields of Config), for tests that need other values.
type Fixed struct {
	MaxParsedFrame   int
	DecodeWait       time.Duration
	FinishWait       time.Duration
	DialTimeout      time.Duration
	HandshakeTimeout time.Duration
}

// WithFixed returns c with f's settings (zero: the default).
func (c Config) WithFixed(f Fixed) Config {
	c.maxParsedFrame, c.decodeWait, c.finishWait = f.MaxParsedFrame, f.DecodeWait, f.FinishWait
	c.dialTimeout, c.handshakeTimeout = f.DialTimeout, f.HandshakeTimeout
	return c
}

// Settings returns the settings the proxy runs with, defaults applied.
func (p *Proxy) Settings() Config { return p.cfg }

// DefaultSettings returns the settings of a zero Config, defaults applied.
func DefaultSettings() Config {
	var c Config
	c.setDefaults()
	return c
}
