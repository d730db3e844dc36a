package tracker

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// PartState is the phase of a participation.
type PartState uint8

const (
	PartBegun PartState = iota + 1
	PartVoted
	PartVoteFailed
	PartFinishSent
	PartInDoubt
	PartCommitted
	PartAborted
)

var partStateNames = [...]string{"", "begun", "voted", "vote-failed", "finish-sent", "in-doubt", "committed", "aborted"}

func (s PartState) String() string {
	if int(s) < len(partStateNames) && s != 0 {
		return partStateNames[s]
	}
	return "PartState(" + strconv.Itoa(int(s)) + ")"
}

// part is one participation. Ended participations stay in their link set
// until it drains, for partial-commit detection.
type part struct {
	id      txn.PartID
	st      int32
	ls      *linkSet
	state   PartState
	began   int64
	votedAt uint64 // seq of the successful vote, 0 if none
	finAt   uint64 // seq of tpc_finish sent, 0 if none
	endedAt uint64 // seq at which it stopped standing voted
	tid     txn.TID
	finCap  txn.TID // highest TID known when tpc_finish was sent: its own is above
	excused bool    // explicit abort after a failed vote elsewhere in the set
	// finFailed: tpc_finish was sent but failed or its connection was lost:
	// the client saw an error mid-finish and aborts the rest of its
	// transaction explicitly, which a failed vote elsewhere must not excuse.
	finFailed bool
	// lostConn: ended by a lost connection, not by the client. The client
	// may not know yet and go on finishing the transaction's other
	// participations after the loss, so its window has no end.
	lostConn bool
	// orphan: in flight when the previous process died (Recover); its
	// outcome comes from the storage's history (recover.go).
	orphan bool
	// ambiguous: an orphan one of whose candidate commits was matched by
	// metadata shared with another orphan (recover.go): whatever outcome
	// it was given may be the other's.
	ambiguous bool
	// damaged: an orphan whose outcome the journal lost with a damaged tail
	// (recover.go): it is resolved once its storage's history reached the
	// live TID, from the commits that carry its metadata (ncand of them,
	// counted up to 2; cand the first).
	damaged bool
	ncand   uint8
	cand    txn.TID
	// src is the remote observer that reported its begin ("" local);
	// gapped: in flight when src declared a gap, so some of its reports
	// may be lost (Gap, settled at the operator's accept).
	src    string
	gapped bool
}

// linkSet groups the participations linked by correlation key (docs/design.md,
// rule 2). It may hold several real transactions; it lives until none of its
// participations is in flight (in doubt counts as in flight).
type linkSet struct {
	key        txn.Key
	info       txn.Info // of its first participation, for reports
	parts      []*part
	inflight   int32
	accepting  int32 // in flight and not yet sent tpc_finish
	lastFailed uint64
	began      int64
	ambiguous  bool // an ambiguous orphan resolution (recover.go)
	// caps: per storage, the lowest finCap of its participations sent
	// tpc_finish (what frontier.go needs, whatever the set's length).
	caps []doneCommit
}

// Step applies one participation event: the entry point of the observers
// (the relay, through Service.Observe). Each kind is one method below.
func (m *Machine) Step(now int64, ev txn.Event) {
	switch ev.Kind {
	case txn.Begin:
		m.PartBegin(now, ev.Part, ev.Storage, ev.Key, ev.Info)
	case txn.Vote:
		m.PartVote(now, ev.Part, ev.OK)
	case txn.FinishSent:
		m.PartFinishSent(now, ev.Part)
	case txn.Finished:
		m.PartFinished(now, ev.Part, ev.TID)
	case txn.Aborted:
		m.PartAborted(now, ev.Part)
	case txn.Lost:
		m.PartLost(now, ev.Part)
	case txn.Resolved:
		m.PartResolved(now, ev.Part, ev.OK, ev.TID)
	case txn.Blind:
		m.Blind(now, ev.Storage, ev.Reason)
	case txn.Unblind:
		m.Unblind(now, ev.Storage, ev.TID)
	default:
		m.step(now)
		m.warn(CodeBadOrder, "unknown event kind %v (ignored)", ev.Kind)
	}
}

func (m *Machine) lookupPart(p txn.PartID, what string) *part {
	pt := m.parts[p]
	if pt == nil {
		m.warn(CodeUnknownPart, "%s for unknown participation %d", what, p)
	}
	return pt
}

// PartBegin: tpc_begin of participation p on storage was seen. key is the
// correlation key (client identity + user/description/extension); p is
// linked with every in-flight participation of the same key that has not
// been sent tpc_finish (a transaction never gains participations once it
// started finishing, docs/design.md, rule 1).
//
// info only describes the transaction in reports (partial commits).
func (m *Machine) PartBegin(now int64, p txn.PartID, storage string, key txn.Key, info txn.Info) {
	m.step(now)
	if m.parts[p] != nil {
		m.warn(CodePartTwice, "participation %d begun twice (ignored)", p)
		return
	}
	s := m.intern(storage)
	ls := m.keyed[key]
	if ls == nil || ls.accepting == 0 {
		ls = m.newLinkSet(key)
		ls.info = info
		m.keyed[key] = ls
	}
	pt := m.newPart()
	pt.id, pt.st, pt.ls, pt.state, pt.began, pt.src = p, s, ls, PartBegun, now, m.src
	m.parts[p] = pt
	if len(ls.parts) > 0 {
		m.join(ls.parts[0].st, s)
		m.st[s].group.busy++
	} else {
		g := m.acquire(s)
		g.busy++
		g.lsets = append(g.lsets, ls)
	}
	ls.parts = append(ls.parts, pt)
	ls.inflight++
	ls.accepting++
	m.ctr.PartsBegun++
}

// PartVote: the reply to p's tpc_vote was seen: ok, or a failure (conflict).
func (m *Machine) PartVote(now int64, p txn.PartID, ok bool) {
	m.step(now)
	pt := m.lookupPart(p, "vote")
	if pt == nil {
		return
	}
	if pt.state != PartBegun {
		m.warn(CodeBadOrder, "vote for participation %d in state %s", p, pt.state)
		if pt.state != PartVoted && pt.state != PartVoteFailed {
			return
		}
	}
	if ok {
		pt.state = PartVoted
		pt.votedAt = m.seq
	} else {
		pt.state = PartVoteFailed
		pt.votedAt = 0
		pt.ls.lastFailed = m.seq
	}
}

// PartFinishSent: p's tpc_finish is about to be forwarded to the server.
func (m *Machine) PartFinishSent(now int64, p txn.PartID) {
	m.step(now)
	pt := m.lookupPart(p, "tpc_finish")
	if pt == nil {
		return
	}
	m.finishSent(pt)
}

func (m *Machine) finishSent(pt *part) {
	switch pt.state {
	case PartVoted:
	case PartBegun, PartVoteFailed:
		if !pt.gapped {
			m.warn(CodeBadOrder, "tpc_finish for participation %d in state %s", pt.id, pt.state)
		}
		pt.votedAt = m.seq
	default:
		m.warn(CodeBadOrder, "tpc_finish for participation %d in state %s (ignored)", pt.id, pt.state)
		return
	}
	pt.state = PartFinishSent
	pt.finAt = m.seq
	pt.finCap = m.st[pt.st].transient
	if m.remote {
		// A remote observer's report comes late: other observers' later
		// commits may already be known, so transient is no bound of this
		// participation's own TID. The published TID is: an unaccounted
		// commit holds publication below it, and this one is unaccounted
		// until this participation's Finished comes.
		pt.finCap = min(pt.finCap, m.st[pt.st].published)
	}
	m.capFinish(pt)
}

// capFinish records in pt's link set that pt, sent tpc_finish, caps its
// storage at pt.finCap (frontier.go), and that it no longer accepts new
// participations (a transaction never gains participations once it started
// finishing).
func (m *Machine) capFinish(pt *part) {
	ls := pt.ls
	found := false
	for k := range ls.caps {
		if ls.caps[k].st == pt.st {
			ls.caps[k].lo = min(ls.caps[k].lo, pt.finCap)
			found = true
		}
	}
	if !found {
		ls.caps = append(ls.caps, doneCommit{st: pt.st, lo: pt.finCap})
	}
	ls.accepting--
	if ls.accepting == 0 && m.keyed[ls.key] == ls {
		delete(m.keyed, ls.key)
	}
}

// PartFinished: the reply to p's tpc_finish carried tid: p committed.
// Also accepted for an in-doubt participation whose reply came late.
func (m *Machine) PartFinished(now int64, p txn.PartID, tid txn.TID) {
	m.step(now)
	pt := m.lookupPart(p, "tpc_finish reply")
	if pt == nil {
		return
	}
	switch pt.state {
	case PartFinishSent, PartInDoubt:
	case PartBegun, PartVoted, PartVoteFailed:
		m.finishSent(pt)
	default:
		m.warn(CodeBadOrder, "tpc_finish reply for participation %d in state %s (ignored)", p, pt.state)
		return
	}
	if pt.state == PartInDoubt {
		m.ctr.Resolved++
		m.emit(Record{Kind: RecResolved, Part: p, Storage: m.st[pt.st].name, TID: tid, Msg: "in-doubt participation committed"})
	}
	m.committed(pt, tid)
}

// committed ends pt as committed with tid. Its commit is accounted for; if
// its storage's history has not reached it yet, pt stays in its link set's
// flight until it does (accounting.go).
func (m *Machine) committed(pt *part, tid txn.TID) {
	pt.tid = tid
	m.noteCommit(pt.st, tid, pt.finAt)
	await := m.account(pt.st, tid)
	m.end(pt, PartCommitted)
	if await {
		m.await(pt.st, awaiting{tid: tid, pt: pt})
		return
	}
	m.leave(pt)
}

// PartAborted: p ended without committing: tpc_abort, or a failed tpc_finish.
func (m *Machine) PartAborted(now int64, p txn.PartID) {
	m.step(now)
	pt := m.lookupPart(p, "abort")
	if pt == nil {
		return
	}
	if pt.state == PartVoted && pt.ls.lastFailed > pt.votedAt {
		// The normal conflict path: another participation of the set
		// failed its vote after this one voted (docs/design.md, rule 6).
		pt.excused = true
	}
	if pt.state == PartInDoubt {
		m.ctr.Resolved++
		m.emit(Record{Kind: RecResolved, Part: p, Storage: m.st[pt.st].name, Msg: "in-doubt participation aborted"})
	}
	if pt.state == PartFinishSent {
		pt.finFailed = true
	}
	m.end(pt, PartAborted)
	m.leave(pt)
}

// PartLost: p's connection was lost. Before tpc_finish was sent it is
// aborted; after, its outcome is in doubt and it keeps its group from
// publishing until PartResolved (or a late PartFinished).
func (m *Machine) PartLost(now int64, p txn.PartID) {
	m.step(now)
	pt := m.lookupPart(p, "connection lost")
	if pt == nil {
		return
	}
	m.lost(pt)
}

func (m *Machine) lost(pt *part) {
	p := pt.id
	pt.lostConn = true
	if pt.state == PartFinishSent {
		pt.state = PartInDoubt
		pt.finFailed = true
		pt.endedAt = m.seq
		m.ctr.InDoubt++
		m.emit(Record{Kind: RecInDoubt, Part: p, Storage: m.st[pt.st].name,
			Msg: fmt.Sprintf("participation %d on storage %s: connection lost after tpc_finish was sent; outcome in doubt", p, m.st[pt.st].name)})
		return
	}
	if pt.state == PartInDoubt {
		return
	}
	m.end(pt, PartAborted)
	m.leave(pt)
}

// PartResolved gives the outcome of an in-doubt participation, found by
// other means (e.g. the storage's iterator): committed with tid, or not.
func (m *Machine) PartResolved(now int64, p txn.PartID, committed bool, tid txn.TID) {
	m.step(now)
	pt := m.lookupPart(p, "resolve")
	if pt == nil {
		return
	}
	if pt.state != PartInDoubt && pt.state != PartFinishSent {
		m.warn(CodeBadOrder, "resolve for participation %d in state %s (ignored)", p, pt.state)
		return
	}
	m.ctr.Resolved++
	if committed {
		m.emit(Record{Kind: RecResolved, Part: p, Storage: m.st[pt.st].name, TID: tid, Msg: "in-doubt participation resolved: committed"})
		m.committed(pt, tid)
		return
	}
	m.emit(Record{Kind: RecResolved, Part: p, Storage: m.st[pt.st].name, Msg: "in-doubt participation resolved: aborted"})
	m.end(pt, PartAborted)
	m.leave(pt)
}

// end records a participation's outcome; leave then takes it out of its
// link set's flight (at once, or once the history confirmed its commit).
func (m *Machine) end(pt *part, outcome PartState) {
	ls := pt.ls
	if pt.state == PartBegun || pt.state == PartVoted || pt.state == PartVoteFailed {
		ls.accepting--
		if ls.accepting == 0 && m.keyed[ls.key] == ls {
			delete(m.keyed, ls.key)
		}
	}
	if pt.endedAt == 0 {
		pt.endedAt = m.seq
	}
	pt.state = outcome
	if outcome == PartCommitted {
		m.ctr.PartsCommitted++
	} else {
		m.ctr.PartsAborted++
	}
	delete(m.parts, pt.id)
}

// leave takes an ended participation out of its link set's flight. When the
// set drains, it is checked for a partial commit before the group may
// publish.
func (m *Machine) leave(pt *part) {
	ls := pt.ls
	ls.inflight--
	s := pt.st
	if ls.inflight == 0 {
		g := m.st[s].group
		g.lsets = remove(g.lsets, ls)
		if !m.checkPartial(ls) {
			cs := m.doneScratch[:0]
			for _, p := range ls.parts {
				if p.state == PartCommitted {
					cs = append(cs, doneCommit{p.st, p.tid - 1, p.tid})
				}
			}
			m.doneScratch = cs
			m.addDone(cs)
		}
		m.freeLinkSet(ls)
		m.ctr.TransactionsEnded++
	}
	m.release(s)
}

// checkPartial applies docs/design.md, rule 6: a participation that voted
// successfully and then ended without committing is half of a partial
// commit if some participation of its set that was sent tpc_finish while it
// stood voted committed — or at any time after its vote, if it ended by a
// lost connection (the client may go on finishing its other participations
// before it notices). An explicit abort following a failed vote in the
// set (after its own vote) is the normal conflict path and is excused —
// unless some participation of the set that was sent tpc_finish while it
// stood voted failed its finish (error or lost connection): then the abort
// may be the cleanup of a transaction that broke mid-finish, and the failed
// vote may belong to another transaction linked by identical metadata.
func (m *Machine) checkPartial(ls *linkSet) bool {
	// Sorted finish seqs of committed and of finish-failed participations:
	// each window test is then a binary search (sets can be long).
	comm, fail := m.u64a[:0], m.u64b[:0]
	for _, q := range ls.parts {
		if q.state == PartCommitted {
			comm = append(comm, q.finAt)
		}
		if q.finFailed {
			fail = append(fail, q.finAt)
		}
	}
	slices.Sort(comm)
	slices.Sort(fail)
	m.u64a, m.u64b = comm, fail
	// inWindow: some x of sorted xs with lo < x < hi.
	inWindow := func(xs []uint64, lo, hi uint64) bool {
		k, _ := slices.BinarySearch(xs, lo+1)
		return k < len(xs) && xs[k] < hi
	}
	var bad []*part
	for _, p := range ls.parts {
		if ls.ambiguous && p.ambiguous && len(ls.parts) > 1 {
			// Its outcome is a guess: the set may be half committed.
			bad = append(bad, p)
			continue
		}
		if p.votedAt == 0 || p.state == PartCommitted {
			continue
		}
		hi := p.endedAt
		if p.lostConn {
			hi = ^uint64(0)
		}
		if p.excused && p.finAt == 0 && !inWindow(fail, p.votedAt, hi) {
			continue
		}
		if inWindow(comm, p.votedAt, hi) {
			bad = append(bad, p)
		}
	}
	if bad == nil {
		return false
	}
	sts := m.scratch[:0]
	for _, p := range ls.parts {
		if !containsIdx(sts, p.st) {
			sts = append(sts, p.st)
		}
	}
	m.scratch = sts
	var b strings.Builder
	fmt.Fprintf(&b, "partial commit (client %q, user %q, description %q, extension %q):",
		ls.info.Client, ls.info.User, ls.info.Description, ls.info.Extension)
	var committed, missing, guessed, unknown []string
	for _, p := range ls.parts {
		if p.state == PartCommitted && !p.ambiguous {
			committed = append(committed, fmt.Sprintf("%s@%s (participation %d)", m.st[p.st].name, p.tid.Hex(), p.id))
		}
	}
	for _, p := range bad {
		switch {
		case p.ambiguous && p.damaged:
			unknown = append(unknown, fmt.Sprintf("%s (participation %d)", m.st[p.st].name, p.id))
		case p.ambiguous:
			guessed = append(guessed, fmt.Sprintf("%s (participation %d)", m.st[p.st].name, p.id))
		default:
			missing = append(missing, fmt.Sprintf("%s (participation %d)", m.st[p.st].name, p.id))
		}
	}
	sort.Strings(committed)
	sort.Strings(missing)
	sort.Strings(guessed)
	sort.Strings(unknown)
	committed, missing, guessed, unknown = clip(committed), clip(missing), clip(guessed), clip(unknown)
	if len(committed) > 0 {
		fmt.Fprintf(&b, " committed on %s;", strings.Join(committed, ", "))
	}
	if len(missing) > 0 {
		fmt.Fprintf(&b, " voted then not committed on %s;", strings.Join(missing, ", "))
	}
	if len(guessed) > 0 {
		fmt.Fprintf(&b, " outcome ambiguous on %s (in flight at a crash of tidstorage; another transaction in flight then had the same metadata);",
			strings.Join(guessed, ", "))
	}
	if len(unknown) > 0 {
		fmt.Fprintf(&b, " outcome unknown on %s (in flight where the damaged journal ends; the storage's history cannot tell: several commits, or another participation, carry its metadata);",
			strings.Join(unknown, ", "))
	}
	if len(missing) > 0 && len(guessed)+len(unknown) == 0 {
		b.WriteString(" a real half: accepting publishes it, cutting the storages back to the held TIDs removes it;")
	} else {
		b.WriteString(" possibly a half: look at the storages' transactions with this metadata; accept if every half is there, else cut the storages back to the held TIDs;")
	}
	b.WriteString(" group held until accepted")
	var cs []doneCommit
	for _, p := range ls.parts {
		if p.state == PartCommitted {
			cs = append(cs, doneCommit{p.st, p.tid - 1, p.tid})
		} else if p.ambiguous {
			// It may have committed anywhere above what was known when
			// tpc_finish was sent: keep its storage below (unknown hi).
			cs = append(cs, doneCommit{st: p.st, lo: p.finCap})
		}
	}
	pn := m.newPin(PinPartial, sts, cs, b.String())
	pn.key = ls.key
	for _, p := range ls.parts {
		pn.parts = append(pn.parts, p.id)
	}
	m.ctr.Partials++
	m.emit(Record{Kind: RecPartial, Pin: pn.id, Storage: m.st[bad[0].st].name, Msg: pn.reason})
	return true
}

func (m *Machine) newPart() *part {
	if n := len(m.freeParts); n > 0 {
		p := m.freeParts[n-1]
		m.freeParts = m.freeParts[:n-1]
		return p
	}
	return &part{}
}

func (m *Machine) newLinkSet(key txn.Key) *linkSet {
	var ls *linkSet
	if n := len(m.freeLS); n > 0 {
		ls = m.freeLS[n-1]
		m.freeLS = m.freeLS[:n-1]
	} else {
		ls = &linkSet{}
	}
	ls.key = key
	ls.began = m.now
	return ls
}

func (m *Machine) freeLinkSet(ls *linkSet) {
	for i, p := range ls.parts {
		*p = part{}
		m.freeParts = append(m.freeParts, p)
		ls.parts[i] = nil
	}
	*ls = linkSet{parts: ls.parts[:0], caps: ls.caps[:0]}
	m.freeLS = append(m.freeLS, ls)
}

// MarshalText makes the state readable in JSON (/status).
func (s PartState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// clip keeps reports readable when a linked set is long.
func clip(xs []string) []string {
	if len(xs) <= 12 {
		return xs
	}
	return append(xs[:12:12], fmt.Sprintf("… and %d more", len(xs)-12))
}
