package tracker

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidstorage/tidstorage/internal/txn"
)

const (
	sA = "((('localhost', 8100),), 'A')"
	sB = "((('localhost', 8200),), 'B')"
	sC = "((('localhost', 8300),), 'C')"
)

type harness struct {
	t   *testing.T
	m   *Machine
	now int64
	all []Record
}

func newHarness(t *testing.T, cfg Config) *harness {
	h := &harness{t: t, m: New(cfg)}
	return h
}

func (h *harness) tick() int64 { h.now += 1e6; return h.now }

// drain collects the records of the last input.
func (h *harness) drain() []Record {
	rs := append([]Record(nil), h.m.Records()...)
	h.m.ClearRecords()
	h.all = append(h.all, rs...)
	return rs
}

func (h *harness) boot(vals map[string]txn.TID) {
	var vs []StorageTID
	for k, v := range vals {
		vs = append(vs, StorageTID{Storage: k, TID: v})
	}
	h.m.Bootstrap(h.tick(), vs, true)
	h.drain()
}

func (h *harness) pub(s string) txn.TID {
	v, ok := h.m.Published(s)
	require.True(h.t, ok, "storage %s not published", s)
	return v
}

func (h *harness) count(kind RecordKind, code Code) int {
	n := 0
	for _, r := range h.all {
		if r.Kind == kind && (code == "" || r.Code == code) {
			n++
		}
	}
	return n
}

// commit runs one participation through a whole successful 2PC.
func (h *harness) begin(p txn.PartID, s string, key txn.Key) {
	h.m.PartBegin(h.tick(), p, s, key, txn.Info{Client: string(key)})
	h.drain()
}
func (h *harness) vote(p txn.PartID, ok bool)     { h.m.PartVote(h.tick(), p, ok); h.drain() }
func (h *harness) fin(p txn.PartID)               { h.m.PartFinishSent(h.tick(), p); h.drain() }
func (h *harness) done(p txn.PartID, tid txn.TID) { h.m.PartFinished(h.tick(), p, tid); h.drain() }
func (h *harness) abort(p txn.PartID)             { h.m.PartAborted(h.tick(), p); h.drain() }
func (h *harness) lost(p txn.PartID)              { h.m.PartLost(h.tick(), p); h.drain() }

func TestSingleStoragePublishes(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	require.True(t, h.m.Bootstrapped())
	require.Equal(t, txn.TID(10), h.pub(sA))
	h.begin(1, sA, "k")
	h.vote(1, true)
	h.fin(1)
	h.done(1, 11)
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(20), h.pub(sB))
}

// The seed's scenario: T1 on A and B commits on A; T2 then commits on A
// alone. A must not publish T2 while T1's B half is not in.
func TestSeedScenarioHoldsBackA(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	h.begin(1, sA, "t1")
	h.begin(2, sB, "t1")
	h.vote(1, true)
	h.vote(2, true)
	h.fin(1)
	h.done(1, 30)
	// T2 on A only, from another client.
	h.begin(3, sA, "t2")
	h.vote(3, true)
	h.fin(3)
	h.done(3, 31)
	require.Equal(t, txn.TID(10), h.pub(sA))
	require.Equal(t, txn.TID(20), h.pub(sB))
	h.fin(2)
	h.done(2, 32)
	require.Equal(t, txn.TID(31), h.pub(sA))
	require.Equal(t, txn.TID(32), h.pub(sB))
}

func TestConflictIsNotPartial(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	h.begin(1, sA, "k")
	h.begin(2, sB, "k")
	h.vote(1, true)
	h.vote(2, false)
	h.abort(1)
	h.abort(2)
	require.Zero(t, h.count(RecPartial, ""))
	require.Empty(t, h.m.Pins())
}

func TestCrashBetweenFinishesPinsUntilAccepted(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20, sC: 5})
	h.begin(1, sA, "k")
	h.begin(2, sB, "k")
	h.vote(1, true)
	h.vote(2, true)
	h.fin(1)
	h.done(1, 30)
	h.lost(2) // client died before sending tpc_finish to B
	require.Equal(t, 1, h.count(RecPartial, ""))
	pins := h.m.Pins()
	require.Len(t, pins, 1)
	require.Equal(t, PinPartial, pins[0].Kind)
	require.Equal(t, []string{sA, sB}, pins[0].Storages)
	require.Equal(t, txn.TID(10), h.pub(sA))
	// Later transactions touching A (and C with it) stay held too.
	h.begin(3, sA, "x")
	h.begin(4, sC, "x")
	h.vote(3, true)
	h.vote(4, true)
	h.fin(3)
	h.fin(4)
	h.done(3, 40)
	h.done(4, 41)
	require.Equal(t, txn.TID(10), h.pub(sA))
	require.Equal(t, txn.TID(5), h.pub(sC))
	require.NoError(t, h.m.AcceptPartial(h.tick(), pins[0].ID))
	h.drain()
	require.Equal(t, txn.TID(40), h.pub(sA))
	require.Equal(t, txn.TID(20), h.pub(sB))
	require.Equal(t, txn.TID(41), h.pub(sC))
	require.ErrorIs(t, h.m.AcceptPartial(h.tick(), pins[0].ID), ErrNoSuchPin)
}

func TestInDoubtPinsUntilResolved(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	h.begin(1, sA, "k")
	h.begin(2, sB, "k")
	h.vote(1, true)
	h.vote(2, true)
	h.fin(1)
	h.done(1, 30)
	h.fin(2)
	h.lost(2)
	require.Equal(t, 1, h.count(RecInDoubt, ""))
	require.Equal(t, txn.TID(10), h.pub(sA))
	h.m.PartResolved(h.tick(), 2, true, 31)
	h.drain()
	require.Equal(t, txn.TID(30), h.pub(sA))
	require.Equal(t, txn.TID(31), h.pub(sB))
	require.Zero(t, h.count(RecPartial, ""))
}

func TestInDoubtResolvedAbortedIsPartial(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	h.begin(1, sA, "k")
	h.begin(2, sB, "k")
	h.vote(1, true)
	h.vote(2, true)
	h.fin(1)
	h.done(1, 30)
	h.fin(2)
	h.lost(2)
	h.m.PartResolved(h.tick(), 2, false, 0)
	h.drain()
	require.Equal(t, 1, h.count(RecPartial, ""))
	require.Equal(t, txn.TID(10), h.pub(sA))
}

func TestLinkedConcurrentTransactionsConflict(t *testing.T) {
	// Two transactions of one client with identical metadata: T on A,B
	// commits; U on A,C votes C... in sorted order A then C: U's A vote
	// succeeds, C fails after T finished. Not a partial commit.
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20, sC: 30})
	h.begin(1, sA, "k") // T
	h.begin(2, sB, "k") // T
	h.begin(3, sA, "k") // U
	h.begin(4, sC, "k") // U
	h.vote(1, true)
	h.vote(2, true)
	h.vote(3, true) // U's A vote (in reality after T's finish on A; order kept loose)
	h.fin(1)
	h.done(1, 40)
	h.fin(2)
	h.done(2, 41)
	h.vote(4, false)
	h.abort(3)
	h.abort(4)
	require.Zero(t, h.count(RecPartial, ""))
	require.Equal(t, txn.TID(40), h.pub(sA))
	require.Equal(t, txn.TID(41), h.pub(sB))
}

func TestNoLinkAfterFinishStarted(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	h.begin(1, sA, "k")
	h.vote(1, true)
	h.fin(1)
	h.lost(1) // in doubt
	// Same key, new transaction on B: cannot be part of 1's transaction.
	h.begin(2, sB, "k")
	h.vote(2, true)
	h.fin(2)
	h.done(2, 21)
	require.Equal(t, txn.TID(21), h.pub(sB))
	require.Equal(t, txn.TID(10), h.pub(sA))
}

func TestBlind(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10})
	h.m.Blind(h.tick(), sA, "unknown protocol")
	h.drain()
	h.begin(1, sA, "k")
	h.vote(1, true)
	h.fin(1)
	h.done(1, 11)
	require.Equal(t, txn.TID(10), h.pub(sA))
	h.m.Unblind(h.tick(), sA, 12)
	h.drain()
	require.Equal(t, txn.TID(12), h.pub(sA))
}

func TestBootstrapWaitsForConfiguredStorages(t *testing.T) {
	h := newHarness(t, Config{Storages: []string{sA, sB}})
	h.m.ClassicCommit(h.tick(), "t1", []StorageTID{{Storage: sA, TID: 11}}, nil)
	h.drain()
	require.False(t, h.m.Bootstrapped())
	_, ok := h.m.Published(sA)
	require.False(t, ok)
	h.m.ClassicCommit(h.tick(), "t2", []StorageTID{{Storage: sB, TID: 21}}, nil)
	h.drain()
	require.True(t, h.m.Bootstrapped())
	require.Equal(t, txn.TID(11), h.pub(sA))
	require.Equal(t, txn.TID(21), h.pub(sB))
}

func TestDecreaseRefused(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10})
	h.m.Bootstrap(h.tick(), []StorageTID{{Storage: sA, TID: 5}}, true)
	h.drain()
	require.Equal(t, txn.TID(10), h.pub(sA))
	require.Equal(t, 1, h.count(RecCritical, CodeBootstrapDecrease))
}

func TestStatusJSON(t *testing.T) {
	h := newHarness(t, Config{})
	h.boot(map[string]txn.TID{sA: 10, sB: 20})
	h.begin(1, sA, "k")
	h.begin(2, sB, "k")
	h.vote(1, true)
	h.vote(2, true)
	h.fin(1)
	h.done(1, 11)
	h.lost(2)
	b, err := json.Marshal(h.m.Status())
	require.NoError(t, err)
	s := string(b)
	require.Contains(t, s, `"Kind":"partial"`)
	require.Contains(t, s, `"Bootstrapped":true`)
	var back map[string]any
	require.NoError(t, json.Unmarshal(b, &back))
}
