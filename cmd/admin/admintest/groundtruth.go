package admintest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/cmd/admin"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/tracker/history"
)

// GroundTruth is a tracker.Service, with a real journal, whose storages'
// history is watched, after the scenario of NewGroundTruth.
type GroundTruth struct {
	Tracker *tracker.Service
	Clock   *Clock
	Journal string // the journal's path
	// UnaccountedPin holds B for its direct commit TB2.
	UnaccountedPin uint64
	// Expected values.
	BootA, BootB, BootC txn.TID
	TA1, TB1            txn.TID // a proxied transaction on A and B, accounted
	TB2                 txn.TID // a direct commit on B: unaccounted, held
	TC1                 txn.TID // a direct commit on C (warn-only): reported, not held
	TA2                 txn.TID // a proxied commit on A the history has not reached
	// Watchers is what Sources().Watchers returns (the watchers need ZEO
	// servers; their states are plain values here).
	Watchers map[string]history.Status
}

// NewGroundTruth plays this scenario, the clock ending at T0:
//
//	T0-15m  journal opened; bootstrap A, B, C (clean start); their history
//	        watched from there, C warn-only
//	T0-2m   a proxied transaction commits on A and B; the history shows both
//	T0-90s  the history of B shows TB2, which nothing reported (a client
//	        that bypasses the proxy)
//	T0-60s  the history of C shows TC1, which nothing reported
//	T0-30s  tick: TB2 and TC1 are reported; B gets an unaccounted pin
//	T0-10s  a proxied commit on A (TA2) the history has not shown yet
func NewGroundTruth(t testing.TB) *GroundTruth {
	f := &GroundTruth{Clock: &Clock{}}
	f.Clock.Set(T0.Add(-15 * time.Minute))
	f.Tracker = tracker.NewService(tracker.ServiceConfig{
		Config: tracker.Config{Storages: []string{A, B, C}},
		Clock:  f.Clock.Now,
	})
	f.Journal = filepath.Join(t.TempDir(), "status.journal")
	_, err := f.Tracker.OpenJournal(f.Journal, tracker.JournalOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { f.Tracker.Close() })

	f.BootA, f.BootB, f.BootC = TIDAt(t, -20*time.Minute), TIDAt(t, -19*time.Minute), TIDAt(t, -18*time.Minute)
	f.Tracker.Bootstrap(map[string]txn.TID{A: f.BootA, B: f.BootB, C: f.BootC}, true)
	f.Tracker.HistoryStart(A, f.BootA, false)
	f.Tracker.HistoryStart(B, f.BootB, false)
	f.Tracker.HistoryStart(C, f.BootC, true)

	f.Clock.Set(T0.Add(-2 * time.Minute))
	info := txn.Info{Client: "127.0.0.1:50000 (pid 4242)", User: "/plone admin", Description: "/plone/edit"}
	key := txn.NewKey(info.Client, info.User, info.Description, "")
	f.TA1, f.TB1 = TIDAt(t, -2*time.Minute), TIDAt(t, -2*time.Minute+time.Millisecond)
	for _, ev := range []txn.Event{
		{Kind: txn.Begin, Part: 1, Storage: A, Key: key, Info: info},
		{Kind: txn.Begin, Part: 2, Storage: B, Key: key, Info: info},
		{Kind: txn.Vote, Part: 1, OK: true}, {Kind: txn.Vote, Part: 2, OK: true},
		{Kind: txn.FinishSent, Part: 1}, {Kind: txn.Finished, Part: 1, TID: f.TA1},
		{Kind: txn.FinishSent, Part: 2}, {Kind: txn.Finished, Part: 2, TID: f.TB1},
	} {
		f.Tracker.Observe(ev)
	}
	f.Tracker.History(txn.Commit{Storage: A, TID: f.TA1})
	f.Tracker.History(txn.Commit{Storage: B, TID: f.TB1})

	f.Clock.Set(T0.Add(-90 * time.Second))
	f.TB2 = TIDAt(t, -90*time.Second)
	f.Tracker.History(txn.Commit{Storage: B, TID: f.TB2, HasMeta: true, User: "/ zope", Description: "/maintenance/fix-catalog"})
	f.Clock.Set(T0.Add(-60 * time.Second))
	f.TC1 = TIDAt(t, -60*time.Second)
	f.Tracker.History(txn.Commit{Storage: C, TID: f.TC1})
	f.Clock.Set(T0.Add(-30 * time.Second))
	f.Tracker.Tick()

	f.Clock.Set(T0.Add(-10 * time.Second))
	f.TA2 = TIDAt(t, -10*time.Second)
	other := txn.Info{Client: "127.0.0.1:50002 (pid 4343)", User: "/plone editor", Description: "/plone/news/add"}
	okey := txn.NewKey(other.Client, other.User, other.Description, "")
	for _, ev := range []txn.Event{
		{Kind: txn.Begin, Part: 3, Storage: A, Key: okey, Info: other},
		{Kind: txn.Vote, Part: 3, OK: true},
		{Kind: txn.FinishSent, Part: 3}, {Kind: txn.Finished, Part: 3, TID: f.TA2},
	} {
		f.Tracker.Observe(ev)
	}
	f.Clock.Set(T0)

	for _, p := range f.Tracker.Status().Pins {
		if p.Kind == tracker.PinUnaccounted {
			f.UnaccountedPin = p.ID
		}
	}
	require.NotZero(t, f.UnaccountedPin, "the scenario must produce an unaccounted pin")

	f.Watchers = map[string]history.Status{
		A: {Storage: A, Addr: "127.0.0.1:8100", Name: "A", Connected: true, Since: T0.Add(-15 * time.Minute),
			LastTID: f.TA1, ServerTID: f.TA2, Lag: f.TA2.Time().Sub(f.TA1.Time()), Connects: 1, Delivered: 1},
		B: {Storage: B, Addr: "127.0.0.1:8100", Name: "B", Connected: true, Since: T0.Add(-15 * time.Minute),
			LastTID: f.TB2, ServerTID: f.TB2, Connects: 1, Delivered: 2, FromIterator: 1},
		C: {Storage: C, Addr: "127.0.0.1:8200", Name: "C", Connected: false, Since: T0.Add(-20 * time.Second),
			LastTID: f.TC1, ServerTID: f.TC1, Connects: 1, Reconnects: 3, Delivered: 1,
			LastError: "dial tcp 127.0.0.1:8200: connect: connection refused", LastErrorAt: T0.Add(-2 * time.Second)},
	}
	return f
}

// Sources returns the fixture's sources: the tracker, its journal and the
// watchers (no proxy, classic endpoint or status file).
func (f *GroundTruth) Sources() admin.Sources {
	return admin.Sources{
		Tracker:  f.Tracker,
		Watchers: func() map[string]history.Status { return f.Watchers },
		Journal:  f.Tracker.JournalStats,
		Clock:    f.Clock.Now,
		Version:  "v0.0.0-test",
		Token:    Token,
	}
}
