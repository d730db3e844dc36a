// Package statusdoc holds the JSON documents of the admin endpoint
// (/status, /fleet, /accept-partial; docs/admin.md) and what a client needs
// to read them (the token file). The endpoint (cmd/cmd/admin) builds
// them; the status command and the tests decode them with these same types,
// without linking the endpoint or its metrics.
package statusdoc

import (
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// StatusDoc is the /status document. The CLI decodes it with this same
// type, so a field added here reaches `tidstorage status --json` at once.
// Times are UTC; ages and lags are seconds measured with Sources.Clock at
// the moment the document was built (Time).
type StatusDoc struct {
	Time         time.Time `json:"time"`
	Version      string    `json:"version"`
	Bootstrapped bool      `json:"bootstrapped"`
	// CleanStart is false when the previous run did not stop cleanly (the
	// live files may hold half a transaction from that moment).
	CleanStart bool `json:"clean_start"`
	// PreviousRun: "clean", "unclean", "none" (a first start: the status
	// file was new or empty) or "unknown" (no status file, so a previous
	// run's stop is not tracked); absent from older daemons.
	PreviousRun string `json:"previous_run,omitempty"`
	// TrackerFailure says why the tracker stopped after an internal failure
	// (empty while it works): publication stopped at the last good point,
	// traffic is still relayed, a restart recovers.
	TrackerFailure string `json:"tracker_failure,omitempty"`
	// PublicationHeld says why publication is held (empty while it is not):
	// the state directory cannot record what is published (the journal or
	// the running marker cannot be written); the point answered and written
	// stays where it was, ZODB traffic is relayed as usual, and publication
	// resumes by itself once the disk takes the files again.
	PublicationHeld string `json:"publication_held,omitempty"`

	Storages       []StorageDoc    `json:"storages"`
	Groups         []GroupDoc      `json:"groups"`
	Participations []PartDoc       `json:"participations"`
	Classic        []ClassicTxnDoc `json:"classic_transactions"`
	Pins           []PinDoc        `json:"pins"`
	Counters       CountersDoc     `json:"counters"`

	Proxy           *ProxyDoc           `json:"proxy,omitempty"`            // absent without ZEO blocks
	ClassicEndpoint *ClassicEndpointDoc `json:"classic_endpoint,omitempty"` // absent when disabled
	StatusFile      *StatusFileDoc      `json:"status_file,omitempty"`      // absent without a status file
	Journal         *JournalDoc         `json:"journal,omitempty"`          // absent without a journal
	Archive         *ArchiveDoc         `json:"archive,omitempty"`          // absent without an archive block
	// History lists the watchers of the storages' own history (ground
	// truth), by storage id; absent when no storage is watched.
	History []HistoryDoc `json:"history,omitempty"`
}

// TIDDoc is one TID in every form an operator may need.
type TIDDoc struct {
	Int  txn.TID   `json:"int"`
	Hex  string    `json:"hex"`
	Time time.Time `json:"time"`
}

// NewTIDDoc returns t's forms.
func NewTIDDoc(t txn.TID) TIDDoc {
	return TIDDoc{Int: t, Hex: t.Hex(), Time: t.Time()}
}

// StorageDoc is one storage.
type StorageDoc struct {
	ID string `json:"id"`
	// Label is the storage's name in backups, restores and metrics when the
	// configuration gives it one other than its id (a default id is the
	// repr of a tuple, no directory name: docs/backup.md, "Names"); absent
	// when it is the id.
	Label string `json:"label,omitempty"`
	// Published is nil until the storage has a published TID.
	Published *TIDDoc `json:"published,omitempty"`
	// LagSeconds is the document's time minus the published TID's time: how
	// old the newest restorable state of this storage is. It grows while
	// nothing commits, which is not a fault.
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
	// Transient is the highest TID known committed (nil if none known).
	Transient *TIDDoc `json:"transient,omitempty"`
	Busy      bool    `json:"busy"`
	// Group indexes StatusDoc.Groups; -1 when idle.
	Group int `json:"group"`
	// BlindConnections counts open connections whose traffic cannot be
	// decoded; while non-zero the storage's group does not publish.
	BlindConnections int `json:"blind_connections"`

	// Ground truth (docs/admin.md, "Ground truth and unaccounted commits").
	// Watched: the storage's own history is watched, and its published TID
	// passes a commit only once that commit is accounted for. WarnOnly:
	// unaccounted commits are reported but do not hold it (unaccounted =
	// "warn").
	Watched  bool `json:"watched"`
	WarnOnly bool `json:"warn_only"`
	// HistoryPosition is the highest TID the storage's history has
	// reported (nil unless watched): publication never passes it.
	HistoryPosition *TIDDoc `json:"history_position,omitempty"`
	// Unaccounted lists the commits the history showed that nothing
	// accounted for yet, oldest first (the TID's time is the commit's).
	// Unless WarnOnly they hold the storage just below the first of them
	// (HeldByUnaccounted): while the grace lasts, waiting for a late report,
	// then until accepted (a pin of kind unaccounted).
	Unaccounted       []TIDDoc `json:"unaccounted,omitempty"`
	HeldByUnaccounted bool     `json:"held_by_unaccounted"`
	// UnaccountedTotal counts the unaccounted commits reported since start.
	UnaccountedTotal uint64 `json:"unaccounted_total"`
	// AwaitingHistory counts accounted commits above HistoryPosition: their
	// transactions stay unpublished until the history reaches them.
	AwaitingHistory int `json:"awaiting_history"`
}

// GroupDoc is one busy group of storages that publish together.
type GroupDoc struct {
	Storages []string `json:"storages"`
	InFlight int      `json:"in_flight"`
}

// PartDoc is one participation (a transaction on one storage connection)
// still known to the tracker.
type PartDoc struct {
	ID         uint64    `json:"id"`
	Storage    string    `json:"storage"`
	State      string    `json:"state"`
	Key        string    `json:"key"`
	Began      time.Time `json:"began"`
	AgeSeconds float64   `json:"age_seconds"`
}

// ClassicTxnDoc is one classic (line protocol) transaction in flight.
type ClassicTxnDoc struct {
	ID         string    `json:"id"`
	Storages   []string  `json:"storages"`
	Began      time.Time `json:"began"`
	AgeSeconds float64   `json:"age_seconds"`
}

// PinDoc is one active pin: something that holds its storages' published
// TIDs where they are.
type PinDoc struct {
	ID   uint64 `json:"id"`
	Kind string `json:"kind"` // partial, lost, none, blind, unaccounted
	// Reason is the tracker's account; for a partial commit it names the
	// client, user, description, extension, and the storages with the TIDs
	// committed and the participations that did not commit.
	Reason     string    `json:"reason"`
	Storages   []string  `json:"storages"`
	Since      time.Time `json:"since"`
	AgeSeconds float64   `json:"age_seconds"`
	// Held lists the pinned storages' published TIDs: where a backup of
	// them stays until the pin is released.
	Held           []HeldDoc `json:"held"`
	Parts          []uint64  `json:"parts,omitempty"`
	Participations []PartDoc `json:"participations,omitempty"` // those of Parts still known
	Key            string    `json:"key,omitempty"`
	Txn            string    `json:"txn,omitempty"`
	Waiting        []string  `json:"waiting,omitempty"`
	// Unaccounted (kind unaccounted): the storage's commits that accepting
	// the pin accounts for, oldest first; Upto is the last of them.
	Unaccounted []TIDDoc `json:"unaccounted,omitempty"`
	Upto        *TIDDoc  `json:"upto,omitempty"`
	// Acceptable is true when accept-partial can release the pin (every
	// kind but blind, which ends only when its connections close).
	Acceptable bool `json:"acceptable"`
}

// HeldDoc is one pinned storage and the TID it is held at (nil if it has
// none published yet).
type HeldDoc struct {
	Storage   string  `json:"storage"`
	Published *TIDDoc `json:"published,omitempty"`
}

// CountersDoc mirrors tracker.Counters with stable JSON names.
type CountersDoc struct {
	Events            uint64 `json:"events"`
	Publications      uint64 `json:"publications"`
	PartsBegun        uint64 `json:"participations_begun"`
	PartsCommitted    uint64 `json:"participations_committed"`
	PartsAborted      uint64 `json:"participations_aborted"`
	InDoubt           uint64 `json:"in_doubt"`
	Resolved          uint64 `json:"in_doubt_resolved"`
	Partials          uint64 `json:"partial_commits"`
	ClassicBegun      uint64 `json:"classic_begun"`
	ClassicCommitted  uint64 `json:"classic_committed"`
	ClassicAborted    uint64 `json:"classic_aborted"`
	ClassicLost       uint64 `json:"classic_lost"`
	Warnings          uint64 `json:"warnings"`
	Criticals         uint64 `json:"criticals"`
	PinsCreated       uint64 `json:"pins_created"`
	PinsReleased      uint64 `json:"pins_released"`
	PinsAccepted      uint64 `json:"pins_accepted"`
	TransactionsEnded uint64 `json:"transactions_ended"`
	HistoryCommits    uint64 `json:"history_commits"`
	Unaccounted       uint64 `json:"unaccounted_commits"`
	AwaitingHistory   uint64 `json:"awaiting_history"`
}

// ProxyDoc mirrors zeoproxy.MetricsSnapshot.
type ProxyDoc struct {
	ConnectionsOpen   int64 `json:"connections_open"`
	ConnectionsTotal  int64 `json:"connections_total"`
	Begins            int64 `json:"tpc_begins"`
	Commits           int64 `json:"tpc_commits"`
	Aborts            int64 `json:"tpc_aborts"`
	VotesFailed       int64 `json:"tpc_votes_failed"`
	InDoubt           int64 `json:"tpc_in_doubt"`
	ResolvedCommitted int64 `json:"in_doubt_resolved_committed"`
	ResolvedAborted   int64 `json:"in_doubt_resolved_aborted"`
	DecodeErrors      int64 `json:"decode_errors"`
	BytesC2S          int64 `json:"bytes_client_to_server"`
	BytesS2C          int64 `json:"bytes_server_to_client"`
	FramesC2S         int64 `json:"frames_client_to_server"`
	FramesS2C         int64 `json:"frames_server_to_client"`
}

// ClassicEndpointDoc mirrors classic.Stats.
type ClassicEndpointDoc struct {
	ConnectionsAccepted uint64 `json:"connections_accepted"`
	ConnectionsActive   int64  `json:"connections_active"`
	ConnectionsRefused  uint64 `json:"connections_refused"`
	ConnectionsDenied   uint64 `json:"connections_denied"`
	// ConnectionsIdleClosed: closed after idle_timeout without a command;
	// ConnectionsEvicted: closed while idle to admit a new connection.
	ConnectionsIdleClosed uint64            `json:"connections_idle_closed"`
	ConnectionsEvicted    uint64            `json:"connections_evicted"`
	Commands              map[string]uint64 `json:"commands"`
	ProtocolErrors        uint64            `json:"protocol_errors"`
	TornCommands          uint64            `json:"torn_commands"`
}

// StatusFileDoc mirrors statusfile.Stats.
type StatusFileDoc struct {
	Path      string     `json:"path"`
	Lines     uint64     `json:"lines"`      // written by this run
	FileLines uint64     `json:"file_lines"` // in the file now, those before this run included
	Bytes     uint64     `json:"bytes"`
	Errors    uint64     `json:"errors"`
	LastError string     `json:"last_error,omitempty"`
	LastWrite *time.Time `json:"last_write,omitempty"`
	Broken    string     `json:"broken,omitempty"`
	Epochs    uint64     `json:"epochs"`
	LastAside string     `json:"last_aside,omitempty"`
}

// JournalDoc mirrors tracker.JournalStats.
type JournalDoc struct {
	Path      string `json:"path"`
	SizeBytes int64  `json:"size_bytes"`
	Records   uint64 `json:"records"` // appended by this run
	Rotations uint64 `json:"rotations"`
	Errors    uint64 `json:"errors"`
	// Broken says why appending stopped until the next rotation ("" while
	// it works): publication is held meanwhile.
	Broken string `json:"broken,omitempty"`
	// Replayed counts the inputs replayed at start (after an unclean stop);
	// Damage describes a torn or corrupt tail cut at start (or appends that
	// had stopped before the previous run ended).
	Replayed int    `json:"replayed"`
	Damage   string `json:"damage,omitempty"`
	// Reserve says why the reserve file kept beside the journal for a
	// rotation on a full disk is missing (empty while it is there).
	Reserve string `json:"reserve,omitempty"`
	// LastRotationSeconds: how long the last rotation held the tracker.
	LastRotationSeconds float64 `json:"last_rotation_seconds"`
}

// HistoryDoc is one storage's history watcher (tracker/history.Status).
type HistoryDoc struct {
	Storage string `json:"storage"`
	Addr    string `json:"addr"`
	Name    string `json:"name"`
	// Connected: registered on the storage now; Since: when that last
	// changed.
	Connected bool       `json:"connected"`
	Since     *time.Time `json:"since,omitempty"`
	// LastTID: the last commit handed to the tracker; ServerTID: the
	// highest TID the server reported; LagSeconds: the time between them.
	LastTID    *TIDDoc `json:"last_tid,omitempty"`
	ServerTID  *TIDDoc `json:"server_tid,omitempty"`
	LagSeconds float64 `json:"lag_seconds"`
	Pending    int     `json:"pending"`
	Connects   uint64  `json:"connects"`
	Reconnects uint64  `json:"reconnects"`
	// Delivered commits, FromIterator of them read from the iterator.
	Delivered    uint64 `json:"delivered"`
	FromIterator uint64 `json:"from_iterator"`
	Overflows    uint64 `json:"overflows"`
	Repairs      uint64 `json:"repairs"`
	Anomalies    uint64 `json:"anomalies"`
	// LastError: why the last connection ended or failed, and when.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
}

// PinsOfKind returns the pins of one kind (tracker.PinKind's name).
func (d *StatusDoc) PinsOfKind(kind string) []PinDoc {
	var out []PinDoc
	for _, p := range d.Pins {
		if p.Kind == kind {
			out = append(out, p)
		}
	}
	return out
}

// PartialPins returns the pins of kind partial.
func (d *StatusDoc) PartialPins() []PinDoc { return d.PinsOfKind("partial") }

// UnaccountedPins returns the pins of kind unaccounted.
func (d *StatusDoc) UnaccountedPins() []PinDoc {
	return d.PinsOfKind("unaccounted")
}

// HeldStorages returns the storages held by unaccounted commits.
func (d *StatusDoc) HeldStorages() []StorageDoc {
	var out []StorageDoc
	for _, s := range d.Storages {
		if s.HeldByUnaccounted {
			out = append(out, s)
		}
	}
	return out
}

// Pin returns the pin with id, if active.
func (d *StatusDoc) Pin(id uint64) (PinDoc, bool) {
	for _, p := range d.Pins {
		if p.ID == id {
			return p, true
		}
	}
	return PinDoc{}, false
}
