package tracker

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidstorage/tidstorage/internal/txn"
)

func fixedClock() func() time.Time {
	t := time.Unix(1_700_000_000, 0)
	return func() time.Time { t = t.Add(time.Millisecond); return t }
}

// A Service that dies (its journal left as the crash left it) is rebuilt
// exactly by a replay, then Recover turns its participations into orphans
// resolved from the history.
func TestServiceJournalReplayAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	cfg, s := watchedJournaled(t, path)
	info := txn.Info{Client: "c", User: "u", Description: "T1"}
	key := txn.NewKey(info.Client, info.User, info.Description, info.Extension)
	// T1 commits on A; the process dies while the client is between its
	// finishes: B voted, its tpc_finish was never sent.
	s.Observe(txn.Event{Kind: txn.Begin, Part: 1, Storage: sA, Key: key, Info: info})
	s.Observe(txn.Event{Kind: txn.Begin, Part: 2, Storage: sB, Key: key, Info: info})
	s.Observe(txn.Event{Kind: txn.Vote, Part: 1, OK: true})
	s.Observe(txn.Event{Kind: txn.Vote, Part: 2, OK: true})
	s.Observe(txn.Event{Kind: txn.FinishSent, Part: 1})
	s.Observe(txn.Event{Kind: txn.Finished, Part: 1, TID: 11})
	s.History(txn.Commit{Storage: sA, TID: 11})
	before := s.m.Status()
	// No Close: the crash.

	r := NewService(cfg)
	st, err := r.OpenJournal(path, JournalOptions{Replay: true})
	require.NoError(t, err)
	require.Equal(t, 11, st.Replayed, "the first image and ten inputs")
	require.Empty(t, st.Damage)
	require.Contains(t, r.Status().Held, "recovering", "nothing is published before Recover")
	require.Empty(t, r.Dump())
	after := r.m.Status()
	before.Time, after.Time = 0, 0
	before.Counters.Events, after.Counters.Events = 0, 0 // the replay also counts the first image
	require.Equal(t, before, after, "the replay rebuilds the state exactly")

	r.Recover(map[string]txn.TID{sA: 11, sB: 20}, nil)
	require.Len(t, r.Status().Pins, 1, "T1 is a partial commit")
	require.Equal(t, PinPartial, r.Status().Pins[0].Kind)
	v, _ := r.Published(sA)
	require.Equal(t, txn.TID(10), v, "T1's A half is never published")
	require.NoError(t, r.Close())
	require.NoError(t, s.Close())
}

// The process dies after forwarding a tpc_finish: the participation is an
// orphan; the history says whether it committed.
func TestServiceRecoverResolvesOrphanFromHistory(t *testing.T) {
	for _, committed := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), "journal")
		cfg, s := watchedJournaled(t, path)
		info := txn.Info{Client: "c", User: "u", Description: "T1", Extension: "{}"}
		key := txn.NewKey(info.Client, info.User, info.Description, info.Extension)
		s.Observe(txn.Event{Kind: txn.Begin, Part: 1, Storage: sA, Key: key, Info: info})
		s.Observe(txn.Event{Kind: txn.Begin, Part: 2, Storage: sB, Key: key, Info: info})
		s.Observe(txn.Event{Kind: txn.Vote, Part: 1, OK: true})
		s.Observe(txn.Event{Kind: txn.Vote, Part: 2, OK: true})
		s.Observe(txn.Event{Kind: txn.FinishSent, Part: 1})
		s.Observe(txn.Event{Kind: txn.Finished, Part: 1, TID: 11})
		s.Observe(txn.Event{Kind: txn.FinishSent, Part: 2})

		r := NewService(cfg)
		_, err := r.OpenJournal(path, JournalOptions{Replay: true})
		require.NoError(t, err)
		live := map[string]txn.TID{sA: 11, sB: 20}
		if committed {
			live[sB] = 21
		}
		r.Recover(live, nil)
		r.History(txn.Commit{Storage: sA, TID: 11, HasMeta: true, User: "u", Description: "T1", Extension: "{}"})
		if committed {
			r.History(txn.Commit{Storage: sB, TID: 21, HasMeta: true, User: "u", Description: "T1", Extension: "{}"})
			a, _ := r.Published(sA)
			b, _ := r.Published(sB)
			require.Equal(t, []txn.TID{11, 21}, []txn.TID{a, b})
			require.Empty(t, r.Status().Pins)
		} else {
			require.Len(t, r.Status().Pins, 1)
			require.Equal(t, PinPartial, r.Status().Pins[0].Kind)
			a, _ := r.Published(sA)
			require.Equal(t, txn.TID(10), a)
		}
		r.Close()
		s.Close()
	}
}

// The journal rotates at the first Tick past its size while transactions
// are in flight and a pin is held: the replay of the image and the records
// after it gives the live state, and both go on alike.
func TestServiceJournalRotatesWhileBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	cfg, s := watchedJournaledSize(t, path, 1)
	info := txn.Info{Client: "c", User: "u", Description: "T1"}
	key := txn.NewKey(info.Client, info.User, info.Description, info.Extension)
	s.ClassicBegin("t", []string{sA})
	s.Observe(txn.Event{Kind: txn.Begin, Part: 1, Storage: sA, Key: key, Info: info})
	s.Observe(txn.Event{Kind: txn.Begin, Part: 2, Storage: sB, Key: key, Info: info})
	s.Observe(txn.Event{Kind: txn.Vote, Part: 1, OK: true})
	s.Observe(txn.Event{Kind: txn.Blind, Storage: sB, Reason: "x"}) // a pin
	s.Tick()
	st := s.JournalStats()
	require.Equal(t, uint64(2), st.Rotations, "the start, then busy")
	require.Less(t, st.Size, int64(4096))
	s.Observe(txn.Event{Kind: txn.Vote, Part: 2, OK: true})
	s.Observe(txn.Event{Kind: txn.FinishSent, Part: 1})
	before := s.m.Status()

	r := NewService(cfg)
	got, err := r.OpenJournal(path, JournalOptions{Replay: true, RotateSize: 1})
	require.NoError(t, err)
	require.Equal(t, 3, got.Replayed, "the image and two inputs")
	after := r.m.Status()
	before.Time, after.Time = 0, 0
	require.Equal(t, before, after, "the replay rebuilds the busy state exactly")

	// Both go on alike, through another rotation of the replayed one (a
	// fleet tracker's start: no Recover, its sidecars go on).
	r.Floor(nil, nil)
	r.Tick()
	s.Tick()
	for _, x := range []*Service{s, r} {
		x.Observe(txn.Event{Kind: txn.FinishSent, Part: 2})
		x.Observe(txn.Event{Kind: txn.Finished, Part: 1, TID: 11})
		x.Observe(txn.Event{Kind: txn.Finished, Part: 2, TID: 21})
		x.History(txn.Commit{Storage: sA, TID: 11})
		x.History(txn.Commit{Storage: sB, TID: 21})
		x.ClassicCommit("t", map[string]txn.TID{sA: 12}, nil)
		x.History(txn.Commit{Storage: sA, TID: 12})
		x.Observe(txn.Event{Kind: txn.Unblind, Storage: sB, TID: 21})
	}
	a, b := s.Status(), r.Status()
	a.Time, b.Time = 0, 0
	a.Counters.Events, b.Counters.Events = 0, 0 // r applied one more Tick and the Floor
	require.Equal(t, a, b)
	v, _ := r.Published(sA)
	require.Equal(t, txn.TID(12), v)
	v, _ = r.Published(sB)
	require.Equal(t, txn.TID(21), v)
	require.NoError(t, s.Close())
	require.NoError(t, r.Close())
}

// A journal that cannot be written holds publication (the point stays, the
// inputs are still applied); a rotation that succeeds ends the hold and
// exposes the point the tracker reached meanwhile.
func TestServiceJournalBrokenHoldsPublication(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "journal")
	_, s := watchedJournaledSize(t, path, 64<<20)
	s.ClassicBegin("t", []string{sA})
	s.ClassicCommit("t", map[string]txn.TID{sA: 11}, nil)
	s.History(txn.Commit{Storage: sA, TID: 11})
	v, _ := s.Published(sA)
	require.Equal(t, txn.TID(11), v)

	// Appends fail from now on (a closed descriptor: EBADF, a real
	// failed write; the full disk is produced in cmd/daemon's tests).
	require.NoError(t, s.jr.j.Close())
	s.ClassicBegin("t", []string{sA})
	s.ClassicCommit("t", map[string]txn.TID{sA: 12}, nil)
	s.History(txn.Commit{Storage: sA, TID: 12})
	st := s.Status()
	require.Contains(t, st.Held, "the journal cannot be written")
	v, _ = s.Published(sA)
	require.Equal(t, txn.TID(11), v, "held")
	require.Equal(t, map[string]txn.TID{sA: 11, sB: 20}, s.Dump())
	require.Equal(t, txn.TID(11), st.Storages[0].Published)
	require.NotEmpty(t, s.JournalStats().Broken)
	_, err := os.Stat(path + ".broken")
	require.NoError(t, err, "the sentinel tells the next start that the tail is missing")

	s.Tick() // the rotation succeeds: a new file
	require.Empty(t, s.Status().Held)
	require.Empty(t, s.JournalStats().Broken)
	v, _ = s.Published(sA)
	require.Equal(t, txn.TID(12), v, "what the tracker reached meanwhile")
	_, err = os.Stat(path + ".broken")
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, s.Close())
}

func TestServiceJournalUndecodableRecordIsCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	s := NewService(ServiceConfig{Clock: fixedClock()})
	_, err := s.OpenJournal(path, JournalOptions{})
	require.NoError(t, err)
	s.Bootstrap(map[string]txn.TID{sA: 10}, true)
	require.NoError(t, s.jr.j.Append([]byte{99, 1, 2})) // a future version's record
	s.Tick()
	require.NoError(t, s.Close())
	r := NewService(ServiceConfig{Clock: fixedClock()})
	st, err := r.OpenJournal(path, JournalOptions{Replay: true})
	require.NoError(t, err)
	require.Equal(t, 2, st.Replayed)
	require.Contains(t, st.Damage, "input version 99")
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, st.Size, info.Size(), "cut at the bad record")
	require.NoError(t, r.Close())
}

// A sidecar's reports are applied once, whatever is resent, across a crash
// and replay of the tracker.
func TestServiceObserveFromDeduplicatesAcrossReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	cfg := ServiceConfig{Clock: fixedClock()}
	s := NewService(cfg)
	_, err := s.OpenJournal(path, JournalOptions{})
	require.NoError(t, err)
	s.Bootstrap(map[string]txn.TID{sA: 10}, true)
	begin := txn.Event{Kind: txn.Begin, Part: 1 << 40, Storage: sA, Key: "k"}
	require.Equal(t, uint64(1), s.ObserveFrom("side1", 1, begin))
	require.Equal(t, uint64(1), s.ObserveFrom("side1", 1, begin), "a resend")
	require.Equal(t, uint64(2), s.ObserveFrom("side1", 2, txn.Event{Kind: txn.Vote, Part: 1 << 40, OK: true}))
	require.Zero(t, s.Counters().Warnings, "the resent Begin was not applied twice")

	r := NewService(cfg)
	_, err = r.OpenJournal(path, JournalOptions{Replay: true})
	require.NoError(t, err)
	require.Equal(t, uint64(2), r.SourceSeq("side1"))
	require.Equal(t, uint64(2), r.ObserveFrom("side1", 2, txn.Event{Kind: txn.Vote, Part: 1 << 40, OK: true}))
	require.Equal(t, uint64(3), r.ObserveFrom("side1", 3, txn.Event{Kind: txn.Aborted, Part: 1 << 40}))
	require.Zero(t, r.Counters().Warnings)
	require.NoError(t, r.Close())
	require.NoError(t, s.Close())
}

// watchedJournaled starts a Service with a journal at path, A at 10 and B at
// 20, both watched from there; cfg restarts it after a "crash".
func watchedJournaled(t *testing.T, path string) (ServiceConfig, *Service) {
	return watchedJournaledSize(t, path, 0)
}

func watchedJournaledSize(t *testing.T, path string, rotate int64) (ServiceConfig, *Service) {
	t.Helper()
	cfg := ServiceConfig{Config: Config{Storages: []string{sA, sB}}, Clock: fixedClock()}
	s := NewService(cfg)
	_, err := s.OpenJournal(path, JournalOptions{RotateSize: rotate})
	require.NoError(t, err)
	s.Bootstrap(map[string]txn.TID{sA: 10, sB: 20}, true)
	s.HistoryStart(sA, 10, false)
	s.HistoryStart(sB, 20, false)
	return cfg, s
}

// HistoryBatch is History for each commit: the same state, every commit
// journaled (in one write), and a replay rebuilds it exactly.
func TestServiceHistoryBatch(t *testing.T) {
	dir := t.TempDir()
	info := txn.Info{Client: "c", User: "u", Description: "T1"}
	key := txn.NewKey(info.Client, info.User, info.Description, info.Extension)
	commits := []txn.Commit{{Storage: sA, TID: 11}, {Storage: sA, TID: 12, HasMeta: true, User: "x", Description: "bypass"}}
	var states []Status
	for _, batch := range []bool{false, true} {
		path := filepath.Join(dir, fmt.Sprint(batch))
		cfg, s := watchedJournaled(t, path)
		s.Observe(txn.Event{Kind: txn.Begin, Part: 1, Storage: sA, Key: key, Info: info})
		s.Observe(txn.Event{Kind: txn.Vote, Part: 1, OK: true})
		s.Observe(txn.Event{Kind: txn.FinishSent, Part: 1})
		s.Observe(txn.Event{Kind: txn.Finished, Part: 1, TID: 11})
		if batch {
			s.HistoryBatch(commits)
			s.HistoryBatch(nil)
		} else {
			for _, c := range commits {
				s.History(c)
			}
		}
		st := s.Status()
		require.EqualValues(t, 9, s.JournalStats().Records, "bootstrap, two starts, four events, two commits")
		r := NewService(cfg)
		_, err := r.OpenJournal(path, JournalOptions{Replay: true})
		require.NoError(t, err)
		// A replayed run publishes once it has the storages' last TIDs.
		r.Recover(map[string]txn.TID{sA: 12, sB: 20}, nil)
		replayed := r.Status()
		st.Time, replayed.Time = 0, 0
		st.Counters.Events, replayed.Counters.Events = 0, 0
		// The replayed run is not a clean start, and says so once.
		require.False(t, replayed.CleanStart)
		require.EqualValues(t, st.Counters.Warnings+1, replayed.Counters.Warnings)
		replayed.CleanStart, replayed.Counters.Warnings = st.CleanStart, st.Counters.Warnings
		require.Equal(t, st, replayed)
		states = append(states, st)
		require.NoError(t, r.Close())
		require.NoError(t, s.Close())
	}
	require.Equal(t, states[0], states[1])
	require.Equal(t, sA, states[1].Storages[0].ID)
	require.Equal(t, txn.TID(11), states[1].Storages[0].Published, "T1 published; the commit nobody reported holds A below it")
}

// The relay's path does not allocate: an event goes through the typed
// input, the journal's encoding and Machine.Apply without a heap object
// (docs/design.md, rule 1: the relay waits for it).
func TestServiceObserveNoAlloc(t *testing.T) {
	s := NewService(ServiceConfig{})
	_, err := s.OpenJournal(filepath.Join(t.TempDir(), "journal"), JournalOptions{})
	require.NoError(t, err)
	defer s.Close()
	s.Bootstrap(map[string]txn.TID{sA: 1}, true)
	key := txn.NewKey("c", "u", "d", "")
	part, tid := txn.PartID(0), txn.TID(1)
	one := func() {
		part++
		tid++
		s.Observe(txn.Event{Kind: txn.Begin, Part: part, Storage: sA, Key: key})
		s.Observe(txn.Event{Kind: txn.Vote, Part: part, OK: true})
		s.Observe(txn.Event{Kind: txn.FinishSent, Part: part})
		s.Observe(txn.Event{Kind: txn.Finished, Part: part, TID: tid})
	}
	for range 100 {
		one() // the pools fill
	}
	require.Zero(t, testing.AllocsPerRun(200, one))
	require.Empty(t, s.JournalStats().Broken)
}
