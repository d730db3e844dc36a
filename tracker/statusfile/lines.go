// Package statusfile writes and reads the status file of the original
// TIDStorage daemon (a.k.a. the TID log): one line per write,
//
//	<unix time, 2 decimals> <f|d> <Python dict repr: storage id -> TID>
//
// where f is a full dump of the published point and d holds only the values
// published since the previous line. Files written here are read by the
// original Python tools, and files written by them are read here.
//
// The file has one owner: a Writer, whose goroutine is the only code that
// writes, fsyncs, truncates and rotates it (writer.go). This file holds the
// line policy that goroutine applies: when a line is due, which kind, and
// how a failed write is cut back so that the file always ends at its last
// good line.
package statusfile

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// Entry is one storage id and its TID: a status line's entry of a coherent
// point (tracker.StorageTID outside this package).
type Entry struct {
	Storage string
	TID     txn.TID
}

// File is what a Writer writes to: each line goes out in one Write and is
// then synced. A File that also has Truncate(size int64) error (as
// *os.File does) lets a failed line be cut back; without it a failed partial
// write stops appending for good.
type File interface {
	io.Writer
	Sync() error
}

// truncater is implemented by *os.File: a failed write is cut back so that
// no torn line is left in the middle of the file.
type truncater interface {
	Truncate(size int64) error
}

// errCannotCut marks a failure after which appending is unsafe: a torn
// fragment stays at the end of the file and the next line would glue onto
// it.
var errCannotCut = errors.New("the torn line could not be cut back")

// lines is the line policy: the values published since the last line
// (pending), the periods, and the write of one line. Only the Writer's
// goroutine uses it.
type lines struct {
	f        File
	opts     Options
	pending  map[string]txn.TID
	order    []string
	started  bool
	needFull bool // the last full line failed: the next line is a full one
	lastLine time.Time
	lastFull time.Time
	buf      []byte
	entries  []Entry
	size     int64 // bytes in the file, when known (-1 if not)
	count    int64 // lines written
	bytes    int64 // bytes written
}

func newLines(f File, opts Options, size int64) *lines {
	return &lines{f: f, opts: opts, pending: map[string]txn.TID{}, size: size}
}

// published notes a newly published value, to go out in the next d line.
func (l *lines) published(key string, tid txn.TID) {
	if _, ok := l.pending[key]; !ok {
		l.order = append(l.order, key)
	}
	l.pending[key] = tid
}

// stop writes the full line of a clean stop.
func (l *lines) stop(now time.Time, point []Entry) error {
	if !l.started {
		return nil
	}
	return l.writeFull(now, point)
}

// flush writes the line that is due, if any: a full line if FullDumpPeriod
// has passed since the last one (or the last one failed), else a d line
// with the pending values if BurstPeriod has passed since the last line. A
// failed d line keeps its values pending: the retry carries them with the
// newer ones, so no value is ever skipped (a d line after a lost one could
// record a point that was never coherent).
func (l *lines) flush(now time.Time, point func() []Entry) error {
	if !l.started {
		return nil
	}
	if l.needFull || (l.opts.FullDumpPeriod > 0 && now.Sub(l.lastFull) >= l.opts.FullDumpPeriod) {
		return l.writeFull(now, point())
	}
	if len(l.pending) == 0 || now.Sub(l.lastLine) < l.opts.BurstPeriod {
		return nil
	}
	l.entries = l.entries[:0]
	for _, k := range l.order {
		l.entries = append(l.entries, Entry{k, l.pending[k]})
	}
	sortEntries(l.entries)
	err := l.write(now, false, l.entries)
	if err == nil {
		l.clearPending()
	}
	return err
}

// due returns when flush could next write something while nothing else
// happens: the producer does not wake the goroutine before then.
func (l *lines) due() time.Time {
	if !l.started {
		return never // Start always wakes the goroutine
	}
	if l.needFull {
		return time.Time{}
	}
	d := l.lastLine.Add(l.opts.BurstPeriod)
	if l.opts.FullDumpPeriod > 0 {
		if f := l.lastFull.Add(l.opts.FullDumpPeriod); f.Before(d) {
			d = f
		}
	}
	return d
}

var never = time.Unix(1<<62, 0)

func (l *lines) writeFull(now time.Time, point []Entry) error {
	if len(point) == 0 {
		return nil // the original never writes an empty dict
	}
	l.entries = append(l.entries[:0], point...)
	sortEntries(l.entries)
	if err := l.write(now, true, l.entries); err != nil {
		l.needFull = true
		return err
	}
	l.needFull = false
	l.lastFull = now
	l.clearPending()
	return nil
}

func (l *lines) clearPending() {
	clear(l.pending)
	l.order = l.order[:0]
}

// write appends one line and fsyncs it. On a failed write or fsync the file
// is cut back to its size before the line (a failed fsync may have lost the
// pages of a write that returned success, so the line is not trusted
// either); if that cut is impossible the error wraps errCannotCut.
func (l *lines) write(now time.Time, full bool, entries []Entry) error {
	l.buf = AppendLine(l.buf[:0], now, full, entries)
	n, err := l.f.Write(l.buf)
	what := "write"
	if err == nil {
		if err = l.f.Sync(); err != nil {
			what = "fsync"
		}
	}
	if err != nil {
		if n > 0 {
			if cerr := l.cut(); cerr != nil {
				return fmt.Errorf("statusfile: %s: %w (and %w: %v)", what, err, errCannotCut, cerr)
			}
		}
		return fmt.Errorf("statusfile: %s: %w", what, err)
	}
	if l.size >= 0 {
		l.size += int64(len(l.buf))
	}
	l.count++
	l.bytes += int64(len(l.buf))
	l.lastLine = now
	return nil
}

// cut truncates the file back to its last good line.
func (l *lines) cut() error {
	t, ok := l.f.(truncater)
	if !ok || l.size < 0 {
		return errors.New("the file cannot be truncated")
	}
	return t.Truncate(l.size)
}

func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int { return strings.Compare(a.Storage, b.Storage) })
}

// AppendLine appends one status line, newline included.
func AppendLine(dst []byte, now time.Time, full bool, entries []Entry) []byte {
	// '%.2f' % time.time(): the float, correctly rounded to 2 decimals.
	dst = strconv.AppendFloat(dst, float64(now.UnixNano())/1e9, 'f', 2, 64)
	if full {
		dst = append(dst, " f "...)
	} else {
		dst = append(dst, " d "...)
	}
	dst = AppendDict(dst, entries)
	return append(dst, '\n')
}
