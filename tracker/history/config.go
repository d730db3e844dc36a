package history

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// Sink receives commits, one at a time, in strictly increasing TID order,
// on the watcher's goroutine. It may block: the watcher then waits (the
// connection stays alive, see the package doc). ctx is Run's context; a
// blocking sink should return when it is done. A non-nil error stops Run,
// which returns it; the commit is then considered not delivered.
type Sink func(ctx context.Context, c Commit) error

// BatchSink receives commits as Sink does, several at a time: every new
// commit one wake-up of the watcher found (the invalidations received
// meanwhile), or up to MaxBatch commits read from the iterator. The slice
// is the watcher's: it is reused after the call returns. An error means
// none of them was delivered.
type BatchSink func(ctx context.Context, cs []Commit) error

// MaxBatch bounds the commits handed to a BatchSink at once.
const MaxBatch = 256

// Config describes one watched storage.
type Config struct {
	// Storage is the storage id copied into every Commit (the tracker's key).
	Storage string
	// Network and Addr reach the ZEO server ("tcp" by default, or "unix").
	Network, Addr string
	// Name is the storage name to register (ZEO's default is "1").
	Name string
	// After: deliver the commits whose TID is greater. Zero starts at the
	// storage's last transaction when the watcher first registers (nothing
	// older is delivered); a tracker resuming after a crash passes the last
	// TID it accounted for.
	After txn.TID
	// AfterExact: After is the last accounted TID even when it is zero (an
	// empty storage at bootstrap), so every commit is delivered.
	AfterExact bool
	// Sink receives the commits one by one; BatchSink, used instead when
	// set, several at a time (one of them is required).
	Sink      Sink
	BatchSink BatchSink
	// Metadata makes every commit carry its Meta: invalidations are then
	// only a signal and the commits are read from the iterator (about one
	// more round trip per commit).
	Metadata bool
	// MetadataLinger, with Metadata, is how long the watcher waits after an
	// invalidation for more before it reads the iterator: the commits of
	// that time are read together (one iterator_start and one round trip
	// of pipelined iterator_next calls), at the price of that delay on
	// their delivery. Zero reads at once.
	MetadataLinger time.Duration

	// Heartbeat and HeartbeatTimeout: a ping every Heartbeat, and a
	// connection whose ping is not answered within HeartbeatTimeout is
	// dropped and dialled again (defaults 5 s and 10 s).
	Heartbeat, HeartbeatTimeout time.Duration
	// Poll is the interval of lastTransaction calls that measure the lag
	// and catch a commit the invalidations did not announce (default 10 s).
	Poll time.Duration
	// CallTimeout bounds the dial, register and each iterator call (default 30 s).
	CallTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts, doubled after each failure (defaults 100 ms and 10 s).
	MinBackoff, MaxBackoff time.Duration
	// MaxPending bounds the invalidations kept ahead of a slow sink
	// (default 4096); past it they are re-read from the iterator.
	MaxPending int
	// Encoding forces the wire encoding (default: the server's).
	Encoding zrpc.Encoding
	// TLS, if set, is called at each connection for the TLS configuration
	// to talk to the server with (a ZEO server with <ssl>): renewed
	// certificates are used from the next reconnection on. Nil: plaintext.
	TLS func() *tls.Config
	// Logger (default: none).
	Logger hclog.Logger
}

func (c *Config) check() error {
	if c.Storage == "" {
		return errors.New("history: config: empty storage id")
	}
	if c.Addr == "" {
		return fmt.Errorf("history: storage %s: config: empty address", c.Storage)
	}
	if c.Sink == nil && c.BatchSink == nil {
		return fmt.Errorf("history: storage %s: config: no sink", c.Storage)
	}
	if c.Network == "" {
		c.Network = "tcp"
	}
	if c.Name == "" {
		c.Name = "1"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Heartbeat, 5*time.Second)
	def(&c.HeartbeatTimeout, 10*time.Second)
	def(&c.Poll, 10*time.Second)
	def(&c.CallTimeout, 30*time.Second)
	def(&c.MinBackoff, 100*time.Millisecond)
	def(&c.MaxBackoff, 10*time.Second)
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 4096
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return nil
}
