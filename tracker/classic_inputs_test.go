package tracker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidstorage/tidstorage/internal/txn"
)

func (h *harness) cbegin(id string, sts ...string) { h.m.ClassicBegin(h.tick(), id, sts); h.drain() }
func (h *harness) ccommit(id string, tids map[string]txn.TID, none ...string) {
	var ts []StorageTID
	for _, s := range []string{sA, sB, sC} {
		if v, ok := tids[s]; ok {
			ts = append(ts, StorageTID{Storage: s, TID: v})
		}
	}
	h.m.ClassicCommit(h.tick(), id, ts, none)
	h.drain()
}
func (h *harness) cabort(id string) { h.m.ClassicAbort(h.tick(), id); h.drain() }

func TestClassicGrouping(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20, sC: 30})
	h.cbegin("t1", sA, sB)
	h.cbegin("t2", sB, sC)
	h.ccommit("t1", map[string]txn.TID{sA: 11, sB: 21})
	require.Equal(t, txn.TID(10), h.pub(sA), "t2 still holds the group")
	h.ccommit("t2", map[string]txn.TID{sB: 22, sC: 31})
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(22), h.pub(sB))
	require.Equal(t, txn.TID(31), h.pub(sC))
	require.Zero(t, h.count(RecWarning, ""))
}

// Fault of the original: a COMMIT naming storages other than its BEGIN
// wedged the group forever.
func TestClassicCommitWithDifferentStoragesDoesNotWedge(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20, sC: 30})
	h.cbegin("t1", sA, sB)
	h.cbegin("t2", sC) // keeps C busy so t1's C value must wait for it
	h.ccommit("t1", map[string]txn.TID{sA: 11, sC: 31})
	require.Equal(t, 1, h.count(RecWarning, CodeCommitStorages))
	// A must not publish t1 while its C half cannot be published.
	require.Equal(t, txn.TID(10), h.pub(sA))
	h.ccommit("t2", map[string]txn.TID{sC: 32})
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(20), h.pub(sB))
	require.Equal(t, txn.TID(32), h.pub(sC))
	// Nothing left in flight: later transactions publish at once.
	h.cbegin("t3", sB)
	h.ccommit("t3", map[string]txn.TID{sB: 22})
	require.Equal(t, txn.TID(22), h.pub(sB))
	p, c := h.m.InFlight()
	require.Zero(t, p+c)
}

// Fault of the original: a COMMIT carrying None wedged the group.
func TestClassicCommitWithNoneDoesNotWedge(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	h.cbegin("t1", sA, sB)
	h.ccommit("t1", map[string]txn.TID{sA: 11}, sB)
	require.Equal(t, 1, h.count(RecWarning, CodeCommitNone))
	// B may hold an unknown commit of t1: A is held with it.
	require.Equal(t, txn.TID(10), h.pub(sA))
	h.cbegin("t2", sB)
	h.ccommit("t2", map[string]txn.TID{sB: 22})
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(22), h.pub(sB))
	require.Empty(t, h.m.Pins())
}

// Fault of the original: a lost COMMIT left the transaction in flight
// forever.
func TestClassicLostCommitTimesOut(t *testing.T) {
	h := newHarness(t, Config{ClassicTimeout: time.Second})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	h.cbegin("t1", sA, sB) // its COMMIT (A:11, B:21) never arrives
	h.cbegin("t2", sA)
	h.ccommit("t2", map[string]txn.TID{sA: 12})
	require.Equal(t, txn.TID(10), h.pub(sA))
	h.now += int64(2 * time.Second)
	h.m.Tick(h.tick())
	h.drain()
	require.Equal(t, 1, h.count(RecLost, ""))
	// Still held: B has had no commit since the loss.
	require.Equal(t, txn.TID(10), h.pub(sA))
	h.cbegin("t3", sA)
	h.ccommit("t3", map[string]txn.TID{sA: 13})
	require.Equal(t, txn.TID(10), h.pub(sA))
	h.cbegin("t4", sB)
	h.ccommit("t4", map[string]txn.TID{sB: 23})
	require.Equal(t, txn.TID(13), h.pub(sA))
	require.Equal(t, txn.TID(23), h.pub(sB))
	require.Empty(t, h.m.Pins())
}

func TestClassicLostAbortTimesOut(t *testing.T) {
	h := newHarness(t, Config{ClassicTimeout: time.Second})
	h.boot(map[string]txn.TID{sA: 10})
	h.cbegin("t1", sA)
	h.now += int64(2 * time.Second)
	h.m.Tick(h.tick())
	h.drain()
	h.cbegin("t2", sA)
	h.ccommit("t2", map[string]txn.TID{sA: 12})
	require.Equal(t, txn.TID(12), h.pub(sA))
}

func TestClassicLateCommitReleasesLostPin(t *testing.T) {
	h := newHarness(t, Config{ClassicTimeout: time.Second})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	h.cbegin("t1", sA, sB)
	h.now += int64(2 * time.Second)
	h.m.Tick(h.tick())
	h.drain()
	h.ccommit("t1", map[string]txn.TID{sA: 11, sB: 21})
	require.Equal(t, 1, h.count(RecWarning, CodeLateEnd))
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(21), h.pub(sB))
	require.Empty(t, h.m.Pins())
}

func TestClassicBeginTwiceLosesTheOld(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	h.cbegin("thr1", sA, sB)
	h.cbegin("thr1", sA) // the thread's previous COMMIT was dropped
	require.Equal(t, 1, h.count(RecWarning, CodeBeginTwice))
	require.Equal(t, 1, h.count(RecLost, ""))
	h.ccommit("thr1", map[string]txn.TID{sA: 12})
	require.Equal(t, txn.TID(10), h.pub(sA), "lost one may have committed on B")
	h.cbegin("x", sB)
	h.ccommit("x", map[string]txn.TID{sB: 22})
	require.Equal(t, txn.TID(12), h.pub(sA))
	require.Equal(t, txn.TID(22), h.pub(sB))
}

func TestClassicCommitAbortWithoutBegin(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	h.cabort("nope")
	require.Equal(t, 1, h.count(RecWarning, CodeAbortNoBegin))
	h.ccommit("nope", map[string]txn.TID{sA: 11, sB: 21})
	require.Equal(t, 1, h.count(RecWarning, CodeCommitNoBegin))
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(21), h.pub(sB))
	// While B is busy, such a COMMIT holds A with it.
	h.cbegin("busy", sB)
	h.ccommit("nope2", map[string]txn.TID{sA: 12, sB: 22})
	require.Equal(t, txn.TID(11), h.pub(sA))
	h.cabort("busy")
	require.Equal(t, txn.TID(12), h.pub(sA))
	require.Equal(t, txn.TID(22), h.pub(sB))
}

func TestClassicAndProxyShareGroups(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	h.cbegin("c1", sA, sB)
	h.begin(1, sA, "k")
	h.vote(1, true)
	h.fin(1)
	h.done(1, 11)
	require.Equal(t, txn.TID(10), h.pub(sA))
	h.ccommit("c1", map[string]txn.TID{sB: 21})
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(21), h.pub(sB))
}

func TestGroupLagIsReported(t *testing.T) {
	h := newHarness(t, Config{LagWarning: time.Minute, ClassicTimeout: time.Hour})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	// Overlapping transactions keep the group busy for ever.
	h.cbegin("t0", sA, sB)
	for i := 1; i <= 100; i++ {
		id := string(rune('a' + i%2))
		if i > 1 {
			h.ccommit(id, map[string]txn.TID{sA: txn.TID(10 + i)})
		}
		h.cbegin(id, sA, sB)
		h.now += int64(time.Second)
		h.m.Tick(h.tick())
		h.drain()
	}
	require.Equal(t, txn.TID(10), h.pub(sA))
	require.Equal(t, 1, h.count(RecWarning, CodeGroupLag))
	h.now += int64(time.Minute)
	h.m.Tick(h.tick())
	h.drain()
	require.Equal(t, 2, h.count(RecWarning, CodeGroupLag))
}

func TestLastTIDReleasesLostPin(t *testing.T) {
	h := newHarness(t, Config{ClassicTimeout: time.Second})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	h.cbegin("t1", sA, sB) // committed A:11, B:21; COMMIT lost
	h.now += int64(2 * time.Second)
	h.m.Tick(h.tick())
	h.drain()
	pins := h.m.Pins()
	require.Len(t, pins, 1)
	require.Equal(t, []string{sA, sB}, pins[0].Waiting)
	h.m.LastTID(h.tick(), sA, 11)
	h.drain()
	require.Equal(t, []string{sB}, h.m.Pins()[0].Waiting)
	require.Equal(t, txn.TID(10), h.pub(sA))
	h.m.LastTID(h.tick(), sB, 21)
	h.drain()
	require.Empty(t, h.m.Pins())
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(21), h.pub(sB))
}

// Under constant overlap a group never drains; the frontier still publishes
// every transaction that can be wholly in.
func TestBusyGroupStillPublishes(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20, sC: 30})
	h.cbegin("t1", sA, sB)
	h.cbegin("t2", sB, sC)
	h.ccommit("t1", map[string]txn.TID{sA: 11, sB: 21})
	// t2 began when B's highest known TID was 20: its commit on B is above
	// 20, maybe below 21, so B stays at 20, and A with it (t1 wholly out).
	require.Equal(t, txn.TID(10), h.pub(sA))
	require.Equal(t, txn.TID(20), h.pub(sB))
	h.cbegin("t3", sA, sB) // keeps the group busy
	h.ccommit("t2", map[string]txn.TID{sB: 22, sC: 31})
	require.Equal(t, txn.TID(11), h.pub(sA), "t1 wholly in")
	require.Equal(t, txn.TID(21), h.pub(sB), "t3 may commit on B above 21 only")
	require.Equal(t, txn.TID(30), h.pub(sC), "t2 not in on B, so out on C")
	h.cbegin("t4", sC)
	h.ccommit("t3", map[string]txn.TID{sA: 12, sB: 23})
	require.Equal(t, txn.TID(12), h.pub(sA))
	require.Equal(t, txn.TID(23), h.pub(sB))
	require.Equal(t, txn.TID(31), h.pub(sC))
	p, c := h.m.InFlight()
	require.Equal(t, 1, p+c, "t4 still in flight: the group never drained")
}

// A storage with no value yet publishes nothing rather than a made-up TID
// (the original's "overlapping, second ends first").
func TestNoMadeUpValues(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(nil)
	h.cbegin("t1", sA, sB)
	h.cbegin("t2", sA, sC)
	h.ccommit("t2", map[string]txn.TID{sA: 2, sC: 1})
	require.Empty(t, h.m.AppendPublished(nil))
	h.ccommit("t1", map[string]txn.TID{sA: 1, sB: 1})
	require.Equal(t, []StorageTID{{Storage: sA, TID: 2}, {Storage: sB, TID: 1}, {Storage: sC, TID: 1}}, h.m.AppendPublished(nil))
}

// A classic COMMIT carrying a TID at or below the
// storage's published TID is reported CRITICAL, as the original's
// "Decreasing update ignored"; the published TID keeps the maximum.
func TestClassicDecreasingCommitIsCritical(t *testing.T) {
	for _, classicOnly := range []bool{true, false} {
		h := newHarness(t, Config{ClassicOnly: classicOnly})
		h.boot(map[string]txn.TID{sA: 10, sB: 20})
		h.cbegin("t0", sA, sB) // classic-only: meets the bootstrap rule
		h.ccommit("t0", map[string]txn.TID{sA: 11, sB: 21})
		h.cbegin("t1", sA, sB)
		h.ccommit("t1", map[string]txn.TID{sA: 15, sB: 25})
		require.Equal(t, txn.TID(15), h.pub(sA))
		require.Zero(t, h.count(RecCritical, ""))

		// Below the published TID: critical in both modes; max kept.
		h.cbegin("t2", sA, sB)
		h.ccommit("t2", map[string]txn.TID{sA: 12, sB: 26})
		require.Equal(t, txn.TID(15), h.pub(sA), "the maximum is kept")
		require.Equal(t, txn.TID(26), h.pub(sB), "the other storage's increase is applied")
		require.Equal(t, 1, h.count(RecCritical, CodeClassicDecrease))
		var crit Record
		for _, r := range h.all {
			if r.Code == CodeClassicDecrease {
				crit = r
			}
		}
		require.Equal(t, sA, crit.Storage)
		require.Equal(t, txn.TID(12), crit.TID)
		require.Equal(t, txn.TID(15), crit.Old)
		require.Equal(t, "t2", crit.Txn)
		require.Contains(t, crit.Msg, "Decreasing update ignored")
		require.Contains(t, crit.Msg, txn.TID(12).Hex())

		// Equal to the published TID: critical only without a proxy (with
		// one, the proxy may have reported the same commit first).
		h.cbegin("t3", sB)
		h.ccommit("t3", map[string]txn.TID{sB: 26})
		want := 1
		if classicOnly {
			want = 2
		}
		require.Equal(t, want, h.count(RecCritical, CodeClassicDecrease), "classic-only %v", classicOnly)
		require.Equal(t, txn.TID(26), h.pub(sB))
		require.EqualValues(t, want, h.m.Counters().Criticals)

		// Expected below, not critical: a COMMIT without BEGIN (begun
		// before a restart), the late COMMIT of a lost transaction.
		h.ccommit("before-restart", map[string]txn.TID{sA: 13})
		require.Equal(t, want, h.count(RecCritical, CodeClassicDecrease))
		require.Equal(t, txn.TID(15), h.pub(sA))
	}
}

// With only the classic endpoint (Config.ClassicOnly), the
// original's bootstrap rule: nothing is published until every configured or
// known storage had a commit of a transaction that began after the start.
func TestClassicOnlyBootstrapRule(t *testing.T) {
	h := newHarness(t, Config{ClassicOnly: true, Storages: []string{sA}})
	h.boot(nil)
	require.False(t, h.m.Bootstrapped(), "nothing seen yet")

	// A COMMIT whose BEGIN went to the previous process does not count,
	// and makes its storage known: it must be seen fresh too.
	h.ccommit("old", map[string]txn.TID{sA: 10, sB: 20})
	require.False(t, h.m.Bootstrapped())
	h.cbegin("t1", sA)
	h.ccommit("t1", map[string]txn.TID{sA: 11})
	require.False(t, h.m.Bootstrapped(), "B is known and has not had a transaction begun after the start")
	_, ok := h.m.Published(sA)
	require.False(t, ok, "nothing published before bootstrap")

	// An abort does not count either.
	h.cbegin("t2", sB)
	h.cabort("t2")
	require.False(t, h.m.Bootstrapped())

	h.cbegin("t3", sB)
	h.ccommit("t3", map[string]txn.TID{sB: 21})
	require.True(t, h.m.ClassicBootstrapped(), "BOOTSTRAPED answers 1 once the rule is met")
	require.False(t, h.m.Bootstrapped(), "publication has not started")
	_, ok = h.m.Published(sA)
	require.False(t, ok, "as the original: nothing published by the commit that met the rule")
	require.Zero(t, h.count(RecBootstrapped, ""))
	h.cbegin("t4", sA)
	h.cabort("t4")
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(21), h.pub(sB))
	require.Equal(t, 1, h.count(RecBootstrapped, ""))

	// Without configured storages, at least one fresh commit is needed.
	h = newHarness(t, Config{ClassicOnly: true})
	h.boot(nil)
	require.False(t, h.m.Bootstrapped(), "no transaction yet")
	h.ccommit("old", map[string]txn.TID{sA: 10})
	require.False(t, h.m.Bootstrapped())
	h.cbegin("t1", sA)
	h.ccommit("t1", map[string]txn.TID{sA: 11})
	require.True(t, h.m.ClassicBootstrapped())
	h.cbegin("t2", sA)
	h.ccommit("t2", map[string]txn.TID{sA: 12})
	require.Equal(t, txn.TID(12), h.pub(sA))

	// Not classic-only: the configured storages' known values are enough
	// (the proxy reads them at start), as before.
	h = newHarness(t, Config{Storages: []string{sA}})
	h.boot(map[string]txn.TID{sA: 10})
	require.True(t, h.m.Bootstrapped())
}

// A snapshot taken after bootstrap restores it in classic-only mode too.
func TestClassicOnlyBootstrapSurvivesRestore(t *testing.T) {
	h := newHarness(t, Config{ClassicOnly: true})
	h.boot(nil)
	h.cbegin("t1", sA)
	h.ccommit("t1", map[string]txn.TID{sA: 11})
	h.cbegin("t2", sA)
	h.cabort("t2")
	require.True(t, h.m.Bootstrapped())
	sn := h.m.Snapshot()
	m := New(Config{ClassicOnly: true})
	m.Restore(0, sn)
	require.True(t, m.Bootstrapped())
}
