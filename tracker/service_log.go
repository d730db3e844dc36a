package tracker

import "sync"

// Logging the records outside the tracker's lock. hclog formats and writes
// synchronously (to a file, to stderr), so a slow log would otherwise stall
// every relay connection waiting for the lock. Under the lock the Service
// only appends the records to be logged to a queue; after unlocking, the
// goroutine that applied the input drains the queue. Draining is serialised
// by its own mutex, so records are logged in the order they were produced
// even when two goroutines drain one after the other.

// logEntry is one record to log, or a tracker failure (failure != "").
type logEntry struct {
	rec     Record
	failure string
	stack   string
}

type logQueue struct {
	q       []logEntry // appended under the Service's lock
	drainMu sync.Mutex
	spare   []logEntry // guarded by drainMu
}

// push queues an entry (Service lock held).
func (l *logQueue) push(e logEntry) { l.q = append(l.q, e) }

// pending reports whether anything waits (Service lock held).
func (l *logQueue) pending() bool { return len(l.q) > 0 }

// drain takes the queue under mu (the Service's lock, not held by the
// caller) and logs it without mu.
func (l *logQueue) drain(mu *sync.Mutex, log func(*logEntry)) {
	l.drainMu.Lock()
	defer l.drainMu.Unlock()
	mu.Lock()
	q := l.q
	l.q = l.spare[:0]
	mu.Unlock()
	for i := range q {
		log(&q[i])
	}
	clear(q)
	l.spare = q[:0]
}

// logRecord logs one entry (no lock held).
func (s *Service) logRecord(e *logEntry) {
	if e.failure != "" {
		s.log.Error("tracker failed: publication stops at the last good point; traffic keeps flowing; restart tidstorage",
			"panic", e.failure, "stack", e.stack)
		return
	}
	r := &e.rec
	for _, sup := range s.unaccLog.Due(r.Time) {
		s.log.Error("more unaccounted commits were not logged one by one (at most 10 a minute per storage; "+
			"the metric tidstorage_unaccounted_commits_total and the pin count them all)",
			"storage", sup.Storage, "commits", sup.Count, "last_tid", sup.Last.Hex())
	}
	switch r.Kind {
	case RecPublished:
		s.log.Trace("published", "storage", r.Storage, "tid", r.TID.Hex(), "old", r.Old.Hex())
	case RecBootstrapped:
		s.log.Info(r.Msg)
	case RecWarning:
		s.log.Warn(r.Msg, "code", string(r.Code))
	case RecCritical:
		s.log.Error("CRITICAL: "+r.Msg, "code", string(r.Code), "storage", r.Storage, "tid", r.TID.Hex(), "published", r.Old.Hex())
	case RecPartial:
		s.log.Error(r.Msg, "pin", r.Pin)
	case RecInDoubt, RecLost, RecPinned:
		s.log.Warn(r.Msg, "pin", r.Pin, "participation", uint64(r.Part))
	case RecUnaccounted:
		if s.unaccLog.Allow(r.Storage, r.TID, r.Time) {
			s.log.Error(r.Msg, "storage", r.Storage, "tid", r.TID.Hex(), "committed_at", r.TID.Time().Format("2006-01-02T15:04:05.000000Z"))
		}
	case RecAccounted:
		s.log.Info(r.Msg, "storage", r.Storage, "tid", r.TID.Hex())
	case RecResolved, RecPinReleased:
		s.log.Info(r.Msg, "pin", r.Pin, "participation", uint64(r.Part), "tid", r.TID.Hex())
	}
}
