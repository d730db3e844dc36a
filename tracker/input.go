package tracker

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// SourceSeq returns the last Seq applied from a remote observer (0: none).
func (m *Machine) SourceSeq(source string) uint64 { return m.sources[source] }

// Sources returns the remote observers this Machine has applied reports
// from (and not retired), sorted: the sidecars a tracker expects back.
func (m *Machine) Sources() []string {
	out := make([]string, 0, len(m.sources))
	for s := range m.sources {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Retire forgets a remote observer gone for good (tidstorage fleet
// retire): it is no longer expected, and a stream under its name later
// starts a new numbering.
func (m *Machine) Retire(now int64, source string) {
	m.step(now)
	if _, ok := m.sources[source]; !ok {
		return
	}
	delete(m.sources, source)
	m.emit(Record{Kind: RecWarning, Code: CodeRetired, Msg: fmt.Sprintf("sidecar %q retired: it is no longer expected", source)})
}

// Gap: remote observer source declared that some of its reports are lost
// (its send buffer overflowed, or was lost). Its participations in flight
// may have lost their later reports: they are settled when the operator
// accepts what the gap left unaccounted (settleGapped), so that none keeps
// its storages busy after that.
func (m *Machine) Gap(now int64, source string) {
	m.step(now)
	for _, pt := range m.parts {
		if pt.src == source && source != "" {
			pt.gapped = true
		}
	}
}

// settleGapped ends, at an operator's accept, the participations that were
// in flight when their sidecar declared a gap, like those of a restarted
// sidecar's run (RecoverRun): each is an orphan in doubt (the gap may hold
// its tpc_finish), resolved from the storages' history up to live — its
// commit found by metadata, or none. A set left half committed is then a
// partial commit, held as such.
func (m *Machine) settleGapped(live []StorageTID) {
	var ids []txn.PartID
	for id, pt := range m.parts {
		if pt.gapped {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return
	}
	slices.Sort(ids)
	for _, id := range ids {
		pt := m.parts[id]
		pt.orphan = true
		if pt.state == PartBegun || pt.state == PartVoted || pt.state == PartVoteFailed {
			m.remote = true // its own commit may be above what is known
			m.finishSent(pt)
			m.remote = false
		}
		m.lost(pt)
	}
	m.settleOrphansAt(live)
	m.emit(Record{Kind: RecWarning, Code: CodeGapSettled, Msg: fmt.Sprintf(
		"accept: %d participations in flight when their sidecar declared a gap are resolved from the storages' history", len(ids))})
}

// capRemoteInFlight, at an operator's accept: a remote observer's
// participation in flight whose tpc_finish was not reported yet may already
// have committed (its reports lag behind the storage's history), and the
// accept is about to take that commit as accounted. Such a participation
// caps its storage at the published TID, as one reported sent tpc_finish
// does (finishSent), so that its transaction stays wholly out until it
// ends.
func (m *Machine) capRemoteInFlight() {
	for _, pt := range m.parts {
		if pt.src == "" || (pt.state != PartBegun && pt.state != PartVoted && pt.state != PartVoteFailed) {
			continue
		}
		lo := m.st[pt.st].published
		found := false
		for k := range pt.ls.caps {
			if pt.ls.caps[k].st == pt.st {
				pt.ls.caps[k].lo = min(pt.ls.caps[k].lo, lo)
				found = true
			}
		}
		if !found {
			pt.ls.caps = append(pt.ls.caps, doneCommit{st: pt.st, lo: lo})
		}
	}
}

// InputKind says which input of the Machine an Input is.
type InputKind uint8

const (
	InEvent             InputKind = iota + 1 // Event (Step)
	InClassicBegin                           // ID, Storages
	InClassicCommit                          // ID, TIDs, Storages (sent as None)
	InClassicAbort                           // ID
	InBootstrap                              // TIDs, Flag: clean
	InLastTID                                // TIDs[0]
	InHistoryStart                           // TIDs[0] (after), Flag: warn only
	InHistory                                // Commit
	InTick                                   // Storages: awaited (Machine.Tick)
	InAccept                                 // Pin
	InRecover                                // TIDs: live last TIDs; Floor; Flag: the journal's tail was lost; Pin != 0: only the participations of ids Pin .. Pin+2^32-1 (a sidecar's run)
	InRestore                                // Snapshot
	InSettleAt                               // TIDs[0]
	InSuspect                                // TIDs[0]
	InAcceptUnaccounted                      // Pin, TIDs: every watched storage's live last TID
	InImage                                  // Image: the whole state (image.go), a rotated journal's first record
	InFloor                                  // TIDs: live last TIDs; Floor (recover.go)
	InRetire                                 // ID: a remote observer gone for good (Machine.Retire)
	InGap                                    // Source, Seq: the observer's reports up to Seq are lost (Machine.Gap)
)

var inputKindNames = [...]string{"", "event", "classic-begin", "classic-commit", "classic-abort", "bootstrap",
	"last-tid", "history-start", "history", "tick", "accept", "recover", "restore", "settle-at", "suspect", "accept-unaccounted", "image", "floor", "retire", "gap"}

func (k InputKind) String() string {
	if k != 0 && int(k) < len(inputKindNames) {
		return inputKindNames[k]
	}
	return "InputKind(" + strconv.Itoa(int(k)) + ")"
}

// Input is one input of the Machine as plain data: what the Service
// journals before applying it and replays after a crash (etcd raft's WAL
// entries are its model). Only the fields its Kind documents are set.
type Input struct {
	Kind     InputKind
	Time     int64 // unix ns
	Event    txn.Event
	Commit   txn.Commit
	ID       string
	Storages []string
	TIDs     []StorageTID
	Flag     bool
	Pin      uint64
	Snapshot *Snapshot
	// Floor (InRecover): the point the previous run published last (its
	// status file's last line), for the storages whose live last TID is at
	// or above it. Image (InImage): Machine.AppendImage's bytes.
	Floor []StorageTID
	Image []byte
	// Source and Seq number the inputs of a remote observer (a sidecar's
	// report stream): an input whose Seq is not above the last one applied
	// from its Source is a resend and is ignored, so that replays and
	// resends apply each report once. Empty Source: a local input.
	Source string
	Seq    uint64
}

// Apply applies one input. Only InAccept can fail (no such pin), and
// InImage (an image that does not decode leaves the Machine as it was).
func (m *Machine) Apply(in *Input) error {
	if in.Source != "" {
		if in.Seq <= m.sources[in.Source] {
			return nil // already applied: a resend
		}
		m.sources[in.Source] = in.Seq
	}
	switch in.Kind {
	case InEvent:
		m.remote, m.src = in.Source != "", in.Source
		m.Step(in.Time, in.Event)
		m.remote, m.src = false, ""
	case InGap:
		m.Gap(in.Time, in.Source)
	case InClassicBegin:
		m.ClassicBegin(in.Time, in.ID, in.Storages)
	case InClassicCommit:
		m.ClassicCommit(in.Time, in.ID, in.TIDs, in.Storages)
	case InClassicAbort:
		m.ClassicAbort(in.Time, in.ID)
	case InBootstrap:
		m.Bootstrap(in.Time, in.TIDs, in.Flag)
	case InLastTID:
		if len(in.TIDs) == 1 {
			m.LastTID(in.Time, in.TIDs[0].Storage, in.TIDs[0].TID)
		}
	case InHistoryStart:
		if len(in.TIDs) == 1 {
			m.HistoryStart(in.Time, in.TIDs[0].Storage, in.TIDs[0].TID, in.Flag)
		}
	case InHistory:
		m.History(in.Time, in.Commit)
	case InTick:
		m.Tick(in.Time, in.Storages...)
	case InAccept:
		return m.AcceptPartial(in.Time, in.Pin)
	case InRecover:
		if in.Pin != 0 {
			m.RecoverRun(in.Time, txn.PartID(in.Pin), in.TIDs)
		} else {
			m.Recover(in.Time, in.TIDs, in.Floor, in.Flag)
		}
	case InSettleAt:
		if len(in.TIDs) == 1 {
			m.SettleAt(in.Time, in.TIDs[0].Storage, in.TIDs[0].TID)
		}
	case InAcceptUnaccounted:
		return m.AcceptUnaccounted(in.Time, in.Pin, in.TIDs)
	case InSuspect:
		if len(in.TIDs) == 1 {
			m.Suspect(in.Time, in.TIDs[0].Storage, in.TIDs[0].TID)
		}
	case InRetire:
		m.Retire(in.Time, in.ID)
	case InRestore:
		if in.Snapshot != nil {
			m.Restore(in.Time, *in.Snapshot)
		}
	case InImage:
		return m.restoreImage(in.Image)
	case InFloor:
		m.Floor(in.Time, in.TIDs, in.Floor)
	default:
		m.step(in.Time)
		m.warn(CodeBadOrder, "unknown input kind %v (ignored)", in.Kind)
	}
	return nil
}
