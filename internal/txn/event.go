package txn

import (
	"strconv"
	"strings"
)

// PartID names one participation: one transaction (one tpc_begin) on one
// storage connection. The observer allocates them and never reuses one while
// the tracker may still know it.
type PartID uint64

// Key correlates the participations of one client transaction across its
// storage connections: the client's identity and the transaction's user,
// description and extension (docs/design.md, rule 2). Participations in
// flight with equal keys are linked.
type Key string

// NewKey builds a Key that cannot confuse field boundaries (each field is
// length-prefixed).
func NewKey(client, user, description, extension string) Key {
	var b strings.Builder
	b.Grow(len(client) + len(user) + len(description) + len(extension) + 16)
	for _, f := range [...]string{client, user, description, extension} {
		b.WriteString(strconv.Itoa(len(f)))
		b.WriteByte(':')
		b.WriteString(f)
	}
	return Key(b.String())
}

// Info describes a participation's transaction for reports (partial commits,
// /status). It takes no part in linking: the Key does.
type Info struct {
	Client      string // peer address and, when known, the client process
	User        string
	Description string
	Extension   string // canonical text of the extension dict
}

// EventKind says what an Event reports. Each kind has one name, used by the
// observer, the tracker, logs and (later) the wire between them.
type EventKind uint8

const (
	// Begin: a participation's tpc_begin was seen. Part, Storage, Key, Info.
	Begin EventKind = iota + 1
	// Vote: the reply to its tpc_vote was seen. OK: the server voted yes (it
	// holds the commit lock); not OK: an error reply (the server aborted).
	Vote
	// FinishSent: its tpc_finish is about to be forwarded to the server.
	FinishSent
	// Finished: the reply to its tpc_finish carried TID: it committed.
	Finished
	// Aborted: an explicit tpc_abort was forwarded. (A tpc_finish that fails
	// is Lost, then Resolved: the client may have committed elsewhere.)
	Aborted
	// Lost: it ended without an explicit abort or a finish reply (connection
	// lost, a new tpc_begin over it). Before FinishSent it did not commit —
	// and, after a successful vote, may be half of a partial commit; after
	// FinishSent its outcome is in doubt until Resolved.
	Lost
	// Resolved: the outcome of a participation whose tpc_finish was sent but
	// whose reply did not tell (connection lost, error or None reply), read
	// from the storage: OK with TID when it committed, not OK otherwise.
	Resolved
	// Blind: a connection registered on Storage cannot be decoded (Reason
	// says why); it may commit unseen. Part is unused.
	Blind
	// Unblind ends one Blind of Storage (its connection closed). TID is the
	// storage's last TID read after the close (0 if it could not be read).
	Unblind
)

var eventKindNames = [...]string{"", "begin", "vote", "finish-sent", "finished", "aborted", "lost",
	"resolved", "blind", "unblind"}

func (k EventKind) String() string {
	if k != 0 && int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one participation event. It is plain data (no pointers), so that
// it can be queued, journaled and sent between processes as it is; only the
// fields its Kind documents are set.
type Event struct {
	Kind    EventKind
	Part    PartID
	Storage string // Begin, Blind, Unblind
	TID     TID    // Finished, Resolved, Unblind
	OK      bool   // Vote, Resolved
	Key     Key    // Begin
	Info    Info   // Begin
	Reason  string // Blind
}

// Observer receives participation events. Observe is synchronous: when it
// returns the event has been applied, so the frame that caused it may be
// forwarded (docs/design.md, rule 1). Events of one participation come in
// protocol order; events of different participations may come from different
// goroutines.
type Observer interface {
	Observe(Event)
}

// Phase is where a participation stands in ZEO's two-phase commit
// (docs/zeo-protocol.md). The relay tracks the phases up to Finishing on
// each connection; the tracker keeps the outcome phases too.
type Phase uint8

const (
	PhaseIdle       Phase = iota // no participation
	PhaseBegun                   // tpc_begin seen
	PhaseVoting                  // tpc_vote sent, reply pending (relay only)
	PhaseVoted                   // vote ok: the server holds the commit lock
	PhaseVoteFailed              // vote error reply: the server aborted
	PhaseFinishing               // tpc_finish sent, reply pending
	PhaseInDoubt                 // lost after tpc_finish was sent
	PhaseCommitted
	PhaseAborted
)

var phaseNames = [...]string{"idle", "begun", "voting", "voted", "vote-failed", "finish-sent", "in-doubt",
	"committed", "aborted"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "Phase(" + strconv.Itoa(int(p)) + ")"
}

// MarshalText makes phases readable in JSON (/status).
func (p Phase) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Commit is one commit of a storage as its own history tells it (the
// storage's invalidations and iterator, read by tidstorage's own ZEO
// connection): what every observed event is accounted against
// (docs/design.md, "Ground truth"). The metadata is known when the commit
// came from the iterator (HasMeta); Extension is in the same canonical text
// as Info.Extension.
type Commit struct {
	Storage     string
	TID         TID
	HasMeta     bool
	User        string
	Description string
	Extension   string
}
