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
	"github.com/tidstorage/tidstorage/tracker/input"
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
	// final full line (and closes it). The Service only fills its mailbox:
	// the Writer's goroutine does the I/O (statusfile.Writer).
	StatusFile *statusfile.Writer
	// OnRecord, if set, sees every record (for metrics), under the lock:
	// it must not call back into the Service.
	OnRecord func(Record)
}

// Service is the daemon's tracker: a Machine behind a mutex, fed with the
// clock, whose records are logged and handed to the status file. Every
// method is synchronous: when it returns, the input has been applied
// (docs/design.md, rule 1). Safe for concurrent use.
//
// Nothing slow happens under the lock: the relay holds a frame back until
// its event is applied (docs/design.md, "Rule 1 — Observe before forward"),
// so every relay connection waits for this lock. Records are logged after the
// lock is released (service_log.go), and the status file only receives the
// published values into its mailbox.
type Service struct {
	mu       sync.Mutex
	m        *Machine
	clock    func() time.Time
	log      hclog.Logger
	sf       *statusfile.Writer
	onRecord func(Record)
	ended    uint64
	tick     bool // the input is a Tick: a status line may be due
	tids     []StorageTID
	closed   bool
	broken   string             // why the Service stopped after a panic
	good     map[string]txn.TID // the published point as of the last completed input, or when publication was held
	// holds: why publication is held, by cause (service_hold.go); held
	// joins them ("" while nothing holds it).
	holds     map[string]string
	held      string
	sfStarted bool // the status file was given its first full line (Start)

	logs     logQueue
	unaccLog LogLimiter    // guarded by logs.drainMu (logRecord)
	jr       wal           // wal.go, service_journal.go
	batch    []input.Input // a batch's inputs (applyBatch)
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
	s.good = map[string]txn.TID{}
	return s
}

// input applies one input under the lock: fn gets the input's time. It
// drains the records, releases the lock, then logs them. It returns false
// (without calling fn) once the Service has failed. A panic in the machine
// (a bug) is caught here: the relay that called must go on (fail open), so
// the Service stops instead — see fail. fn must not escape: input is on
// the relay's path and must not allocate.
func (s *Service) input(fn func(now int64)) bool {
	s.mu.Lock()
	if s.broken != "" {
		s.mu.Unlock()
		return false
	}
	now := s.clock().UnixNano()
	s.apply(now, fn)
	pending := s.logs.pending()
	s.mu.Unlock()
	if pending {
		s.logs.drain(&s.mu, s.logRecord)
	}
	return true
}

// apply runs fn and drains its records (s.mu held); a panic stops the
// Service.
func (s *Service) apply(now int64, fn func(now int64)) {
	defer func() {
		if r := recover(); r != nil {
			s.fail(r)
		}
	}()
	fn(now)
	s.after(now)
}

// fail stops the Service after a panic: no more inputs are applied and
// nothing more is published (the machine may be half-way through an input);
// Dump keeps answering the last point published by a completed input, which
// is coherent. The daemon keeps relaying; a restart recovers. (s.mu held:
// the error is logged after unlock.)
func (s *Service) fail(r any) {
	s.broken = fmt.Sprint(r)
	s.logs.push(logEntry{failure: s.broken, stack: string(debug.Stack())})
}

// Broken returns why the Service stopped ("" while it works).
func (s *Service) Broken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.broken
}

// after hands the records of the input just applied to OnRecord, the log
// queue and the status file's mailbox (s.mu held).
func (s *Service) after(now int64) {
	recs := s.m.Records()
	started, published := false, false
	trace := s.log.IsTrace()
	for i := range recs {
		r := &recs[i]
		if s.onRecord != nil {
			s.onRecord(*r)
		}
		if r.Kind != RecPublished || trace {
			s.logs.push(logEntry{rec: *r})
		}
		switch r.Kind {
		case RecPublished:
			if s.held != "" {
				break // exposed when the hold ends (releaseLocked)
			}
			published = true
			s.good[r.Storage] = r.TID
			if s.sf != nil && !s.closed {
				s.sf.Published(r.Storage, r.TID)
			}
		case RecBootstrapped:
			started = s.held == ""
		}
	}
	s.m.ClearRecords()
	tick := s.tick
	s.tick = false

	if s.sf == nil || s.closed {
		return
	}
	t := time.Unix(0, now)
	if started {
		s.sf.Start(t)
		s.sfStarted = true
	} else if e := s.m.Counters().TransactionsEnded; e != s.ended || published || tick {
		// The original wrote only when a transaction ended; a Tick writes a
		// line that became due meanwhile, or retries a failed one.
		s.ended = e
		s.sf.Flush(t)
	}
}

// applyIn journals one input, then applies it (s.mu held, inside input):
// applyAll of one.
func (s *Service) applyIn(now int64, in input.Input) error {
	one := [1]input.Input{in}
	return s.applyAll(now, one[:])
}

// applyAll is the one path of every input into the Machine (s.mu held,
// inside input): it journals ins with one write, then applies them in order
// through Machine.Apply. A remote observer's resends (input.Numbered: a Seq
// not above the last applied from its Source) are not journaled, and Apply
// ignores them. It returns the first error of Apply.
func (s *Service) applyAll(now int64, ins []input.Input) error {
	s.record(now, ins)
	var err error
	for _, in := range ins {
		if e := s.m.Apply(now, in); err == nil {
			err = e
		}
	}
	return err
}

// applyBatch is applyAll of the batch buffer ins (s.batch's array),
// which it then empties for the next batch.
func (s *Service) applyBatch(now int64, ins []input.Input) {
	_ = s.applyAll(now, ins)
	clear(ins)
	s.batch = ins[:0]
}

// Status returns a snapshot for /status.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m.Status()
	st.Broken = s.broken
	st.Held = s.held
	if _, recovering := s.holds[holdRecovery]; recovering {
		st.Bootstrapped = false // nothing is published before Recover
	}
	if s.broken != "" || s.held != "" {
		// The machine may be half-way through an input, or publication
		// is held: show the point that Dump answers.
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
	if s.broken != "" || s.held != "" {
		v, ok := s.good[storage]
		return v, ok
	}
	return s.m.Published(storage)
}

// Close writes the final full status line (a clean stop) and closes the
// status file, waiting for the disk outside the lock. Inputs after Close
// are still applied but not written.
func (s *Service) Close() error {
	jerr := s.CloseJournal()
	s.mu.Lock()
	if s.closed || s.sf == nil {
		s.closed = true
		s.mu.Unlock()
		return jerr
	}
	s.closed = true
	broken := s.broken
	if broken == "" {
		s.sf.Stop(s.clock())
	}
	s.mu.Unlock()
	err := s.sf.Close()
	if broken != "" {
		// The machine may be half-way through an input: the file keeps its
		// last line, written by a completed one.
		return fmt.Errorf("tracker: stopped after a failure (%s): no final line written", broken)
	}
	return errors.Join(err, jerr)
}

// sortedTIDs turns a map into a list sorted by storage: map order must not
// leak into the machine (or the journal).
func sortedTIDs(values map[string]txn.TID) []StorageTID {
	vs := make([]StorageTID, 0, len(values))
	for k, v := range values {
		vs = append(vs, StorageTID{Storage: k, TID: v})
	}
	slices.SortFunc(vs, func(a, b StorageTID) int { return strings.Compare(a.Storage, b.Storage) })
	return vs
}
