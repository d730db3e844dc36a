package daemon

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// statusFile is where the tracker's status lines go. The tracker hands each
// line over under its lock, on the relay's path, so the disk must never be
// waited for there: lines are queued and a goroutine of its own writes and
// fsyncs them (fail open: a slow or stuck disk delays the file, never the
// traffic).
//
// If a write fails or the queue overflows (a disk stuck for very long), the
// file stops at its last good line and nothing more is appended until
// restart: a later "d" line after a lost one could record a point that was
// never coherent, so lines are never dropped one by one.
type statusFile struct {
	path string
	f    *os.File
	log  hclog.Logger

	mu       sync.Mutex
	wake     *sync.Cond
	queue    [][]byte
	writing  bool
	closing  bool
	broken   string // why appending stopped; "" while healthy
	lines    uint64
	errors   uint64
	dropped  uint64
	lastErr  string
	lastSync time.Time
	done     chan struct{}
}

// maxQueuedLines bounds the queue: lines come at most once per burst period
// (and at each full dump), so this is hours of a stuck disk.
const maxQueuedLines = 100000

func openStatusFile(path string, log hclog.Logger) (*statusFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("status file: %w", err)
	}
	s := &statusFile{path: path, f: f, log: log, done: make(chan struct{})}
	s.wake = sync.NewCond(&s.mu)
	go s.run()
	return s, nil
}

// Write queues one whole line (statusfile.Writer writes each line in one
// call). It never blocks on the disk and never fails: failures are the
// writer goroutine's to report.
func (s *statusFile) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.broken != "" || s.closing:
		s.dropped++
	case len(s.queue) >= maxQueuedLines:
		s.stop(fmt.Sprintf("%d lines waiting for the disk", len(s.queue)))
		s.dropped += uint64(len(s.queue)) + 1
		s.queue = nil
	default:
		s.queue = append(s.queue, append([]byte(nil), b...))
		s.wake.Signal()
	}
	return len(b), nil
}

// Sync is done by the writer goroutine after every batch of lines.
func (s *statusFile) Sync() error { return nil }

// stop marks the file broken (s.mu held).
func (s *statusFile) stop(why string) {
	if s.broken != "" {
		return
	}
	s.broken = why
	s.lastErr = why
	s.log.Error("status file: appending stopped until restart; the file ends at its last good line (a coherent point); traffic keeps flowing",
		"path", s.path, "reason", why)
}

func (s *statusFile) run() {
	defer close(s.done)
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closing {
			s.wake.Wait()
		}
		if len(s.queue) == 0 && s.closing {
			s.mu.Unlock()
			return
		}
		batch := s.queue
		s.queue = nil
		s.writing = true
		s.mu.Unlock()

		var err error
		n := 0
		for _, line := range batch {
			if _, err = s.f.Write(line); err != nil {
				break
			}
			n++
		}
		if err == nil {
			err = s.f.Sync()
		}

		s.mu.Lock()
		s.writing = false
		s.lines += uint64(n)
		if err != nil {
			s.errors++
			s.stop(err.Error())
			s.dropped += uint64(len(batch) - n)
		} else {
			s.lastSync = time.Now()
		}
		s.wake.Broadcast()
		s.mu.Unlock()
	}
}

// Close writes what is queued (the final full line), fsyncs and closes,
// waiting at most timeout for a slow disk.
func (s *statusFile) Close(timeout time.Duration) error {
	s.mu.Lock()
	s.closing = true
	s.wake.Broadcast()
	s.mu.Unlock()
	select {
	case <-s.done:
	case <-time.After(timeout):
		return errors.New("status file: the disk did not take the last lines in time")
	}
	s.mu.Lock()
	broken := s.broken
	s.mu.Unlock()
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("status file: %w", err)
	}
	if broken != "" {
		return fmt.Errorf("status file: appending had stopped: %s", broken)
	}
	return nil
}

// StatusFileStats are the status file's counters.
type StatusFileStats struct {
	Path      string
	Lines     uint64 // written and fsynced
	Errors    uint64
	Dropped   uint64 // lines not written because appending had stopped
	LastError string
	LastWrite time.Time
	Broken    bool
}

func (s *statusFile) stats() StatusFileStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StatusFileStats{Path: s.path, Lines: s.lines, Errors: s.errors, Dropped: s.dropped,
		LastError: s.lastErr, LastWrite: s.lastSync, Broken: s.broken != ""}
}
