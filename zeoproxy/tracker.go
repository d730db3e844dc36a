package zeoproxy

// PartID names one participation: one tpc_begin on one connection. The proxy
// allocates them; they are never reused within a process.
type PartID uint64

// Begin describes a participation when its tpc_begin is seen.
type Begin struct {
	ID      PartID
	Storage string // storage id (the key of DUMP and the status file)
	// Key correlates the participations of one client transaction across
	// connections: client identity + user + description + extension
	// (design rule 2). Participations in flight with equal keys are linked.
	Key    string
	Client string // for reports: peer address and, when known, the client pid
	User   string
	Desc   string
	Ext    string // canonical text of the extension dict, for reports
}

// Tracker receives participation events. Every call is synchronous: when it
// returns, the event has been applied, so the frame that caused it can move
// on. Calls for one participation come in protocol order; calls for different
// participations may come from different goroutines.
type Tracker interface {
	Begin(b Begin)
	// Vote reports the vote's outcome: ok means the server voted yes (it holds
	// the commit lock); !ok means an error reply (the server aborted).
	Vote(id PartID, ok bool)
	// FinishSent is reported before tpc_finish is forwarded to the server.
	FinishSent(id PartID)
	// Finished reports the committed TID read from tpc_finish's reply.
	Finished(id PartID, tid uint64)
	// Aborted: an explicit tpc_abort forwarded to the server.
	Aborted(id PartID)
	// ConnectionLost: the participation ended without an explicit abort or a
	// finish reply (connection lost, a failed tpc_finish, a new tpc_begin
	// over it). Before tpc_finish was forwarded it did not commit — and, after
	// a successful vote, may be half of a partial commit, which a lost
	// connection never excuses; after, its outcome is in doubt until Resolved.
	ConnectionLost(id PartID)
	// Resolved ends an in-doubt participation: committed with tid, or not
	// (tid 0).
	Resolved(id PartID, committed bool, tid uint64)
	// Blind/Unblind: a connection registered to storage cannot be decoded
	// (reason says why). Unblind comes once that connection has closed, with
	// the storage's last TID read after the close (0 if it could not be
	// read), so that commits made unseen are accounted for.
	Blind(storage, reason string)
	Unblind(storage string, lastTID uint64)
}
