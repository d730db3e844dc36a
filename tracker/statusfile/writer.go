package statusfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// Options of a Writer.
type Options struct {
	// BurstPeriod: a d line is written once this long has passed since the
	// previous line (the original's burst_period; 0 means every time).
	BurstPeriod time.Duration
	// FullDumpPeriod: an f line replaces the d line once this long has
	// passed since the previous f line (full_dump_period; 0 means never
	// periodically, only at Start and Stop).
	FullDumpPeriod time.Duration
	// CloseTimeout bounds how long Close waits for a slow disk to take the
	// last line (default 30s).
	CloseTimeout time.Duration
	// Logger receives what the writer goroutine has to say: failed and
	// recovered writes, a repaired tail, a new epoch (default: none).
	Logger hclog.Logger
}

// Writer is the one owner of the status file. The tracker hands it the
// published values under the tracker's lock, on the relay's path, so the
// disk is never waited for there (the relay holds a frame until the tracker
// returns: docs/design.md, "Rule 1 — Observe before forward"): Published,
// Start, Flush and Stop only fill a mailbox that coalesces (one pending
// value per storage, a mirror of the whole published point, the time of
// the latest input), bounded by the number of storages whatever the disk
// does. One goroutine takes the mailbox, applies the line policy (lines.go),
// writes, fsyncs every line, and on a failure cuts the file back to its last
// good line, counts and logs the error, and retries at the next Flush (the
// daemon's Tick, every second) with everything published meanwhile.
type Writer struct {
	path  string // "" for a File given to NewWriter
	f     File
	osf   *os.File // the file, when the Writer opened it
	log   hclog.Logger
	opts  Options
	lines *lines
	prev  *Result // what the file held at Open, for the epoch check (epoch.go)
	prevE error   // the file did not replay at Open
	// base + lines.count is the number of lines the file holds (Stats.FileLines).
	base int64
	// epochWhy, while not "", is why the next line must begin a new epoch
	// (a new file, the old one kept aside): set when the point published by
	// this run is below the file's for some storage, cleared once the
	// rotation succeeded. Goroutine-owned.
	epochWhy string

	mu      sync.Mutex // guards the mailbox and the stats below
	changed sync.Cond  // signalled when handled moves or the goroutine ends
	pending map[string]txn.TID
	order   []string
	point   map[string]txn.TID
	now     time.Time
	start   bool
	flushes bool
	stop    bool
	closing bool
	nextDue time.Time // the producer wakes the goroutine for a Flush from then on
	posted  uint64
	handled uint64
	stats   Stats
	final   error // the result of the Stop line

	wake chan struct{}
	done chan struct{}

	staged []Entry // published, not posted yet: the caller's (see Published)

	// goroutine-owned scratch
	take    []Entry
	full    []Entry
	failing int // consecutive failures
	logged  time.Time
}

// NewWriter writes to f (a test's fake, or a file opened by the caller)
// and starts the writer goroutine. Without a path there are no epochs.
func NewWriter(f File, opts Options) *Writer {
	size := int64(-1)
	if st, ok := f.(interface{ Stat() (os.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil {
			size = fi.Size()
		}
	}
	return newWriter(&Writer{f: f}, size, opts)
}

// newWriter completes w (path, file and what Open read are set) and starts
// its goroutine.
func newWriter(w *Writer, size int64, opts Options) *Writer {
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	w.log, w.opts, w.lines = opts.Logger, opts, newLines(w.f, opts, size)
	w.pending, w.point = map[string]txn.TID{}, map[string]txn.TID{}
	w.wake, w.done = make(chan struct{}, 1), make(chan struct{})
	w.changed.L = &w.mu
	w.stats.Path = w.path
	go w.run()
	return w
}

// Open opens (creating it if needed) the status file at path for
// appending. A torn last line is cut off first (repair.go), and the file is
// replayed so that the first line of this run can start a new epoch if the
// storages went back (epoch.go).
//
// A file that cannot be repaired or opened for writing (a full or read-only
// disk) does not fail Open: the error is logged and counted, and the
// goroutine tries again before every line it is due to write (every second
// while it fails), so that the status file resumes by itself once the disk
// takes it.
func Open(path string, opts Options) (*Writer, error) {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	w := &Writer{path: path}
	size, err := w.open(log)
	prev, prevErr := replayFile(path)
	w.prev, w.prevE = prev, prevErr
	if prev != nil {
		w.base = int64(prev.LastLine)
	} else if prevErr != nil {
		w.base = countLines(path)
	}
	w.stats.FileLines = uint64(w.base)
	w = newWriter(w, size, opts)
	if err != nil {
		w.mu.Lock()
		w.stats.Errors++
		w.stats.LastError = err.Error()
		w.mu.Unlock()
		w.failing = 1
		w.logged = time.Now()
		log.Error("status file cannot be written; tidstorage runs without it and tries again every second (ZODB traffic is not affected)",
			"path", path, "error", err)
	}
	return w, nil
}

// open repairs the file's tail and opens it for appending (Open, and the
// goroutine while it could not). It returns the file's size.
func (w *Writer) open(log hclog.Logger) (int64, error) {
	if err := repairTail(w.path, log); err != nil {
		return -1, err
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return -1, fmt.Errorf("statusfile: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return -1, fmt.Errorf("statusfile: %w", err)
	}
	w.f, w.osf = f, f
	if w.lines != nil {
		w.lines.f, w.lines.size = f, fi.Size()
	}
	return fi.Size(), nil
}

// Published notes a newly published value. It is staged until the next
// Start, Flush or Stop, which hands everything staged to the goroutine at
// once: the values of one input reach the file together or not at all, so
// a line never holds half of what one input published (a point that was
// never coherent). Published, Start, Flush and Stop must not be called
// concurrently (the tracker calls them under its lock); none of them
// blocks on the disk, and they do not allocate once every storage has been
// seen.
func (w *Writer) Published(key string, tid txn.TID) {
	w.staged = append(w.staged, Entry{key, tid})
}

// Start asks for the first full line of the run (after bootstrap), with the
// point published so far.
func (w *Writer) Start(now time.Time) { w.post(now, &w.start) }

// Flush tells the writer that a line may be due as of now (a transaction
// ended, or a second passed): it writes the due line, if any, including the
// retry of a failed one.
func (w *Writer) Flush(now time.Time) { w.post(now, &w.flushes) }

// Stop asks for the final full line of a clean stop; Close waits for it.
// Nothing posted after Stop is written.
func (w *Writer) Stop(now time.Time) { w.post(now, &w.stop) }

func (w *Writer) post(now time.Time, flag *bool) {
	w.mu.Lock()
	if w.stop || w.closing {
		w.mu.Unlock()
		w.staged = w.staged[:0]
		return
	}
	for _, e := range w.staged {
		if _, ok := w.pending[e.Storage]; !ok {
			w.order = append(w.order, e.Storage)
		}
		w.pending[e.Storage] = e.TID
		w.point[e.Storage] = e.TID
	}
	w.staged = w.staged[:0]
	w.now = now
	if flag == &w.flushes && now.Before(w.nextDue) {
		// Nothing can be due yet: spare the goroutine a wake-up per input.
		w.mu.Unlock()
		return
	}
	*flag = true
	w.posted++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Wait returns once everything posted so far has been handled (written, or
// found not due, or failed): tests and Close use it.
func (w *Writer) Wait() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for target := w.posted; w.handled < target; {
		select {
		case <-w.done:
			return
		default:
		}
		w.changed.Wait()
	}
}

// Close writes what was posted (the final line if Stop was called), waiting
// at most Options.CloseTimeout for the disk, then closes the file if the
// Writer opened it. Its error is the final line's, or the reason appending
// stopped.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	select {
	case <-w.done:
	case <-time.After(w.opts.CloseTimeout):
		return fmt.Errorf("statusfile: the disk did not take the last line within %s", w.opts.CloseTimeout)
	}
	w.mu.Lock()
	err := w.final
	w.mu.Unlock()
	if w.osf != nil {
		if cerr := w.osf.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("statusfile: close: %w", cerr)
		}
	}
	return err
}

// run is the writer goroutine: the only code that touches the file.
func (w *Writer) run() {
	defer func() {
		w.mu.Lock()
		close(w.done)
		w.changed.Broadcast()
		w.mu.Unlock()
	}()
	for {
		<-w.wake
		w.mu.Lock()
		now, start, flush, stop, closing := w.now, w.start, w.flushes, w.stop, w.closing
		w.start, w.flushes = false, false
		seq := w.posted
		w.take = w.take[:0]
		for _, k := range w.order {
			w.take = append(w.take, Entry{k, w.pending[k]})
		}
		clear(w.pending)
		w.order = w.order[:0]
		w.full = w.full[:0]
		for k, v := range w.point {
			w.full = append(w.full, Entry{k, v})
		}
		w.mu.Unlock()

		for _, e := range w.take {
			w.lines.published(e.Storage, e.TID)
		}
		var err error
		if w.f == nil && w.stats.Broken == "" && (start || flush || stop) {
			// Not opened yet (a full or read-only disk at start).
			_, err = w.open(w.log)
		}
		if w.f == nil {
			if err == nil && stop {
				err = fmt.Errorf("statusfile: %s could not be opened for writing", w.path)
			}
			if start {
				w.lines.started, w.lines.needFull = true, true
			}
		} else if w.stats.Broken == "" { // written by this goroutine only
			if start {
				w.lines.started, w.lines.needFull = true, true
			}
			if w.epochWhy == "" && (w.prev != nil || w.prevE != nil) {
				// Checked at every line, not only the first: a classic-only
				// daemon starts with an empty point and learns each storage
				// from its first COMMIT.
				w.epochWhy = w.epochReason(w.full)
			}
			if w.epochWhy != "" && w.lines.started {
				err = w.newEpoch()
			}
			if err == nil && (start || (flush && !stop)) {
				err = w.lines.flush(now, func() []Entry { return w.full })
			}
			if err == nil && stop {
				err = w.lines.stop(now, w.full)
			}
		} else if stop {
			err = fmt.Errorf("statusfile: appending had stopped: %s", w.stats.Broken)
		}
		w.account(err)
		if stop {
			w.mu.Lock()
			w.final = err
			w.mu.Unlock()
		}

		w.mu.Lock()
		if w.handled < seq {
			w.handled = seq
		}
		w.nextDue = w.lines.due()
		if w.failing > 0 {
			// Retry at the first Flush a second later (the daemon ticks
			// every second), not at every input of a busy site.
			w.nextDue = now.Add(time.Second)
		}
		w.changed.Broadcast()
		w.mu.Unlock()
		if stop || closing {
			return
		}
	}
}

// account updates the stats after one wake-up and says what happened: the
// first failure of a streak at ERROR, then at most once a minute, and the
// recovery. This runs on the writer goroutine, never under the tracker's
// lock.
func (w *Writer) account(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wrote := false
	if n := uint64(w.lines.count); n != w.stats.Lines {
		w.stats.Lines, w.stats.Bytes = n, uint64(w.lines.bytes)
		w.stats.FileLines = uint64(w.base + w.lines.count)
		w.stats.LastWrite = time.Now()
		wrote = true
	}
	if err == nil {
		if w.failing > 0 && wrote {
			w.log.Warn("status file writes recovered; the values published meanwhile went out with this line",
				"path", w.path, "failed_attempts", w.failing)
			w.failing = 0
		}
		return
	}
	w.failing++
	w.stats.Errors++
	w.stats.LastError = err.Error()
	if errors.Is(err, errCannotCut) {
		w.stats.Broken = err.Error()
		w.log.Error("status file: appending stopped until restart: a torn line could not be cut back (the next start repairs it); traffic keeps flowing",
			"path", w.path, "error", err)
		return
	}
	if w.failing == 1 || time.Since(w.logged) >= time.Minute {
		w.logged = time.Now()
		w.log.Error("status file write failed; the file ends at its last good line (a coherent point) and the write is retried every second with everything published meanwhile",
			"path", w.path, "error", err, "failed_attempts", w.failing)
	}
}

// countLines counts the newlines of the file at path (0 if unreadable): the
// lines a file held that did not replay.
func countLines(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, err := f.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if err != nil {
			return n
		}
	}
}

// Stats returns the writer's counters, for /status and metrics.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}
