package daemon

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// statusFile is the status file's descriptor with counters for metrics. A
// failed write is counted and logged by the tracker Service; the relay goes
// on regardless (fail open: publication to the file stops, traffic flows).
type statusFile struct {
	path string
	f    *os.File

	mu        sync.Mutex
	lines     uint64
	errors    uint64
	lastErr   string
	lastWrite time.Time
}

func openStatusFile(path string) (*statusFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("status file: %w", err)
	}
	return &statusFile{path: path, f: f}, nil
}

func (s *statusFile) Write(b []byte) (int, error) {
	n, err := s.f.Write(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errors++
		s.lastErr = err.Error()
	} else {
		s.lines++
		s.lastWrite = time.Now()
	}
	return n, err
}

func (s *statusFile) Sync() error {
	err := s.f.Sync()
	if err != nil {
		s.mu.Lock()
		s.errors++
		s.lastErr = err.Error()
		s.mu.Unlock()
	}
	return err
}

func (s *statusFile) Close() error { return s.f.Close() }

// StatusFileStats are the status file's counters.
type StatusFileStats struct {
	Path      string
	Lines     uint64
	Errors    uint64
	LastError string
	LastWrite time.Time
}

func (s *statusFile) stats() StatusFileStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StatusFileStats{Path: s.path, Lines: s.lines, Errors: s.errors, LastError: s.lastErr, LastWrite: s.lastWrite}
}
