package archive

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// Status is what /metrics and `tidstorage status` show of an archiver.
type Status struct {
	Store string `json:"store"`
	// LastShipment is when the last point was made restorable; LastPoint
	// that point's time, LastTIDs its TIDs.
	LastShipment time.Time          `json:"last_shipment"`
	LastPoint    time.Time          `json:"last_point"`
	LastTIDs     map[string]txn.TID `json:"-"`
	// LagSeconds: the loss window, now minus the newest restorable point's
	// time while the published point has moved past it (0 when it is
	// shipped), as of the last look at the point (every interval). LagBytes: committed bytes of the Data.fs files not shipped
	// yet (measured at each attempt).
	LagSeconds   float64 `json:"lag_seconds"`
	LagBytes     int64   `json:"lag_bytes"`
	Shipments    uint64  `json:"shipments"`
	BytesShipped int64   `json:"bytes_shipped"`
	BlobsShipped uint64  `json:"blobs_shipped"`
	Errors       uint64  `json:"errors"`
	// Failing is set while the store cannot be written; LastError says why.
	Failing   bool   `json:"failing"`
	LastError string `json:"last_error,omitempty"`
	Removed   uint64 `json:"removed"` // objects removed by retention
}

// Status returns a copy of the archiver's status.
func (a *Archiver) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.st
	if !a.lagSince.IsZero() {
		s.LagSeconds = a.o.Now().Sub(a.lagSince).Seconds() // grows between looks while it waits
	}
	s.LastTIDs = make(map[string]txn.TID, len(a.st.LastTIDs))
	for k, v := range a.st.LastTIDs {
		s.LastTIDs[k] = v
	}
	return s
}

// Source gives the current published point.
type Source func(ctx context.Context) (Point, error)

// RunOptions tune Run.
type RunOptions struct {
	Interval  time.Duration
	Retention time.Duration // 0: no retention
	// PruneEvery is how often retention runs (default 10 minutes).
	PruneEvery time.Duration
}

// Run ships the source's point every interval while it changes, until ctx
// ends. Errors are counted and logged once when the store becomes
// unreachable and once when it is back; Run never returns because of one.
func (a *Archiver) Run(ctx context.Context, src Source, o RunOptions) {
	if o.PruneEvery == 0 {
		o.PruneEvery = 10 * time.Minute
	}
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	var waiting time.Time // when the current unshipped point was first seen
	var lastPrune time.Time
	srcFailing, packing := false, false
	for {
		select {
		case <-ctx.Done():
			a.final(src)
			return
		case <-t.C:
		}
		p, err := src(ctx)
		if err != nil {
			if !srcFailing {
				a.o.Logf("warn", "archive: no published point to ship", "error", err.Error())
				srcFailing = true
			}
			continue
		}
		if srcFailing {
			a.o.Logf("info", "archive: the published point is readable again")
			srcFailing = false
		}
		a.measureLag(p, &waiting, o.Interval)
		if a.Shipped(p) {
			if err := a.renew(ctx); err != nil {
				a.failed(err)
			}
		} else if _, err := a.Ship(ctx, p); err != nil {
			if errors.Is(err, errPack) {
				if !packing {
					a.o.Logf("info", "archive: waiting for a pack to finish", "detail", err.Error())
				}
				packing = true
				continue
			}
			if ctx.Err() != nil {
				return
			}
			a.failed(err)
			continue
		}
		packing = false
		waiting = time.Time{}
		a.succeeded()
		a.measureLag(p, &waiting, o.Interval)
		if o.Retention > 0 && time.Since(lastPrune) >= o.PruneEvery {
			lastPrune = time.Now()
			if _, err := a.Prune(ctx, o.Retention, true); err != nil {
				a.failed(err)
			}
		}
	}
}

// final ships the source's point once more when Run stops (a clean stop of
// serve: the last commits are archived too), within a few seconds.
func (a *Archiver) final(src Source) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := src(ctx)
	if err != nil || a.Shipped(p) {
		return
	}
	if _, err := a.Ship(ctx, p); err != nil {
		a.o.Logf("warn", "archive: the last point could not be shipped at stop; the next run ships it", "error", err.Error())
		return
	}
	a.o.Logf("info", "archive: shipped the last point at stop")
}

func (a *Archiver) measureLag(p Point, waiting *time.Time, interval time.Duration) {
	var lagBytes int64
	for _, s := range a.o.Storages {
		st, err := os.Stat(s.DataFS)
		if err != nil {
			continue
		}
		off := int64(0)
		if r := a.state[s.ID]; r != nil {
			off = r.Offset
		}
		lagBytes += max(0, st.Size()-off)
	}
	// The loss window: what the site would lose with its host now, the
	// commits since the newest restorable point (0 when the published
	// point is shipped). Before any point, since the first one was seen.
	now := a.o.Now()
	lag := 0.0
	var lagSince time.Time
	if !a.Shipped(p) {
		if waiting.IsZero() {
			*waiting = now
		}
		// The first commit not shipped came after the previous look at
		// the point (one interval before it was first seen moved) and
		// after the newest restorable point: measure from the later of
		// the two (an upper bound of the loss, at most one interval over).
		since := waiting.Add(-interval)
		if a.last != nil && a.last.Time.After(since) {
			since = a.last.Time
		}
		lag, lagSince = now.Sub(since).Seconds(), since
	}
	a.mu.Lock()
	a.st.LagBytes, a.st.LagSeconds, a.lagSince = lagBytes, lag, lagSince
	a.mu.Unlock()
}

func (a *Archiver) failed(err error) {
	a.mu.Lock()
	a.st.Errors++
	first := !a.st.Failing
	a.st.Failing, a.st.LastError = true, err.Error()
	a.mu.Unlock()
	var le *localError
	if first {
		a.failLocal = errors.As(err, &le)
	}
	switch {
	case !first:
	case errors.As(err, &le):
		a.o.Logf("error", "archive: cannot ship the published point from this host; retrying every interval (logged again when it works)",
			"error", err.Error())
	default:
		a.o.Logf("error", "archive: cannot write to the object store; retrying every interval (logged again when it is back)",
			"store", a.o.Store.String(), "error", err.Error())
	}
}

func (a *Archiver) succeeded() {
	a.mu.Lock()
	was := a.st.Failing
	a.st.Failing = false
	a.mu.Unlock()
	switch {
	case was && a.failLocal:
		a.o.Logf("info", "archive: shipping works again on this host")
	case was:
		a.o.Logf("info", "archive: the object store is back; shipping resumed", "store", a.o.Store.String())
	}
}
