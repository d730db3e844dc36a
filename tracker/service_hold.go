package tracker

import (
	"slices"
	"strings"
	"time"
)

// Holding publication (docs/admin.md, "A full or read-only state
// directory"). While the daemon cannot record what it publishes — the
// journal cannot be written, or the running marker cannot be made — a
// crash would restart it from an older state and a published TID could go
// back. So the Service keeps answering and writing the point it had when
// the hold began; the Machine goes on (its state is exact and the relay is
// not held up), and when the last hold ends the point it publishes by then
// is exposed at once.

// Causes of a hold: the journal cannot be written; a replayed journal
// waits for Recover (service_journal.go, afterReplay).
const (
	holdJournal  = "journal"
	holdRecovery = "recovery"
)

// HoldPublication holds publication for cause (with a reason for /status,
// which shows it without the admin token: no paths) until
// ReleasePublication(cause).
func (s *Service) HoldPublication(cause, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holdLocked(cause, reason)
}

// ReleasePublication ends the hold of cause.
func (s *Service) ReleasePublication(cause string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(cause, s.clock().UnixNano())
}

// Held says why publication is held ("" when it is not).
func (s *Service) Held() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

func (s *Service) holdLocked(cause, reason string) {
	if s.holds == nil {
		s.holds = map[string]string{}
	}
	if s.holds[cause] == reason {
		return
	}
	s.holds[cause] = reason
	s.joinHolds()
}

func (s *Service) joinHolds() {
	causes := make([]string, 0, len(s.holds))
	for c := range s.holds {
		causes = append(causes, c)
	}
	slices.Sort(causes)
	rs := make([]string, len(causes))
	for k, c := range causes {
		rs[k] = s.holds[c]
	}
	s.held = strings.Join(rs, "; ")
}

// releaseLocked ends a hold; when none is left, the point the Machine
// publishes now is answered and handed to the status file (s.mu held).
func (s *Service) releaseLocked(cause string, now int64) {
	if _, ok := s.holds[cause]; !ok {
		return
	}
	delete(s.holds, cause)
	s.joinHolds()
	if s.held != "" || s.broken != "" {
		return
	}
	s.tids = s.m.AppendPublished(s.tids[:0])
	for _, t := range s.tids {
		if v, ok := s.good[t.Storage]; ok && v == t.TID {
			continue
		}
		s.good[t.Storage] = t.TID
		if s.sf != nil && !s.closed {
			s.sf.Published(t.Storage, t.TID)
		}
	}
	if s.sf == nil || s.closed || !s.m.Bootstrapped() {
		return
	}
	if !s.sfStarted {
		s.sf.Start(time.Unix(0, now))
		s.sfStarted = true
	} else {
		s.sf.Flush(time.Unix(0, now))
	}
}
