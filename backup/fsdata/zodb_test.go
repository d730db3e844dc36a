package fsdata_test

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

func mustTID(t *testing.T, s string) txn.TID {
	t.Helper()
	v, err := txn.ParseTID(s, txn.FormatHex)
	require.NoError(t, err)
	return v
}

func scanTIDs(t *testing.T, path string) ([]string, fsdata.Tail) {
	t.Helper()
	c, err := fsdata.CutOffset(path, txn.TID(1<<63-1))
	require.NoError(t, err)
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	s, err := fsdata.NewScanner(f, c.Size, fsdata.ScanOptions{Name: path})
	require.NoError(t, err)
	var out []string
	for {
		h, err := s.Next()
		if err != nil {
			break
		}
		out = append(out, h.TID.Hex())
	}
	return out, s.Tail()
}

// The scan of a file zeotest.FSWritten by real ZODB finds exactly its transactions,
// and a cut after each one is a file ZODB opens with that tid as its last.
func TestRealZODBScanAndCut(t *testing.T) {
	zeotest.Venv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "Data.fs")
	w := zeotest.WriteFS(t, "--fs", path, "--count", "5")
	require.Len(t, w.TIDs, 6) // the root's creation, then ours
	got, tail := scanTIDs(t, path)
	require.Equal(t, w.TIDs, got)
	require.Equal(t, fsdata.TailNone, tail.Kind)

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	for i, hex := range w.TIDs {
		c, err := fsdata.CutOffset(path, mustTID(t, hex))
		require.NoError(t, err)
		require.True(t, c.Exact())
		require.Equal(t, i+1, c.Kept)
		require.Equal(t, fsdata.MagicFS30, c.Magic)
		// Cutting one unit below the next tid keeps the same transaction.
		if i+1 < len(w.TIDs) {
			c2, err := fsdata.CutOffset(path, mustTID(t, w.TIDs[i+1])-1)
			require.NoError(t, err)
			require.Equal(t, c.Offset, c2.Offset)
			require.False(t, c2.Exact())
		}
		out := filepath.Join(dir, "cut-"+hex+".fs")
		require.NoError(t, os.WriteFile(out, data[:c.Offset], 0o644))
		r := zeotest.ReadFS(t, "--fs", out)
		require.Equal(t, hex, r.Last, "cut after %s", hex)
		require.Equal(t, w.TIDs[:i+1], r.TIDs)
		if i == 0 {
			require.Nil(t, r.Value)
		} else {
			require.NotNil(t, r.Value)
			require.Equal(t, w.Values[i-1], *r.Value)
		}
	}
}

// An in-progress ('c') transaction or a torn record at the end of a real
// file is a tail: the scan stops before it, as ZODB's read-only open does.
func TestRealZODBTails(t *testing.T) {
	zeotest.Venv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "Data.fs")
	blobs := filepath.Join(dir, "blobs")
	w := zeotest.WriteFS(t, "--fs", path, "--blob-dir", blobs, "--count", "3", "--big", "100000")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	c, err := fsdata.CutOffset(path, mustTID(t, w.TIDs[len(w.TIDs)-2]))
	require.NoError(t, err)
	lastTxn := data[c.Offset:]

	// A copy of the last transaction, with a later tid and status 'c'.
	pending := append([]byte{}, lastTxn...)
	binary.BigEndian.PutUint64(pending, uint64(mustTID(t, w.TIDs[len(w.TIDs)-1])+1))
	pending[16] = 'c'
	for name, tail := range map[string][]byte{
		"inprogress": pending,
		"torn":       lastTxn[:len(lastTxn)/2],
	} {
		p := filepath.Join(dir, name+".fs")
		require.NoError(t, os.WriteFile(p, append(append([]byte{}, data...), tail...), 0o644))
		got, tl := scanTIDs(t, p)
		require.Equal(t, w.TIDs, got, name)
		require.Equal(t, int64(len(data)), tl.Offset)
		require.Equal(t, int64(len(tail)), tl.Size)
		if name == "torn" {
			require.Equal(t, fsdata.TailTorn, tl.Kind)
		} else {
			require.Equal(t, fsdata.TailInProgress, tl.Kind)
		}
		// ZODB's iterator stops at the same place. (Its lastTransaction
		// does not: read_index notes a header's tid before it sees the 'c'
		// or the short record, so it names the unfinished transaction.)
		r := zeotest.ReadFS(t, "--fs", p)
		require.Equal(t, w.TIDs, r.TIDs, name)
	}
}

// A real file with a flipped byte in the middle fails with the offset.
func TestRealZODBCorrupt(t *testing.T) {
	zeotest.Venv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "Data.fs")
	w := zeotest.WriteFS(t, "--fs", path, "--count", "3")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	c, err := fsdata.CutOffset(path, mustTID(t, w.TIDs[1]))
	require.NoError(t, err)
	// The status byte of the third transaction.
	bad := append([]byte{}, data...)
	bad[c.Offset+16] = 'Z'
	p := filepath.Join(dir, "bad.fs")
	require.NoError(t, os.WriteFile(p, bad, 0o644))
	_, err = fsdata.CutOffset(p, mustTID(t, w.TIDs[0]))
	require.ErrorContains(t, err, p)
	var fe *fsdata.FormatError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, c.Offset, fe.Offset)
	require.Contains(t, fe.Msg, "invalid status byte 'Z'")
}

type indexCheck struct {
	Pos     int64 `json:"pos"`
	End     int64 `json:"end"`
	Len     int   `json:"len"`
	Equal   bool  `json:"equal"`
	Ignored bool  `json:"ignored"`
}

// The index zeotest.FSWritten for a cut file equals the one ZODB rebuilds from it, and
// FileStorage accepts it at open.
func TestRealZODBIndex(t *testing.T) {
	zeotest.Venv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "Data.fs")
	w := zeotest.WriteFS(t, "--fs", path, "--count", "6", "--objects", "3")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	for i, hex := range w.TIDs[1:] {
		target := mustTID(t, hex)
		ix := fsdata.NewIndex()
		f, err := os.Open(path)
		require.NoError(t, err)
		c, err := fsdata.CutReader(f, int64(len(data)), target, fsdata.ScanOptions{OnData: ix.Collect(target)})
		f.Close()
		require.NoError(t, err)
		out := filepath.Join(dir, "cut-"+hex+".fs")
		require.NoError(t, os.WriteFile(out, data[:c.Offset], 0o644))
		require.NoError(t, ix.WriteFile(out+".index", c.Offset))
		var got indexCheck
		require.NoError(t, json.Unmarshal(zeotest.Python(t, "backup_fs.py", "index", "--fs", out), &got))
		require.Equal(t, indexCheck{Pos: c.Offset, End: c.Offset, Len: ix.Len(), Equal: true, Ignored: false}, got, "cut after %s", hex)
		require.Equal(t, i+2, ix.Len()) // the root, then one new mapping per transaction
		r := zeotest.ReadFS(t, "--fs", out)
		require.Equal(t, hex, r.Last)
		require.Equal(t, i+2, r.Objects)
	}
}
