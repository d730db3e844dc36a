package history

import (
	"context"
	"fmt"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// Status is a watcher's state, for /status and metrics.
type Status struct {
	Storage, Addr, Name string
	// Connected: registered on the storage now. Since: when that last
	// changed (zero before the first attempt ended).
	Connected bool
	Since     time.Time
	// LastTID is the last commit delivered to the sink.
	LastTID txn.TID
	// ServerTID is the highest TID the server reported (register,
	// lastTransaction, invalidations); above LastTID while the sink lags or
	// the watcher is disconnected.
	ServerTID txn.TID
	// Lag is ServerTID's time minus LastTID's (0 when caught up).
	Lag time.Duration
	// Pending is how many invalidations wait for the sink.
	Pending int
	// Connects counts successful registrations; Reconnects the attempts
	// that followed a failure or a lost connection.
	Connects, Reconnects uint64
	// Delivered counts the commits given to the sink, FromIterator those
	// of them read from the iterator (gap fills).
	Delivered, FromIterator uint64
	// Overflows counts the times invalidations were dropped for a slow
	// sink (and read again from the iterator); Repairs the times a commit
	// was missing from the invalidations one poll after lastTransaction
	// showed it (expected to stay 0); Anomalies the gap fills that did not
	// find the last commit seen (packed, or a replaced storage).
	Overflows, Repairs, Anomalies uint64
	// LastError is why the last connection ended or failed, and when.
	LastError   string
	LastErrorAt time.Time
}

// Snapshot returns the current status.
func (w *Watcher) Snapshot() Status {
	w.mu.Lock()
	s := w.st
	p := w.p
	w.mu.Unlock()
	s.ServerTID = max(txn.TID(w.serverTID.Load()), s.LastTID)
	if s.ServerTID > s.LastTID && s.LastTID != 0 {
		s.Lag = s.ServerTID.Time().Sub(s.LastTID.Time())
	}
	if p != nil && s.Connected {
		s.Pending = p.len()
	}
	return s
}

// Lookup returns a transaction's metadata through the watcher's
// connection (ErrNotConnected while there is none).
func (w *Watcher) Lookup(ctx context.Context, tid txn.TID) (*Meta, error) {
	w.mu.Lock()
	c := w.client
	w.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("history: storage %s: lookup %s: %w", w.cfg.Storage, tid.Hex(), ErrNotConnected)
	}
	return Lookup(ctx, c, tid)
}

func (w *Watcher) count(f func(*Status)) {
	w.mu.Lock()
	f(&w.st)
	w.mu.Unlock()
}

func (w *Watcher) connected(c *zrpc.Client, p *pending) {
	w.cfg.Logger.Info("watching storage", "storage", w.cfg.Storage, "addr", w.cfg.Addr, "name", w.cfg.Name, "from", w.last.Hex())
	w.mu.Lock()
	defer w.mu.Unlock()
	w.client, w.p = c, p
	w.st.Connected = true
	w.st.Since = time.Now()
	w.st.Connects++
	w.st.LastTID = w.last
}

func (w *Watcher) disconnected(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.client, w.p = nil, nil
	if w.st.Connected || w.st.Since.IsZero() {
		w.st.Since = time.Now()
	}
	w.st.Connected = false
	if err != nil {
		w.st.LastError = err.Error()
		w.st.LastErrorAt = time.Now()
	}
}
