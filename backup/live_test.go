package backup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// Backups of a Data.fs that a real ZODB process keeps committing to: each
// set, restored by the real repozo, ends exactly at its point, whatever the
// writer was doing (voting, finishing, writing a record) when it was taken.
func TestBackupWhileZODBCommits(t *testing.T) {
	zeotest.Venv(t)
	dir := t.TempDir()
	spec := backup.Spec{ID: "s", Label: "s", DataFS: filepath.Join(dir, "Data.fs"), Repository: filepath.Join(dir, "repo")}
	require.NoError(t, os.MkdirAll(spec.Repository, 0o755))
	zeotest.WriteFS(t, "--fs", spec.DataFS, "--count", "1")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	writer := zeotest.PythonCommand(ctx, t, "backup_fs.py", "write", "--fs", spec.DataFS, "--count", "400", "--big", "50000")
	var out bytes.Buffer
	writer.Stdout = &out
	require.NoError(t, writer.Start())
	done := make(chan error, 1)
	go func() { done <- writer.Wait() }()

	type set struct {
		stamp string
		point txn.TID
	}
	var sets []set
	tails := 0
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	deadline := time.Now().Add(90 * time.Second)
loop:
	for i := 0; i < 12 && time.Now().Before(deadline); i++ {
		select {
		case err := <-done:
			require.NoError(t, err)
			done <- nil
			break loop
		default:
		}
		// The point: the last committed transaction right now.
		c, err := fsdata.CutOffset(spec.DataFS, txn.TID(1<<63-1))
		require.NoError(t, err)
		if c.Tail.Kind != fsdata.TailNone {
			tails++
		}
		m, err := backup.Backup([]backup.Spec{spec}, map[string]txn.TID{"s": c.LastTID}, backup.Options{Now: now})
		require.NoError(t, err)
		require.Equal(t, c.LastTID.Hex(), m.Storages[0].KeptTID)
		sets = append(sets, set{m.Stamp, c.LastTID})
		now = now.Add(time.Second)
	}
	require.NoError(t, <-done)
	require.GreaterOrEqual(t, len(sets), 2)
	var w zeotest.FSWritten
	require.NoError(t, json.Unmarshal(out.Bytes(), &w))

	for _, s := range sets {
		restored := filepath.Join(dir, "out-"+s.stamp+".fs")
		b, err := exec.Command(filepath.Join(zeotest.Venv(t), "bin", "repozo"), "-R", "-r", spec.Repository, "-D", s.stamp, "-o", restored).CombinedOutput()
		require.NoError(t, err, string(b))
		r := zeotest.ReadFS(t, "--fs", restored)
		require.Equal(t, s.point.Hex(), r.Last, "set %s", s.stamp)
		i := slices.Index(w.TIDs, s.point.Hex())
		require.GreaterOrEqual(t, i, 0)
		require.Equal(t, i, *r.Value, "counter at %s", s.point.Hex())
	}
	t.Logf("%d sets taken while %d transactions were committed (%d saw an unfinished tail when the point was chosen)", len(sets), len(w.New), tails)
}
