package statusfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// Line is one parsed status line.
type Line struct {
	Time    float64
	Full    bool
	Entries []Entry // in file order
}

// ParseLine parses one line (without its newline).
func ParseLine(s string) (Line, error) {
	var l Line
	sp := bytes.IndexByte([]byte(s), ' ')
	if sp < 0 {
		return l, errors.New("no space after the time")
	}
	t, err := strconv.ParseFloat(s[:sp], 64)
	if err != nil || math.IsNaN(t) || math.IsInf(t, 0) || t < 0 {
		return l, fmt.Errorf("bad time %q", s[:sp])
	}
	l.Time = t
	rest := s[sp+1:]
	if len(rest) < 2 || rest[1] != ' ' || (rest[0] != 'f' && rest[0] != 'd') {
		return l, errors.New("expected 'f ' or 'd ' after the time")
	}
	l.Full = rest[0] == 'f'
	p := parser{s: rest[2:]}
	err = p.dict(func(k string, v txn.TID) error {
		l.Entries = append(l.Entries, Entry{k, v})
		return nil
	})
	if err != nil {
		return l, fmt.Errorf("dict: %w", err)
	}
	return l, nil
}

// Result of a Replay.
type Result struct {
	// Point is the coherent point as of the last applied line.
	Point map[string]txn.TID
	// Time of the last applied line (0 if none).
	Time float64
	// Lines applied, and the number of the last one (1-based).
	Applied  int
	LastLine int
	// Warnings: a torn last line, times going backwards. Not fatal.
	Warnings []string
}

// Entries returns the point sorted by key.
func (r *Result) Entries() []Entry {
	es := make([]Entry, 0, len(r.Point))
	for k, v := range r.Point {
		es = append(es, Entry{k, v})
	}
	sort.Slice(es, func(a, b int) bool { return es[a].Storage < es[b].Storage })
	return es
}

// ReplayOptions select the point to return.
type ReplayOptions struct {
	// Until, when non-zero, stops before the first line whose time is
	// later (unix seconds): the point as of that time.
	Until float64
}

// Replay reads a status file and returns the coherent point at its end (or
// as of opts.Until). A d line merges values that must not decrease; an f
// line must contain every key known so far with a value not below it, and
// replaces the state. A malformed line is an error naming its number,
// except the last line, which may be torn by a crash (warned and ignored).
// Times going backwards are warned about (each line is compared with the
// previous one, not with the first).
func Replay(r io.Reader, opts ReplayOptions) (*Result, error) {
	res := &Result{Point: map[string]txn.TID{}}
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		n       int
		prevT   float64
		pending error // parse error of the previous line: fatal unless it was the last
		pendNo  int
	)
	for {
		raw, err := br.ReadString('\n')
		if len(raw) == 0 && err == io.EOF {
			break
		}
		if err != nil && err != io.EOF {
			return res, fmt.Errorf("statusfile: read: %w", err)
		}
		n++
		if pending != nil {
			return res, fmt.Errorf("statusfile: line %d: %w", pendNo, pending)
		}
		torn := err == io.EOF // no trailing newline
		s := raw
		if len(s) > 0 && s[len(s)-1] == '\n' {
			s = s[:len(s)-1]
		}
		if len(s) > 0 && s[len(s)-1] == '\r' {
			s = s[:len(s)-1]
		}
		if len(bytes.TrimSpace([]byte(s))) == 0 {
			continue
		}
		l, perr := ParseLine(s)
		if perr != nil {
			pending, pendNo = perr, n
			if torn {
				break
			}
			continue
		}
		if opts.Until != 0 && l.Time > opts.Until {
			break
		}
		if res.Applied > 0 && l.Time < prevT {
			res.Warnings = append(res.Warnings, fmt.Sprintf("line %d: time %.2f is before the previous line's %.2f", n, l.Time, prevT))
		}
		left, err := apply(res.Point, l)
		if err != nil {
			return res, fmt.Errorf("statusfile: line %d: %w", n, err)
		}
		for _, k := range left {
			res.Warnings = append(res.Warnings, fmt.Sprintf("line %d: storage %s left the point (absent from this full line)", n, k))
		}
		prevT = l.Time
		res.Time = l.Time
		res.Applied++
		res.LastLine = n
		if torn {
			break
		}
	}
	if pending != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("line %d: torn last line ignored: %v", pendNo, pending))
	}
	return res, nil
}

// apply merges one line into point. A full line replaces the point: a
// storage absent from it has left (removed from the configuration, or a
// classic id no run reports any more) and is returned,
// not an error, so that the storages still published stay readable. A line
// that lowers a storage is an error: within one epoch published TIDs never
// decrease (epoch.go).
func apply(point map[string]txn.TID, l Line) (left []string, err error) {
	if l.Full {
		seen := make(map[string]bool, len(l.Entries))
		for _, e := range l.Entries {
			if old, ok := point[e.Storage]; ok && e.TID < old {
				return nil, fmt.Errorf("full line lowers %s from %d to %d", e.Storage, old, e.TID)
			}
			seen[e.Storage] = true
		}
		for k := range point {
			if !seen[k] {
				left = append(left, k)
			}
		}
		sort.Strings(left)
		clear(point)
	} else {
		for _, e := range l.Entries {
			if old, ok := point[e.Storage]; ok && e.TID < old {
				return nil, fmt.Errorf("d line lowers %s from %d to %d", e.Storage, old, e.TID)
			}
		}
	}
	for _, e := range l.Entries {
		point[e.Storage] = e.TID
	}
	return left, nil
}
