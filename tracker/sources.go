package tracker

import (
	"fmt"
	"slices"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// SourceSeq returns the last Seq applied from a remote observer (0: none).
func (m *Machine) SourceSeq(source string) uint64 { return m.sources[source] }

// Sources returns the remote observers this Machine has applied reports
// from (and not retired), sorted: the sidecars a tracker expects back.
func (m *Machine) Sources() []string {
	out := make([]string, 0, len(m.sources))
	for s := range m.sources {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Retire forgets a remote observer gone for good (tidstorage fleet
// retire): it is no longer expected, and a stream under its name later
// starts a new numbering.
func (m *Machine) Retire(now int64, source string) {
	m.step(now)
	if _, ok := m.sources[source]; !ok {
		return
	}
	delete(m.sources, source)
	m.emit(Record{Kind: RecWarning, Code: CodeRetired, Msg: fmt.Sprintf("sidecar %q retired: it is no longer expected", source)})
}

// Gap: remote observer source declared that some of its reports are lost
// (its send buffer overflowed, or was lost). Its participations in flight
// may have lost their later reports: they are settled when the operator
// accepts what the gap left unaccounted (settleGapped), so that none keeps
// its storages busy after that.
func (m *Machine) Gap(now int64, source string) {
	m.step(now)
	for _, pt := range m.parts {
		if pt.src == source && source != "" {
			pt.gapped = true
		}
	}
}

// settleGapped ends, at an operator's accept, the participations that were
// in flight when their sidecar declared a gap, like those of a restarted
// sidecar's run (RecoverRun): each is an orphan in doubt (the gap may hold
// its tpc_finish), resolved from the storages' history up to live — its
// commit found by metadata, or none. A set left half committed is then a
// partial commit, held as such.
func (m *Machine) settleGapped(live []StorageTID) {
	ids := m.partIDs(func(_ txn.PartID, pt *part) bool { return pt.gapped })
	if len(ids) == 0 {
		return
	}
	for _, id := range ids {
		pt := m.parts[id]
		pt.orphan = true
		if pt.state == PartBegun || pt.state == PartVoted || pt.state == PartVoteFailed {
			m.remote = true // its own commit may be above what is known
			m.finishSent(pt)
			m.remote = false
		}
		m.lost(pt)
	}
	m.settleOrphansAt(live)
	m.emit(Record{Kind: RecWarning, Code: CodeGapSettled, Msg: fmt.Sprintf(
		"accept: %d participations in flight when their sidecar declared a gap are resolved from the storages' history", len(ids))})
}

// capRemoteInFlight, at an operator's accept: a remote observer's
// participation in flight whose tpc_finish was not reported yet may already
// have committed (its reports lag behind the storage's history), and the
// accept is about to take that commit as accounted. Such a participation
// caps its storage at the published TID, as one reported sent tpc_finish
// does (finishSent), so that its transaction stays wholly out until it
// ends.
func (m *Machine) capRemoteInFlight() {
	for _, pt := range m.parts {
		if pt.src == "" || (pt.state != PartBegun && pt.state != PartVoted && pt.state != PartVoteFailed) {
			continue
		}
		lo := m.st[pt.st].published
		found := false
		for k := range pt.ls.caps {
			if pt.ls.caps[k].st == pt.st {
				pt.ls.caps[k].lo = min(pt.ls.caps[k].lo, lo)
				found = true
			}
		}
		if !found {
			pt.ls.caps = append(pt.ls.caps, doneCommit{st: pt.st, lo: lo})
		}
	}
}
