package tracker

import (
	"errors"
	"slices"
	"strings"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/input"
)

// The Service's inputs: each takes the lock and the clock (input), and
// gives the Machine one typed input (tracker/input) through applyIn or
// applyAll, the one path that journals it first (service_journal.go).

// ---- classic line protocol (tracker/classic's interface) ----

// ClassicBegin is the classic BEGIN.
func (s *Service) ClassicBegin(id string, storages []string) {
	s.input(func(now int64) {
		s.applyIn(now, input.ClassicBegin{ID: id, Storages: storages})
	})
}

// ClassicCommit is the classic COMMIT; none lists the storages whose TID was
// sent as None.
func (s *Service) ClassicCommit(id string, tids map[string]txn.TID, none []string) {
	s.input(func(now int64) {
		s.tids = s.tids[:0]
		for k, v := range tids {
			s.tids = append(s.tids, StorageTID{Storage: k, TID: v})
		}
		// Map order must not leak into the machine.
		slices.SortFunc(s.tids, func(a, b StorageTID) int { return strings.Compare(a.Storage, b.Storage) })
		s.applyIn(now, input.ClassicCommit{ID: id, TIDs: s.tids, None: none})
	})
}

// ClassicAbort is the classic ABORT.
func (s *Service) ClassicAbort(id string) {
	s.input(func(now int64) { s.applyIn(now, input.ClassicAbort{ID: id}) })
}

// Dump returns the published point (published values only).
func (s *Service) Dump() map[string]txn.TID {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != "" || s.held != "" {
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

// Bootstrapped is the classic BOOTSTRAPED answer (Machine.ClassicBootstrapped).
func (s *Service) Bootstrapped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, recovering := s.holds[holdRecovery]; recovering {
		return false
	}
	return s.m.ClassicBootstrapped()
}

// ---- participation events (txn.Observer) ----

var _ txn.Observer = (*Service)(nil)

// Observe applies one participation event (see txn.EventKind).
func (s *Service) Observe(ev txn.Event) {
	s.input(func(now int64) { s.applyIn(now, input.Event{Event: ev}) })
}

// ---- daemon and operator ----

// Bootstrap gives the storages' last TIDs read before the first client
// connection was accepted, and whether the previous run stopped cleanly.
func (s *Service) Bootstrap(values map[string]txn.TID, clean bool) {
	vs := sortedTIDs(values)
	s.input(func(now int64) {
		s.applyIn(now, input.Bootstrap{Last: vs, Clean: clean})
		s.releaseLocked(holdRecovery, now)
	})
}

// errStopped is returned to the operator once the Service has failed.
var errStopped = errors.New("tracker: stopped after a failure; restart tidstorage")

// AcceptPartial releases a partial, lost or None pin: the operator accepts
// the live state as the new baseline. AcceptPartialLive is the daemon's
// version, which checks the live state first.
func (s *Service) AcceptPartial(pin uint64) error {
	var err error
	if !s.input(func(now int64) { err = s.applyIn(now, input.Accept{Pin: pin}) }) {
		return errStopped
	}
	return err
}

// LastTID feeds a storage's last TID read from the storage now (releases
// lost/None pins waiting for a commit on it; see Machine.LastTID).
func (s *Service) LastTID(storage string, tid txn.TID) {
	s.input(func(now int64) {
		s.applyIn(now, input.LastTID{Storage: storage, TID: tid})
	})
}

// Tick declares timed-out classic transactions lost and lets a due status
// line be written (or a failed one retried). Call it every second or so;
// awaited are the storages a sidecar is known to be behind on (Machine.Tick).
func (s *Service) Tick(awaited ...string) {
	s.input(func(now int64) {
		s.applyIn(now, input.Tick{Awaited: awaited})
		s.tick = true
		s.maybeRotate(now)
	})
}

// ---- ground truth and recovery (accounting.go, recover.go) ----

// HistoryStart makes a storage watched from after on (see Machine.HistoryStart).
func (s *Service) HistoryStart(storage string, after txn.TID, warnOnly bool) {
	s.input(func(now int64) {
		s.applyIn(now, input.HistoryStart{Storage: storage, After: after, WarnOnly: warnOnly})
	})
}

// History reports one commit of a watched storage, in TID order.
func (s *Service) History(c txn.Commit) {
	s.input(func(now int64) { s.applyIn(now, input.History{Commit: c}) })
}

// HistoryBatch reports consecutive commits of watched storages, each in TID
// order: History for each, under one lock, with one journal write.
func (s *Service) HistoryBatch(cs []txn.Commit) {
	if len(cs) == 0 {
		return
	}
	s.input(func(now int64) {
		ins := s.batch[:0]
		for _, c := range cs {
			ins = append(ins, input.History{Commit: c})
		}
		s.applyBatch(now, ins)
	})
}

// HistoryPosition is where a watched storage's history resumes.
func (s *Service) HistoryPosition(storage string) (txn.TID, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.HistoryPosition(storage)
}

// Recover ends the participations of the previous process after a replay
// (see Machine.Recover); live are the storages' last TIDs read now, floor
// the point the previous run published last (its status file's last
// line). Whether the replayed journal lost its tail is the Service's to
// say (OpenJournal).
func (s *Service) Recover(live, floor map[string]txn.TID) {
	vs, fs := sortedTIDs(live), sortedTIDs(floor)
	s.input(func(now int64) {
		s.applyIn(now, input.Recover{Live: vs, Floor: fs, TailLost: s.jr.damaged})
		s.releaseLocked(holdRecovery, now)
	})
}

// Floor raises the replayed state to the point the previous run published
// last, for the storages whose live last TID has not gone below it (see
// Machine.Floor): a fleet tracker's start, which replays its journal and
// does not Recover (its sidecars go on).
func (s *Service) Floor(live, floor map[string]txn.TID) {
	vs, fs := sortedTIDs(live), sortedTIDs(floor)
	s.input(func(now int64) {
		s.applyIn(now, input.Floor{Live: vs, Floor: fs})
		s.releaseLocked(holdRecovery, now)
	})
}

// HistoryResume is where a watched storage's watcher resumes after Recover
// (see Machine.HistoryResume).
func (s *Service) HistoryResume(storage string) (txn.TID, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.HistoryResume(storage)
}

// SettleAt gives a storage's last TID read after Recover.
func (s *Service) SettleAt(storage string, tid txn.TID) {
	s.input(func(now int64) {
		s.applyIn(now, input.SettleAt{Storage: storage, TID: tid})
	})
}

// Restore sets a fresh Service to a snapshot: the fallback after an unclean
// stop without a journal (every storage at the status file's last point,
// watched from there, so that everything after it is held until accounted).
func (s *Service) Restore(sn Snapshot) {
	s.input(func(now int64) { s.applyIn(now, input.Restore{Snapshot: sn}) })
}

// Suspect holds a storage whose state after an unclean stop is unknown
// until the operator accepts it (see Machine.Suspect).
func (s *Service) Suspect(storage string, tid txn.TID) {
	s.input(func(now int64) {
		s.applyIn(now, input.Suspect{Storage: storage, TID: tid})
	})
}

// Quiet says whether nothing is in flight (for tests and shutdown).
func (s *Service) Quiet() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Quiescent()
}

// ---- remote observers (a sidecar's report stream) ----

// ObserveFrom applies the participation event numbered seq in the ordered
// report stream of source (a sidecar). A seq at or below the last one
// applied from source is a resend and is ignored; the journal keeps the
// numbering, so resends after a restart of either side apply each report
// once. It returns the last seq applied from source (what to acknowledge).
func (s *Service) ObserveFrom(source string, seq uint64, ev txn.Event) uint64 {
	return s.applyFrom(input.Event{Event: ev, Source: source, Seq: seq})
}

// ObserveBatchFrom is ObserveFrom for consecutive reports of source
// (seqs[k] numbers evs[k], ascending): one lock, one journal write.
func (s *Service) ObserveBatchFrom(source string, seqs []uint64, evs []txn.Event) uint64 {
	var last uint64
	s.input(func(now int64) {
		ins := s.batch[:0]
		for k := range evs {
			ins = append(ins, input.Event{Event: evs[k], Source: source, Seq: seqs[k]})
		}
		s.applyBatch(now, ins)
		last = s.m.SourceSeq(source)
	})
	return last
}

// applyFrom applies a numbered input of a remote observer unless it is a
// resend; it returns the last seq applied from its source.
func (s *Service) applyFrom(in input.Input) uint64 {
	source, _ := input.Numbered(in)
	var last uint64
	s.input(func(now int64) {
		s.applyIn(now, in)
		last = s.m.SourceSeq(source)
	})
	return last
}

// SourceSeq returns the last seq applied from a remote observer.
func (s *Service) SourceSeq(source string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.SourceSeq(source)
}

// RecoverFrom applies, once, the report numbered seq of source saying that
// its run (participation ids run .. run+RunSpan-1) is gone (the sidecar
// restarted); live are the storages' last TIDs it read after its restart
// (Machine.RecoverRun). It returns the last seq applied from source.
func (s *Service) RecoverFrom(source string, seq uint64, run txn.PartID, live map[string]txn.TID) uint64 {
	return s.applyFrom(input.RecoverRun{Source: source, Seq: seq, Run: run, Live: sortedTIDs(live)})
}

// Sources returns the remote observers (sidecars) the tracker has applied
// reports from and not retired: those it expects back after a restart.
func (s *Service) Sources() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Sources()
}

// Retire forgets a remote observer gone for good (Machine.Retire).
func (s *Service) Retire(source string) {
	s.input(func(now int64) { s.applyIn(now, input.Retire{Source: source}) })
}

// GapFrom applies, once, the report numbered seq of source declaring that
// its earlier reports up to seq are lost (Machine.Gap). It returns the last
// seq applied from source.
func (s *Service) GapFrom(source string, seq uint64) uint64 {
	return s.applyFrom(input.Gap{Source: source, Seq: seq})
}
