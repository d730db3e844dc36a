package tracker

import (
	"strconv"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// SourceSeq returns the last Seq applied from a remote observer (0: none).
func (m *Machine) SourceSeq(source string) uint64 { return m.sources[source] }

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
	InTick                                   //
	InAccept                                 // Pin
	InRecover                                // TIDs: live last TIDs; Floor; Flag: the journal's tail was lost; Pin != 0: only the participations of ids Pin .. Pin+2^32-1 (a sidecar's run)
	InRestore                                // Snapshot
	InSettleAt                               // TIDs[0]
	InSuspect                                // TIDs[0]
	InAcceptUnaccounted                      // Pin, TIDs: every watched storage's live last TID
	InImage                                  // Image: the whole state (image.go), a rotated journal's first record
	InFloor                                  // TIDs: live last TIDs; Floor (recover.go)
)

var inputKindNames = [...]string{"", "event", "classic-begin", "classic-commit", "classic-abort", "bootstrap",
	"last-tid", "history-start", "history", "tick", "accept", "recover", "restore", "settle-at", "suspect", "accept-unaccounted", "image", "floor"}

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
		m.remote = in.Source != ""
		m.Step(in.Time, in.Event)
		m.remote = false
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
		m.Tick(in.Time)
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
