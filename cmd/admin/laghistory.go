package admin

import (
	"sync"
	"time"
)

// LagHistory keeps each storage's publication lag (tidstorage_publication_lag_seconds)
// over the last Window, one sample every Step, in memory: what the status
// page (GET /) draws as a sparkline. It holds at most Window/Step samples
// of as many storages as the tracker knows, so its memory is bounded.
// The daemon calls Tick from its once-a-second tick; Tick reads the tracker
// only when a step has passed.
type LagHistory struct {
	Window, Step time.Duration

	mu      sync.Mutex
	src     TrackerSource
	samples []lagSample // oldest first, at most Window/Step
	last    time.Time
}

type lagSample struct {
	t   time.Time
	lag map[string]float64 // by storage id; absent: not published then
}

// NewLagHistory keeps the last hour, a sample every 10 seconds.
func NewLagHistory(src TrackerSource) *LagHistory {
	return &LagHistory{Window: time.Hour, Step: 10 * time.Second, src: src}
}

// Tick takes a sample when Step has passed since the last one.
func (h *LagHistory) Tick(now time.Time) {
	h.mu.Lock()
	due := h.last.IsZero() || now.Sub(h.last) >= h.Step
	if due {
		h.last = now
	}
	h.mu.Unlock()
	if !due {
		return
	}
	st := h.src.Status()
	s := lagSample{t: now, lag: make(map[string]float64, len(st.Storages))}
	for _, ss := range st.Storages {
		if ss.HasPublished && ss.Known {
			s.lag[ss.ID] = publicationLag(ss.Published, ss.Transient).Seconds()
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, s)
	if n := int(h.Window / h.Step); len(h.samples) > n {
		h.samples = append(h.samples[:0], h.samples[len(h.samples)-n:]...)
	}
}

// Len is the number of samples kept.
func (h *LagHistory) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.samples)
}

// lagPoint is one sample of one storage.
type lagPoint struct {
	t   time.Time
	lag float64
}

// series returns each storage's samples within Window of now, oldest
// first.
func (h *LagHistory) series(now time.Time) map[string][]lagPoint {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]lagPoint{}
	for _, s := range h.samples {
		if now.Sub(s.t) > h.Window {
			continue
		}
		for id, v := range s.lag {
			out[id] = append(out[id], lagPoint{s.t, v})
		}
	}
	return out
}
