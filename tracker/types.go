package tracker

import (
	"strconv"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/input"
)

// StorageTID pairs a storage id with a TID (input.StorageTID: one entry of
// a coherent point).
type StorageTID = input.StorageTID

// DefaultClassicTimeout is used when Config.ClassicTimeout is zero.
const DefaultClassicTimeout = 10 * time.Minute

// Config configures a Machine.
type Config struct {
	// ClassicTimeout is how long a classic transaction may stay in flight
	// before it is declared lost (its COMMIT or ABORT presumably dropped by
	// the client). It must exceed the longest real commit.
	ClassicTimeout time.Duration
	// Storages lists the storages that must have a known TID (from
	// Bootstrap or from an observed commit) before anything is published.
	// With no Storages, publication starts at the first Bootstrap call.
	Storages []string
	// LagWarning: a storage whose published TID has not moved for this
	// long while newer commits are known is reported by Tick (with what
	// holds it), again every LagWarning while it lasts. Negative disables.
	LagWarning time.Duration
	// UnaccountedGrace: how long an unaccounted commit (accounting.go) waits
	// for a late report before it is reported (it is held meanwhile).
	UnaccountedGrace time.Duration
	// ResendWait: how long an unaccounted commit of a storage that a
	// reporting observer is known to be behind on (a sidecar reconnecting
	// and resending, or refused; Tick's awaited storages) waits for that
	// resend before it is reported (default DefaultResendWait; never less
	// than UnaccountedGrace).
	ResendWait time.Duration
	// ClassicOnly: the classic endpoint is the only source of commits (no
	// proxied storage). A classic COMMIT carrying a TID equal to the
	// published one is then a decreasing update, as in the original daemon;
	// with a proxy it is the same commit reported twice (proxy and patched
	// Zope share storage ids), and only a TID below the published one is.
	ClassicOnly bool
}

// DefaultResendWait is used when Config.ResendWait is zero: well past a
// sidecar's reconnect backoff (5 s at most), a tracker's restart and the
// resend of a full buffer.
const DefaultResendWait = time.Minute

// DefaultLagWarning is used when Config.LagWarning is zero.
const DefaultLagWarning = 5 * time.Minute

// RecordKind says what an output Record reports.
type RecordKind uint8

const (
	// RecPublished: Storage's published TID moved from Old to TID
	// (Old is 0 and First set for its first publication).
	RecPublished RecordKind = iota + 1
	// RecBootstrapped: publication starts (the first full point follows as
	// RecPublished records in the same batch).
	RecBootstrapped
	// RecWarning: something unexpected that the tracker handled safely.
	RecWarning
	// RecCritical: something that may mean an earlier point was wrong (a
	// published TID would have decreased).
	RecCritical
	// RecPartial: a partial commit was detected; Pin holds its group until
	// the operator accepts it (AcceptPartial).
	RecPartial
	// RecInDoubt: Part was sent tpc_finish and its connection was lost
	// before the reply; it pins its group until resolved.
	RecInDoubt
	// RecResolved: an in-doubt participation got its outcome.
	RecResolved
	// RecLost: classic transaction Txn is declared lost; Pin holds its
	// storages until each had a commit observed after the loss.
	RecLost
	// RecPinned: a pin other than partial/lost was created (blind storage,
	// COMMIT carrying None).
	RecPinned
	// RecPinReleased: Pin no longer holds anything.
	RecPinReleased
	// RecUnaccounted: the history of Storage has commit TID that no
	// observed participation or classic COMMIT accounted for.
	RecUnaccounted
	// RecAccounted: an unaccounted commit was accounted for late.
	RecAccounted
)

var recordKindNames = [...]string{"", "published", "bootstrapped", "warning", "critical",
	"partial", "in-doubt", "resolved", "lost", "pinned", "pin-released", "unaccounted", "accounted"}

func (k RecordKind) String() string {
	if int(k) < len(recordKindNames) && k != 0 {
		return recordKindNames[k]
	}
	return "RecordKind(" + strconv.Itoa(int(k)) + ")"
}

// Code classifies warnings and criticals (stable strings, usable as metric
// labels).
type Code string

const (
	CodeNone              Code = ""
	CodeBeginTwice        Code = "classic_begin_twice"
	CodeCommitNoBegin     Code = "classic_commit_without_begin"
	CodeAbortNoBegin      Code = "classic_abort_without_begin"
	CodeCommitStorages    Code = "classic_commit_storages_differ"
	CodeCommitNone        Code = "classic_commit_none"
	CodeLateEnd           Code = "classic_late_end"
	CodeUnknownPart       Code = "unknown_participation"
	CodePartTwice         Code = "participation_begun_twice"
	CodeBadOrder          Code = "participation_bad_order"
	CodeDecreaseRefused   Code = "publish_decrease_refused"
	CodeUncleanStart      Code = "unclean_start"
	CodeBootstrapDecrease Code = "bootstrap_below_published"
	CodeUnblindUnknown    Code = "unblind_not_blind"
	CodeGroupLag          Code = "publication_lag"
	CodeHistoryUnwatched  Code = "history_unwatched"
	CodeHistoryMissing    Code = "history_missing_commit"
	CodeJournalFailed     Code = "journal_failed"
	// CodeOutcomeUnknown: after a damaged journal, a participation's
	// outcome could not be read from the storage's history (recover.go).
	CodeOutcomeUnknown Code = "outcome_unknown"
	// CodeRetired: the operator retired a sidecar (Machine.Retire).
	CodeRetired Code = "sidecar_retired"
	// CodeGapSettled: an accept settled participations a sidecar's gap
	// left in flight (Machine.Gap).
	CodeGapSettled Code = "sidecar_gap_settled"
	// CodeClassicDecrease: a classic COMMIT carried a TID at or below the
	// storage's published TID (the original's "Decreasing update ignored").
	CodeClassicDecrease Code = "classic_commit_decreasing"
)

// Record is one output of a step. The daemon drains them after each input
// (Machine.Records / ClearRecords) to log them, count them and feed the
// status file. Only the fields meaningful for Kind are set.
type Record struct {
	Kind    RecordKind
	Code    Code
	Time    int64 // the input's time, unix ns
	Storage string
	TID     txn.TID
	Old     txn.TID
	First   bool // RecPublished: first value for this storage
	Part    txn.PartID
	Txn     string // classic transaction id
	Pin     uint64
	Msg     string
}

// Counters are monotonic totals, for metrics.
type Counters struct {
	Events            uint64
	Publications      uint64 // storage values published
	PartsBegun        uint64
	PartsCommitted    uint64
	PartsAborted      uint64
	InDoubt           uint64
	Resolved          uint64
	Partials          uint64
	ClassicBegun      uint64
	ClassicCommitted  uint64
	ClassicAborted    uint64
	ClassicLost       uint64
	Warnings          uint64
	Criticals         uint64
	PinsCreated       uint64
	PinsReleased      uint64
	PinsAccepted      uint64
	TransactionsEnded uint64 // classic ends + link sets drained
	HistoryCommits    uint64 // commits reported by the storages' history
	Unaccounted       uint64 // unaccounted commits reported
	AwaitingHistory   uint64 // accounted commits that waited for the history
}

// MarshalText makes the kind readable in JSON (/status).
func (k RecordKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }
