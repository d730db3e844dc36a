package tracker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/input"
)

// The image: the whole state of a Machine, busy or not, as bytes. The
// journal restarts from one (an InImage input, the first record of a
// rotated journal) so that it can be rotated under constant load or while a
// pin is held (docs/admin.md, "Crash recovery"): replaying the image and the
// records after it gives exactly the state the live Machine has, the
// participations in flight, their link sets, the groups with their done
// transactions, the pins and the classic transactions included, with the
// same input counter (the windows of rule 6 compare input numbers) and the
// same counters.
//
// Pointers become indices into tables written in a fixed order: storages by
// their index (every int32 in the state stays valid), link sets with their
// participations inline (ended participations stay in their set until it
// drains), pins (the active ones in m.pins order, then any other pin still
// referenced), classic transactions (the in-flight list in begin order, then
// the lost ones by id). Free lists and scratch space are not state.
// TestImageCoversEveryField lists every field of every struct the image
// walks, so that a new field cannot be forgotten here.

const imageVersion = 1

// errImage wraps every decoding failure of an image.
var errImage = errors.New("tracker: image")

type imageTables struct {
	groups  []*group
	gIdx    map[*group]int
	lsets   []*linkSet
	lsIdx   map[*linkSet]int
	parts   map[*part]int // index over every participation of every set, in set order
	pins    []*pin
	pinIdx  map[*pin]int
	classic []*ctxn
	cIdx    map[*ctxn]int
	nList   int // classic[:nList] is the in-flight list, in begin order
}

func (m *Machine) imageTables() *imageTables {
	t := &imageTables{gIdx: map[*group]int{}, lsIdx: map[*linkSet]int{}, parts: map[*part]int{},
		pinIdx: map[*pin]int{}, cIdx: map[*ctxn]int{}}
	addPin := func(p *pin) {
		if p == nil {
			return
		}
		if _, ok := t.pinIdx[p]; !ok {
			t.pinIdx[p] = len(t.pins)
			t.pins = append(t.pins, p)
		}
	}
	for _, p := range m.pins {
		addPin(p)
	}
	for i := range m.st {
		g := m.st[i].group
		if g == nil {
			continue
		}
		if _, ok := t.gIdx[g]; ok {
			continue
		}
		t.gIdx[g] = len(t.groups)
		t.groups = append(t.groups, g)
	}
	for _, g := range t.groups {
		for _, ls := range g.lsets {
			if _, ok := t.lsIdx[ls]; !ok {
				t.lsIdx[ls] = len(t.lsets)
				t.lsets = append(t.lsets, ls)
			}
		}
		for _, p := range g.pins {
			addPin(p)
		}
	}
	n := 0
	for _, ls := range t.lsets {
		for _, pt := range ls.parts {
			t.parts[pt] = n
			n++
		}
	}
	for c := m.cHead.next; c != &m.cHead; c = c.next {
		t.cIdx[c] = len(t.classic)
		t.classic = append(t.classic, c)
	}
	t.nList = len(t.classic)
	var lost []*ctxn
	for _, c := range m.classic {
		if _, ok := t.cIdx[c]; !ok {
			lost = append(lost, c)
		}
	}
	slices.SortFunc(lost, func(a, b *ctxn) int { return strings.Compare(a.id, b.id) })
	for _, c := range lost {
		t.cIdx[c] = len(t.classic)
		t.classic = append(t.classic, c)
	}
	for i := range m.st {
		s := &m.st[i]
		addPin(s.blindPin)
		addPin(s.unaccPin)
		for _, p := range s.waiters {
			addPin(p)
		}
		for _, a := range s.awaiting {
			addPin(a.pn)
		}
	}
	for _, c := range t.classic {
		addPin(c.pin)
	}
	return t
}

// AppendImage appends the image of the whole state to dst.
func (m *Machine) AppendImage(dst []byte) []byte {
	t := m.imageTables()
	dst = append(dst, imageVersion)
	dst = binary.AppendUvarint(dst, m.seq)
	dst = binary.AppendVarint(dst, m.now)
	dst = binary.AppendUvarint(dst, m.nextPin)
	dst = input.AppendBool(dst, m.bootstrapped)
	dst = input.AppendBool(dst, m.bootRequested)
	dst = input.AppendBool(dst, m.bootRestored)
	dst = input.AppendBool(dst, m.bootArmed)
	dst = binary.AppendUvarint(dst, m.bootSeq)
	dst = input.AppendBool(dst, m.clean)
	dst = input.AppendBool(dst, m.lostReports)
	dst = appendCounters(dst, &m.ctr)
	srcs := make([]string, 0, len(m.sources))
	for k := range m.sources {
		srcs = append(srcs, k)
	}
	sort.Strings(srcs)
	dst = binary.AppendUvarint(dst, uint64(len(srcs)))
	for _, k := range srcs {
		dst = input.AppendString(dst, k)
		dst = binary.AppendUvarint(dst, m.sources[k])
	}
	ref := func(dst []byte, k int, ok bool) []byte {
		if !ok {
			return binary.AppendUvarint(dst, 0)
		}
		return binary.AppendUvarint(dst, uint64(k)+1)
	}
	pinRef := func(dst []byte, p *pin) []byte {
		k, ok := t.pinIdx[p]
		return ref(dst, k, ok)
	}

	// Pins first: storages, groups and classic transactions refer to them.
	dst = binary.AppendUvarint(dst, uint64(len(t.pins)))
	dst = binary.AppendUvarint(dst, uint64(len(m.pins)))
	for _, p := range t.pins {
		dst = binary.AppendUvarint(dst, p.id)
		dst = binary.AppendUvarint(dst, p.seq)
		dst = append(dst, byte(p.kind))
		dst = binary.AppendVarint(dst, p.since)
		dst = input.AppendString(dst, p.reason)
		dst = appendIdx(dst, p.sts)
		dst = appendDone(dst, p.cs)
		dst = binary.AppendVarint(dst, int64(p.waitLeft))
		dst = binary.AppendUvarint(dst, uint64(len(p.parts)))
		for _, id := range p.parts {
			dst = binary.AppendUvarint(dst, uint64(id))
		}
		dst = input.AppendString(dst, string(p.key))
		dst = input.AppendString(dst, p.txn)
		dst = input.AppendBool(dst, p.released)
		dst = binary.AppendUvarint(dst, uint64(p.upto))
	}

	// Link sets, their participations inline.
	dst = binary.AppendUvarint(dst, uint64(len(t.lsets)))
	for _, ls := range t.lsets {
		dst = input.AppendString(dst, string(ls.key))
		dst = appendInfo(dst, &ls.info)
		dst = binary.AppendVarint(dst, int64(ls.inflight))
		dst = binary.AppendVarint(dst, int64(ls.accepting))
		dst = binary.AppendUvarint(dst, ls.lastFailed)
		dst = binary.AppendVarint(dst, ls.began)
		dst = input.AppendBool(dst, ls.ambiguous)
		dst = appendDone(dst, ls.caps)
		dst = binary.AppendUvarint(dst, uint64(len(ls.parts)))
		for _, pt := range ls.parts {
			dst = binary.AppendUvarint(dst, uint64(pt.id))
			dst = binary.AppendVarint(dst, int64(pt.st))
			dst = append(dst, byte(pt.state))
			dst = binary.AppendVarint(dst, pt.began)
			dst = binary.AppendUvarint(dst, pt.votedAt)
			dst = binary.AppendUvarint(dst, pt.finAt)
			dst = binary.AppendUvarint(dst, pt.endedAt)
			dst = binary.AppendUvarint(dst, uint64(pt.tid))
			dst = binary.AppendUvarint(dst, uint64(pt.finCap))
			dst = input.AppendBool(dst, pt.excused)
			dst = input.AppendBool(dst, pt.finFailed)
			dst = input.AppendBool(dst, pt.lostConn)
			dst = input.AppendBool(dst, pt.orphan)
			dst = input.AppendBool(dst, pt.ambiguous)
			dst = input.AppendBool(dst, pt.damaged)
			dst = binary.AppendUvarint(dst, uint64(pt.ncand))
			dst = binary.AppendUvarint(dst, uint64(pt.cand))
			dst = input.AppendString(dst, pt.src)
			dst = input.AppendBool(dst, pt.gapped)
			dst = input.AppendBool(dst, m.parts[pt.id] == pt)
		}
	}
	keys := make([]string, 0, len(m.keyed))
	for k := range m.keyed {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = input.AppendString(dst, k)
		i, ok := t.lsIdx[m.keyed[txn.Key(k)]]
		dst = ref(dst, i, ok)
	}

	// Classic transactions.
	dst = binary.AppendUvarint(dst, uint64(len(t.classic)))
	dst = binary.AppendUvarint(dst, uint64(t.nList))
	for _, c := range t.classic {
		dst = input.AppendString(dst, c.id)
		dst = appendIdx(dst, c.sts)
		dst = binary.AppendUvarint(dst, uint64(len(c.caps)))
		for _, v := range c.caps {
			dst = binary.AppendUvarint(dst, uint64(v))
		}
		dst = binary.AppendVarint(dst, c.began)
		dst = binary.AppendUvarint(dst, c.beganSeq)
		dst = pinRef(dst, c.pin)
		dst = input.AppendBool(dst, m.classic[c.id] == c)
	}

	// Groups.
	dst = binary.AppendUvarint(dst, uint64(len(t.groups)))
	for _, g := range t.groups {
		dst = appendIdx(dst, g.members)
		dst = binary.AppendVarint(dst, int64(g.busy))
		dst = binary.AppendUvarint(dst, uint64(len(g.lsets)))
		for _, ls := range g.lsets {
			dst = binary.AppendUvarint(dst, uint64(t.lsIdx[ls]))
		}
		dst = binary.AppendUvarint(dst, uint64(len(g.classic)))
		for _, c := range g.classic {
			k, ok := t.cIdx[c]
			dst = ref(dst, k, ok)
		}
		dst = binary.AppendUvarint(dst, uint64(len(g.pins)))
		for _, p := range g.pins {
			dst = binary.AppendUvarint(dst, uint64(t.pinIdx[p]))
		}
		dst = binary.AppendUvarint(dst, uint64(len(g.done)))
		for _, d := range g.done {
			dst = appendDone(dst, d.cs)
		}
	}

	// Storages, by index.
	dst = binary.AppendUvarint(dst, uint64(len(m.st)))
	for i := range m.st {
		s := &m.st[i]
		dst = input.AppendString(dst, s.name)
		dst = binary.AppendUvarint(dst, uint64(s.published))
		dst = binary.AppendUvarint(dst, uint64(s.transient))
		dst = input.AppendBool(dst, s.hasPublished)
		dst = input.AppendBool(dst, s.known)
		dst = input.AppendBool(dst, s.expected)
		k, ok := t.gIdx[s.group]
		dst = ref(dst, k, ok)
		dst = binary.AppendUvarint(dst, s.commits)
		dst = binary.AppendVarint(dst, int64(s.blind))
		dst = pinRef(dst, s.blindPin)
		dst = binary.AppendUvarint(dst, uint64(len(s.waiters)))
		for _, p := range s.waiters {
			dst = pinRef(dst, p)
		}
		dst = binary.AppendVarint(dst, s.pubAt)
		dst = binary.AppendVarint(dst, s.lagWarned)
		dst = input.AppendBool(dst, s.watched)
		dst = input.AppendBool(dst, s.warnOnly)
		dst = binary.AppendUvarint(dst, uint64(s.hist))
		dst = binary.AppendUvarint(dst, uint64(s.floor))
		dst = binary.AppendUvarint(dst, uint64(len(s.acc)))
		for _, v := range s.acc {
			dst = binary.AppendUvarint(dst, uint64(v))
		}
		dst = binary.AppendUvarint(dst, uint64(len(s.unacc)))
		for k := range s.unacc {
			u := &s.unacc[k]
			dst = binary.AppendUvarint(dst, uint64(u.tid))
			dst = binary.AppendVarint(dst, u.seen)
			dst = input.AppendBool(dst, u.reported)
			dst = input.AppendBool(dst, u.blind)
			dst = input.AppendCommit(dst, &u.meta)
		}
		dst = pinRef(dst, s.unaccPin)
		dst = binary.AppendUvarint(dst, s.unaccTotal)
		dst = binary.AppendUvarint(dst, uint64(len(s.awaiting)))
		for _, a := range s.awaiting {
			dst = binary.AppendUvarint(dst, uint64(a.tid))
			k, ok := t.parts[a.pt]
			dst = ref(dst, k, ok && a.pt != nil)
			dst = pinRef(dst, a.pn)
		}
		dst = binary.AppendUvarint(dst, uint64(s.settleAt))
		dst = input.AppendBool(dst, s.settling)
		dst = input.AppendBool(dst, s.blindSettle)
		dst = input.AppendBool(dst, s.fresh)
	}
	return dst
}

func appendIdx(dst []byte, xs []int32) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(xs)))
	for _, x := range xs {
		dst = binary.AppendVarint(dst, int64(x))
	}
	return dst
}

func appendDone(dst []byte, cs []doneCommit) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(cs)))
	for _, c := range cs {
		dst = binary.AppendVarint(dst, int64(c.st))
		dst = binary.AppendUvarint(dst, uint64(c.lo))
		dst = binary.AppendUvarint(dst, uint64(c.hi))
	}
	return dst
}

func appendInfo(dst []byte, in *txn.Info) []byte {
	dst = input.AppendString(dst, in.Client)
	dst = input.AppendString(dst, in.User)
	dst = input.AppendString(dst, in.Description)
	return input.AppendString(dst, in.Extension)
}

// counterFields lists the Counters in their image order.
func counterFields(c *Counters) []*uint64 {
	return []*uint64{&c.Events, &c.Publications, &c.PartsBegun, &c.PartsCommitted, &c.PartsAborted, &c.InDoubt,
		&c.Resolved, &c.Partials, &c.ClassicBegun, &c.ClassicCommitted, &c.ClassicAborted, &c.ClassicLost,
		&c.Warnings, &c.Criticals, &c.PinsCreated, &c.PinsReleased, &c.PinsAccepted, &c.TransactionsEnded,
		&c.HistoryCommits, &c.Unaccounted, &c.AwaitingHistory}
}

func appendCounters(dst []byte, c *Counters) []byte {
	fs := counterFields(c)
	dst = binary.AppendUvarint(dst, uint64(len(fs)))
	for _, f := range fs {
		dst = binary.AppendUvarint(dst, *f)
	}
	return dst
}

// restoreImage sets the Machine to an image: everything it held before is
// replaced (the journal's first record after a rotation, applied to a
// fresh Machine). Storages the configuration lists and the image does not
// are added, expected, as New does.
func (m *Machine) restoreImage(b []byte) error {
	d := input.Decoder{B: b}
	if v := d.Byte(); d.Err == nil && v != imageVersion {
		return fmt.Errorf("%w: version %d, want %d", errImage, v, imageVersion)
	}
	fresh := New(m.cfg)
	fresh.seq = d.Uvarint()
	fresh.now = d.Varint()
	fresh.nextPin = d.Uvarint()
	fresh.bootstrapped = d.Bool()
	fresh.bootRequested = d.Bool()
	fresh.bootRestored = d.Bool()
	fresh.bootArmed = d.Bool()
	fresh.bootSeq = d.Uvarint()
	fresh.clean = d.Bool()
	fresh.lostReports = d.Bool()
	fs := counterFields(&fresh.ctr)
	if n := d.Count(); n == len(fs) {
		for _, f := range fs {
			*f = d.Uvarint()
		}
	} else {
		d.Fail(fmt.Errorf("%d counters, want %d", n, len(fs)))
	}
	for n := d.Count(); n > 0 && d.Err == nil; n-- {
		k := d.String()
		fresh.sources[k] = d.Uvarint()
	}
	r := imageReader{d: &d}

	nPins := d.Count()
	nActive := d.Count()
	if nActive > nPins {
		d.Fail(fmt.Errorf("%d active pins of %d", nActive, nPins))
	}
	pins := make([]*pin, nPins)
	for k := range pins {
		p := &pin{id: d.Uvarint(), seq: d.Uvarint(), kind: PinKind(d.Byte()), since: d.Varint(), reason: d.String()}
		p.sts = r.idx()
		p.cs = r.done()
		p.waitLeft = int(d.Varint())
		for n := d.Count(); n > 0 && d.Err == nil; n-- {
			p.parts = append(p.parts, txn.PartID(d.Uvarint()))
		}
		p.key = txn.Key(d.String())
		p.txn = d.String()
		p.released = d.Bool()
		p.upto = txn.TID(d.Uvarint())
		pins[k] = p
	}
	fresh.pins = append(fresh.pins, pins[:min(nActive, len(pins))]...)
	pinAt := func() *pin {
		k, ok := r.ref(len(pins))
		if !ok {
			return nil
		}
		return pins[k]
	}

	nLS := d.Count()
	lsets := make([]*linkSet, nLS)
	var parts []*part
	for k := range lsets {
		ls := &linkSet{key: txn.Key(d.String())}
		ls.info = r.info()
		ls.inflight = int32(d.Varint())
		ls.accepting = int32(d.Varint())
		ls.lastFailed = d.Uvarint()
		ls.began = d.Varint()
		ls.ambiguous = d.Bool()
		ls.caps = r.done()
		for n := d.Count(); n > 0 && d.Err == nil; n-- {
			pt := &part{ls: ls, id: txn.PartID(d.Uvarint()), st: int32(d.Varint()), state: PartState(d.Byte()),
				began: d.Varint(), votedAt: d.Uvarint(), finAt: d.Uvarint(), endedAt: d.Uvarint(),
				tid: txn.TID(d.Uvarint()), finCap: txn.TID(d.Uvarint())}
			pt.excused = d.Bool()
			pt.finFailed = d.Bool()
			pt.lostConn = d.Bool()
			pt.orphan = d.Bool()
			pt.ambiguous = d.Bool()
			pt.damaged = d.Bool()
			pt.ncand = uint8(d.Uvarint())
			pt.cand = txn.TID(d.Uvarint())
			pt.src = d.String()
			pt.gapped = d.Bool()
			if d.Bool() {
				fresh.parts[pt.id] = pt
			}
			ls.parts = append(ls.parts, pt)
			parts = append(parts, pt)
		}
		lsets[k] = ls
	}
	lsAt := func() *linkSet {
		k, ok := r.ref(len(lsets))
		if !ok {
			return nil
		}
		return lsets[k]
	}
	for n := d.Count(); n > 0 && d.Err == nil; n-- {
		key := txn.Key(d.String())
		if ls := lsAt(); ls != nil {
			fresh.keyed[key] = ls
		}
	}

	nC := d.Count()
	nList := d.Count()
	if nList > nC {
		d.Fail(fmt.Errorf("%d classic transactions in flight of %d", nList, nC))
	}
	classic := make([]*ctxn, nC)
	for k := range classic {
		c := &ctxn{id: d.String()}
		c.sts = r.idx()
		for n := d.Count(); n > 0 && d.Err == nil; n-- {
			c.caps = append(c.caps, txn.TID(d.Uvarint()))
		}
		c.began = d.Varint()
		c.beganSeq = d.Uvarint()
		c.pin = pinAt()
		if d.Bool() {
			fresh.classic[c.id] = c
		}
		classic[k] = c
	}
	for _, c := range classic[:min(nList, len(classic))] {
		c.prev, c.next = fresh.cHead.prev, &fresh.cHead
		fresh.cHead.prev.next = c
		fresh.cHead.prev = c
	}
	cAt := func() *ctxn {
		k, ok := r.ref(len(classic))
		if !ok {
			return nil
		}
		return classic[k]
	}

	nG := d.Count()
	groups := make([]*group, nG)
	for k := range groups {
		g := &group{members: r.idx(), busy: int32(d.Varint())}
		for n := d.Count(); n > 0 && d.Err == nil; n-- {
			if i := int(d.Uvarint()); i < len(lsets) {
				g.lsets = append(g.lsets, lsets[i])
			} else {
				d.Fail(fmt.Errorf("link set %d of %d", i, len(lsets)))
			}
		}
		for n := d.Count(); n > 0 && d.Err == nil; n-- {
			if c := cAt(); c != nil {
				g.classic = append(g.classic, c)
			}
		}
		for n := d.Count(); n > 0 && d.Err == nil; n-- {
			if i := int(d.Uvarint()); i < len(pins) {
				g.pins = append(g.pins, pins[i])
			} else {
				d.Fail(fmt.Errorf("pin %d of %d", i, len(pins)))
			}
		}
		for n := d.Count(); n > 0 && d.Err == nil; n-- {
			g.done = append(g.done, &doneTxn{cs: r.done()})
		}
		groups[k] = g
	}

	nS := d.Count()
	fresh.st = make([]storage, 0, nS)
	clear(fresh.stIdx)
	fresh.sorted = fresh.sorted[:0]
	for k := 0; k < nS && d.Err == nil; k++ {
		s := storage{name: d.String(), published: txn.TID(d.Uvarint()), transient: txn.TID(d.Uvarint())}
		s.hasPublished = d.Bool()
		s.known = d.Bool()
		s.expected = d.Bool()
		if gk, ok := r.ref(len(groups)); ok {
			s.group = groups[gk]
		}
		s.commits = d.Uvarint()
		s.blind = int32(d.Varint())
		s.blindPin = pinAt()
		for n := d.Count(); n > 0 && d.Err == nil; n-- {
			s.waiters = append(s.waiters, pinAt())
		}
		s.pubAt = d.Varint()
		s.lagWarned = d.Varint()
		s.watched = d.Bool()
		s.warnOnly = d.Bool()
		s.hist = txn.TID(d.Uvarint())
		s.floor = txn.TID(d.Uvarint())
		for n := d.Count(); n > 0 && d.Err == nil; n-- {
			s.acc = append(s.acc, txn.TID(d.Uvarint()))
		}
		for n := d.Count(); n > 0 && d.Err == nil; n-- {
			u := unaccounted{tid: txn.TID(d.Uvarint()), seen: d.Varint()}
			u.reported = d.Bool()
			u.blind = d.Bool()
			u.meta = r.d.Commit()
			s.unacc = append(s.unacc, u)
		}
		s.unaccPin = pinAt()
		s.unaccTotal = d.Uvarint()
		for n := d.Count(); n > 0 && d.Err == nil; n-- {
			a := awaiting{tid: txn.TID(d.Uvarint())}
			if pk, ok := r.ref(len(parts)); ok {
				a.pt = parts[pk]
			}
			a.pn = pinAt()
			s.awaiting = append(s.awaiting, a)
		}
		s.settleAt = txn.TID(d.Uvarint())
		s.settling = d.Bool()
		s.blindSettle = d.Bool()
		s.fresh = d.Bool()
		if _, dup := fresh.stIdx[s.name]; dup {
			d.Fail(fmt.Errorf("storage %q twice", s.name))
			break
		}
		fresh.stIdx[s.name] = int32(len(fresh.st))
		fresh.st = append(fresh.st, s)
	}
	if d.Err == nil && len(d.B) != 0 {
		d.Fail(fmt.Errorf("%d bytes left over", len(d.B)))
	}
	if d.Err == nil {
		d.Err = fresh.checkImage(pins, lsets, classic, groups)
	}
	if d.Err != nil {
		return fmt.Errorf("%w: %w", errImage, d.Err)
	}
	for i := range fresh.st {
		fresh.sorted = append(fresh.sorted, int32(i))
	}
	slices.SortFunc(fresh.sorted, func(a, b int32) int { return strings.Compare(fresh.st[a].name, fresh.st[b].name) })
	for _, name := range m.cfg.Storages {
		i := fresh.intern(name)
		fresh.st[i].expected = true
	}
	fresh.missing = 0
	for i := range fresh.st {
		if s := &fresh.st[i]; s.expected && !s.known {
			fresh.missing++
		}
	}
	if len(m.cfg.Storages) > 0 {
		fresh.bootRequested = true
	}
	first, last := fresh.cHead.next, fresh.cHead.prev
	*m = *fresh
	// The list's sentinel moved with the copy.
	if first == &fresh.cHead {
		m.cHead.next, m.cHead.prev = &m.cHead, &m.cHead
	} else {
		first.prev, last.next = &m.cHead, &m.cHead
	}
	return nil
}

// checkImage verifies that every storage index of a decoded image is in
// range, so that a damaged image fails here and not as a panic later.
func (m *Machine) checkImage(pins []*pin, lsets []*linkSet, classic []*ctxn, groups []*group) error {
	n := int32(len(m.st))
	ok := func(xs ...int32) bool {
		for _, x := range xs {
			if x < 0 || x >= n {
				return false
			}
		}
		return true
	}
	okDone := func(cs []doneCommit) bool {
		for _, c := range cs {
			if !ok(c.st) {
				return false
			}
		}
		return true
	}
	for _, p := range pins {
		if p == nil || len(p.sts) == 0 || !ok(p.sts...) || !okDone(p.cs) {
			return errors.New("a pin's storages are out of range")
		}
	}
	for _, ls := range lsets {
		if !okDone(ls.caps) {
			return errors.New("a link set's caps are out of range")
		}
		for _, pt := range ls.parts {
			if !ok(pt.st) {
				return errors.New("a participation's storage is out of range")
			}
		}
	}
	for _, c := range classic {
		if !ok(c.sts...) || len(c.caps) != len(c.sts) {
			return errors.New("a classic transaction's storages are out of range")
		}
	}
	for _, g := range groups {
		if len(g.members) == 0 || !ok(g.members...) {
			return errors.New("a group's members are out of range")
		}
		for _, d := range g.done {
			if !okDone(d.cs) {
				return errors.New("a done transaction's storages are out of range")
			}
		}
	}
	for i := range m.st {
		for _, p := range m.st[i].waiters {
			if p == nil {
				return errors.New("a storage waits for a missing pin")
			}
		}
	}
	return nil
}

type imageReader struct{ d *input.Decoder }

// ref reads an optional index below n (0 is none).
func (r imageReader) ref(n int) (int, bool) {
	v := r.d.Uvarint()
	if v == 0 || r.d.Err != nil {
		return 0, false
	}
	if v > uint64(n) {
		r.d.Fail(fmt.Errorf("reference %d of %d", v-1, n))
		return 0, false
	}
	return int(v - 1), true
}

func (r imageReader) idx() []int32 {
	var xs []int32
	for n := r.d.Count(); n > 0 && r.d.Err == nil; n-- {
		xs = append(xs, int32(r.d.Varint()))
	}
	return xs
}

func (r imageReader) done() []doneCommit {
	var cs []doneCommit
	for n := r.d.Count(); n > 0 && r.d.Err == nil; n-- {
		cs = append(cs, doneCommit{st: int32(r.d.Varint()), lo: txn.TID(r.d.Uvarint()), hi: txn.TID(r.d.Uvarint())})
	}
	return cs
}

func (r imageReader) info() txn.Info {
	return txn.Info{Client: r.d.String(), User: r.d.String(), Description: r.d.String(), Extension: r.d.String()}
}
