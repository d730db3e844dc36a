package tracker

import (
	"sort"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// StorageStatus is one storage in a Status.
type StorageStatus struct {
	ID           string
	Published    txn.TID
	HasPublished bool
	Transient    txn.TID // highest TID known committed
	Known        bool
	Busy         bool // in a group with something in flight
	Group        int  // index into Status.Groups, -1 if idle
	Blind        int  // open blind connections
	// Ground truth (accounting.go): whether the storage's history is watched,
	// how far it has reported, the commits it holds for (unaccounted, oldest
	// first) and how many unaccounted commits were reported so far.
	Watched          bool
	WarnOnly         bool
	History          txn.TID
	Unaccounted      []txn.TID
	UnaccountedTotal uint64
	AwaitingHistory  int // accounted commits waiting for the history
}

// GroupStatus is one busy group.
type GroupStatus struct {
	Storages []string // sorted
	InFlight int      // busy units: participations, classic transactions, pins
}

// PartStatus is one participation still known to the tracker.
type PartStatus struct {
	ID      txn.PartID
	Storage string
	Key     txn.Key
	State   PartState
	Began   int64
}

// ClassicStatus is one classic transaction in flight.
type ClassicStatus struct {
	ID       string
	Storages []string
	Began    int64
}

// Status is a snapshot of everything the tracker knows, for /status.
// Every list is sorted, so equal states give equal snapshots.
type Status struct {
	Time         int64
	Bootstrapped bool
	CleanStart   bool
	Storages     []StorageStatus
	Groups       []GroupStatus
	Parts        []PartStatus
	Classic      []ClassicStatus
	Pins         []PinInfo
	Counters     Counters
	// Broken says why the Service stopped after an internal failure ("" while
	// it works); the point it still answers is the last good one.
	Broken string
	// Held says why publication is held ("" while it is not): the point
	// answered and written stays where it was (Service.HoldPublication).
	Held string
}

// Status returns a snapshot (allocates; not for the hot path).
func (m *Machine) Status() Status {
	st := Status{Time: m.now, Bootstrapped: m.bootstrapped, CleanStart: m.clean, Counters: m.ctr}
	gidx := map[*group]int{}
	for _, i := range m.sorted {
		s := &m.st[i]
		ss := StorageStatus{ID: s.name, Published: s.published, HasPublished: s.hasPublished,
			Transient: s.transient, Known: s.known, Busy: s.group != nil, Group: -1, Blind: int(s.blind),
			Watched: s.watched, WarnOnly: s.warnOnly, History: s.hist, UnaccountedTotal: s.unaccTotal, AwaitingHistory: len(s.awaiting)}
		for _, u := range s.unacc {
			ss.Unaccounted = append(ss.Unaccounted, u.tid)
		}
		if g := s.group; g != nil {
			k, ok := gidx[g]
			if !ok {
				k = len(st.Groups)
				gidx[g] = k
				gs := GroupStatus{InFlight: int(g.busy)}
				for _, mb := range g.members {
					gs.Storages = append(gs.Storages, m.st[mb].name)
				}
				sort.Strings(gs.Storages)
				st.Groups = append(st.Groups, gs)
			}
			ss.Group = k
		}
		st.Storages = append(st.Storages, ss)
	}
	for _, p := range m.parts {
		st.Parts = append(st.Parts, PartStatus{ID: p.id, Storage: m.st[p.st].name, Key: p.ls.key, State: p.state, Began: p.began})
	}
	sort.Slice(st.Parts, func(a, b int) bool { return st.Parts[a].ID < st.Parts[b].ID })
	for c := m.cHead.next; c != &m.cHead; c = c.next {
		cs := ClassicStatus{ID: c.id, Began: c.began}
		for _, s := range c.sts {
			cs.Storages = append(cs.Storages, m.st[s].name)
		}
		sort.Strings(cs.Storages)
		st.Classic = append(st.Classic, cs)
	}
	st.Pins = m.Pins()
	return st
}

// InFlight reports the number of participations and classic transactions
// in flight (in-doubt participations included).
func (m *Machine) InFlight() (parts, classic int) {
	n := 0
	for c := m.cHead.next; c != &m.cHead; c = c.next {
		n++
	}
	return len(m.parts), n
}
