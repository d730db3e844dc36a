package tracker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// A damaged journal ends while T (on A and B) is in flight: A voted, B only
// begun. What happened after is read from the history, commit by commit.
func damagedT(t *testing.T) *harness {
	h := watched(t, false)
	info := txn.Info{Client: "c", User: "u", Description: "T"}
	h.m.PartBegin(h.tick(), 1, sA, "k", info)
	h.m.PartBegin(h.tick(), 2, sB, "k", info)
	h.vote(1, true)
	return h
}

func (h *harness) recoverDamaged(live, floor map[string]txn.TID) {
	h.m.Recover(h.tick(), sortedTIDs(live), sortedTIDs(floor), true)
	h.drain()
}

func (h *harness) histDesc(s string, tid txn.TID, desc string) {
	h.m.History(h.tick(), txn.Commit{Storage: s, TID: tid, HasMeta: true, User: "u", Description: desc})
	h.drain()
}

func TestRecoverDamagedBothCommitted(t *testing.T) {
	h := damagedT(t)
	h.recoverDamaged(map[string]txn.TID{sA: 11, sB: 21}, nil)
	h.histDesc(sA, 11, "T")
	h.histDesc(sB, 21, "T")
	h.tickAt(time.Minute)
	require.Empty(t, h.m.Pins(), "T committed on both: nothing to report")
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(21), h.pub(sB))
}

func TestRecoverDamagedHalfIsAPartialCommit(t *testing.T) {
	h := damagedT(t)
	h.recoverDamaged(map[string]txn.TID{sA: 11, sB: 21}, nil)
	h.histDesc(sA, 11, "T")
	h.histDesc(sB, 21, "other") // another transaction's commit on B
	h.tickAt(time.Minute)
	var partial *PinInfo
	for _, p := range h.m.Pins() {
		if p.Kind == PinPartial {
			partial = &p
		}
	}
	require.NotNil(t, partial, "T committed on A only: a real partial commit")
	require.Contains(t, partial.Reason, "voted then not committed on "+sB)
	require.Contains(t, partial.Reason, "a real half")
	require.Equal(t, txn.TID(10), h.pub(sA), "T's A half is never published")
}

func TestRecoverDamagedAmbiguousIsUnknownNeverNotCommitted(t *testing.T) {
	h := damagedT(t)
	h.recoverDamaged(map[string]txn.TID{sA: 11, sB: 22}, nil)
	h.histDesc(sA, 11, "T")
	h.histDesc(sB, 21, "T") // two commits on B carry T's metadata:
	h.histDesc(sB, 22, "T") // either may be T's
	require.Equal(t, 1, h.count(RecWarning, CodeOutcomeUnknown))
	h.tickAt(time.Minute)
	for _, r := range h.all {
		if r.Kind == RecResolved && r.Part == 2 {
			t.Fatalf("participation 2 resolved although its outcome is unknown: %s", r.Msg)
		}
	}
	pins := h.m.Pins()
	require.Len(t, pins, 2, "the possible partial commit, and the commits on B nothing accounts for")
	require.Contains(t, pins[0].Reason, "outcome unknown on "+sB)
	require.Contains(t, pins[0].Reason, "possibly a half")
	require.NotContains(t, pins[0].Reason, "not committed")
	require.Equal(t, txn.TID(20), h.pub(sB))
}

// The status file's last point is a floor: published TIDs do not go back
// behind it, and the commits at or below it are accounted for; a storage
// whose live TID is below it went back and gets none.
func TestRecoverFloor(t *testing.T) {
	h := watched(t, false)
	h.recoverDamaged(map[string]txn.TID{sA: 16, sB: 22}, map[string]txn.TID{sA: 15, sB: 25})
	require.Equal(t, txn.TID(15), h.pub(sA), "raised to the floor at once")
	require.Equal(t, txn.TID(20), h.pub(sB), "B went back below its floor: none")
	for _, tid := range []txn.TID{12, 13, 15} {
		h.histDesc(sA, tid, "before the crash")
	}
	h.histDesc(sA, 16, "after the floor")
	h.histDesc(sB, 22, "x")
	h.tickAt(time.Minute)
	st := h.m.Status()
	require.Equal(t, []txn.TID{16}, st.Storages[0].Unaccounted, "only the commit above the floor is held")
	require.Equal(t, txn.TID(15), h.pub(sA))
	require.Zero(t, h.count(RecCritical, ""))
}
