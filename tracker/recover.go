package tracker

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/input"
)

// Recovery after a crash of the tidstorage process (docs/design.md,
// "Ground truth"): the Service replays its journal through a fresh Machine,
// which then holds exactly the state the dead process had. Recover then
// says that every connection of that process is gone:
//
//   - a participation not yet sent tpc_finish is lost (it did not commit
//     through the dead relay; after a successful vote it may be half of a
//     partial commit, which the usual checks find);
//   - a participation sent tpc_finish is in doubt and an orphan: its
//     outcome comes from the storage's history. A history commit above what
//     was known when tpc_finish was sent, with the participation's user,
//     description and extension, is its commit; once the history has
//     reached the storage's last TID read at restart (nothing of the dead
//     connections can commit after that: ZEO aborts a disconnected client's
//     transaction), the orphans left did not commit.
//
// Everything the history reports that the replayed journal did not account
// for is held and reported (accounting.go), so no published point includes
// half of a transaction of the crash, and publication resumes without an
// operator when nothing was really half committed.

// Recover marks every participation in flight as lost with its connection
// (in doubt after tpc_finish) and records each storage's last TID read now.
//
// floor is the point the previous run published last (its status file's
// last line): when the replayed journal ends behind it (a damaged tail cut,
// or appends that failed before the crash), it is the replayed state's
// floor, so that published TIDs never decrease across the restart; a
// storage whose live last TID is below it went back (a restore in place, a
// cut) and gets no floor. Every commit at or below the floor is accounted
// for: the previous run published past it.
//
// damaged says that the journal's tail was lost: what the previous run
// observed after its last good record is gone, so a participation that had
// not been sent tpc_finish there may have voted and committed since. Every
// participation in flight is then an orphan whose outcome is read from the
// history once it reached the live TID: the one commit in its window that
// carries its metadata is its commit, none means it did not commit, and
// several (or one another orphan with the same metadata could own) leave
// its outcome unknown, which pins its transaction when it spans several
// participations. It is never concluded that it did not commit on a storage
// whose history has a commit it could own.
func (m *Machine) Recover(now int64, live, floor []StorageTID, damaged bool) {
	m.step(now)
	m.clean = false
	ids := m.partIDs(func(txn.PartID, *part) bool { return true })
	if damaged {
		m.lostReports = true
		// An orphan not yet sent tpc_finish at the cut may have voted
		// after it: its vote counts as later than everything journaled,
		// and its finish later still.
		voteSeq := m.seq
		m.seq++
		for _, id := range ids {
			m.damageOrphan(m.parts[id], voteSeq)
		}
	}
	// The floor first: nothing that ends below publishes under it.
	m.applyFloor(live, floor)
	m.orphans(ids)
	// The blind connections died with the process too: nothing will
	// unblind them. Their storages are released as by Unblind with the
	// live last TID (rule 5: what they committed unseen, seen by the
	// history while they were open, is accounted for up to it).
	// The commits they made are accounted for once the storage settled:
	// an orphan's commit made while one was open is its, first.
	for _, v := range live {
		i := m.intern(v.Storage)
		if s := &m.st[i]; s.blind > 0 {
			if v.TID != 0 && (!s.known || v.TID > s.transient) {
				s.transient = v.TID
				m.markKnown(i)
			}
			s.blind = 0
			s.blindSettle = v.TID != 0
			p := s.blindPin
			s.blindPin = nil
			m.releasePin(p, false, false)
		}
	}
	for _, v := range live {
		i := m.intern(v.Storage)
		s := &m.st[i]
		s.settleAt, s.settling = v.TID, true
		m.resolveHeld(i)
		m.settle(i)
	}
	msg := fmt.Sprintf("recovered from the journal after an unclean stop: %d participations of the previous run were in flight; "+
		"publication waits until the storages' history accounts for every commit since", len(ids))
	if damaged {
		msg = fmt.Sprintf("recovered from a DAMAGED journal after an unclean stop: what the previous run observed after its last good record is lost; "+
			"the %d participations in flight there are resolved from the storages' history (committed, not committed, or unknown: reported); "+
			"commits after the previous run's last published point that nothing accounts for are held as unaccounted", len(ids))
	}
	m.emit(Record{Kind: RecWarning, Code: CodeUncleanStart, Msg: msg})
	for _, i := range m.sorted {
		if g := m.st[i].group; g != nil {
			m.advance(g)
		}
	}
}

// damageOrphan prepares a participation of a journal whose tail was lost:
// one not yet sent tpc_finish is taken as sent it (its vote at voteSeq, its
// finish after it), capped at what its storage had committed or reported
// by the end of the journal (its own commit, if any, is later); every one
// is resolved by counting its candidate commits (settle).
func (m *Machine) damageOrphan(pt *part, voteSeq uint64) {
	pt.damaged = true
	switch pt.state {
	case PartBegun, PartVoted:
	default:
		return
	}
	if pt.state == PartBegun {
		pt.votedAt = voteSeq
	}
	pt.state = PartFinishSent
	pt.finAt = m.seq
	s := &m.st[pt.st]
	pt.finCap = s.transient
	if s.watched {
		pt.finCap = max(pt.finCap, s.hist)
	}
	m.capFinish(pt)
}

// Floor applies the previous run's last published point as a floor
// (applyFloor) without ending anything in flight: a fleet tracker's start,
// whose sidecars' participations go on.
func (m *Machine) Floor(now int64, live, floor []StorageTID) {
	m.step(now)
	m.applyFloor(live, floor)
	for _, i := range m.sorted {
		if g := m.st[i].group; g != nil {
			m.advance(g)
		}
	}
}

// applyFloor raises the replayed state to the previous run's last
// published point (see Recover), for the storages whose live TID has not
// gone below it.
func (m *Machine) applyFloor(live, floor []StorageTID) {
	var raised []int32
	for _, f := range floor {
		if f.TID == 0 {
			continue
		}
		if k := slices.IndexFunc(live, func(v StorageTID) bool { return v.Storage == f.Storage }); k >= 0 && live[k].TID < f.TID {
			continue // the storage went back: no floor (a new epoch of the status file)
		}
		i := m.intern(f.Storage)
		s := &m.st[i]
		if s.hasPublished && f.TID <= s.published {
			continue
		}
		s.floor = max(s.floor, f.TID)
		if !s.known || f.TID > s.transient {
			s.transient = f.TID
		}
		m.markKnown(i)
		raised = append(raised, i)
	}
	// Every storage at its floor first, then what the floor releases.
	for _, i := range raised {
		if m.bootstrapped {
			m.publishValue(i, m.st[i].floor)
		}
	}
	for _, i := range raised {
		m.confirm(i)
	}
}

// RunSpan is how many participation ids one run of a remote observer
// takes (input.RunSpan).
const RunSpan = input.RunSpan

// RecoverRun is Recover for one run of a remote observer that restarted (a
// sidecar): only the participations with ids run .. run+RunSpan-1 (the run: its first id) are
// lost with their connections (in doubt after tpc_finish, then settled by
// the storages' history up to live, read by the sidecar after its
// restart); the other observers' participations go on.
func (m *Machine) RecoverRun(now int64, run txn.PartID, live []StorageTID) {
	m.step(now)
	ids := m.partIDs(func(id txn.PartID, _ *part) bool { return id >= run && id-run < RunSpan })
	m.orphans(ids)
	m.settleOrphansAt(live)
	if len(ids) > 0 {
		m.emit(Record{Kind: RecWarning, Code: CodeUncleanStart, Msg: fmt.Sprintf(
			"a sidecar restarted: %d participations of its previous run (ids from %d) were in flight; "+
				"those that sent tpc_finish are resolved from the storages' history", len(ids), run)})
	}
}

// partIDs returns the ids of the participations in flight that keep
// selects, ascending (map order must not leak into the Machine).
func (m *Machine) partIDs(keep func(txn.PartID, *part) bool) []txn.PartID {
	var ids []txn.PartID
	for id, pt := range m.parts {
		if keep(id, pt) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// orphans declares the participations ids lost with their connections (a
// process or a sidecar's run that died): orphans, in doubt after
// tpc_finish, resolved from the storages' history.
func (m *Machine) orphans(ids []txn.PartID) {
	for _, id := range ids {
		pt := m.parts[id]
		pt.orphan = true
		m.lost(pt)
	}
}

// settleOrphansAt: nothing of the orphans' connections commits after live
// (each storage's last TID read once they were gone); each storage's
// orphans take the commits its history already reported (it went on while
// their observer was away), and the rest settle once it reaches live.
func (m *Machine) settleOrphansAt(live []StorageTID) {
	for _, v := range live {
		i := m.intern(v.Storage)
		s := &m.st[i]
		if !s.settling || v.TID > s.settleAt {
			s.settleAt = v.TID
		}
		s.settling = true
		m.resolveHeld(i)
		m.settle(i)
		if g := s.group; g != nil {
			m.advance(g)
		}
	}
}

// SettleAt gives the last TID of a storage read after Recover (one that
// could not be read at restart): its orphans are settled once the history
// reaches it.
func (m *Machine) SettleAt(now int64, name string, tid txn.TID) {
	m.step(now)
	i := m.intern(name)
	s := &m.st[i]
	if s.settling && s.settleAt >= tid {
		return
	}
	s.settleAt, s.settling = tid, true
	m.settle(i)
	if g := s.group; g != nil {
		m.advance(g)
	}
}

// orphanOf returns the orphan participation on storage i whose commit c is.
// When several orphans match (identical metadata), the commit is given to
// the lowest id, but it may be another's: every candidate's linked set is
// marked ambiguous, and checkPartial pins such a set if it spans more than
// one participation (its outcome on this storage is not known). An orphan
// of a damaged journal is not resolved here: c is counted as one of its
// candidates (settle resolves it).
func (m *Machine) orphanOf(i int32, c txn.Commit) *part {
	// Nothing of the dead connections commits after the live last TID
	// read at restart (ZEO aborts a disconnected client's transaction);
	// before it is known (SettleAt), nothing bounds the match.
	if m.st[i].settling && c.TID > m.st[i].settleAt {
		return nil
	}
	if !c.HasMeta {
		// A damaged orphan's candidate cannot be told: its outcome is
		// unknown rather than wrongly "not committed".
		for _, pt := range m.parts {
			if pt.damaged && pt.st == i && pt.state == PartInDoubt && pt.finCap < c.TID {
				pt.ncand = 2
			}
		}
		return nil
	}
	var best *part
	n := 0
	for _, pt := range m.parts {
		if !pt.orphan || pt.st != i || pt.state != PartInDoubt || pt.finCap >= c.TID {
			continue
		}
		in := pt.ls.info
		if in.User != c.User || in.Description != c.Description || in.Extension != c.Extension {
			continue
		}
		if pt.damaged {
			if pt.ncand == 0 || pt.cand != c.TID {
				if pt.ncand == 0 {
					pt.cand = c.TID
				}
				pt.ncand = min(pt.ncand+1, 2)
			}
			continue
		}
		n++
		if best == nil || pt.id < best.id {
			best = pt
		}
	}
	if n > 1 {
		for _, pt := range m.parts {
			if pt.orphan && !pt.damaged && pt.st == i && pt.state == PartInDoubt && pt.finCap < c.TID {
				in := pt.ls.info
				if in.User == c.User && in.Description == c.Description && in.Extension == c.Extension {
					pt.ambiguous = true
					pt.ls.ambiguous = true
				}
			}
		}
	}
	return best
}

// resolveHeld gives the orphans of storage i the commits its history
// already reported: the history may have reported an orphan's commit
// before the crash (ZEO invalidates before it answers the committer), or
// while a restarted sidecar was down; it is held unaccounted and, with its
// metadata, it is the orphan's.
func (m *Machine) resolveHeld(i int32) {
	var held []txn.Commit
	for _, u := range m.st[i].unacc {
		if u.meta.HasMeta {
			held = append(held, u.meta)
		}
	}
	for _, c := range held {
		if pt := m.orphanOf(i, c); pt != nil {
			m.orphanCommitted(pt, c.TID)
		}
	}
}

// orphanCommitted resolves an orphan with its commit found in the history.
func (m *Machine) orphanCommitted(pt *part, tid txn.TID) {
	m.ctr.Resolved++
	m.emit(Record{Kind: RecResolved, Part: pt.id, Storage: m.st[pt.st].name, TID: tid,
		Msg: "in-doubt participation of the previous run resolved from the storage's history: committed"})
	m.committed(pt, tid)
}

// rehear takes a history commit at or below hist again: if it is a held
// (unaccounted) commit whose metadata was not known, it may be an orphan's.
// After Recover the Service re-reads, with the iterator, every commit above
// each storage's published TID, so that orphans whose commits were
// reported before the crash without metadata are matched.
func (m *Machine) rehear(i int32, c txn.Commit) {
	s := &m.st[i]
	if !c.HasMeta {
		return
	}
	k := slices.IndexFunc(s.unacc, func(u unaccounted) bool { return u.tid == c.TID })
	if k < 0 || s.unacc[k].meta.HasMeta {
		return
	}
	s.unacc[k].meta = c
	if pt := m.orphanOf(i, c); pt != nil {
		m.orphanCommitted(pt, c.TID)
	}
	m.settle(i)
	if g := s.group; g != nil {
		m.advance(g)
	}
}

// settle ends the orphans of storage i once its history reached the last
// TID read at restart: they did not commit — or, for an orphan of a
// damaged journal, the history's commits that carry its metadata decide
// (Recover). It waits while a held commit that may be an orphan's has no
// metadata yet (rehear). Then the held commits at or below the floor are
// accounted for: the previous run published past them.
func (m *Machine) settle(i int32) {
	s := &m.st[i]
	if !s.settling || !s.watched || s.hist < s.settleAt {
		return
	}
	for _, u := range s.unacc {
		if u.meta.HasMeta || u.tid > s.settleAt {
			continue
		}
		for _, pt := range m.parts {
			if pt.orphan && pt.st == i && pt.state == PartInDoubt && pt.finCap < u.tid {
				return
			}
		}
	}
	s.settling = false
	var left []*part
	for _, pt := range m.parts {
		if pt.orphan && pt.st == i && pt.state == PartInDoubt {
			left = append(left, pt)
		}
	}
	slices.SortFunc(left, func(a, b *part) int { return cmp.Compare(a.id, b.id) })
	// A damaged orphan's one candidate is its commit unless another
	// damaged orphan of this storage with the same metadata could own it.
	contested := func(pt *part) bool {
		for _, q := range left {
			if q != pt && q.damaged && q.ncand > 0 && sameMeta(q.ls.info, pt.ls.info) {
				return true
			}
		}
		return false
	}
	var committed []*part
	var cTIDs []txn.TID
	for _, pt := range left {
		if pt.damaged && pt.ncand == 1 && !contested(pt) {
			committed = append(committed, pt)
			cTIDs = append(cTIDs, pt.cand)
		}
	}
	for k, pt := range committed {
		m.ctr.Resolved++
		m.emit(Record{Kind: RecResolved, Part: pt.id, Storage: s.name, TID: cTIDs[k],
			Msg: "participation of the previous run, whose outcome the damaged journal lost, resolved from the storage's history: committed (the one commit carrying its metadata)"})
		m.committed(pt, cTIDs[k])
	}
	for _, pt := range left {
		if pt.state != PartInDoubt {
			continue
		}
		m.ctr.Resolved++
		switch {
		case !pt.damaged && !pt.ambiguous:
			m.emit(Record{Kind: RecResolved, Part: pt.id, Storage: s.name,
				Msg: "in-doubt participation of the previous run resolved from the storage's history: not committed"})
		case pt.damaged && pt.ncand == 0:
			m.emit(Record{Kind: RecResolved, Part: pt.id, Storage: s.name,
				Msg: fmt.Sprintf("participation of the previous run, whose outcome the damaged journal lost, resolved from the storage's history: not committed (no commit carries its metadata up to %s)", s.settleAt.Hex())})
		default:
			// Its commit may be one given to another orphan with the same
			// metadata (orphanOf), or one of several candidates.
			pt.ambiguous = true
			pt.ls.ambiguous = true
			why := "another participation in flight then had the same metadata and may own the commit that carries it"
			if pt.damaged {
				why = "the damaged journal lost it, and " + why
				if pt.ncand > 1 {
					why = "the damaged journal lost it, and several commits carry its metadata"
				}
			}
			m.emit(Record{Kind: RecWarning, Code: CodeOutcomeUnknown, Storage: s.name, Part: pt.id, Msg: fmt.Sprintf(
				"participation %d on storage %s of the previous run: outcome UNKNOWN (%s, up to %s); "+
					"a transaction it belongs to with other participations is pinned as a possible partial commit", pt.id, s.name, why, s.settleAt.Hex())})
		}
		m.end(pt, PartAborted)
		m.leave(pt)
	}
	if s.blindSettle {
		s.blindSettle = false
		m.accountBlind(i, s.settleAt)
	}
	if s.floor > 0 {
		n := 0
		for n < len(s.unacc) && s.unacc[n].tid <= s.floor {
			n++
		}
		if n > 0 {
			s.unacc = slices.Delete(s.unacc, 0, n)
			m.unaccChanged(i)
		}
	}
}

func sameMeta(a, b txn.Info) bool {
	return a.User == b.User && a.Description == b.Description && a.Extension == b.Extension
}

// Quiescent reports whether nothing is in flight or held: the state is then
// wholly described by a Snapshot, and the journal can restart from one.
func (m *Machine) Quiescent() bool {
	if len(m.parts) > 0 || len(m.classic) > 0 || len(m.pins) > 0 {
		return false
	}
	for i := range m.st {
		s := &m.st[i]
		if s.group != nil || len(s.unacc) > 0 || len(s.awaiting) > 0 || len(s.acc) > 0 || s.blind > 0 || s.settling {
			return false
		}
	}
	return true
}

// Snapshot is the state of a quiescent Machine (input.Snapshot, what a
// Restore input carries).
type Snapshot = input.Snapshot

// StorageSnapshot is one storage in a Snapshot.
type StorageSnapshot = input.StorageSnapshot

// SourceSeq is one remote observer's position in a Snapshot.
type SourceSeq = input.SourceSeq

// Snapshot returns the state; only meaningful when Quiescent.
func (m *Machine) Snapshot() Snapshot {
	sn := Snapshot{NextPin: m.nextPin, Bootstrapped: m.bootstrapped, BootRequested: m.bootRequested}
	for src, seq := range m.sources {
		sn.Sources = append(sn.Sources, SourceSeq{Source: src, Seq: seq})
	}
	slices.SortFunc(sn.Sources, func(a, b SourceSeq) int { return strings.Compare(a.Source, b.Source) })
	for _, i := range m.sorted {
		s := &m.st[i]
		sn.Storages = append(sn.Storages, StorageSnapshot{Storage: s.name, Published: s.published, HasPublished: s.hasPublished,
			Transient: s.transient, Known: s.known, Watched: s.watched, WarnOnly: s.warnOnly, Hist: s.hist})
	}
	return sn
}

// Restore sets a fresh Machine to a snapshot (the first input of a journal).
func (m *Machine) Restore(now int64, sn Snapshot) {
	m.step(now)
	for _, v := range sn.Storages {
		i := m.intern(v.Storage)
		s := &m.st[i]
		s.published, s.hasPublished, s.transient = v.Published, v.HasPublished, v.Transient
		s.watched, s.warnOnly, s.hist = v.Watched, v.WarnOnly, v.Hist
		if v.HasPublished {
			s.pubAt = now
		}
		if v.Known {
			m.markKnown(i)
		}
	}
	for _, v := range sn.Sources {
		m.sources[v.Source] = max(m.sources[v.Source], v.Seq)
	}
	m.nextPin = max(m.nextPin, sn.NextPin)
	m.bootRequested = m.bootRequested || sn.BootRequested
	if sn.Bootstrapped {
		m.bootRequested = true
		m.bootRestored = true
		m.missing = 0
		m.checkBootstrapped()
	}
}

// HistoryResume is where the watcher of a watched storage resumes after
// Recover: its history position, or just below the lowest held commit whose
// metadata is not known yet, so that the iterator reports it again with its
// metadata (rehear) — an orphan's commit announced before the crash by a
// bare invalidation is recognised then. ok is false if it is not watched.
func (m *Machine) HistoryResume(name string) (txn.TID, bool) {
	i, ok := m.stIdx[name]
	if !ok || !m.st[i].watched {
		return 0, false
	}
	s := &m.st[i]
	pos := s.hist
	for _, u := range s.unacc {
		if !u.meta.HasMeta && u.tid <= pos {
			pos = u.tid - 1
			break
		}
	}
	return pos, true
}
