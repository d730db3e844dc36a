package backup

import (
	"fmt"
	"io"
	"time"
)

// progress prints "<what>: copied X of Y (P%)" to w at most every period
// while bytes go through it, and once at the end of a long copy.
type progress struct {
	w      io.Writer
	what   string
	total  int64
	done   int64
	period time.Duration
	start  time.Time
	last   time.Time
	now    func() time.Time
	shown  bool
}

func newProgress(w io.Writer, period time.Duration, what string, total int64) *progress {
	now := time.Now
	t := now()
	return &progress{w: w, what: what, total: total, period: period, start: t, last: t, now: now}
}

func (p *progress) Write(b []byte) (int, error) {
	p.add(int64(len(b)))
	return len(b), nil
}

// add counts n bytes copied without passing through Write (nil: nothing).
func (p *progress) add(n int64) {
	if p == nil {
		return
	}
	p.done += n
	if p.w != nil && p.period > 0 {
		if t := p.now(); t.Sub(p.last) >= p.period {
			p.last = t
			p.print(t)
		}
	}
}

func (p *progress) print(t time.Time) {
	pct := 100.0
	if p.total > 0 {
		pct = float64(p.done) * 100 / float64(p.total)
	}
	rate := float64(p.done) / max(t.Sub(p.start).Seconds(), 1e-9)
	fmt.Fprintf(p.w, "%s: copied %s of %s (%.1f%%, %s/s)\n", p.what, HumanBytes(p.done), HumanBytes(p.total), pct, HumanBytes(int64(rate)))
	p.shown = true
}

// finish prints a final line if any intermediate one was printed.
func (p *progress) finish() {
	if p != nil && p.w != nil && p.shown {
		p.print(p.now())
	}
}

// HumanBytes formats a size in binary units (1.5 MiB).
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
