package admin_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/cmd/admin/admintest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

func TestGroundTruthStatus(t *testing.T) {
	f := admintest.NewGroundTruth(t)
	code, body := get(t, serve(t, f.Sources(), nil).URL+"/status", "Authorization", admintest.Bearer)
	require.Equal(t, http.StatusOK, code, body)
	var doc statusdoc.StatusDoc
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&doc))
	require.Len(t, doc.Storages, 3)
	a, b, c := doc.Storages[0], doc.Storages[1], doc.Storages[2]

	// A: accounted up to TA1; TA2 waits for the history.
	require.True(t, a.Watched)
	require.False(t, a.WarnOnly)
	require.Equal(t, f.TA1, a.HistoryPosition.Int)
	require.Equal(t, f.TA1, a.Published.Int)
	require.Empty(t, a.Unaccounted)
	require.False(t, a.HeldByUnaccounted)
	require.Equal(t, 1, a.AwaitingHistory)

	// B: held just below TB2, which nothing accounted for.
	require.True(t, b.HeldByUnaccounted)
	require.Equal(t, []statusdoc.TIDDoc{statusdoc.NewTIDDoc(f.TB2)}, b.Unaccounted)
	require.Equal(t, admintest.T0.Add(-90*time.Second), b.Unaccounted[0].Time)
	require.Equal(t, f.TB1, b.Published.Int)
	require.Equal(t, f.TB2, b.HistoryPosition.Int)
	require.Equal(t, uint64(1), b.UnaccountedTotal)
	require.Equal(t, []statusdoc.StorageDoc{b}, doc.HeldStorages())

	// C: warn-only: reported, not held.
	require.True(t, c.WarnOnly)
	require.False(t, c.HeldByUnaccounted)
	require.Empty(t, c.Unaccounted)
	require.Equal(t, uint64(1), c.UnaccountedTotal)

	pins := doc.UnaccountedPins()
	require.Len(t, pins, 1)
	p := pins[0]
	require.Equal(t, f.UnaccountedPin, p.ID)
	require.True(t, p.Acceptable)
	require.Equal(t, []string{admintest.B}, p.Storages)
	require.Equal(t, []statusdoc.TIDDoc{statusdoc.NewTIDDoc(f.TB2)}, p.Unaccounted)
	require.Equal(t, f.TB2, p.Upto.Int)
	require.Contains(t, p.Reason, "nothing accounted for")
	require.Equal(t, []statusdoc.HeldDoc{{Storage: admintest.B, Published: b.Published}}, p.Held)

	require.Equal(t, uint64(2), doc.Counters.Unaccounted)
	require.Equal(t, uint64(4), doc.Counters.HistoryCommits)

	// The watchers, by storage id.
	require.Len(t, doc.History, 3)
	ha, hc := doc.History[0], doc.History[2]
	require.Equal(t, admintest.A, ha.Storage)
	require.True(t, ha.Connected)
	require.Equal(t, f.TA1, ha.LastTID.Int)
	require.Equal(t, f.TA2, ha.ServerTID.Int)
	require.InDelta(t, 110, ha.LagSeconds, 1e-3)
	require.Equal(t, admintest.C, hc.Storage)
	require.False(t, hc.Connected)
	require.Equal(t, uint64(3), hc.Reconnects)
	require.Contains(t, hc.LastError, "connection refused")
	require.Equal(t, admintest.T0.Add(-2*time.Second), *hc.LastErrorAt)
	require.Equal(t, admintest.T0.Add(-20*time.Second), *hc.Since)

	// The journal, real.
	require.Equal(t, f.Journal, doc.Journal.Path)
	require.Positive(t, doc.Journal.SizeBytes)
	require.Positive(t, doc.Journal.Records)
	require.Equal(t, uint64(1), doc.Journal.Rotations)
	require.Empty(t, doc.Journal.Broken)
	require.Empty(t, doc.Journal.Damage)

	// Not watched, no journal, no watchers: no ground truth keys.
	_, body = get(t, serve(t, admintest.New(t).Sources(), nil).URL+"/status", "Authorization", admintest.Bearer)
	for _, k := range []string{`"history_position"`, `"unaccounted":`, `"journal"`, `"history"`, `"upto"`} {
		require.NotContains(t, body, k)
	}
	require.Contains(t, body, `"watched": false`)
}

func TestGroundTruthMetrics(t *testing.T) {
	f := admintest.NewGroundTruth(t)
	fams := scrape(t, serve(t, f.Sources(), nil).URL)
	v := func(name string, labels ...string) float64 { t.Helper(); return value(t, fams, name, labels...) }
	sA, sB, sC := admintest.A, admintest.B, admintest.C

	require.Equal(t, 1.0, v("tidstorage_pins", "kind", "unaccounted"))
	require.Equal(t, 1.0, v("tidstorage_held_storages"))
	require.Equal(t, 1.0, v("tidstorage_storage_unaccounted_held", "storage", sB))
	require.Equal(t, 0.0, v("tidstorage_storage_unaccounted_held", "storage", sA))
	require.Equal(t, 0.0, v("tidstorage_storage_unaccounted_held", "storage", sC))
	require.Equal(t, 1.0, v("tidstorage_unaccounted_commits_total", "storage", sB))
	require.Equal(t, 1.0, v("tidstorage_unaccounted_commits_total", "storage", sC))
	require.Equal(t, 0.0, v("tidstorage_unaccounted_commits_total", "storage", sA))
	require.Equal(t, 1.0, v("tidstorage_storage_watched", "storage", sC))
	require.Equal(t, 1.0, v("tidstorage_storage_awaiting_history", "storage", sA))
	require.Equal(t, 4.0, v("tidstorage_tracker_history_commits_total"))

	require.Equal(t, 1.0, v("tidstorage_history_connected", "storage", sA))
	require.Equal(t, 0.0, v("tidstorage_history_connected", "storage", sC))
	require.InDelta(t, 110, v("tidstorage_history_lag_seconds", "storage", sA), 1e-3)
	require.Equal(t, 3.0, v("tidstorage_history_reconnects_total", "storage", sC))
	require.Equal(t, 1.0, v("tidstorage_history_commits_total", "storage", sB, "source", "iterator"))
	require.Equal(t, 1.0, v("tidstorage_history_commits_total", "storage", sB, "source", "invalidation"))

	st := f.Tracker.JournalStats()
	require.Equal(t, float64(st.Size), v("tidstorage_journal_bytes"))
	require.Equal(t, float64(st.Records), v("tidstorage_journal_records_total"))
	require.Equal(t, 1.0, v("tidstorage_journal_rotations_total"))
	require.Equal(t, 0.0, v("tidstorage_journal_errors_total"))
	require.Equal(t, 0.0, v("tidstorage_journal_broken"))

	// A storage that is not watched has no ground-truth series but watched 0.
	fams = scrape(t, serve(t, admintest.New(t).Sources(), nil).URL)
	require.Equal(t, 0.0, value(t, fams, "tidstorage_storage_watched", "storage", sA))
	require.Equal(t, 0.0, value(t, fams, "tidstorage_held_storages"))
	require.NotContains(t, fams, "tidstorage_unaccounted_commits_total")
}

// Accepting an unaccounted pin: B publishes the commit it was held below,
// and only up to what its history has shown.
func TestAcceptUnaccounted(t *testing.T) {
	for _, live := range []bool{false, true} {
		t.Run(map[bool]string{false: "tracker", true: "live"}[live], func(t *testing.T) {
			f := admintest.NewGroundTruth(t)
			src := f.Sources()
			want := f.TB2
			if live {
				// The daemon's accept reads the live last TIDs first; B has
				// committed once more since, not in its history yet: the
				// accept waits for the history to show it (the watcher's
				// part, played here), then covers it too — it may be the
				// other half of what is accepted.
				tb3 := admintest.TIDAt(t, -1*time.Second)
				want = tb3
				src.Accept = func(pin uint64) error {
					return f.Tracker.AcceptPartialLive(pin, func([]string) (map[string]txn.TID, error) {
						go func() {
							time.Sleep(100 * time.Millisecond)
							f.Tracker.History(txn.Commit{Storage: admintest.B, TID: tb3})
						}()
						return map[string]txn.TID{admintest.B: tb3}, nil
					})
				}
			}
			var logBuf bytes.Buffer
			srv := serve(t, src, hclog.New(&hclog.LoggerOptions{Output: &logBuf, Level: hclog.Info}))
			code, body := post(t, srv.URL+"/accept-partial?pin="+itoa(f.UnaccountedPin), "Authorization", admintest.Bearer)
			require.Equal(t, http.StatusOK, code, body)
			var res statusdoc.AcceptResult
			require.NoError(t, json.Unmarshal([]byte(body), &res))
			require.Equal(t, "unaccounted", res.Pin.Kind)
			require.Equal(t, []statusdoc.HeldDoc{{Storage: admintest.B, Published: ptr(statusdoc.NewTIDDoc(want))}}, res.Published)
			st := f.Tracker.Status()
			require.Empty(t, st.Pins)
			require.Empty(t, st.Storages[1].Unaccounted)
			require.Equal(t, uint64(1), st.Counters.PinsAccepted)
			require.Contains(t, logBuf.String(), "the storage's unaccounted commits it covers count as accounted for")
			require.Contains(t, logBuf.String(), "upto="+f.TB2.Hex())
		})
	}
}
