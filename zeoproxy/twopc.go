package zeoproxy

import (
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// twoPC is one connection's two-phase commit, the machine of
// docs/zeo-protocol.md §10: a plain value that takes what the relay decoded
// (a tpc_begin, the method and msgid of a vote, tpc_finish or tpc_abort, the
// reply to one of them, the end of the connection) and returns a step: the
// participation events to report, in order, and what kind of transition it
// was. It holds no lock, socket, clock or channel; the relay (conn) keeps it
// under its mutex and does what each step asks (report the events, start or
// end the commit-lock tenure, resolve an outcome in doubt).
type twoPC struct {
	part     txn.PartID
	ph       txn.Phase // PhaseIdle up to PhaseFinishing
	begin    txn.Event // the Begin of part; kept after it ends, for the relay's logs and resolution
	voteID   int64     // msgid of the vote whose reply is awaited
	finishID int64     // msgid of the tpc_finish whose reply is awaited
	steps    uint64    // transitions so far: a stop tells a silent client by it
}

// stepKind names a transition of twoPC.
type stepKind uint8

const (
	stepNone            stepKind = iota // nothing changed: not this connection's 2PC
	stepBeginUnregister                 // a tpc_begin before register: ignored
	stepBegun                           // Begin (after a Lost of the open participation it replaced, if any)
	stepVoting                          // vote sent; its reply is awaited
	stepConflicts                       // vote reply lists conflicts: back to OPEN, the client votes again
	stepVoted                           // vote reply ok: the server holds the commit lock
	stepVoteFailed                      // vote error reply: the server aborted
	stepFinishing                       // tpc_finish about to be forwarded: FinishSent
	stepCommitted                       // tpc_finish reply with the TID: Finished
	stepNotCommitted                    // tpc_finish reply None: the server had no such transaction
	stepFinishFailed                    // tpc_finish error reply: Lost, outcome in doubt
	stepAborted                         // tpc_abort before FINISHING: Aborted
	stepLost                            // the connection ended before tpc_finish was sent: Lost
	stepLostFinishing                   // the connection ended while FINISHING: Lost, outcome in doubt
)

var stepNames = [...]string{"none", "begin-unregistered", "begun", "voting", "conflicts", "voted", "vote-failed",
	"finishing", "committed", "not-committed", "finish-failed", "aborted", "lost", "lost-finishing"}

func (k stepKind) String() string { return stepNames[k] }

// step is what one input did to a twoPC.
type step struct {
	kind stepKind
	from txn.Phase  // the phase before the input
	part txn.PartID // the participation the step ended or advanced (the new one for stepBegun)
	// replaced: a tpc_begin came while a participation was open; ev[0] is
	// its Lost (its tenure, if any, ends unordered).
	replaced bool
	ev       [2]txn.Event
	n        int
}

// Events returns the events to report, in order.
func (s *step) events() []txn.Event { return s.ev[:s.n] }

func (s *step) emit(e txn.Event) { s.ev[s.n] = e; s.n++ }

// beginOf is what a tpc_begin says about its transaction: the report's Info
// and the correlation key (docs/design.md, rule 2) of client's transaction.
func beginOf(tb *zrpc.TPCBegin, client string) (txn.Info, txn.Key) {
	ext := zrpc.CanonicalText(tb.Extension)
	info := txn.Info{Client: client, User: string(tb.User), Description: string(tb.Description), Extension: ext}
	return info, txn.NewKey(info.Client, info.User, info.Description, ext)
}

func (m *twoPC) start(from txn.Phase, k stepKind) step {
	m.steps++
	return step{kind: k, from: from, part: m.part}
}

// tpcBegin is a decoded tpc_begin on a connection registered on storage ("":
// not registered), starting participation part. ZEO allows one transaction
// per connection: an open one did not commit through this connection (the
// server refuses the new tpc_begin, or the old transaction ended unseen).
func (m *twoPC) tpcBegin(part txn.PartID, storageID string, info txn.Info, key txn.Key) step {
	if storageID == "" {
		return step{kind: stepBeginUnregister, from: m.ph}
	}
	s := m.start(m.ph, stepBegun)
	if m.part != 0 && m.ph != txn.PhaseIdle {
		s.replaced = true
		s.emit(txn.Event{Kind: txn.Lost, Part: m.part})
	}
	m.part, m.ph = part, txn.PhaseBegun
	m.begin = txn.Event{Kind: txn.Begin, Part: part, Storage: storageID, Info: info, Key: key}
	s.part = part
	s.emit(m.begin)
	return s
}

// call is a vote, tpc_finish or tpc_abort (its method and msgid, peeked),
// about to be forwarded.
func (m *twoPC) call(method zrpc.Method, msgid int64) step {
	if m.part == 0 {
		return step{kind: stepNone, from: m.ph}
	}
	switch method {
	case zrpc.MethodVote:
		s := m.start(m.ph, stepVoting)
		m.ph, m.voteID = txn.PhaseVoting, msgid
		return s
	case zrpc.MethodTPCFinish:
		s := m.start(m.ph, stepFinishing)
		m.ph, m.finishID = txn.PhaseFinishing, msgid
		s.emit(txn.Event{Kind: txn.FinishSent, Part: m.part})
		return s
	case zrpc.MethodTPCAbort:
		if m.ph == txn.PhaseFinishing {
			// After a finish, tpc_abort is the transaction package's no-op
			// cleanup (docs/zeo-protocol.md §7).
			return step{kind: stepNone, from: m.ph}
		}
		s := m.start(m.ph, stepAborted)
		s.emit(txn.Event{Kind: txn.Aborted, Part: m.part})
		m.part, m.ph = 0, txn.PhaseIdle
		return s
	}
	return step{kind: stepNone, from: m.ph}
}

// awaits reports whether a reply with this msgid is one the machine waits
// for (the server→client direction decodes only those).
func (m *twoPC) awaits(msgid int64) bool {
	return (m.ph == txn.PhaseVoting && msgid == m.voteID) || (m.ph == txn.PhaseFinishing && msgid == m.finishID)
}

// awaiting is 1 while a vote or tpc_finish reply is awaited, else 0.
func (m *twoPC) awaiting() int32 {
	if m.ph == txn.PhaseVoting || m.ph == txn.PhaseFinishing {
		return 1
	}
	return 0
}

// reply is a decoded reply from the server, seen before it is forwarded.
func (m *twoPC) reply(r *reply) step {
	switch {
	case m.ph == txn.PhaseVoting && r.MsgID == m.voteID:
		switch {
		case r.IsError():
			s := m.start(m.ph, stepVoteFailed)
			m.ph = txn.PhaseVoteFailed
			s.emit(txn.Event{Kind: txn.Vote, Part: m.part, OK: false})
			return s
		case !r.Voted():
			s := m.start(m.ph, stepConflicts)
			m.ph = txn.PhaseBegun
			return s
		default:
			s := m.start(m.ph, stepVoted)
			m.ph = txn.PhaseVoted
			s.emit(txn.Event{Kind: txn.Vote, Part: m.part, OK: true})
			return s
		}
	case m.ph == txn.PhaseFinishing && r.MsgID == m.finishID:
		var s step
		tid, ok := r.TID()
		switch {
		case r.IsError():
			// The storage failed inside tpc_finish: whether anything was
			// written is unknown until the storage is read.
			s = m.start(m.ph, stepFinishFailed)
			s.emit(txn.Event{Kind: txn.Lost, Part: m.part})
		case ok:
			s = m.start(m.ph, stepCommitted)
			s.emit(txn.Event{Kind: txn.Finished, Part: m.part, TID: tid})
		default:
			s = m.start(m.ph, stepNotCommitted)
			s.emit(txn.Event{Kind: txn.Resolved, Part: m.part, OK: false, TID: 0})
		}
		m.part, m.ph = 0, txn.PhaseIdle
		return s
	}
	return step{kind: stepNone, from: m.ph}
}

// lost is the end of the connection (both directions).
func (m *twoPC) lost() step {
	if m.part == 0 || m.ph == txn.PhaseIdle {
		return step{kind: stepNone, from: m.ph}
	}
	k := stepLost
	if m.ph == txn.PhaseFinishing {
		k = stepLostFinishing
	}
	s := m.start(m.ph, k)
	s.emit(txn.Event{Kind: txn.Lost, Part: m.part})
	m.part, m.ph = 0, txn.PhaseIdle
	return s
}

// committing reports whether the participation stands between its vote and
// the reply to its tpc_finish (VOTING, VOTED, FINISHING): a stop must not
// close the connection then (docs/admin.md, "Stopping").
func (m *twoPC) committing() bool {
	return m.ph == txn.PhaseVoting || m.ph == txn.PhaseVoted || m.ph == txn.PhaseFinishing
}

// linkable returns the key of the open participation while its transaction
// may still gain participations: forwarded and not yet sent tpc_finish
// (docs/design.md, rule 2).
func (m *twoPC) linkable() (txn.Key, bool) {
	if m.part == 0 || m.ph == txn.PhaseIdle || m.ph == txn.PhaseFinishing {
		return "", false
	}
	return m.begin.Key, true
}
