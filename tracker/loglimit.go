package tracker

import (
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// A client that bypasses the proxy commits as fast as any other: one ERROR
// line (and one history lookup) per unaccounted commit would flood the log
// and the storage. LogLimiter lets UnaccountedLogBurst commits of a storage
// through per UnaccountedLogWindow and counts the rest for one summary line;
// the metric and the pin count every commit.
const (
	UnaccountedLogBurst  = 10
	UnaccountedLogWindow = time.Minute
)

// LogLimiter decides which unaccounted commits are logged one by one: call
// Due(now), log its summaries, then Allow for each commit. Not safe for
// concurrent use.
type LogLimiter struct {
	w map[string]*logWindow
}

type logWindow struct {
	start      int64
	logged     int
	suppressed int
	last       txn.TID
}

// Suppressed is a summary due: Count commits of Storage up to Last were not
// logged one by one.
type Suppressed struct {
	Storage string
	Count   int
	Last    txn.TID
}

// Allow reports whether the unaccounted commit tid of storage, seen at now
// (unix ns), is logged one by one.
func (l *LogLimiter) Allow(storage string, tid txn.TID, now int64) bool {
	if l.w == nil {
		l.w = map[string]*logWindow{}
	}
	w := l.w[storage]
	if w == nil {
		w = &logWindow{start: now}
		l.w[storage] = w
	}
	if w.logged < UnaccountedLogBurst {
		w.logged++
		return true
	}
	w.suppressed++
	w.last = max(w.last, tid)
	return false
}

// Due returns the summaries of the windows that ended before now and resets
// them.
func (l *LogLimiter) Due(now int64) []Suppressed {
	var out []Suppressed
	for name, w := range l.w {
		if now-w.start < int64(UnaccountedLogWindow) {
			continue
		}
		if w.suppressed > 0 {
			out = append(out, Suppressed{Storage: name, Count: w.suppressed, Last: w.last})
		}
		delete(l.w, name)
	}
	return out
}
