package tracker

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// ctxn is a classic (line protocol) transaction.
type ctxn struct {
	id         string
	sts        []int32
	caps       []txn.TID // per sts: highest TID known at BEGIN (its commits are above)
	began      int64
	beganSeq   uint64
	prev, next *ctxn // in-flight list in begin order; nil when lost
	pin        *pin  // set once lost
}

func (m *Machine) newCtxn() *ctxn {
	if n := len(m.freeClassic); n > 0 {
		c := m.freeClassic[n-1]
		m.freeClassic = m.freeClassic[:n-1]
		return c
	}
	return &ctxn{}
}

func (m *Machine) freeCtxn(c *ctxn) {
	*c = ctxn{sts: c.sts[:0], caps: c.caps[:0]}
	m.freeClassic = append(m.freeClassic, c)
}

func (m *Machine) unlinkCtxn(c *ctxn) {
	c.prev.next = c.next
	c.next.prev = c.prev
	c.prev, c.next = nil, nil
}

func (m *Machine) names(sts []int32) string {
	ns := make([]string, len(sts))
	for i, s := range sts {
		ns[i] = m.st[s].name
	}
	sort.Strings(ns)
	return strings.Join(ns, ", ")
}

// ClassicBegin: BEGIN id storages. A BEGIN for an id still in flight means
// the client lost that transaction's COMMIT or ABORT (patched Zopes reuse
// ids per thread): the old one is declared lost, the new one begins.
func (m *Machine) ClassicBegin(now int64, id string, storages []string) {
	m.step(now)
	if old := m.classic[id]; old != nil {
		if old.pin == nil {
			m.warn(CodeBeginTwice, "BEGIN %q while it is in flight: its COMMIT/ABORT was lost; declaring it lost", id)
			m.loseCtxn(old, "superseded by a new BEGIN with the same id")
		}
		// The lost one keeps its pin; only the id moves on.
		delete(m.classic, id)
		if old.pin != nil {
			old.pin.txn = ""
			m.freeCtxnKeepPin(old)
		}
	}
	m.checkClassicIDs(nil, storages)
	c := m.newCtxn()
	c.id, c.began, c.beganSeq = id, now, m.seq
	c.sts = m.internAll(c.sts[:0], storages)
	c.caps = c.caps[:0]
	for _, s := range c.sts {
		c.caps = append(c.caps, m.st[s].transient)
	}
	m.classic[id] = c
	c.prev, c.next = m.cHead.prev, &m.cHead
	m.cHead.prev.next = c
	m.cHead.prev = c
	m.ctr.ClassicBegun++
	if len(c.sts) > 0 {
		m.hold(c.sts)
		g := m.st[c.sts[0]].group
		g.classic = append(g.classic, c)
	}
}

// freeCtxnKeepPin recycles a lost transaction record whose pin lives on.
func (m *Machine) freeCtxnKeepPin(c *ctxn) {
	c.pin = nil
	m.freeCtxn(c)
}

// loseCtxn turns an in-flight classic transaction into a lost pin: its
// unit becomes the pin's, released once each storage had a commit
// observed after now (then the point is past whatever it committed).
func (m *Machine) loseCtxn(c *ctxn, why string) {
	m.unlinkCtxn(c)
	m.ctr.ClassicLost++
	if len(c.sts) == 0 {
		delete(m.classic, c.id)
		m.freeCtxn(c)
		return
	}
	reason := fmt.Sprintf("classic transaction %q on %s lost (%s): waiting for a commit on each of its storages", c.id, m.names(c.sts), why)
	p := &pin{id: m.nextPin, seq: m.seq, kind: PinLost, since: m.now, reason: reason, sts: append([]int32(nil), c.sts...), txn: c.id}
	for k, s := range c.sts {
		p.cs = append(p.cs, doneCommit{st: s, lo: c.caps[k]})
	}
	m.nextPin++
	m.pins = append(m.pins, p) // takes over the transaction's busy unit
	g := m.st[c.sts[0]].group
	g.classic = remove(g.classic, c)
	g.pins = append(g.pins, p)
	m.ctr.PinsCreated++
	m.awaitCommits(p, p.sts)
	c.pin = p
	m.emit(Record{Kind: RecLost, Txn: c.id, Pin: p.id, Msg: reason})
}

// ClassicCommit: COMMIT id {storage: tid}; none lists the storages whose
// TID was sent as None. Storages not named by BEGIN are joined to the
// transaction before its TIDs count (never published apart from it). None
// storages may hold an unknown commit of this transaction: its storages are
// held until each None storage had a later commit observed.
func (m *Machine) ClassicCommit(now int64, id string, tids []StorageTID, none []string) {
	m.step(now)
	m.checkClassicIDs(tids, none)
	c := m.classic[id]
	sts := m.scratch[:0]
	for _, t := range tids {
		if i := m.intern(t.Storage); !containsIdx(sts, i) {
			sts = append(sts, i)
		}
	}
	nTIDs := len(sts)
	for _, n := range none {
		if i := m.intern(n); !containsIdx(sts, i) {
			sts = append(sts, i)
		}
	}
	m.scratch = sts
	var noneSts []int32
	if len(none) > 0 {
		for _, n := range none {
			i := m.stIdx[n]
			if !containsIdx(sts[:nTIDs], i) && !containsIdx(noneSts, i) {
				noneSts = append(noneSts, i)
			}
		}
	}
	switch {
	case c == nil:
		m.warn(CodeCommitNoBegin, "COMMIT %q without BEGIN: applied as a transaction of its own", id)
		if len(sts) == 0 {
			return
		}
		all := append([]int32(nil), sts...)
		m.hold(all)
		m.applyClassic(id, all, tids, noneSts, 0, nil)
		m.release(all[0])
		m.ctr.ClassicCommitted++
		m.ctr.TransactionsEnded++
		return
	case c.pin != nil:
		m.warn(CodeLateEnd, "late COMMIT %q for a transaction already declared lost: applied, lost pin released", id)
		p := c.pin
		for _, s := range sts {
			m.join(p.sts[0], s)
		}
		all := append([]int32(nil), p.sts...)
		for _, s := range sts {
			if !containsIdx(all, s) {
				all = append(all, s)
			}
		}
		m.hold(all) // hold across the pin release so nothing publishes half
		m.markFresh(tids)
		m.applyClassic(id, all, tids, noneSts, 0, c)
		m.releasePin(p, false, false)
		m.release(all[0])
		m.ctr.ClassicCommitted++
		m.classicEnded()
		return
	}
	m.unlinkCtxn(c)
	delete(m.classic, id)
	differ := len(sts) != len(c.sts)
	if len(c.sts) == 0 && len(sts) > 0 {
		// BEGIN named no storage, so no unit is held yet.
		c.sts = append(c.sts, sts...)
		for _, s := range sts {
			c.caps = append(c.caps, m.st[s].published)
		}
		m.hold(c.sts)
		differ = true
	} else if len(c.sts) > 0 {
		g := m.st[c.sts[0]].group
		g.classic = remove(g.classic, c)
	}
	for _, s := range sts {
		if !containsIdx(c.sts, s) {
			differ = true
			m.join(c.sts[0], s)
			c.sts = append(c.sts, s)
			// Unknown: its commit may be anywhere above what is published.
			c.caps = append(c.caps, m.st[s].published)
		}
	}
	if differ {
		m.warn(CodeCommitStorages, "COMMIT %q names storages {%s} but BEGIN named others; the transaction now covers {%s}",
			id, m.names(sts), m.names(c.sts))
	}
	m.markFresh(tids)
	m.checkDecreasing(id, tids)
	if len(c.sts) > 0 {
		m.applyClassic(id, c.sts, tids, noneSts, c.beganSeq, c)
		m.release(c.sts[0])
	}
	m.freeCtxn(c)
	m.ctr.ClassicCommitted++
	m.ctr.TransactionsEnded++
	m.classicEnded()
}

// markFresh notes the storages a transaction whose BEGIN this machine saw
// committed on (classicReady).
func (m *Machine) markFresh(tids []StorageTID) {
	for _, t := range tids {
		if t.TID > 0 {
			m.st[m.stIdx[t.Storage]].fresh = true
		}
	}
}

// applyClassic records a classic transaction's TIDs while its unit holds
// all of sts, and pins sts if some storages sent None.
// c, if known, gives the TIDs known at BEGIN (lower bounds of the None
// storages' commits); without it the published TID is the best bound left.
func (m *Machine) applyClassic(id string, sts []int32, tids []StorageTID, noneSts []int32, started uint64, c *ctxn) {
	// The done transaction (or None pin) goes in first: noting a commit can
	// release a pin and let the group advance, which must already see it.
	cs := m.doneScratch[:0]
	for _, t := range tids {
		if t.TID > 0 {
			cs = append(cs, doneCommit{m.stIdx[t.Storage], t.TID - 1, t.TID})
		}
	}
	m.doneScratch = cs
	if len(noneSts) == 0 {
		m.addDone(cs)
	} else {
		pcs := append([]doneCommit(nil), cs...)
		for _, s := range noneSts {
			lo := m.st[s].published
			if c != nil {
				for k, x := range c.sts {
					if x == s && k < len(c.caps) {
						lo = c.caps[k]
					}
				}
			}
			pcs = append(pcs, doneCommit{st: s, lo: lo})
		}
		reason := fmt.Sprintf("classic COMMIT %q carried None for %s: holding {%s} until each of those has a later commit observed",
			id, m.names(noneSts), m.names(sts))
		m.warn(CodeCommitNone, "%s", reason)
		p := m.newPin(PinNone, sts, pcs, reason)
		p.txn = id
		m.awaitCommits(p, noneSts)
		m.emit(Record{Kind: RecPinned, Txn: id, Pin: p.id, Msg: reason})
	}
	if m.anyWatched(cs) {
		own := append([]doneCommit(nil), cs...)
		for _, c := range own {
			m.account(c.st, c.hi)
		}
		m.holdClassic(sts, own)
	}
	for _, t := range tids {
		m.noteCommit(m.stIdx[t.Storage], t.TID, started)
	}
}

// checkDecreasing reports, as the original daemon did ("CRITICAL:
// Decreasing update ignored"), each TID of a classic COMMIT at or below its
// storage's published TID (below only, unless Config.ClassicOnly: behind a
// proxy the same commit may be reported by both). The published TID never
// decreases, so nothing is undone; but the commit was made before a point
// already published, which may have been incoherent, and so may a backup
// taken at it. Only transactions whose BEGIN this process saw and that were
// in flight are checked: a COMMIT without BEGIN (begun before a restart,
// whose commit the bootstrap may already have read) and the late COMMIT of
// a transaction declared lost (its pin held the storages for it) are
// expected below, and are warned about as such.
func (m *Machine) checkDecreasing(id string, tids []StorageTID) {
	for _, t := range tids {
		s := &m.st[m.stIdx[t.Storage]]
		if t.TID == 0 || !s.hasPublished || t.TID > s.published || (t.TID == s.published && !m.cfg.ClassicOnly) {
			continue
		}
		m.emit(Record{Kind: RecCritical, Code: CodeClassicDecrease, Storage: s.name, TID: t.TID, Old: s.published, Txn: id,
			Msg: fmt.Sprintf("Decreasing update ignored: COMMIT %q carries %s for storage %s, at or below its published %s; "+
				"the published TID stays (a point published before this commit, and a backup taken at it, may be incoherent)",
				id, t.TID.Hex(), s.name, s.published.Hex())})
	}
}

func (m *Machine) anyWatched(cs []doneCommit) bool {
	for _, c := range cs {
		if m.st[c.st].watched {
			return true
		}
	}
	return false
}

// ClassicAbort: ABORT id.
func (m *Machine) ClassicAbort(now int64, id string) {
	m.step(now)
	c := m.classic[id]
	switch {
	case c == nil:
		m.warn(CodeAbortNoBegin, "ABORT %q without BEGIN (ignored)", id)
		return
	case c.pin != nil:
		m.warn(CodeLateEnd, "late ABORT %q for a transaction already declared lost: lost pin released", id)
		m.releasePin(c.pin, false, false)
		m.ctr.ClassicAborted++
		return
	}
	m.unlinkCtxn(c)
	delete(m.classic, id)
	if len(c.sts) > 0 {
		g := m.st[c.sts[0]].group
		g.classic = remove(g.classic, c)
		m.release(c.sts[0])
	}
	m.freeCtxn(c)
	m.ctr.ClassicAborted++
	m.ctr.TransactionsEnded++
	m.classicEnded()
}
