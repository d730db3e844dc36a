package backup_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/integration/zeotest"
)

// Cutting a real Data.fs after a middle TID: ZODB then opens it at that TID,
// the removed bytes and the stale index are kept aside.
func TestCutRealZODB(t *testing.T) {
	zeotest.Venv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "Data.fs")
	w := zeotest.WriteFS(t, "--fs", path, "--count", "4")
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	require.FileExists(t, path+".index")
	// A torn tail after the committed data, as a crash leaves.
	require.NoError(t, os.WriteFile(path, append(append([]byte{}, before...), before[len(before)-30:]...), 0o644))

	target := hexTID(t, w.New[1])
	p, err := backup.PlanCut(path, target, false)
	require.NoError(t, err)
	require.True(t, p.Cut.Exact())
	require.Equal(t, 2, p.Cut.Removed)
	require.Equal(t, fsdata.TailTorn, p.Cut.Tail.Kind)
	// The plan holds ZODB's lock.
	_, err = backup.LockDataFS(path)
	require.ErrorIs(t, err, backup.ErrInUse)
	now := time.Date(2026, 11, 24, 23, 0, 0, 0, time.UTC)
	res, err := p.Apply(now)
	require.NoError(t, err)
	require.Equal(t, path+".cut-"+target.Hex()+"-20261124T230000Z", res.TailFile)
	require.Equal(t, path+".index.cut-"+target.Hex()+"-20261124T230000Z", res.IndexMoved)
	// A fresh index replaces it: the one ZODB would rebuild, accepted at open.
	require.True(t, res.IndexWritten)
	checkIndex(t, path)

	kept, err := os.ReadFile(path)
	require.NoError(t, err)
	tail, err := os.ReadFile(res.TailFile)
	require.NoError(t, err)
	require.Equal(t, append(append([]byte{}, before...), before[len(before)-30:]...), append(kept, tail...), "nothing lost")

	r := zeotest.ReadFS(t, "--fs", path)
	require.Equal(t, w.New[1], r.Last)
	require.Equal(t, 2, *r.Value)

	// Cutting again at the same point changes nothing.
	p, err = backup.PlanCut(path, target, false)
	require.NoError(t, err)
	require.True(t, p.Noop())
	res, err = p.Apply(now)
	require.NoError(t, err)
	require.Empty(t, res.TailFile)

	// A point beyond the file's data is refused unless allowed.
	_, err = backup.PlanCut(path, hexTID(t, w.New[3]), false)
	require.ErrorContains(t, err, "lacks transactions of the point")
	p, err = backup.PlanCut(path, hexTID(t, w.New[3]), true)
	require.NoError(t, err)
	p.Release()
}

// A Data.fs opened by a live ZODB process is refused.
func TestCutRefusesLiveStorage(t *testing.T) {
	zeotest.Venv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "Data.fs")
	w := zeotest.WriteFS(t, "--fs", path, "--count", "2")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := zeotest.PythonCommand(ctx, t, "backup_fs.py", "hold", "--fs", path)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	require.NoError(t, err)
	var held struct{ PID int }
	require.NoError(t, json.Unmarshal(line, &held))

	_, err = backup.PlanCut(path, hexTID(t, w.New[0]), false)
	require.ErrorIs(t, err, backup.ErrInUse)
	require.ErrorContains(t, err, "held by pid")

	stdin.Close()
	require.NoError(t, cmd.Wait())
	p, err := backup.PlanCut(path, hexTID(t, w.New[0]), false)
	require.NoError(t, err)
	p.Release()
}

// checkIndex asks ZODB whether path's .index is the one it would rebuild,
// and accepts it.
func checkIndex(t *testing.T, path string) {
	t.Helper()
	var got struct {
		Pos, End       int64
		Equal, Ignored bool
	}
	require.NoError(t, json.Unmarshal(zeotest.Python(t, "backup_fs.py", "index", "--fs", path), &got))
	require.True(t, got.Equal, "index of %s differs from ZODB's rebuild", path)
	require.False(t, got.Ignored, "ZODB ignored the index of %s", path)
	require.Equal(t, got.End, got.Pos)
}
