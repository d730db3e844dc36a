package tracker

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// Accounting: the Machine's side of the ground truth (docs/design.md,
// "Ground truth"): every commit a storage's own history reports is matched
// with what accounts for it. The watcher that reads that history from the
// storage and reports it is another thing, package tracker/history.
//
// A storage is watched once HistoryStart says from which TID on its history
// will be reported: from then on History gives every commit of the storage,
// in TID order, whoever made it (tidstorage's own read-only ZEO connection
// learns them from invalidateTransaction and the iterator). The accounting
// rule: a watched storage's published TID may pass a committed TID only once
// that commit is accounted for — by an observed participation's finish reply
// (or its resolution), a classic COMMIT naming it, the start of the history
// (a clean bootstrap or the restored point), or the operator. So:
//
//   - publication of a watched storage never passes hist, the highest TID
//     its history has reported (what is above is not known to be complete);
//   - a commit the history reports that nothing accounted for is held: its
//     storage is a busy unit capped just below it (so that transactions that
//     end meanwhile become done transactions of its group and stay wholly in
//     or out), reported once after UnaccountedGrace when nothing in flight
//     could still account for it (or after ClassicTimeout), and pinned
//     (PinUnaccounted) until accepted or accounted for late;
//   - an accounted commit above hist keeps its transaction in flight (a
//     participation does not leave its link set, a classic commit holds a
//     confirm pin) until the history reaches it: a transaction is published
//     only once the history vouches for all its commits.

// DefaultUnaccountedGrace is used when Config.UnaccountedGrace is zero.
const DefaultUnaccountedGrace = 5e9 // 5 s, in ns

// unaccounted is a commit reported by the history that nothing accounted for.
type unaccounted struct {
	tid      txn.TID
	seen     int64 // input time it was reported by the history
	reported bool
	blind    bool       // seen while a blind connection was open on the storage
	meta     txn.Commit // with HasMeta once the metadata is known (recover.go)
}

// awaiting is an accounted commit above hist: a committed participation
// (pt) or a classic transaction's confirm pin (pn).
type awaiting struct {
	tid txn.TID
	pt  *part
	pn  *pin
}

// HistoryStart makes storage name watched: its history will report every
// commit above after (everything at or below after counts as accounted:
// a clean bootstrap's last TID, or the point restored after a crash).
// warnOnly: unaccounted commits of this storage are reported but not held
// (a site that knowingly has direct single-storage writers). A second call
// for a watched storage only updates warnOnly.
func (m *Machine) HistoryStart(now int64, name string, after txn.TID, warnOnly bool) {
	m.step(now)
	i := m.intern(name)
	s := &m.st[i]
	s.warnOnly = warnOnly
	if s.watched {
		return
	}
	s.watched = true
	s.hist = after
	if g := s.group; g != nil {
		m.advance(g)
	}
}

// History reports one commit of a watched storage, in TID order.
func (m *Machine) History(now int64, c txn.Commit) {
	m.step(now)
	name, tid := c.Storage, c.TID
	i := m.intern(name)
	s := &m.st[i]
	if !s.watched {
		m.warn(CodeHistoryUnwatched, "history commit %s for storage %s, which is not watched (ignored)", tid.Hex(), name)
		return
	}
	if tid <= s.hist {
		// A replay of what the history already said (reconnect overlap),
		// or the iterator re-reading it after a crash: it may bring the
		// metadata of a held commit that is an orphan's (recover.go).
		m.rehear(i, c)
		return
	}
	s.hist = tid
	m.ctr.HistoryCommits++
	// Accounted reports the history has now passed without naming them
	// were wrong (a TID that never committed): drop them.
	for len(s.acc) > 0 && s.acc[0] < tid {
		m.warn(CodeHistoryMissing, "storage %s: a commit reported at TID %s is not in the storage's history (next commit is %s)", name, s.acc[0].Hex(), tid.Hex())
		s.acc = s.acc[1:]
	}
	if len(s.acc) > 0 && s.acc[0] == tid {
		s.acc = s.acc[1:]
	} else if pt := m.orphanOf(i, c); pt != nil {
		// A participation of the previous process, in doubt: this is its
		// commit (recover.go).
		m.orphanCommitted(pt, tid)
	} else if tid <= s.floor {
		// The previous run published past it: accounted for then
		// (recover.go, the floor).
	} else {
		s.unacc = append(s.unacc, unaccounted{tid: tid, seen: now, blind: s.blind > 0, meta: c})
		if len(s.unacc) == 1 && !s.warnOnly {
			m.hold(m.one(i))
		}
	}
	m.confirm(i)
	m.settle(i)
	if g := s.group; g != nil {
		m.advance(g)
	}
}

// HistoryPosition returns how far the history of a watched storage has
// reported (ok false if it is not watched): where its watcher resumes.
func (m *Machine) HistoryPosition(name string) (txn.TID, bool) {
	i, ok := m.stIdx[name]
	if !ok || !m.st[i].watched {
		return 0, false
	}
	return m.st[i].hist, true
}

// one returns a one-storage slice in scratch space.
func (m *Machine) one(i int32) []int32 {
	m.oneIdx[0] = i
	return m.oneIdx[:]
}

// account records that a commit of storage i was accounted for. It returns
// true when the history has not reached it yet: the caller keeps its
// transaction in flight until confirm.
func (m *Machine) account(i int32, tid txn.TID) bool {
	s := &m.st[i]
	if !s.watched {
		return false
	}
	if tid > s.hist {
		k, found := slices.BinarySearch(s.acc, tid)
		if !found {
			s.acc = slices.Insert(s.acc, k, tid)
		}
		// At or below the floor the previous run's published point vouches
		// for it; the history still consumes it from acc.
		return tid > s.floor
	}
	for k := range s.unacc {
		if s.unacc[k].tid == tid {
			if s.unacc[k].reported {
				m.emit(Record{Kind: RecAccounted, Storage: s.name, TID: tid,
					Msg: fmt.Sprintf("storage %s: commit %s reported unaccounted is now accounted for", s.name, tid.Hex())})
			}
			s.unacc = slices.Delete(s.unacc, k, k+1)
			m.unaccChanged(i)
			break
		}
	}
	return false
}

// unaccChanged releases what s.unacc no longer needs: the hold when it is
// empty, the pin when none of its commits is left.
func (m *Machine) unaccChanged(i int32) {
	s := &m.st[i]
	if p := s.unaccPin; p != nil && (len(s.unacc) == 0 || s.unacc[0].tid > p.upto) {
		s.unaccPin = nil
		m.releasePin(p, false, false)
	}
	if len(s.unacc) == 0 && !s.warnOnly {
		m.release(i)
	}
}

// await keeps a committed unit in flight until the history reaches tid.
func (m *Machine) await(i int32, a awaiting) {
	m.st[i].awaiting = append(m.st[i].awaiting, a)
	m.ctr.AwaitingHistory++
}

// confirm lets go of the units whose commits the history has now reached.
func (m *Machine) confirm(i int32) {
	s := &m.st[i]
	if len(s.awaiting) == 0 {
		return
	}
	var due []awaiting
	keep := s.awaiting[:0]
	for _, a := range s.awaiting {
		if a.tid <= s.vouched() {
			due = append(due, a)
		} else {
			keep = append(keep, a)
		}
	}
	clear(s.awaiting[len(keep):])
	s.awaiting = keep
	for _, a := range due {
		switch {
		case a.pt != nil:
			m.leave(a.pt)
		case a.pn != nil:
			a.pn.waitLeft--
			if a.pn.waitLeft == 0 {
				m.releasePin(a.pn, false, true)
			}
		}
	}
}

// holdClassic keeps a classic transaction's commits on watched storages in
// flight until the history reaches them: a confirm pin over all of its
// storages, capping each just below its commit (wholly out meanwhile).
// Called while the transaction's own unit still holds sts.
func (m *Machine) holdClassic(sts []int32, cs []doneCommit) {
	var pending []doneCommit
	for _, c := range cs {
		if s := &m.st[c.st]; s.watched && c.hi > s.vouched() {
			pending = append(pending, c)
		}
	}
	if len(pending) == 0 {
		return
	}
	p := m.newPin(PinConfirm, sts, append([]doneCommit(nil), cs...), "")
	for _, c := range pending {
		p.waitLeft++
		m.await(c.st, awaiting{tid: c.hi, pn: p})
	}
}

// explained: something in flight on storage i could still account for a
// commit (a participation sent tpc_finish or in doubt, or a classic
// transaction, whose report has not come).
func (m *Machine) explained(i int32) bool {
	g := m.st[i].group
	if g == nil {
		return false
	}
	for _, c := range g.classic {
		if len(c.sts) == 0 || containsIdx(c.sts, i) {
			return true
		}
	}
	for _, ls := range g.lsets {
		for _, p := range ls.parts {
			// A participation a sidecar's gap left in flight explains
			// nothing: its later reports were lost (Gap).
			if p.st == i && (p.state == PartFinishSent || p.state == PartInDoubt) && !p.gapped {
				return true
			}
		}
	}
	return false
}

// reportUnaccounted reports, once, the unaccounted commits that waited long
// enough (Tick): held storages get a PinUnaccounted the operator can accept.
func (m *Machine) reportUnaccounted(now int64) {
	grace := int64(m.cfg.UnaccountedGrace)
	if grace == 0 {
		grace = DefaultUnaccountedGrace
	}
	resend := int64(m.cfg.ResendWait)
	if resend == 0 {
		resend = int64(DefaultResendWait)
	}
	resend = max(resend, grace)
	for _, i := range m.sorted {
		s := &m.st[i]
		if len(s.unacc) == 0 {
			continue
		}
		wait, awaited := grace, containsIdx(m.awaited, i)
		if awaited {
			wait = resend
		}
		// The last commit due decides: everything below it is due too.
		due := -1
		for k := range s.unacc {
			if s.unacc[k].tid <= s.floor {
				// Accounted for by the previous run's published point; it
				// waits only for the orphans it may belong to (settle).
				continue
			}
			age := now - s.unacc[k].seen
			if !s.unacc[k].reported && age >= wait && (age >= m.timeout || !m.explained(i)) {
				due = k
			}
		}
		if due < 0 {
			continue
		}
		for k := 0; k <= due; k++ {
			u := &s.unacc[k]
			if u.reported || u.tid <= s.floor {
				continue
			}
			u.reported = true
			m.ctr.Unaccounted++
			s.unaccTotal++
			held := "held: publication of the storage stops just below it until it is accepted (tidstorage accept-partial) or accounted for"
			if s.warnOnly {
				held = "not held (the storage is configured to only warn)"
			}
			if awaited {
				held += fmt.Sprintf("; a sidecar that proxies it was still behind after %v (down, resending or refused: see tidstorage status)", time.Duration(resend))
			}
			m.emit(Record{Kind: RecUnaccounted, Storage: s.name, TID: u.tid,
				Msg: fmt.Sprintf("unaccounted commit %s on storage %s: the storage's history has it but no observed participation or classic COMMIT reported it; %s", u.tid.Hex(), s.name, held)})
		}
		if s.warnOnly {
			s.unacc = slices.Delete(s.unacc, 0, due+1)
			continue
		}
		upto := s.unacc[due].tid
		if p := s.unaccPin; p != nil {
			// The pin now covers more: its reason says the whole range.
			p.upto = max(p.upto, upto)
			p.reason = m.unaccountedReason(i, p.upto)
			continue
		}
		p := m.newPin(PinUnaccounted, m.one(i), nil, m.unaccountedReason(i, upto))
		p.upto = upto
		s.unaccPin = p
		m.emit(Record{Kind: RecPinned, Storage: s.name, Pin: p.id, Msg: p.reason})
	}
}

// unaccountedReason is an unaccounted pin's reason: the range of commits it
// covers (those at or below the floor wait only for settle, recover.go),
// and what they may be.
func (m *Machine) unaccountedReason(i int32, upto txn.TID) string {
	s := &m.st[i]
	first := upto
	for _, u := range s.unacc {
		if u.tid > s.floor {
			first = u.tid
			break
		}
	}
	span := "commit " + upto.Hex()
	if first < upto {
		span = "commits from " + first.Hex() + " to " + upto.Hex()
	}
	why := "a client that bypasses the proxy, or a crash of tidstorage"
	if m.lostReports {
		why = "a client that bypasses the proxy, or a commit whose report was lost with the damaged journal's tail at the last restart " +
			"(each may be whole or half of a transaction: check before accepting)"
	}
	return fmt.Sprintf("storage %s has %s that nothing accounted for: %s", s.name, span, why)
}

// accountBlind accounts for the commits seen while the storage was blind,
// up to lastTID (Unblind).
func (m *Machine) accountBlind(i int32, lastTID txn.TID) {
	s := &m.st[i]
	k := 0
	for _, u := range s.unacc {
		if u.blind && u.tid <= lastTID {
			continue
		}
		s.unacc[k] = u
		k++
	}
	if k == len(s.unacc) {
		return
	}
	clear(s.unacc[k:])
	s.unacc = s.unacc[:k]
	m.unaccChanged(i)
}

// acceptAllUnaccounted accepts every unaccounted pin at once. The tracker
// cannot tell which unaccounted commits of different storages belong to one
// transaction (a client that bypassed the proxy may have committed on A and
// B), so accepting one storage's hold alone could publish half of such a
// transaction while the other half is still held: the decision covers them
// all, and waits until every held commit has been reported to the operator.
func (m *Machine) acceptAllUnaccounted() error {
	for _, i := range m.sorted {
		s := &m.st[i]
		if s.warnOnly {
			continue
		}
		for _, u := range s.unacc {
			if !u.reported && u.tid > s.floor {
				return ErrUnaccountedPending
			}
		}
	}
	var live []StorageTID
	for _, i := range m.sorted {
		if s := &m.st[i]; s.watched {
			live = append(live, StorageTID{Storage: s.name, TID: s.hist})
		}
	}
	m.settleGapped(live)
	m.capRemoteInFlight()
	var ps []*pin
	for _, p := range m.pins {
		if p.kind == PinUnaccounted {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return nil // settling accounted for them all
	}
	// Hold the union across the releases so that nothing publishes
	// between two of them.
	var sts []int32
	for _, p := range ps {
		sts = append(sts, p.sts[0])
	}
	m.hold(sts)
	for _, p := range ps {
		m.acceptUnaccounted(p)
		m.releasePin(p, true, true)
	}
	m.release(sts[0])
	return nil
}

// ErrHistoryBehind is returned by AcceptUnaccounted while a storage's
// history has not yet reached the live last TID read for the accept: a
// commit that may be another half of an accepted one is not seen yet.
var ErrHistoryBehind = errors.New("tracker: a storage's history has not reached its live last TID yet; retry")

// AcceptUnaccounted is the operator's accept of an unaccounted pin, made
// exact with the live last TID of every watched storage read just before:
// once each storage's history has reached its live TID, every commit held
// as unaccounted at or below it, on every storage, is accepted in one input.
// A bypassing client's transaction committed before the read is then
// accepted whole (all its halves are in the histories by then), never one
// half alone; what is committed after the read is not covered.
func (m *Machine) AcceptUnaccounted(now int64, id uint64, live []StorageTID) error {
	m.step(now)
	var target *pin
	for _, p := range m.pins {
		if p.id == id {
			target = p
		}
	}
	if target == nil || target.kind != PinUnaccounted {
		if target == nil {
			return fmt.Errorf("%w: %d", ErrNoSuchPin, id)
		}
		return m.AcceptPartial(now, id)
	}
	for _, v := range live {
		if i, ok := m.stIdx[v.Storage]; ok && m.st[i].watched && m.st[i].hist < v.TID {
			return fmt.Errorf("%w: storage %s at %s, live %s", ErrHistoryBehind, v.Storage, m.st[i].hist.Hex(), v.TID.Hex())
		}
	}
	m.settleGapped(live)
	m.capRemoteInFlight()
	var sts []int32
	for _, v := range live {
		if i, ok := m.stIdx[v.Storage]; ok && len(m.st[i].unacc) > 0 && !m.st[i].warnOnly {
			sts = append(sts, i)
		}
	}
	if len(sts) == 0 {
		m.releasePin(target, true, false)
		return nil
	}
	m.hold(sts) // nothing publishes between two storages' releases
	for _, i := range sts {
		s := &m.st[i]
		upto := live[0].TID
		for _, v := range live {
			if v.Storage == s.name {
				upto = v.TID
			}
		}
		n := 0
		for n < len(s.unacc) && s.unacc[n].tid <= upto {
			m.noteCommit(i, s.unacc[n].tid, 0)
			n++
		}
		s.unacc = slices.Delete(s.unacc, 0, n)
		if p := s.unaccPin; p != nil && (len(s.unacc) == 0 || s.unacc[0].tid > p.upto) {
			s.unaccPin = nil
			m.releasePin(p, true, true)
		}
		if len(s.unacc) == 0 {
			m.release(i)
		}
	}
	if !target.released {
		m.releasePin(target, true, true)
	}
	m.release(sts[0])
	return nil
}

// Suspect holds storage name below tid as if its history had shown tid
// unaccounted: after an unclean stop with no journal and no point to resume
// from, the live state of the storage is unknown, and it is published only
// once the operator accepts it.
func (m *Machine) Suspect(now int64, name string, tid txn.TID) {
	m.step(now)
	if tid == 0 {
		return
	}
	i := m.intern(name)
	s := &m.st[i]
	k, _ := slices.BinarySearchFunc(s.unacc, tid, func(u unaccounted, t txn.TID) int { return cmp.Compare(u.tid, t) })
	if k < len(s.unacc) && s.unacc[k].tid == tid {
		return
	}
	s.unacc = slices.Insert(s.unacc, k, unaccounted{tid: tid, seen: now})
	if len(s.unacc) == 1 && !s.warnOnly {
		m.hold(m.one(i))
	}
	if g := s.group; g != nil {
		m.advance(g)
	}
}

// acceptUnaccounted is the operator's decision on an unaccounted pin: the
// commits it covers count as accounted from now on.
func (m *Machine) acceptUnaccounted(p *pin) {
	i := p.sts[0]
	s := &m.st[i]
	k := 0
	for k < len(s.unacc) && s.unacc[k].tid <= p.upto {
		m.noteCommit(i, s.unacc[k].tid, 0)
		k++
	}
	s.unacc = slices.Delete(s.unacc, 0, k)
	if s.unaccPin == p {
		s.unaccPin = nil
	}
	if k > 0 && len(s.unacc) == 0 && !s.warnOnly {
		m.release(i)
	}
}
