package tracker

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// A sidecar restarts with one participation of its previous run in doubt
// (tpc_finish sent) and one of another sidecar in flight: RecoverFrom
// settles the first from the history and leaves the second alone; the
// report is applied once, across a restart of the tracker.
func TestServiceRecoverFromOneRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	cfg, s := watchedJournaled(t, path)
	info := txn.Info{Client: "c", User: "u", Description: "T1", Extension: "{}"}
	key := txn.NewKey(info.Client, info.User, info.Description, info.Extension)
	const run1, run2 = txn.PartID(7 << 32), txn.PartID(9 << 32)
	seq := uint64(0)
	from := func(src string, ev txn.Event) { seq++; s.ObserveFrom(src, seq, ev) }
	from("s1", txn.Event{Kind: txn.Begin, Part: run1 + 1, Storage: sA, Key: key, Info: info})
	from("s1", txn.Event{Kind: txn.Vote, Part: run1 + 1, OK: true})
	from("s1", txn.Event{Kind: txn.FinishSent, Part: run1 + 1})
	info2 := txn.Info{Client: "d", User: "u", Description: "T2", Extension: "{}"}
	from("s2", txn.Event{Kind: txn.Begin, Part: run2 + 1, Storage: sB, Key: txn.NewKey("d", "u", "T2", "{}"), Info: info2})

	// The sidecar s1 restarted; the tracker too, before the report.
	require.NoError(t, s.CloseJournal())
	r := NewService(cfg)
	_, err := r.OpenJournal(path, JournalOptions{Replay: true})
	require.NoError(t, err)
	r.Bootstrap(nil, true) // a fleet tracker's start ends the recovery hold
	require.Equal(t, uint64(3), r.SourceSeq("s1"))
	require.Equal(t, uint64(10), r.RecoverFrom("s1", 10, run1, map[string]txn.TID{sA: 10}))
	require.Equal(t, uint64(10), r.RecoverFrom("s1", 10, run1, map[string]txn.TID{sA: 10}), "a resend")
	st := r.Status()
	require.Empty(t, st.Pins)
	a, _ := r.Published(sA)
	require.Equal(t, txn.TID(10), a)
	// s2's participation is still in flight: it commits normally.
	r.ObserveFrom("s2", 11, txn.Event{Kind: txn.Vote, Part: run2 + 1, OK: true})
	r.ObserveFrom("s2", 12, txn.Event{Kind: txn.FinishSent, Part: run2 + 1})
	r.ObserveFrom("s2", 13, txn.Event{Kind: txn.Finished, Part: run2 + 1, TID: 21})
	r.History(txn.Commit{Storage: sB, TID: 21, HasMeta: true, User: "u", Description: "T2", Extension: "{}"})
	b, _ := r.Published(sB)
	require.Equal(t, txn.TID(21), b)
	require.True(t, r.Quiet())
}

// The sidecar died after sending tpc_finish; the history reported the
// commit before the sidecar's restart was reported: RecoverFrom matches the
// orphan with that commit, already seen, instead of holding it unaccounted.
func TestServiceRecoverFromMatchesCommitSeenBefore(t *testing.T) {
	cfg := ServiceConfig{Config: Config{Storages: []string{sA, sB}}, Clock: fixedClock()}
	s := NewService(cfg)
	s.Bootstrap(map[string]txn.TID{sA: 10, sB: 20}, true)
	s.HistoryStart(sA, 10, false)
	s.HistoryStart(sB, 20, false)
	info := txn.Info{Client: "c", User: "u", Description: "T1", Extension: "{}"}
	key := txn.NewKey(info.Client, info.User, info.Description, info.Extension)
	const run = txn.PartID(5 << 32)
	s.ObserveFrom("s1", 1, txn.Event{Kind: txn.Begin, Part: run + 1, Storage: sA, Key: key, Info: info})
	s.ObserveFrom("s1", 2, txn.Event{Kind: txn.Vote, Part: run + 1, OK: true})
	s.ObserveFrom("s1", 3, txn.Event{Kind: txn.FinishSent, Part: run + 1})
	s.History(txn.Commit{Storage: sA, TID: 11, HasMeta: true, User: "u", Description: "T1", Extension: "{}"})
	a, _ := s.Published(sA)
	require.Equal(t, txn.TID(10), a)
	s.RecoverFrom("s1", 10, run, map[string]txn.TID{sA: 11, sB: 20})
	a, _ = s.Published(sA)
	require.Equal(t, txn.TID(11), a)
	require.Empty(t, s.Status().Pins)
	require.True(t, s.Quiet())
}

// A batch of reports is journaled with one write and replays like single
// ones; resends inside and across batches are ignored.
func TestServiceObserveBatchFrom(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	cfg := ServiceConfig{Config: Config{Storages: []string{sA}}, Clock: fixedClock()}
	s := NewService(cfg)
	_, err := s.OpenJournal(path, JournalOptions{})
	require.NoError(t, err)
	s.Bootstrap(map[string]txn.TID{sA: 10}, true)
	key := txn.NewKey("c", "u", "d", "")
	evs := []txn.Event{
		{Kind: txn.Begin, Part: 1, Storage: sA, Key: key, Info: txn.Info{Client: "c", User: "u", Description: "d"}},
		{Kind: txn.Vote, Part: 1, OK: true},
		{Kind: txn.FinishSent, Part: 1},
	}
	require.Equal(t, uint64(3), s.ObserveBatchFrom("s1", []uint64{1, 2, 3}, evs))
	require.Equal(t, uint64(4), s.ObserveBatchFrom("s1", []uint64{2, 3, 4},
		[]txn.Event{evs[1], evs[2], {Kind: txn.Finished, Part: 1, TID: 11}}))
	a, _ := s.Published(sA)
	require.Equal(t, txn.TID(11), a)
	require.EqualValues(t, 5, s.JournalStats().Records, "bootstrap and four reports (the resends are not journaled)")
	require.NoError(t, s.CloseJournal())
	r := NewService(cfg)
	_, err = r.OpenJournal(path, JournalOptions{Replay: true})
	require.NoError(t, err)
	require.Equal(t, uint64(4), r.SourceSeq("s1"))
	_, held := r.Published(sA)
	require.False(t, held, "nothing is published before the recovery ends")
	r.Bootstrap(nil, true)
	a, _ = r.Published(sA)
	require.Equal(t, txn.TID(11), a)
}

// Reports of two sidecars interleave late: sidecar 2's later commit on A is
// known before sidecar 1's tpc_finish report. When sidecar 1 then dies, its
// orphan is still matched with its commit, which sits below what was known.
func TestServiceRecoverFromAfterInterleavedReports(t *testing.T) {
	cfg := ServiceConfig{Config: Config{Storages: []string{sA, sB}}, Clock: fixedClock()}
	s := NewService(cfg)
	s.Bootstrap(map[string]txn.TID{sA: 10, sB: 20}, true)
	s.HistoryStart(sA, 10, false)
	s.HistoryStart(sB, 20, false)
	const run1, run2 = txn.PartID(5 << 32), txn.PartID(6 << 32)
	i1 := txn.Info{Client: "c1", Description: "T1", Extension: "{}"}
	i2 := txn.Info{Client: "c2", Description: "T2", Extension: "{}"}
	k1, k2 := txn.NewKey("c1", "", "T1", "{}"), txn.NewKey("c2", "", "T2", "{}")
	s.ObserveFrom("s1", 1, txn.Event{Kind: txn.Begin, Part: run1 + 1, Storage: sA, Key: k1, Info: i1})
	s.ObserveFrom("s1", 2, txn.Event{Kind: txn.Vote, Part: run1 + 1, OK: true})
	// T1 commits on A at 11, then T2 (sidecar 2) at 12; s2's reports come first.
	s.ObserveFrom("s2", 1, txn.Event{Kind: txn.Begin, Part: run2 + 1, Storage: sA, Key: k2, Info: i2})
	s.ObserveFrom("s2", 2, txn.Event{Kind: txn.Vote, Part: run2 + 1, OK: true})
	s.ObserveFrom("s2", 3, txn.Event{Kind: txn.FinishSent, Part: run2 + 1})
	s.ObserveFrom("s2", 4, txn.Event{Kind: txn.Finished, Part: run2 + 1, TID: 12})
	s.History(txn.Commit{Storage: sA, TID: 11, HasMeta: true, Description: "T1", Extension: "{}"})
	s.History(txn.Commit{Storage: sA, TID: 12, HasMeta: true, Description: "T2", Extension: "{}"})
	s.ObserveFrom("s1", 3, txn.Event{Kind: txn.FinishSent, Part: run1 + 1})
	a, _ := s.Published(sA)
	require.Equal(t, txn.TID(10), a, "T1's commit is not accounted yet")
	// Sidecar 1 dies before its Finished report.
	s.RecoverFrom("s1", 10, run1, map[string]txn.TID{sA: 12, sB: 20})
	a, _ = s.Published(sA)
	require.Equal(t, txn.TID(12), a)
	require.Empty(t, s.Status().Pins)
}
