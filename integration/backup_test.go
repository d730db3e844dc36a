package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/internal/zeotest"
)

// The whole chain: paired writers commit through the proxy on two ZEO
// servers while backup sets are taken of the live Data.fs files at the
// published point; every set restores (verified) to files that ZODB opens
// with equal paired counters, at exactly the point's TIDs.
func TestBackupsAtPublishedPointsRestoreCoherent(t *testing.T) {
	s := startSite(t,
		zeoSpec{storages: []string{"1"}, dbNames: []string{"a"}},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"c"}, msgpack: true})
	s.client("commit", "--count", "1")
	s.waitPublished(s.last())

	var specs []backup.Spec
	for i, db := range []string{"a", "c"} {
		repo := filepath.Join(s.dir, "repo-"+db)
		require.NoError(t, os.MkdirAll(repo, 0o755))
		specs = append(specs, backup.Spec{ID: s.ids[db], Label: db, DataFS: s.servers[i].DataFS("1"), Repository: repo})
	}

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
	for i := 0; i < 4; i++ {
		time.Sleep(300 * time.Millisecond)
		point := map[string]txn.TID{}
		raw := s.published()
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
		restored, err := backup.Restore(st.m, dir, backup.RestoreOptions{})
		require.NoError(t, err)
		args := []string{}
		for _, r := range restored {
			label := map[string]string{s.ids["a"]: "a", s.ids["c"]: "c"}[r.ID]
			args = append(args, label+"="+r.DataFS)
		}
		var got map[string]struct {
			LastTID string `json:"last_tid"`
			Counter *int
		}
		out := zeotest.Python(t, "check_restored.py", args...)
		require.NoError(t, json.Unmarshal(out, &got), string(out))
		require.NotNil(t, got["a"].Counter)
		require.Equal(t, *got["a"].Counter, *got["c"].Counter, "set %d restores to unequal counters: %s", i, out)
		counters[*got["a"].Counter] = true
		require.Equal(t, fmt.Sprintf("%016x", st.point[s.ids["a"]]), got["a"].LastTID, "set %d: A at the point", i)
		require.Equal(t, fmt.Sprintf("%016x", st.point[s.ids["c"]]), got["c"].LastTID, "set %d: C at the point", i)
	}
	require.Greater(t, len(counters), 1, "the sets were taken while the writers ran")
}
