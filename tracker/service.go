package tracker

import (
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
)

// ServiceConfig configures a Service.
type ServiceConfig struct {
	Config
	// Clock gives the time of each input (default time.Now).
	Clock func() time.Time
	// Logger receives the records (default: a null logger).
	Logger hclog.Logger
	// StatusFile, if set, is fed with the published point; Close writes its
	// final full line (and closes it).
	StatusFile *statusfile.Writer
	// OnRecord, if set, sees every record (for metrics), under the lock:
	// it must not call back into the Service.
	OnRecord func(Record)
}

// Service is the daemon's tracker: a Machine behind a mutex, fed with the
// clock, whose records are logged and written to the status file. Every
// method is synchronous: when it returns, the input has been applied
// (docs/design.md, rule 1). Safe for concurrent use.
type Service struct {
	mu       sync.Mutex
	m        *Machine
	clock    func() time.Time
	log      hclog.Logger
	sf       *statusfile.Writer
	onRecord func(Record)
	ended    uint64
	tids     []StorageTID
	entries  []statusfile.Entry
	point    func() []statusfile.Entry
	closed   bool
	broken   string             // why the Service stopped after a panic
	good     map[string]txn.TID // the published point as of the last completed input
}

// NewService returns a Service.
func NewService(cfg ServiceConfig) *Service {
	s := &Service{m: New(cfg.Config), clock: cfg.Clock, log: cfg.Logger, sf: cfg.StatusFile, onRecord: cfg.OnRecord}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	s.point = s.fullPoint
	s.good = map[string]txn.TID{}
	return s
}

// lock takes the lock for one input; live is false (and the lock released)
// once the Service has failed.
func (s *Service) lock() (now int64, live bool) {
	s.mu.Lock()
	if s.broken != "" {
		s.mu.Unlock()
		return 0, false
	}
	return s.clock().UnixNano(), true
}

// unlock, deferred after lock, drains the records of the input just
// applied, then releases. A panic in the machine (a bug) is caught here: the
// relay that called must go on (fail open), so the Service stops instead —
// see fail.
func (s *Service) unlock(now int64) {
	defer s.mu.Unlock()
	if r := recover(); r != nil {
		s.fail(r)
		return
	}
	defer func() {
		if r := recover(); r != nil {
			s.fail(r)
		}
	}()
	s.after(now)
}

// fail stops the Service after a panic: no more inputs are applied and
// nothing more is published (the machine may be half-way through an input);
// Dump keeps answering the last point published by a completed input, which
// is coherent. The daemon keeps relaying; a restart recovers. (s.mu held.)
func (s *Service) fail(r any) {
	s.broken = fmt.Sprint(r)
	s.log.Error("tracker failed: publication stops at the last good point; traffic keeps flowing; restart tidstorage",
		"panic", s.broken, "stack", string(debug.Stack()))
}

// Broken returns why the Service stopped ("" while it works).
func (s *Service) Broken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.broken
}

func (s *Service) after(now int64) {
	recs := s.m.Records()
	started, published := false, false
	for i := range recs {
		r := &recs[i]
		if s.onRecord != nil {
			s.onRecord(*r)
		}
		s.logRecord(r)
		switch r.Kind {
		case RecPublished:
			published = true
			s.good[r.Storage] = r.TID
			if s.sf != nil {
				s.sf.Published(r.Storage, r.TID)
			}
		case RecBootstrapped:
			started = true
		}
	}
	s.m.ClearRecords()
	if s.sf == nil || s.closed {
		return
	}
	t := time.Unix(0, now)
	var err error
	if started {
		err = s.sf.Start(t, s.fullPoint())
	} else if e := s.m.ctr.TransactionsEnded; e != s.ended || published {
		// The original wrote only when a transaction ended.
		s.ended = e
		err = s.sf.Flush(t, s.point)
	}
	if err != nil {
		s.log.Error("status file write failed", "error", err)
	}
}

func (s *Service) fullPoint() []statusfile.Entry {
	s.tids = s.m.AppendPublished(s.tids[:0])
	s.entries = s.entries[:0]
	for _, t := range s.tids {
		s.entries = append(s.entries, statusfile.Entry{Key: t.Storage, TID: t.TID})
	}
	return s.entries
}

func (s *Service) logRecord(r *Record) {
	switch r.Kind {
	case RecPublished:
		if s.log.IsTrace() {
			s.log.Trace("published", "storage", r.Storage, "tid", uint64(r.TID), "old", uint64(r.Old))
		}
	case RecBootstrapped:
		s.log.Info(r.Msg)
	case RecWarning:
		s.log.Warn(r.Msg, "code", string(r.Code))
	case RecCritical:
		s.log.Error("CRITICAL: "+r.Msg, "code", string(r.Code), "storage", r.Storage, "tid", uint64(r.TID), "published", uint64(r.Old))
	case RecPartial:
		s.log.Error(r.Msg, "pin", r.Pin)
	case RecInDoubt, RecLost, RecPinned:
		s.log.Warn(r.Msg, "pin", r.Pin, "participation", uint64(r.Part))
	case RecResolved, RecPinReleased:
		s.log.Info(r.Msg, "pin", r.Pin, "participation", uint64(r.Part), "tid", uint64(r.TID))
	}
}

// ---- classic line protocol (tracker/classic's interface) ----

// ClassicBegin is the classic BEGIN.
func (s *Service) ClassicBegin(id string, storages []string) {
	now, live := s.lock()
	if !live {
		return
	}
	defer s.unlock(now)
	s.m.ClassicBegin(now, id, storages)
}

// ClassicCommit is the classic COMMIT; none lists the storages whose TID was
// sent as None.
func (s *Service) ClassicCommit(id string, tids map[string]txn.TID, none []string) {
	now, live := s.lock()
	if !live {
		return
	}
	defer s.unlock(now)
	s.tids = s.tids[:0]
	for k, v := range tids {
		s.tids = append(s.tids, StorageTID{k, v})
	}
	// Map order must not leak into the machine.
	slices.SortFunc(s.tids, func(a, b StorageTID) int { return strings.Compare(a.Storage, b.Storage) })
	s.m.ClassicCommit(now, id, s.tids, none)
}

// ClassicAbort is the classic ABORT.
func (s *Service) ClassicAbort(id string) {
	now, live := s.lock()
	if !live {
		return
	}
	defer s.unlock(now)
	s.m.ClassicAbort(now, id)
}

// Dump returns the published point (published values only).
func (s *Service) Dump() map[string]txn.TID {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != "" {
		out := make(map[string]txn.TID, len(s.good))
		for k, v := range s.good {
			out[k] = v
		}
		return out
	}
	s.tids = s.m.AppendPublished(s.tids[:0])
	out := make(map[string]txn.TID, len(s.tids))
	for _, t := range s.tids {
		out[t.Storage] = t.TID
	}
	return out
}

// Bootstrapped reports whether publication has started.
func (s *Service) Bootstrapped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Bootstrapped()
}

// ---- participation events (txn.Observer) ----

var _ txn.Observer = (*Service)(nil)

// Observe applies one participation event (see txn.EventKind).
func (s *Service) Observe(ev txn.Event) {
	now, live := s.lock()
	if !live {
		return
	}
	defer s.unlock(now)
	s.m.Step(now, ev)
}

// ---- daemon and operator ----

// Bootstrap gives the storages' last TIDs read before the first client
// connection was accepted, and whether the previous run stopped cleanly.
func (s *Service) Bootstrap(values map[string]txn.TID, clean bool) {
	now, live := s.lock()
	if !live {
		return
	}
	defer s.unlock(now)
	vs := make([]StorageTID, 0, len(values))
	for k, v := range values {
		vs = append(vs, StorageTID{k, v})
	}
	slices.SortFunc(vs, func(a, b StorageTID) int { return strings.Compare(a.Storage, b.Storage) })
	s.m.Bootstrap(now, vs, clean)
}

// AcceptPartial releases a partial, lost or None pin: the operator accepts
// the live state as the new baseline.
func (s *Service) AcceptPartial(pin uint64) error {
	now, live := s.lock()
	if !live {
		return errors.New("tracker: stopped after a failure; restart tidstorage")
	}
	defer s.unlock(now)
	return s.m.AcceptPartial(now, pin)
}

// LastTID feeds a storage's last TID read from the storage now (releases
// lost/None pins waiting for a commit on it; see Machine.LastTID).
func (s *Service) LastTID(storage string, tid txn.TID) {
	now, live := s.lock()
	if !live {
		return
	}
	defer s.unlock(now)
	s.m.LastTID(now, storage, tid)
}

// Tick declares timed-out classic transactions lost and writes a due
// status line. Call it every second or so.
func (s *Service) Tick() {
	now, live := s.lock()
	if !live {
		return
	}
	defer s.unlock(now)
	s.m.Tick(now)
	s.after(now)
	if s.sf != nil && !s.closed {
		if err := s.sf.Flush(time.Unix(0, now), s.point); err != nil {
			s.log.Error("status file write failed", "error", err)
		}
	}
}

// Status returns a snapshot for /status.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m.Status()
	st.Broken = s.broken
	if s.broken != "" {
		// The machine may be half-way through an input: show the point
		// that Dump answers, the last good one.
		for i := range st.Storages {
			v, ok := s.good[st.Storages[i].ID]
			st.Storages[i].Published, st.Storages[i].HasPublished = v, ok
		}
	}
	return st
}

// Counters returns the totals, for metrics.
func (s *Service) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Counters()
}

// Published returns one storage's published TID.
func (s *Service) Published(storage string) (txn.TID, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != "" {
		v, ok := s.good[storage]
		return v, ok
	}
	return s.m.Published(storage)
}

// Close writes the final full status line (a clean stop) and closes the
// status file. Inputs after Close are still applied but not written.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.sf == nil {
		s.closed = true
		return nil
	}
	if s.broken != "" {
		// The machine may be half-way through an input: the file keeps its
		// last line, written by a completed one.
		s.closed = true
		_ = s.sf.Close()
		return fmt.Errorf("tracker: stopped after a failure (%s): no final line written", s.broken)
	}
	s.closed = true
	err := s.sf.Stop(s.clock(), s.fullPoint())
	if cerr := s.sf.Close(); err == nil {
		err = cerr
	}
	return err
}
