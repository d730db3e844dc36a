package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// The day of the restore, as a drill: paired writers commit on
// two ZEO servers through tidstorage while backup sets are taken at the
// published point with retention; the site crashes; an older set is
// restored in place; ZEO and tidstorage start again (the status file moved
// aside, as the restore command advises); writers commit again; another
// backup succeeds, every set verifies, and the newest restores to equal
// paired counters at its point. No file is edited by hand.
func TestDisasterRecoveryDrill(t *testing.T) {
	s := startPairSite(t, false)

	specs := s.backupSpecs("a", "c")
	repos := []string{specs[0].Repository, specs[1].Repository}
	takeSet := func(i int, full bool) *backup.Manifest {
		t.Helper()
		m, err := backup.Backup(specs, s.published(), backup.Options{Now: time.Now().Add(time.Duration(i) * time.Second), Full: full, PointSource: "drill"})
		require.NoError(t, err)
		_, err = backup.Forget(repos, 2, true, nil, nil)
		require.NoError(t, err)
		return m
	}

	// Writers run; a set every 300 ms, a new full chain every third.
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.client("paired", "--count", "40", "--seconds", "20", "--touch", "a,c")
		}()
	}
	for i := range 7 {
		time.Sleep(300 * time.Millisecond)
		takeSet(i, i%3 == 0)
	}
	wg.Wait()
	sets, problems := backup.ListSets(repos, nil)
	require.Empty(t, problems)
	require.GreaterOrEqual(t, len(sets), 2, "retention keeps the sets of two full chains")
	require.Less(t, len(sets), 7, "retention removed the oldest chain's sets")
	crashed := s.last()

	// The crash; the operator picks the second newest set.
	chosen := sets[len(sets)-2]
	s.stop()
	for _, srv := range s.servers {
		srv.Stop()
	}
	live := map[string]backup.Spec{specs[0].ID: specs[0], specs[1].ID: specs[1]}
	rs, err := backup.Restore(chosen.Manifest, "", backup.RestoreOptions{
		Force: true,
		Dest: func(e *backup.StorageEntry) (string, string, error) {
			return live[e.ID].DataFS, "", nil
		},
		Aside: ".before-restore-drill",
	})
	require.NoError(t, err)
	require.Len(t, rs, 2)
	status := s.cfg.StatusFile
	require.NoError(t, os.Rename(status, status+".before-restore-drill"))
	for _, srv := range s.servers {
		srv.Restart()
	}
	s.start()
	want := map[string]txn.TID{}
	for _, e := range chosen.Storages {
		tid, err := txn.ParseTID(e.KeptTID, txn.FormatHex)
		require.NoError(t, err)
		want[e.ID] = tid
	}
	require.Equal(t, want, s.last(), "the site is back at the chosen set")
	for id, tid := range want {
		require.LessOrEqual(t, tid, crashed[id], "back in time, never forward")
	}
	var read map[string]struct{ Counter *int }
	require.NoError(t, json.Unmarshal(s.client("read"), &read))
	require.Equal(t, *read["a"].Counter, *read["c"].Counter)

	// Life goes on: writers, a backup at the new published point, verify.
	s.client("paired", "--count", "3", "--seconds", "30", "--touch", "a,c")
	s.waitPublished(s.last())
	after := takeSet(10, false)
	for _, r := range backup.Verify(repos, mustStamps(t, repos), backup.VerifyOptions{ReadData: true}) {
		require.True(t, r.OK(), "set %s: %v", r.Stamp, r.Problems)
	}
	got, out := restoreAndRead(t, after, filepath.Join(s.dir, "restored-after"))
	require.Equal(t, *got["a"].Counter, *got["c"].Counter, "%s", out)
	require.Equal(t, *read["a"].Counter+3, *got["a"].Counter)
}

func mustStamps(t *testing.T, repos []string) []string {
	t.Helper()
	stamps, problems := backup.AllStamps(repos)
	require.Empty(t, problems)
	return stamps
}
