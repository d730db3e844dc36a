package integration

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// The whole chain: paired writers commit through the proxy on two ZEO
// servers while backup sets are taken of the live Data.fs files at the
// published point; every set restores (verified) to files that ZODB opens
// with equal paired counters, at exactly the point's TIDs.
func TestBackupsAtPublishedPointsRestoreCoherent(t *testing.T) {
	s := startPairSite(t, true)

	specs := s.backupSpecs("a", "c")

	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.client("paired", "--count", "25", "--seconds", "90", "--touch", "a,c", "--desc", "paired")
		}()
	}
	type set struct {
		m     *backup.Manifest
		point map[string]txn.TID
	}
	var sets []set
	var prev map[string]txn.TID
	for i := 0; i < 4; i++ {
		// Each set at a newer point than the last while the writers run
		// (they start slowly on a loaded machine), waiting at most 10 s.
		time.Sleep(300 * time.Millisecond)
		raw := s.published()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && (raw[s.ids["a"]] == 0 || maps.Equal(raw, prev)); {
			time.Sleep(50 * time.Millisecond)
			raw = s.published()
		}
		prev = raw
		point := map[string]txn.TID{}
		for _, sp := range specs {
			point[sp.ID] = txn.TID(raw[sp.ID])
		}
		// Stamps are whole seconds and must increase per repository.
		m, err := backup.Backup(specs, point, backup.Options{Now: time.Now().Add(time.Duration(i) * time.Second), PointSource: "test"})
		require.NoError(t, err)
		sets = append(sets, set{m, raw})
	}
	wg.Wait()
	require.Len(t, sets, 4)

	counters := map[int]bool{}
	for i, st := range sets {
		dir := filepath.Join(s.dir, fmt.Sprintf("restored-%d", i))
		got, out := restoreAndRead(t, st.m, dir)
		require.NotNil(t, got["a"].Counter)
		require.Equal(t, *got["a"].Counter, *got["c"].Counter, "set %d restores to unequal counters: %s", i, out)
		counters[*got["a"].Counter] = true
		require.Equal(t, fmt.Sprintf("%016x", st.point[s.ids["a"]]), got["a"].LastTID, "set %d: A at the point", i)
		require.Equal(t, fmt.Sprintf("%016x", st.point[s.ids["c"]]), got["c"].LastTID, "set %d: C at the point", i)
	}
	require.Greater(t, len(counters), 1, "the sets were taken while the writers ran")
}

// backupSpecs backs up storage "1" of the site's servers, one per database
// name in order, each to backups/<db> (created on first use).
func (s *site) backupSpecs(dbs ...string) []backup.Spec {
	var specs []backup.Spec
	for i, db := range dbs {
		specs = append(specs, backup.Spec{ID: s.ids[db], Label: db, DataFS: s.servers[i].DataFS("1"),
			Repository: filepath.Join(s.dir, "backups", db)})
	}
	return specs
}

type restoredDB struct {
	LastTID string `json:"last_tid"`
	Counter *int
}

// restoreAndRead restores set m under dir and opens every restored file
// with ZODB: its last TID and counter by label (the database name).
func restoreAndRead(t *testing.T, m *backup.Manifest, dir string) (map[string]restoredDB, string) {
	t.Helper()
	restored, err := backup.Restore(m, dir, backup.RestoreOptions{})
	require.NoError(t, err)
	args := []string{}
	for _, r := range restored {
		args = append(args, r.Label+"="+r.DataFS)
	}
	var got map[string]restoredDB
	out := zeotest.Python(t, "check_restored.py", args...)
	require.NoError(t, json.Unmarshal(out, &got), string(out))
	return got, string(out)
}

// startPairSite starts a site of two ZEO servers, databases a and c (c
// speaking msgpack if asked), with one paired transaction committed and
// published.
func startPairSite(t *testing.T, msgpackC bool) *site {
	t.Helper()
	s := startSite(t,
		zeoSpec{storages: []string{"1"}, dbNames: []string{"a"}},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"c"}, msgpack: msgpackC})
	s.client("paired", "--count", "1", "--seconds", "30", "--touch", "a,c")
	s.waitPublished(s.last())
	return s
}
