package tracker

import (
	"errors"
	"fmt"
	"sort"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// PinKind says why a pin holds its storages.
type PinKind uint8

const (
	// PinPartial: a partial commit (docs/design.md, rules 4 and 6). Released only by
	// AcceptPartial.
	PinPartial PinKind = iota + 1
	// PinLost: a classic transaction timed out or was superseded. Released
	// once each of its storages had a commit observed after the loss, by a
	// late COMMIT/ABORT, or by AcceptPartial.
	PinLost
	// PinNone: a classic COMMIT carried None for some storages; released once
	// each of those had a commit observed after it, or by AcceptPartial.
	PinNone
	// PinBlind: a connection to the storage cannot be decoded; released by
	// Unblind when the last such connection closed.
	PinBlind
	// PinUnaccounted: the storage's history has commits nothing accounted
	// for (accounting.go). Released by AcceptPartial, or when they are
	// accounted for late.
	PinUnaccounted
	// PinConfirm: internal, not listed: a classic transaction's commits wait
	// for the history to reach them.
	PinConfirm
)

var pinKindNames = [...]string{"", "partial", "lost", "none", "blind", "unaccounted", "confirm"}

func (k PinKind) String() string {
	if int(k) < len(pinKindNames) && k != 0 {
		return pinKindNames[k]
	}
	return fmt.Sprintf("PinKind(%d)", k)
}

// A pin is a busy unit that is not a transaction: it keeps its storages'
// group from publishing. Pins are rare; they are not pooled.
type pin struct {
	id       uint64
	seq      uint64 // input seq at creation
	kind     PinKind
	since    int64
	reason   string
	sts      []int32
	cs       []doneCommit // what it keeps out (see frontier.go); hi 0 = unknown yet
	waitLeft int
	parts    []txn.PartID
	key      txn.Key
	txn      string
	released bool
	upto     txn.TID // unaccounted: the highest commit it covers
}

func (m *Machine) newPin(kind PinKind, sts []int32, cs []doneCommit, reason string) *pin {
	p := &pin{id: m.nextPin, seq: m.seq, kind: kind, since: m.now, reason: reason, sts: append([]int32(nil), sts...), cs: cs}
	m.nextPin++
	m.hold(p.sts)
	g := m.st[p.sts[0]].group
	g.pins = append(g.pins, p)
	m.pins = append(m.pins, p)
	if kind != PinConfirm {
		m.ctr.PinsCreated++
	}
	return p
}

// awaitCommits makes p wait for one observed commit on each of wait.
func (m *Machine) awaitCommits(p *pin, wait []int32) {
	for _, s := range wait {
		m.st[s].waiters = append(m.st[s].waiters, p)
		p.waitLeft++
	}
}

// releasePin ends a pin. keep: its commits become a done transaction of
// the group (those whose interval is known).
func (m *Machine) releasePin(p *pin, accepted, keep bool) {
	if p.released {
		return
	}
	p.released = true
	for k, q := range m.pins {
		if q == p {
			m.pins = append(m.pins[:k], m.pins[k+1:]...)
			break
		}
	}
	if p.waitLeft > 0 {
		for _, s := range p.sts {
			ws := m.st[s].waiters
			for k := 0; k < len(ws); k++ {
				if ws[k] == p {
					ws = append(ws[:k], ws[k+1:]...)
					k--
				}
			}
			m.st[s].waiters = ws
		}
	}
	if p.kind == PinLost && p.txn != "" {
		if c, ok := m.classic[p.txn]; ok && c.pin == p {
			delete(m.classic, p.txn)
			m.freeCtxn(c)
		}
	}
	if p.kind != PinConfirm {
		m.ctr.PinsReleased++
		how := "condition met"
		if accepted {
			m.ctr.PinsAccepted++
			how = "accepted by the operator"
		}
		m.emit(Record{Kind: RecPinReleased, Pin: p.id, Txn: p.txn, Msg: fmt.Sprintf("%s pin %d released (%s)", p.kind, p.id, how)})
	}
	g := m.st[p.sts[0]].group
	g.pins = remove(g.pins, p)
	if keep {
		cs := m.doneScratch[:0]
		for _, c := range p.cs {
			if c.hi != 0 {
				cs = append(cs, c)
			}
		}
		m.doneScratch = cs
		m.addDone(cs)
	}
	m.release(p.sts[0])
}

// ErrNoSuchPin is returned by AcceptPartial for an unknown or released pin.
var ErrNoSuchPin = errors.New("tracker: no such pin")

// ErrUnaccountedPending is returned by AcceptPartial for an unaccounted pin
// while another storage holds an unaccounted commit not reported yet.
var ErrUnaccountedPending = errors.New("tracker: another storage has an unaccounted commit not reported yet; accept again once it is (after unaccounted_grace)")

// ErrBlindPin is returned by AcceptPartial for a blind pin, which only
// Unblind can release.
var ErrBlindPin = errors.New("tracker: a blind storage cannot be accepted, only unblinded")

// AcceptPartial is the operator's way out of a partial commit (or a lost or
// None-carrying classic transaction): the live state of the pinned storages
// is accepted as the new baseline and their group may publish again.
func (m *Machine) AcceptPartial(now int64, id uint64) error {
	m.step(now)
	for _, p := range m.pins {
		if p.id == id {
			switch p.kind {
			case PinBlind:
				return ErrBlindPin
			case PinConfirm:
				continue
			case PinUnaccounted:
				return m.acceptAllUnaccounted()
			}
			m.releasePin(p, true, true)
			return nil
		}
	}
	return fmt.Errorf("%w: %d", ErrNoSuchPin, id)
}

// Blind marks a storage as having a connection whose traffic cannot be
// decoded: it may be committing unseen, so its group stops publishing until
// every such connection is unblinded. Calls nest (one per connection).
func (m *Machine) Blind(now int64, name, reason string) {
	m.step(now)
	i := m.intern(name)
	s := &m.st[i]
	s.blind++
	if s.blind == 1 {
		m.scratch = append(m.scratch[:0], i)
		p := m.newPin(PinBlind, m.scratch, []doneCommit{{st: i, lo: s.transient}}, reason)
		m.st[i].blindPin = p
		m.emit(Record{Kind: RecPinned, Storage: name, Pin: p.id, Msg: fmt.Sprintf("storage %s is blind: %s", name, reason)})
	}
}

// Unblind ends one Blind of the storage (its connection closed). lastTID,
// when non-zero, is the storage's last TID read after the close, so commits
// made unseen are accounted for.
func (m *Machine) Unblind(now int64, name string, lastTID txn.TID) {
	m.step(now)
	i, ok := m.stIdx[name]
	if !ok || m.st[i].blind == 0 {
		m.warn(CodeUnblindUnknown, "unblind of storage %s which is not blind", name)
		return
	}
	s := &m.st[i]
	if lastTID != 0 && (!s.known || lastTID > s.transient) {
		s.transient = lastTID
		m.markKnown(i)
	}
	s.blind--
	if s.blind == 0 {
		// What the blind connections committed unseen, up to the last TID
		// read after they closed, is accounted for by this rule
		// (docs/design.md, rule 5); only it, not commits seen before.
		if lastTID != 0 {
			m.accountBlind(i, lastTID)
		}
		p := s.blindPin
		s.blindPin = nil
		m.releasePin(p, false, false)
	}
}

// PinInfo describes an active pin.
type PinInfo struct {
	ID       uint64
	Kind     PinKind
	Since    int64
	Reason   string
	Storages []string     // sorted
	Parts    []txn.PartID // partial: the participations of the linked set
	Key      txn.Key      // partial: correlation key
	Txn      string       // lost/none: classic transaction id
	// Waiting lists storages that still need an observed commit.
	Waiting []string
	// Upto (unaccounted): the highest commit of the storage that accepting
	// the pin accounts for; every unaccounted commit at or below it.
	Upto txn.TID
}

func (m *Machine) pinInfo(p *pin) PinInfo {
	pi := PinInfo{ID: p.id, Kind: p.kind, Since: p.since, Reason: p.reason, Key: p.key, Txn: p.txn,
		Parts: append([]txn.PartID(nil), p.parts...), Upto: p.upto}
	for _, s := range p.sts {
		pi.Storages = append(pi.Storages, m.st[s].name)
		if p.waitLeft > 0 {
			for _, w := range m.st[s].waiters {
				if w == p {
					pi.Waiting = append(pi.Waiting, m.st[s].name)
					break
				}
			}
		}
	}
	sort.Strings(pi.Storages)
	sort.Strings(pi.Waiting)
	return pi
}

// Pins lists the active pins by id.
func (m *Machine) Pins() []PinInfo {
	out := make([]PinInfo, 0, len(m.pins))
	for _, p := range m.pins {
		if p.kind != PinConfirm {
			out = append(out, m.pinInfo(p))
		}
	}
	return out
}

// LastTID reports a storage's last committed TID as read from the storage
// itself now (e.g. ZEO lastTransaction through the proxy's own connection).
// Every commit that completed before the read is at or below tid, so it
// counts as a commit observed now: it releases lost and None pins waiting
// on that storage without waiting for client traffic. The daemon feeds it
// for the storages listed in PinInfo.Waiting.
func (m *Machine) LastTID(now int64, name string, tid txn.TID) {
	m.step(now)
	i := m.intern(name)
	m.noteCommit(i, tid, m.seq)
	if g := m.st[i].group; g != nil {
		m.advance(g)
	}
}

// MarshalText makes the kind readable in JSON (/status).
func (k PinKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }
