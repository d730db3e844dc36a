package tracker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidstorage/tidstorage/internal/txn"
)

func (h *harness) watch(s string, after txn.TID, warnOnly bool) {
	h.m.HistoryStart(h.tick(), s, after, warnOnly)
	h.drain()
}
func (h *harness) hist(s string, tid txn.TID) {
	h.m.History(h.tick(), txn.Commit{Storage: s, TID: tid})
	h.drain()
}
func (h *harness) tickAt(d time.Duration) {
	h.now += int64(d)
	h.m.Tick(h.now)
	h.drain()
}

// watched boots A (10) and B (20), both watched from their bootstrap TIDs.
func watched(t *testing.T, warnOnly bool) *harness {
	h := newHarness(t, Config{Storages: []string{sA, sB}})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	h.watch(sA, 10, warnOnly)
	h.watch(sB, 20, warnOnly)
	return h
}

// crossCommit runs T on A and B through the proxy's events, committing
// tidA and tidB.
func (h *harness) crossCommit(pa, pb txn.PartID, key txn.Key, tidA, tidB txn.TID) {
	h.begin(pa, sA, key)
	h.begin(pb, sB, key)
	h.vote(pa, true)
	h.vote(pb, true)
	h.fin(pa)
	h.done(pa, tidA)
	h.fin(pb)
	h.done(pb, tidB)
}

func TestHistoryConfirmsBeforePublishing(t *testing.T) {
	h := watched(t, false)
	// The finish replies come before the history: nothing of T is
	// published until the history vouches for both halves.
	h.crossCommit(1, 2, "t", 11, 21)
	require.Equal(t, txn.TID(10), h.pub(sA))
	require.Equal(t, txn.TID(20), h.pub(sB))
	h.hist(sA, 11)
	require.Equal(t, txn.TID(10), h.pub(sA), "B's half is not confirmed yet")
	require.Equal(t, txn.TID(20), h.pub(sB))
	h.hist(sB, 21)
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(21), h.pub(sB))
	require.Zero(t, h.count(RecUnaccounted, ""))
}

func TestHistoryBeforeFinishReply(t *testing.T) {
	h := watched(t, false)
	// ZEO invalidates the other connections before it answers the
	// committer: the history often comes first.
	h.begin(1, sA, "t")
	h.begin(2, sB, "t")
	h.vote(1, true)
	h.vote(2, true)
	h.fin(1)
	h.hist(sA, 11)
	h.done(1, 11)
	h.fin(2)
	h.hist(sB, 21)
	require.Equal(t, txn.TID(10), h.pub(sA))
	h.done(2, 21)
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(21), h.pub(sB))
	h.tickAt(time.Minute)
	require.Zero(t, h.count(RecUnaccounted, ""))
	require.Empty(t, h.m.Pins())
}

// A client that bypasses the proxy commits X on A and dies before B: the
// history shows X, nothing accounts for it. A is held below X; a later
// proxied transaction on A and B must not be published on B either.
func TestUnaccountedCommitHoldsAndIsReported(t *testing.T) {
	h := watched(t, false)
	h.hist(sA, 11) // X, unseen by the proxy
	h.crossCommit(1, 2, "t2", 12, 21)
	h.hist(sA, 12)
	h.hist(sB, 21)
	require.Equal(t, txn.TID(10), h.pub(sA), "A must stay below X")
	require.Equal(t, txn.TID(20), h.pub(sB), "T2's B half must wait for its A half")
	// Reported once after the grace, with a pin the operator can accept.
	h.tickAt(time.Second)
	require.Zero(t, h.count(RecUnaccounted, ""), "still within the grace")
	h.tickAt(10 * time.Second)
	require.Equal(t, 1, h.count(RecUnaccounted, ""))
	h.tickAt(10 * time.Second)
	require.Equal(t, 1, h.count(RecUnaccounted, ""), "reported once")
	pins := h.m.Pins()
	require.Len(t, pins, 1)
	require.Equal(t, PinUnaccounted, pins[0].Kind)
	require.Equal(t, []string{sA}, pins[0].Storages)
	require.NoError(t, h.m.AcceptPartial(h.tick(), pins[0].ID))
	h.drain()
	require.Equal(t, txn.TID(12), h.pub(sA))
	require.Equal(t, txn.TID(21), h.pub(sB))
	require.Empty(t, h.m.Pins())
	require.Equal(t, uint64(1), h.m.Counters().Unaccounted)
}

// A patched Zope's classic COMMIT comes after its commits: the normal path,
// never reported.
func TestClassicCommitAccountsLate(t *testing.T) {
	h := watched(t, false)
	h.m.ClassicBegin(h.tick(), "c1", []string{sA, sB})
	h.drain()
	h.hist(sA, 11)
	h.hist(sB, 21)
	h.tickAt(time.Minute) // explained by the classic transaction in flight
	require.Zero(t, h.count(RecUnaccounted, ""))
	h.m.ClassicCommit(h.tick(), "c1", []StorageTID{{Storage: sA, TID: 11}, {Storage: sB, TID: 21}}, nil)
	h.drain()
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(21), h.pub(sB))
	require.Empty(t, h.m.Pins())
}

// A classic COMMIT before the history: its confirm pin keeps it wholly out
// until both halves are in the history; the pin is never listed.
func TestClassicCommitAwaitsHistory(t *testing.T) {
	h := watched(t, false)
	h.m.ClassicBegin(h.tick(), "c1", []string{sA, sB})
	h.m.ClassicCommit(h.tick(), "c1", []StorageTID{{Storage: sA, TID: 11}, {Storage: sB, TID: 21}}, nil)
	h.drain()
	require.Empty(t, h.m.Pins())
	h.hist(sB, 21)
	require.Equal(t, txn.TID(10), h.pub(sA))
	require.Equal(t, txn.TID(20), h.pub(sB))
	h.hist(sA, 11)
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(21), h.pub(sB))
	require.Zero(t, h.count(RecPinReleased, ""))
}

func TestUnaccountedAccountedLateReleasesPin(t *testing.T) {
	h := watched(t, false)
	h.hist(sA, 11)
	h.tickAt(time.Minute)
	require.Len(t, h.m.Pins(), 1)
	h.m.ClassicCommit(h.tick(), "late", []StorageTID{{Storage: sA, TID: 11}}, nil) // COMMIT without BEGIN
	h.drain()
	require.Empty(t, h.m.Pins())
	require.Equal(t, 1, h.count(RecAccounted, ""))
	require.Equal(t, txn.TID(11), h.pub(sA))
}

func TestWarnOnlyStorageIsNotHeld(t *testing.T) {
	h := watched(t, true)
	h.hist(sA, 11)
	h.crossCommit(1, 2, "t2", 12, 21)
	h.hist(sA, 12)
	h.hist(sB, 21)
	require.Equal(t, txn.TID(12), h.pub(sA))
	require.Equal(t, txn.TID(21), h.pub(sB))
	h.tickAt(time.Minute)
	require.Equal(t, 1, h.count(RecUnaccounted, ""))
	require.Empty(t, h.m.Pins())
}

// The history never lets publication pass what it has not reported, even
// for commits the proxy saw (another client could have committed between).
func TestPublicationNeverPassesHistory(t *testing.T) {
	h := watched(t, false)
	h.begin(1, sA, "t")
	h.vote(1, true)
	h.fin(1)
	h.done(1, 15)
	require.Equal(t, txn.TID(10), h.pub(sA))
	h.hist(sA, 12) // someone else's commit, before T's
	h.hist(sA, 15)
	require.Equal(t, txn.TID(10), h.pub(sA), "12 is unaccounted")
}

// A storage's last TID read by the daemon (LastTID, Unblind, a second
// bootstrap) is not an accounting: it is never published past the history.
func TestLastTIDDoesNotPassHistory(t *testing.T) {
	h := watched(t, false)
	h.m.LastTID(h.tick(), sA, 12)
	h.drain()
	require.Equal(t, txn.TID(10), h.pub(sA))
	h.begin(1, sA, "t")
	h.vote(1, true)
	h.fin(1)
	h.done(1, 11)
	h.hist(sA, 11)
	require.Equal(t, txn.TID(11), h.pub(sA), "12 is not in the history yet")
	h.hist(sA, 12)
	require.Equal(t, txn.TID(11), h.pub(sA), "12 is unaccounted")
}

// A blind connection's commits are accounted for when it closes, up to the
// last TID read then (rule 5), not the commits seen before it opened.
func TestUnblindAccountsForTheBlindCommits(t *testing.T) {
	h := watched(t, false)
	h.hist(sA, 11) // a direct commit before the blind connection
	h.m.Blind(h.tick(), sA, "ZEO 4")
	h.drain()
	h.hist(sA, 12) // the blind connection's
	h.m.Unblind(h.tick(), sA, 12)
	h.drain()
	st := h.m.Status()
	require.Equal(t, []txn.TID{11}, st.Storages[0].Unaccounted)
	require.Equal(t, txn.TID(10), h.pub(sA))
	h.tickAt(time.Minute)
	require.Len(t, h.m.Pins(), 1)
	require.NoError(t, h.m.AcceptPartial(h.tick(), h.m.Pins()[0].ID))
	h.drain()
	require.Equal(t, txn.TID(12), h.pub(sA))
}

// A client that bypassed the proxy committed X on A and on B: accepting
// either pin accepts both at once, never one half alone; and not before
// both were reported.
func TestAcceptingUnaccountedPinsIsAllOrNothing(t *testing.T) {
	h := watched(t, false)
	h.hist(sA, 11)
	h.tickAt(10 * time.Second) // A's reported
	h.hist(sB, 21)             // B's seen, not reported yet
	pins := h.m.Pins()
	require.Len(t, pins, 1)
	require.ErrorIs(t, h.m.AcceptPartial(h.tick(), pins[0].ID), ErrUnaccountedPending)
	h.drain()
	require.Equal(t, txn.TID(10), h.pub(sA))
	h.tickAt(10 * time.Second)
	pins = h.m.Pins()
	require.Len(t, pins, 2)
	require.NoError(t, h.m.AcceptPartial(h.tick(), pins[0].ID))
	h.drain()
	require.Empty(t, h.m.Pins())
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(21), h.pub(sB))
	for _, r := range h.all {
		if r.Kind == RecPublished && r.Storage == sA && r.TID == 11 {
			// B must have been published in the same input.
			require.Equal(t, txn.TID(21), h.pub(sB))
		}
	}
}

// After an unclean stop with nothing to resume from, a storage is held at
// its live state until accepted.
func TestSuspectHoldsUntilAccepted(t *testing.T) {
	h := newHarness(t, Config{Storages: []string{sA}})
	h.watch(sA, 30, false)
	h.m.Suspect(h.tick(), sA, 30)
	h.drain()
	h.boot(map[string]txn.TID{sA: 30})
	_, ok := h.m.Published(sA)
	require.False(t, ok, "nothing is published before the operator decides")
	h.tickAt(10 * time.Second)
	pins := h.m.Pins()
	require.Len(t, pins, 1)
	require.NoError(t, h.m.AcceptPartial(h.tick(), pins[0].ID))
	h.drain()
	require.Equal(t, txn.TID(30), h.pub(sA))
}

// recoverAt crashes the harness's tracker: every participation in flight
// becomes an orphan, resolved from the history up to the live last TIDs.
func (h *harness) recoverAt(live map[string]txn.TID) {
	var vs []StorageTID
	for _, s := range []string{sA, sB, sC} {
		if v, ok := live[s]; ok {
			vs = append(vs, StorageTID{Storage: s, TID: v})
		}
	}
	h.m.Recover(h.tick(), vs, nil, false)
	h.drain()
}

func (h *harness) histMeta(s string, tid txn.TID, desc string) {
	h.m.History(h.tick(), txn.Commit{Storage: s, TID: tid, HasMeta: true, Description: desc})
	h.drain()
}

// Found by the simulation: two orphans on A with identical metadata (two
// anonymous clients), one commit on A after the crash. It was given to the
// lower id (X's), so Y settled as not committed although the commit was
// Y's, and once X's partial pin was accepted A was published past Y's half
// (Y's C half never committed). An ambiguous match now pins every
// candidate's linked set, holding the orphan's storage below it.
func TestRecoverAmbiguousOrphans(t *testing.T) {
	h := newHarness(t, Config{Storages: []string{sA, sB, sC}})
	h.boot(map[string]txn.TID{sA: 10, sB: 20, sC: 30})
	h.watch(sA, 10, false)
	h.watch(sB, 20, false)
	h.watch(sC, 30, false)
	h.begin(1, sA, "x")
	h.begin(2, sB, "x")
	h.begin(3, sA, "y")
	h.begin(4, sC, "y")
	for _, p := range []txn.PartID{1, 2, 3, 4} {
		h.vote(p, true)
	}
	h.fin(1)
	h.fin(3)
	h.recoverAt(map[string]txn.TID{sA: 11, sB: 20, sC: 30})
	h.histMeta(sA, 11, "") // Y's commit, X's metadata as well
	h.tickAt(time.Minute)
	pins := h.m.Pins()
	require.Len(t, pins, 2, "both linked sets are in doubt")
	require.Contains(t, pins[0].Reason, "outcome ambiguous")
	for _, p := range pins {
		if p.Parts[0] == 1 {
			require.NoError(t, h.m.AcceptPartial(h.tick(), p.ID))
			h.drain()
		}
	}
	require.Equal(t, txn.TID(10), h.pub(sA), "Y's half on A must not be published while Y is pinned")
}

// Found by the simulation: ZEO invalidates before it answers the
// committer, so the history often reports a commit (without metadata)
// before its finish reply; if tidstorage dies in between, the commit is
// held unaccounted and the orphan settled at once as not committed: a
// false unaccounted report needing the operator, and the real partial
// commit (B never finished) not pinned as one. The re-read of the history
// after Recover now brings the metadata and the orphan is matched.
func TestRecoverOrphanCommitReportedBeforeCrash(t *testing.T) {
	h := watched(t, false)
	h.m.PartBegin(h.tick(), 1, sA, "t", txn.Info{Description: "/edit"})
	h.m.PartBegin(h.tick(), 2, sB, "t", txn.Info{Description: "/edit"})
	h.drain()
	h.vote(1, true)
	h.vote(2, true)
	h.fin(1)
	h.hist(sA, 11) // invalidation: no metadata
	h.recoverAt(map[string]txn.TID{sA: 11, sB: 20})
	require.Len(t, h.m.Status().Parts, 1, "the orphan waits for the metadata of 11")
	h.histMeta(sA, 11, "/edit") // the iterator re-reads above the published point
	h.tickAt(time.Minute)
	require.Zero(t, h.count(RecUnaccounted, ""))
	require.Equal(t, 1, h.count(RecPartial, ""), "T committed on A only")
	require.Equal(t, txn.TID(10), h.pub(sA))

	// A single-storage orphan in the same case publishes with no operator.
	h = watched(t, false)
	h.m.PartBegin(h.tick(), 1, sA, "t", txn.Info{Description: "/edit"})
	h.drain()
	h.vote(1, true)
	h.fin(1)
	h.hist(sA, 11)
	h.recoverAt(map[string]txn.TID{sA: 11, sB: 20})
	h.histMeta(sA, 11, "/edit")
	h.tickAt(time.Minute)
	require.Empty(t, h.m.Pins())
	require.Equal(t, txn.TID(11), h.pub(sA))
}

// Found by the simulation: a blind connection dies with the process, but
// its pin survived Recover and nothing could ever unblind it (a blind pin
// cannot be accepted): the storage was never published again.
func TestRecoverEndsBlindConnections(t *testing.T) {
	h := watched(t, false)
	h.m.Blind(h.tick(), sA, "undecodable frames")
	h.drain()
	h.hist(sA, 11) // committed unseen over the blind connection
	h.recoverAt(map[string]txn.TID{sA: 11, sB: 20})
	h.tickAt(time.Minute)
	require.Empty(t, h.m.Pins(), "closed as by Unblind with the live TID (rule 5)")
	require.Equal(t, txn.TID(11), h.pub(sA))
}

// While an orphan waits for the metadata of a held commit, a new commit
// above the live last TID read at restart, with the same metadata, is not
// the orphan's (nothing of the dead connections commits after it).
func TestRecoverOrphanIgnoresCommitsAfterLive(t *testing.T) {
	h := watched(t, false)
	h.m.PartBegin(h.tick(), 1, sA, "t", txn.Info{Description: "/edit"})
	h.drain()
	h.vote(1, true)
	h.fin(1)
	h.hist(sA, 11)
	h.recoverAt(map[string]txn.TID{sA: 11, sB: 20})
	h.m.PartBegin(h.tick(), 5, sA, "t", txn.Info{Description: "/edit"})
	h.drain()
	h.vote(5, true)
	h.fin(5)
	h.histMeta(sA, 12, "/edit") // the new participation's commit
	h.done(5, 12)
	h.histMeta(sA, 11, "/edit") // the re-read: the orphan's
	h.tickAt(time.Minute)
	require.Zero(t, h.count(RecUnaccounted, ""))
	require.Empty(t, h.m.Pins())
	require.Equal(t, txn.TID(12), h.pub(sA))
}

// The live accept: every watched storage's history must reach the live TID
// read for the accept, then every held commit up to it is accepted at once,
// reported or not, so that no half of a bypassing transaction is left held
// behind an accepted one.
func TestAcceptUnaccountedWithLiveTIDs(t *testing.T) {
	h := watched(t, false)
	h.hist(sA, 11)
	h.tickAt(10 * time.Second)
	pins := h.m.Pins()
	require.Len(t, pins, 1)
	// B's half is committed (live 21) but its history has not shown it.
	live := []StorageTID{{Storage: sA, TID: 11}, {Storage: sB, TID: 21}}
	require.ErrorIs(t, h.m.AcceptUnaccounted(h.tick(), pins[0].ID, live), ErrHistoryBehind)
	h.drain()
	h.hist(sB, 21) // seen, not reported yet: accepted all the same
	require.NoError(t, h.m.AcceptUnaccounted(h.tick(), pins[0].ID, live))
	h.drain()
	require.Empty(t, h.m.Pins())
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(21), h.pub(sB))
	// Later commits are not covered.
	h.hist(sA, 12)
	require.Equal(t, txn.TID(11), h.pub(sA))
}
