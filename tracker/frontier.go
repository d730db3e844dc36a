package tracker

import "github.com/tidstorage/tidstorage/internal/txn"

// Publication inside a busy group (the frontier).
//
// The seed's grouping publishes a group only when nothing of it is in
// flight, which under constant overlapping load may never happen. Within a
// busy group we can still publish, per storage, the highest TID that keeps
// every transaction wholly in or wholly out:
//
//   - Units in flight must stay wholly out. Each caps the storages it may
//     have committed on: a participation sent tpc_finish at the highest TID
//     known when it was sent (every commit observed before is older than
//     its own); a committed participation of a link set still in flight
//     just below its TID; a classic transaction at the highest TID known at
//     its BEGIN (it commits after BEGIN); pins likewise. A participation not
//     yet sent tpc_finish needs no cap: whatever it commits will be newer
//     than anything known now.
//   - Ended transactions of the group (done) must be all in or all out. A
//     commit is known as an interval (lo, hi]: exactly (t-1, t], or, for a
//     lost classic transaction or a None TID, (TID known at BEGIN, the first
//     commit started after it]. It is in when the point reaches hi and out
//     when the point is at most lo; a done transaction that is not in on one
//     storage is forced out on all, until nothing changes.
//
// The published value is the highest known commit at or below that bound
// (never a made-up TID). Every bound starts at or above the published
// value, so published values never decrease (checked: a violation is
// reported as critical and refused).

// doneCommit is one commit of a done transaction: its TID is in (lo, hi].
type doneCommit struct {
	st     int32
	lo, hi txn.TID
}

type doneTxn struct {
	cs []doneCommit
}

func (m *Machine) newDone(cs []doneCommit) *doneTxn {
	var d *doneTxn
	if n := len(m.freeDone); n > 0 {
		d = m.freeDone[n-1]
		m.freeDone = m.freeDone[:n-1]
	} else {
		d = &doneTxn{}
	}
	d.cs = append(d.cs[:0], cs...)
	return d
}

// addDone records an ended transaction in the group of its storages (all
// in one busy group). One commit alone constrains nothing.
func (m *Machine) addDone(cs []doneCommit) {
	// All in needs every storage at its highest commit, all out at its
	// lowest: one (lowest lo, highest hi) per storage says the same.
	k := 0
	for _, c := range cs {
		merged := false
		for j := 0; j < k; j++ {
			if cs[j].st == c.st {
				cs[j].lo = min(cs[j].lo, c.lo)
				cs[j].hi = max(cs[j].hi, c.hi)
				merged = true
				break
			}
		}
		if !merged {
			cs[k] = c
			k++
		}
	}
	cs = cs[:k]
	if len(cs) < 2 {
		return
	}
	g := m.st[cs[0].st].group
	g.done = append(g.done, m.newDone(cs))
}

// remove deletes x from list without keeping order (the lists are sets) and
// clears the freed slot so that the pointer does not keep x alive.
func remove[T comparable](list []T, x T) []T {
	var zero T
	for i, y := range list {
		if y == x {
			list[i] = list[len(list)-1]
			list[len(list)-1] = zero
			return list[:len(list)-1]
		}
	}
	return list
}

func (m *Machine) capAt(s int32, v txn.TID) {
	if st := &m.st[s]; v < st.cand {
		st.cand = v
	}
}

// advance publishes what a busy group can publish.
func (m *Machine) advance(g *group) {
	if !m.bootstrapped {
		return
	}
	for _, i := range g.members {
		s := &m.st[i]
		s.cand = s.bound()
		if len(s.unacc) > 0 && !s.warnOnly {
			s.cand = min(s.cand, s.unacc[0].tid-1)
		}
	}
	for _, ls := range g.lsets {
		// Every participation sent tpc_finish caps its storage at what was
		// known then (below its TID, committed or not): O(storages) per set.
		for _, c := range ls.caps {
			m.capAt(c.st, c.lo)
		}
	}
	for _, c := range g.classic {
		for k, s := range c.sts {
			m.capAt(s, c.caps[k])
		}
	}
	for _, p := range g.pins {
		for _, c := range p.cs {
			m.capAt(c.st, c.lo)
		}
	}
	for changed := true; changed; {
		changed = false
		for _, d := range g.done {
			in := true
			for _, c := range d.cs {
				if m.st[c.st].cand < c.hi {
					in = false
					break
				}
			}
			if in {
				continue
			}
			for _, c := range d.cs {
				if s := &m.st[c.st]; s.cand > c.lo {
					s.cand = c.lo
					changed = true
				}
			}
		}
	}
	// The highest known commit at or below each bound. The previous run's
	// published point (floor, recover.go) is coherent whatever the replayed
	// state still holds in flight below it.
	for _, i := range g.members {
		s := &m.st[i]
		s.cand = max(s.cand, s.floor)
		s.best, s.bestOK = s.published, s.hasPublished
		if s.transient <= s.cand {
			s.best, s.bestOK = s.transient, true
		} else if v := s.vouched(); s.watched && v <= s.cand && v > 0 && (v > s.best || !s.bestOK) {
			// A real commit the history vouches for, all below it accounted.
			s.best, s.bestOK = v, true
		}
	}
	for _, d := range g.done {
		for _, c := range d.cs {
			if s := &m.st[c.st]; c.hi <= s.cand && (c.hi > s.best || !s.bestOK) {
				s.best, s.bestOK = c.hi, true
			}
		}
	}
	for _, i := range g.members {
		s := &m.st[i]
		if s.known && s.cand < s.published && s.hasPublished {
			m.emit(Record{Kind: RecCritical, Code: CodeDecreaseRefused, Storage: s.name, TID: s.cand, Old: s.published,
				Msg: "internal: a busy group's bound fell below the published TID of " + s.name})
			continue
		}
		if s.known && s.bestOK && (!s.hasPublished || s.best > s.published) {
			m.publishValue(i, s.best)
		}
	}
	// Forget done transactions wholly published.
	k := 0
	for _, d := range g.done {
		in := true
		for _, c := range d.cs {
			if s := &m.st[c.st]; !s.hasPublished || s.published < c.hi {
				in = false
				break
			}
		}
		if in {
			m.freeDone = append(m.freeDone, d)
			continue
		}
		g.done[k] = d
		k++
	}
	clear(g.done[k:])
	g.done = g.done[:k]
}
