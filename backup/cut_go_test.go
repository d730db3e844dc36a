package backup_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/backup/fsdata"
)

// A cut keeps the bytes it removes and the stale index it replaces, and
// leaves a file that ends with the kept transaction.
func TestGoCut(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", false)
	s.commit(t, 0x0200, "x")
	s.commit(t, 0x0300, "y")
	orig := append([]byte{}, s.b.Bytes()...)
	require.NoError(t, os.WriteFile(s.spec.DataFS+".index", []byte("stale"), 0o644))

	// Release changes nothing (a dry run).
	p, err := backup.PlanCut(s.spec.DataFS, 0x0200, false)
	require.NoError(t, err)
	require.False(t, p.Noop())
	require.Equal(t, s.b.End[1], p.Cut.Offset)
	p.Release()
	require.Equal(t, orig, readFile(t, s.spec.DataFS))

	p, err = backup.PlanCut(s.spec.DataFS, 0x0200, false)
	require.NoError(t, err)
	// The plan holds ZODB's lock: nobody else can open the file meanwhile.
	_, err = backup.PlanCut(s.spec.DataFS, 0x0200, false)
	require.ErrorIs(t, err, backup.ErrInUse)
	res, err := p.Apply(t0)
	require.NoError(t, err)
	require.Equal(t, s.spec.DataFS+".cut-0000000000000200-20261124T120000Z", res.TailFile)
	require.Equal(t, orig[:s.b.End[1]], readFile(t, s.spec.DataFS))
	require.Equal(t, orig[s.b.End[1]:], readFile(t, res.TailFile))
	require.Equal(t, "stale", string(readFile(t, res.IndexMoved)))
	require.True(t, res.IndexWritten)
	require.NotEqual(t, "stale", string(readFile(t, s.spec.DataFS+".index")))

	// Already at the point: a no-op.
	p, err = backup.PlanCut(s.spec.DataFS, 0x0200, false)
	require.NoError(t, err)
	require.True(t, p.Noop())
	res, err = p.Apply(t0)
	require.NoError(t, err)
	require.Equal(t, "", res.TailFile)

	// A file behind the point is refused unless allowed.
	_, err = backup.PlanCut(s.spec.DataFS, 0x0300, false)
	require.ErrorContains(t, err, "use --allow-behind")
	p, err = backup.PlanCut(s.spec.DataFS, 0x0300, true)
	require.NoError(t, err)
	require.True(t, p.Noop())
	p.Release()

	// A pack in progress is refused.
	require.NoError(t, os.WriteFile(s.spec.DataFS+".pack", nil, 0o644))
	_, err = backup.PlanCut(s.spec.DataFS, 0x0200, false)
	require.ErrorIs(t, err, backup.ErrInUse)
}

// An FS21 file is cut without an index (ZODB rebuilds it).
func TestGoCutFS21(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", false)
	s.commit(t, 0x0200, "x")
	data := readFile(t, s.spec.DataFS)
	copy(data, fsdata.MagicFS21)
	path := filepath.Join(dir, "fs21.fs")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	p, err := backup.PlanCut(path, 0x0100, false)
	require.NoError(t, err)
	res, err := p.Apply(t0)
	require.NoError(t, err)
	require.False(t, res.IndexWritten)
	require.NoFileExists(t, path+".index")
}

// A preview reads a file a ZODB program holds, says so, and cannot be
// applied.
func TestGoPreviewCutWhileInUse(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", false)
	s.commit(t, 0x0200, "x")
	orig := readFile(t, s.spec.DataFS)
	lock, err := backup.LockDataFS(s.spec.DataFS)
	require.NoError(t, err)
	defer lock.Unlock()
	_, err = backup.PlanCut(s.spec.DataFS, 0x0100, false)
	require.ErrorIs(t, err, backup.ErrInUse)
	p, err := backup.PreviewCut(s.spec.DataFS, 0x0100, false)
	require.NoError(t, err)
	require.Contains(t, p.InUse, ".lock is held")
	require.Equal(t, s.b.End[0], p.Cut.Offset)
	_, err = p.Apply(t0)
	require.ErrorContains(t, err, "a preview cannot be applied")
	require.Equal(t, orig, readFile(t, s.spec.DataFS))
	// Not in use: a preview holds the lock like a plan.
	require.NoError(t, lock.Unlock())
	p, err = backup.PreviewCut(s.spec.DataFS, 0x0100, false)
	require.NoError(t, err)
	require.Empty(t, p.InUse)
	p.Release()
}
