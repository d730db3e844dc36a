// Package statusfile writes and reads the status file of the original
// TIDStorage daemon (a.k.a. the TID log): one line per write,
//
//	<unix time, 2 decimals> <f|d> <Python dict repr: storage id -> TID>
//
// where f is a full dump of the published point and d holds only the values
// published since the previous line. Files written here are read by the
// original Python tools, and files written by them are read here.
package statusfile

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// Entry is one storage id and its TID.
type Entry struct {
	Key string
	TID txn.TID
}

// File is what a Writer writes to: each line goes out in one Write and is
// then synced.
type File interface {
	io.Writer
	Sync() error
}

// Options of a Writer.
type Options struct {
	// BurstPeriod: a d line is written once this long has passed since the
	// previous line (the original's burst_period; 0 means every time).
	BurstPeriod time.Duration
	// FullDumpPeriod: an f line replaces the d line once this long has
	// passed since the previous f line (full_dump_period; 0 means never
	// periodically, only at Start and Stop).
	FullDumpPeriod time.Duration
}

// Writer appends status lines. It is not safe for concurrent use (the
// tracker Service calls it under its lock).
type Writer struct {
	f        File
	closer   io.Closer
	opts     Options
	pending  map[string]txn.TID
	order    []string
	started  bool
	lastLine time.Time
	lastFull time.Time
	buf      []byte
	entries  []Entry
	lines    int
	size     int64 // bytes in the file, when known (-1 if not)
}

// truncater is implemented by *os.File: a failed write is cut back so that
// no torn line is left in the middle of the file.
type truncater interface {
	Truncate(size int64) error
}

// NewWriter writes to f.
func NewWriter(f File, opts Options) *Writer {
	w := &Writer{f: f, opts: opts, pending: map[string]txn.TID{}, size: -1}
	if st, ok := f.(interface{ Stat() (os.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil {
			w.size = fi.Size()
		}
	}
	return w
}

// Open opens (creating it if needed) the status file at path for appending.
func Open(path string, opts Options) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("statusfile: %w", err)
	}
	w := NewWriter(f, opts)
	w.closer = f
	return w, nil
}

// Lines returns how many lines were written.
func (w *Writer) Lines() int { return w.lines }

// Published notes a newly published value, to go out in the next d line.
func (w *Writer) Published(key string, tid txn.TID) {
	if _, ok := w.pending[key]; !ok {
		w.order = append(w.order, key)
	}
	w.pending[key] = tid
}

// Start writes a full line (after bootstrap) and enables periodic lines.
func (w *Writer) Start(now time.Time, point []Entry) error {
	w.started = true
	return w.writeFull(now, point)
}

// Stop writes a full line at a clean stop.
func (w *Writer) Stop(now time.Time, point []Entry) error {
	if !w.started {
		return nil
	}
	return w.writeFull(now, point)
}

// Flush writes the line that is due, if any: an f line if FullDumpPeriod
// has passed since the last one (point is then called), else a d line with
// the pending values if BurstPeriod has passed since the last line. The
// tracker calls it whenever a transaction ended (as the original did).
func (w *Writer) Flush(now time.Time, point func() []Entry) error {
	if !w.started {
		return nil
	}
	if w.opts.FullDumpPeriod > 0 && now.Sub(w.lastFull) >= w.opts.FullDumpPeriod {
		return w.writeFull(now, point())
	}
	if len(w.pending) == 0 || now.Sub(w.lastLine) < w.opts.BurstPeriod {
		return nil
	}
	w.entries = w.entries[:0]
	for _, k := range w.order {
		w.entries = append(w.entries, Entry{k, w.pending[k]})
	}
	sortEntries(w.entries)
	if err := w.write(now, false, w.entries); err != nil {
		return err
	}
	w.clearPending()
	return nil
}

func (w *Writer) writeFull(now time.Time, point []Entry) error {
	if len(point) == 0 {
		return nil // the original never writes an empty dict
	}
	w.entries = append(w.entries[:0], point...)
	sortEntries(w.entries)
	if err := w.write(now, true, w.entries); err != nil {
		return err
	}
	w.lastFull = now
	w.clearPending()
	return nil
}

func (w *Writer) clearPending() {
	clear(w.pending)
	w.order = w.order[:0]
}

func (w *Writer) write(now time.Time, full bool, entries []Entry) error {
	w.buf = AppendLine(w.buf[:0], now, full, entries)
	if n, err := w.f.Write(w.buf); err != nil {
		if n > 0 && w.size >= 0 {
			if t, ok := w.f.(truncater); ok {
				if terr := t.Truncate(w.size); terr != nil {
					return fmt.Errorf("statusfile: write: %w (and cutting the torn line failed: %v)", err, terr)
				}
			}
		}
		return fmt.Errorf("statusfile: write: %w", err)
	}
	if w.size >= 0 {
		w.size += int64(len(w.buf))
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("statusfile: fsync: %w", err)
	}
	w.lastLine = now
	w.lines++
	return nil
}

// Close closes the file if the Writer opened it.
func (w *Writer) Close() error {
	if w.closer != nil {
		return w.closer.Close()
	}
	return nil
}

func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
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
