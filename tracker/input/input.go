// Package input holds the tracker's inputs as plain data, one Go type per
// input (as zrpc has one per ZEO message), and their encoding in the
// tracker's journal (codec.go). It imports nothing of the tracker: the
// Machine applies these values (tracker.Machine.Apply, one switch), the
// Service journals them before applying them, and anything that needs the
// encoding (a replay tool, the fleet's send buffer for a participation
// event, wire.go) uses it without the tracker.
//
// Every input is applied at a time (unix ns) that is not part of the
// value: Machine.Apply(now, in) and the journal record (Append) carry it
// beside the input.
package input

import (
	"strconv"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// Input is one of the types of this package (values, not pointers).
type Input interface{ isInput() }

// StorageTID pairs a storage id with a TID: one storage's entry of a
// coherent point, or a storage's last TID read live.
type StorageTID struct {
	Storage string
	TID     txn.TID
}

// Event is one participation event (txn.Event) observed by a relay.
// Source and Seq number the reports of a remote observer (a sidecar's
// report stream): an Event whose Seq is not above the last one applied
// from its Source is a resend and is ignored, so that replays and resends
// apply each report once. Empty Source: a local relay's event.
type Event struct {
	Event  txn.Event
	Source string
	Seq    uint64
}

// ClassicBegin is the classic BEGIN of transaction ID on Storages.
type ClassicBegin struct {
	ID       string
	Storages []string
}

// ClassicCommit is the classic COMMIT of transaction ID: the TIDs it
// committed, sorted by storage, and the storages whose TID was sent as
// None.
type ClassicCommit struct {
	ID   string
	TIDs []StorageTID
	None []string
}

// ClassicAbort is the classic ABORT of transaction ID.
type ClassicAbort struct{ ID string }

// Bootstrap gives the storages' last TIDs read while no transaction could
// be in flight, and whether the previous run stopped cleanly.
type Bootstrap struct {
	Last  []StorageTID
	Clean bool
}

// LastTID is one storage's last TID read from the storage now.
type LastTID struct {
	Storage string
	TID     txn.TID
}

// HistoryStart makes Storage watched from After on (its history reports
// every commit above it); WarnOnly: unaccounted commits are only warned
// about, not held.
type HistoryStart struct {
	Storage  string
	After    txn.TID
	WarnOnly bool
}

// History is one commit of a watched storage, in TID order.
type History struct{ Commit txn.Commit }

// Tick is the periodic input; Awaited are the storages a remote observer
// is known to be behind on.
type Tick struct{ Awaited []string }

// Accept is the operator's accept of pin Pin.
type Accept struct{ Pin uint64 }

// AcceptUnaccounted is the operator's accept of the unaccounted commits of
// pin Pin; Live are every watched storage's last TIDs read live.
type AcceptUnaccounted struct {
	Pin  uint64
	Live []StorageTID
}

// Recover ends the previous process's participations after a replay: Live
// are the storages' last TIDs read now, Floor the point the previous run
// published last (its status file's last line), TailLost says the replayed
// journal lost its tail.
type Recover struct {
	Live     []StorageTID
	Floor    []StorageTID
	TailLost bool
}

// RunSpan is how many participation ids one run of a remote observer
// takes: a sidecar's run owns the ids Run .. Run+RunSpan-1, Run being a
// random number << 32 new at each start (zeoproxy.Config.PartIDBase).
const RunSpan = 1 << 32

// RecoverRun is a remote observer's report (numbered Seq in Source's
// stream, as Event's) that its run Run is gone (the sidecar restarted):
// the participations of ids Run .. Run+RunSpan-1 end, resolved against
// Live, the storages' last TIDs the sidecar read after its restart.
type RecoverRun struct {
	Source string
	Seq    uint64
	Run    txn.PartID
	Live   []StorageTID
}

// Gap is a remote observer's declaration that its reports up to Seq are
// lost (its send buffer overflowed, or was lost).
type Gap struct {
	Source string
	Seq    uint64
}

// Retire forgets remote observer Source, gone for good.
type Retire struct{ Source string }

// Restore sets a fresh Machine to a snapshot.
type Restore struct{ Snapshot Snapshot }

// SettleAt gives a storage's last TID read after Recover.
type SettleAt struct {
	Storage string
	TID     txn.TID
}

// Suspect holds a storage whose state after an unclean stop is unknown
// until the operator accepts it, at TID.
type Suspect struct {
	Storage string
	TID     txn.TID
}

// Image is the Machine's whole state (tracker.Machine.AppendImage's
// bytes): a rotated journal's first record.
type Image struct{ Bytes []byte }

// Floor raises a replayed state to Floor, the point the previous run
// published last, for the storages whose Live last TID has not gone below
// it (a fleet tracker's start).
type Floor struct {
	Live  []StorageTID
	Floor []StorageTID
}

func (Event) isInput()             {}
func (ClassicBegin) isInput()      {}
func (ClassicCommit) isInput()     {}
func (ClassicAbort) isInput()      {}
func (Bootstrap) isInput()         {}
func (LastTID) isInput()           {}
func (HistoryStart) isInput()      {}
func (History) isInput()           {}
func (Tick) isInput()              {}
func (Accept) isInput()            {}
func (AcceptUnaccounted) isInput() {}
func (Recover) isInput()           {}
func (RecoverRun) isInput()        {}
func (Gap) isInput()               {}
func (Retire) isInput()            {}
func (Restore) isInput()           {}
func (SettleAt) isInput()          {}
func (Suspect) isInput()           {}
func (Image) isInput()             {}
func (Floor) isInput()             {}

// Snapshot is the state of a quiescent Machine (tracker.Machine.Snapshot).
type Snapshot struct {
	Storages      []StorageSnapshot
	Sources       []SourceSeq // remote observers' last Seq applied, by name
	NextPin       uint64
	Bootstrapped  bool
	BootRequested bool
}

// StorageSnapshot is one storage in a Snapshot.
type StorageSnapshot struct {
	Storage      string
	Published    txn.TID
	HasPublished bool
	Transient    txn.TID
	Known        bool
	Watched      bool
	WarnOnly     bool
	Hist         txn.TID
}

// SourceSeq is one remote observer's position in a Snapshot.
type SourceSeq struct {
	Source string
	Seq    uint64
}

// Kind numbers the inputs in the journal (the byte after the version).
// The numbers are fixed: a journal holds them.
type Kind uint8

const (
	KindEvent             Kind = iota + 1 // Event
	KindClassicBegin                      // ClassicBegin
	KindClassicCommit                     // ClassicCommit
	KindClassicAbort                      // ClassicAbort
	KindBootstrap                         // Bootstrap
	KindLastTID                           // LastTID
	KindHistoryStart                      // HistoryStart
	KindHistory                           // History
	KindTick                              // Tick
	KindAccept                            // Accept
	KindRecover                           // Recover and RecoverRun (a run: a non-zero Run)
	KindRestore                           // Restore
	KindSettleAt                          // SettleAt
	KindSuspect                           // Suspect
	KindAcceptUnaccounted                 // AcceptUnaccounted
	KindImage                             // Image
	KindFloor                             // Floor
	KindRetire                            // Retire
	KindGap                               // Gap
)

var kindNames = [...]string{"", "event", "classic-begin", "classic-commit", "classic-abort", "bootstrap",
	"last-tid", "history-start", "history", "tick", "accept", "recover", "restore", "settle-at", "suspect",
	"accept-unaccounted", "image", "floor", "retire", "gap"}

func (k Kind) String() string {
	if k != 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// KindOf returns the journal kind of in (0 for a type not of this package).
func KindOf(in Input) Kind {
	switch in.(type) {
	case Event:
		return KindEvent
	case ClassicBegin:
		return KindClassicBegin
	case ClassicCommit:
		return KindClassicCommit
	case ClassicAbort:
		return KindClassicAbort
	case Bootstrap:
		return KindBootstrap
	case LastTID:
		return KindLastTID
	case HistoryStart:
		return KindHistoryStart
	case History:
		return KindHistory
	case Tick:
		return KindTick
	case Accept:
		return KindAccept
	case Recover, RecoverRun:
		return KindRecover
	case Restore:
		return KindRestore
	case SettleAt:
		return KindSettleAt
	case Suspect:
		return KindSuspect
	case AcceptUnaccounted:
		return KindAcceptUnaccounted
	case Image:
		return KindImage
	case Floor:
		return KindFloor
	case Retire:
		return KindRetire
	case Gap:
		return KindGap
	}
	return 0
}

// Name names in for logs and test failures ("event", "classic-begin", ...;
// "recover-run" for a RecoverRun).
func Name(in Input) string {
	if _, ok := in.(RecoverRun); ok {
		return "recover-run"
	}
	return KindOf(in).String()
}

// Numbered returns the Source and Seq of a remote observer's numbered input
// (Event, RecoverRun, Gap); "" for any other input, and for a local Event.
func Numbered(in Input) (source string, seq uint64) {
	switch in := in.(type) {
	case Event:
		return in.Source, in.Seq
	case RecoverRun:
		return in.Source, in.Seq
	case Gap:
		return in.Source, in.Seq
	}
	return "", 0
}
