package fsdata_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/backup/fsdata/fsdatatest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

func scanAll(t *testing.T, data []byte, opts fsdata.ScanOptions) ([]fsdata.TxnHeader, *fsdata.Scanner, error) {
	t.Helper()
	s, err := fsdata.NewScanner(bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		return nil, nil, err
	}
	var hs []fsdata.TxnHeader
	for {
		h, err := s.Next()
		if errors.Is(err, io.EOF) {
			return hs, s, nil
		}
		if err != nil {
			return hs, s, err
		}
		hs = append(hs, h)
	}
}

func TestScanSample(t *testing.T) {
	for _, magic := range []string{fsdata.MagicFS30, fsdata.MagicFS21} {
		b := fsdatatest.Build(magic, fsdatatest.Sample()...)
		var recs int
		hs, s, err := scanAll(t, b.Bytes(), fsdata.ScanOptions{OnData: func(_ *fsdata.TxnHeader, d *fsdata.DataHeader, head []byte) error {
			recs++
			if d.PLen > 0 {
				require.Len(t, head, int(d.PLen))
			}
			return nil
		}})
		require.NoError(t, err)
		require.Equal(t, magic, s.Magic())
		require.Len(t, hs, 5)
		for i, h := range hs {
			require.Equal(t, fsdatatest.Sample()[i].TID, h.TID)
			require.Equal(t, b.Pos[i], h.Pos)
			require.Equal(t, b.End[i], h.End())
		}
		require.Equal(t, byte(fsdata.StatusPacked), hs[4].Status)
		require.Equal(t, 7, recs)
		require.Equal(t, fsdata.TailNone, s.Tail().Kind)
		require.Equal(t, int64(len(b.Bytes())), s.Pos())
	}
}

func TestScanEmptyStorage(t *testing.T) {
	hs, s, err := scanAll(t, []byte(fsdata.MagicFS30), fsdata.ScanOptions{})
	require.NoError(t, err)
	require.Empty(t, hs)
	require.Equal(t, int64(4), s.Pos())
	c, err := fsdata.CutReader(bytes.NewReader([]byte(fsdata.MagicFS30)), 4, 123, fsdata.ScanOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(4), c.Offset)
	require.True(t, c.Behind())
}

func TestCutSample(t *testing.T) {
	b := fsdatatest.Build(fsdata.MagicFS30, fsdatatest.Sample()...)
	size := int64(len(b.Bytes()))
	for i, spec := range fsdatatest.Sample() {
		for _, target := range []txn.TID{spec.TID, spec.TID + 1, spec.TID + 0xff} {
			c, err := fsdata.CutReader(bytes.NewReader(b.Bytes()), size, target, fsdata.ScanOptions{})
			require.NoError(t, err)
			require.Equal(t, b.End[i], c.Offset, "target %s", target.Hex())
			require.Equal(t, spec.TID, c.KeptTID)
			require.Equal(t, target == spec.TID, c.Exact())
			require.Equal(t, i+1, c.Kept)
			require.Equal(t, 4-i, c.Removed)
			require.Equal(t, spec.TID, c.LastTxn.TID)
			require.Equal(t, txn.TID(0x0500), c.LastTID)
			require.Equal(t, target > 0x0500, c.Behind())
			if i < 4 {
				require.Equal(t, fsdatatest.Sample()[i+1].TID, c.FirstRemoved)
				require.Equal(t, txn.TID(0x0500), c.LastRemoved)
			}
		}
	}
	c, err := fsdata.CutReader(bytes.NewReader(b.Bytes()), size, 0x00ff, fsdata.ScanOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(4), c.Offset)
	require.Zero(t, c.KeptTID)
	require.Equal(t, 5, c.Removed)
	require.Contains(t, c.Summary(), "no transaction")
	c, err = fsdata.CutReader(bytes.NewReader(b.Bytes()), size, 0x0600, fsdata.ScanOptions{})
	require.NoError(t, err)
	require.Equal(t, size, c.Offset)
	require.True(t, c.Behind())
}

// Every truncation inside the last transaction is a torn tail, never an
// error, and the cut keeps the transactions before it.
func TestTornTailAtEveryByte(t *testing.T) {
	b := fsdatatest.Build(fsdata.MagicFS30, fsdatatest.Sample()...)
	start := b.Pos[4]
	for n := start + 1; n < int64(len(b.Bytes())); n++ {
		data := b.Bytes()[:n]
		hs, s, err := scanAll(t, data, fsdata.ScanOptions{})
		require.NoError(t, err, "truncated at %d", n)
		require.Len(t, hs, 4)
		require.Equal(t, fsdata.TailTorn, s.Tail().Kind, "truncated at %d", n)
		require.Equal(t, start, s.Tail().Offset)
		require.Equal(t, n-start, s.Tail().Size)
		c, err := fsdata.CutReader(bytes.NewReader(data), n, 0xffff, fsdata.ScanOptions{})
		require.NoError(t, err)
		require.Equal(t, start, c.Offset)
		require.Equal(t, txn.TID(0x0400), c.KeptTID)
	}
}

func TestInProgressTail(t *testing.T) {
	txns := fsdatatest.Sample()
	txns[4].Status = fsdata.StatusCheckpoint
	b := fsdatatest.Build(fsdata.MagicFS30, txns...)
	hs, s, err := scanAll(t, b.Bytes(), fsdata.ScanOptions{})
	require.NoError(t, err)
	require.Len(t, hs, 4)
	tail := s.Tail()
	require.Equal(t, fsdata.TailInProgress, tail.Kind)
	require.Equal(t, txn.TID(0x0500), tail.TID)
	require.Equal(t, b.Pos[4], tail.Offset)
	c, err := fsdata.CutReader(bytes.NewReader(b.Bytes()), int64(len(b.Bytes())), 0x0500, fsdata.ScanOptions{})
	require.NoError(t, err)
	require.Equal(t, b.Pos[4], c.Offset)
	require.Equal(t, txn.TID(0x0400), c.KeptTID)
	require.False(t, c.Exact())
	require.Contains(t, c.Summary(), "in-progress")
}

func TestZeroTail(t *testing.T) {
	b := fsdatatest.Build(fsdata.MagicFS30, fsdatatest.Sample()...)
	data := append(append([]byte{}, b.Bytes()...), make([]byte, 4096)...)
	hs, s, err := scanAll(t, data, fsdata.ScanOptions{})
	require.NoError(t, err)
	require.Len(t, hs, 5)
	require.Equal(t, fsdata.TailTorn, s.Tail().Kind)
	require.Equal(t, "4096 zero bytes", s.Tail().Reason)
	// A zero block in the middle is corruption, not a tail.
	data = append(append(append([]byte{}, b.Bytes()[:b.End[1]]...), make([]byte, 64)...), b.Bytes()[b.End[1]:]...)
	_, _, err = scanAll(t, data, fsdata.ScanOptions{})
	var fe *fsdata.FormatError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, b.End[1], fe.Offset)
}

func TestCorruption(t *testing.T) {
	b := fsdatatest.Build(fsdata.MagicFS30, fsdatatest.Sample()...)
	be := binary.BigEndian
	rec := b.Pos[2] + fsdata.TxnHeaderSize + 5 + 0 + 6 // first data record of txn 3 (user "/ bob", ext 6 bytes)
	cases := []struct {
		name   string
		edit   func(d []byte)
		offset int64
		msg    string
	}{
		{"status", func(d []byte) { d[b.Pos[1]+16] = 'x' }, b.Pos[1], "invalid status byte"},
		{"tid reduction", func(d []byte) { be.PutUint64(d[b.Pos[2]:], 0x0150) }, b.Pos[2], "time-stamp reduction"},
		{"equal tid", func(d []byte) { be.PutUint64(d[b.Pos[2]:], 0x0200) }, b.Pos[2], "time-stamp reduction"},
		{"trailer", func(d []byte) { be.PutUint64(d[b.End[1]-8:], 99) }, b.End[1] - 8, "trailer length 99"},
		{"short tlen", func(d []byte) { be.PutUint64(d[b.Pos[1]+8:], 10) }, b.Pos[1], "shorter than its header"},
		{"tloc", func(d []byte) { be.PutUint64(d[rec+24:], 4) }, rec, "transaction pointer 4"},
		{"data tid", func(d []byte) { be.PutUint64(d[rec+8:], 0x0299) }, rec, "differs from its transaction"},
		{"version", func(d []byte) { be.PutUint16(d[rec+32:], 3) }, rec, "version length 3"},
		{"prev", func(d []byte) { be.PutUint64(d[rec+16:], uint64(rec)) }, rec, "previous-revision pointer"},
		{"plen", func(d []byte) { be.PutUint64(d[rec+34:], 1000) }, rec, "runs past its transaction's end"},
		{"tlen past the end", func(d []byte) { be.PutUint64(d[b.Pos[1]+8:], 1<<40) }, b.Pos[1], "damaged length"},
		{"tlen longer", func(d []byte) {
			// tlen one more than the records fill: the trailer read lands a
			// byte late, the last record looks short.
			be.PutUint64(d[b.Pos[0]+8:], be.Uint64(d[b.Pos[0]+8:])+1)
		}, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := append([]byte{}, b.Bytes()...)
			tc.edit(data)
			_, _, err := scanAll(t, data, fsdata.ScanOptions{Name: "x/Data.fs"})
			var fe *fsdata.FormatError
			require.ErrorAs(t, err, &fe)
			require.Contains(t, err.Error(), "x/Data.fs")
			if tc.msg != "" {
				require.Equal(t, tc.offset, fe.Offset, err.Error())
				require.Contains(t, err.Error(), tc.msg)
			}
			_, err = fsdata.CutReader(bytes.NewReader(data), int64(len(data)), 0xffff, fsdata.ScanOptions{})
			require.Error(t, err)
		})
	}
}

func TestBadMagic(t *testing.T) {
	_, err := fsdata.NewScanner(bytes.NewReader([]byte("FS99xxxx")), 8, fsdata.ScanOptions{Name: "a.fs"})
	require.EqualError(t, err, `fsdata: a.fs: offset 0: bad magic "FS99": not a FileStorage file (want "FS30" or "FS21")`)
	_, err = fsdata.NewScanner(bytes.NewReader([]byte("FS")), 2, fsdata.ScanOptions{})
	require.ErrorContains(t, err, "shorter than the 4-byte magic")
}

func TestBoundaryResume(t *testing.T) {
	b := fsdatatest.Build(fsdata.MagicFS30, fsdatatest.Sample()...)
	size := int64(len(b.Bytes()))
	for i, end := range b.End {
		h, err := fsdata.Boundary(bytes.NewReader(b.Bytes()), size, end, "")
		require.NoError(t, err)
		require.Equal(t, fsdatatest.Sample()[i].TID, h.TID)
		require.Equal(t, b.Pos[i], h.Pos)
		hs, s, err := scanAll(t, b.Bytes(), fsdata.ScanOptions{Start: end, PrevTID: h.TID})
		require.NoError(t, err)
		require.Len(t, hs, 4-i)
		require.Equal(t, size, s.Pos())
	}
	h, err := fsdata.Boundary(bytes.NewReader(b.Bytes()), size, 4, "")
	require.NoError(t, err)
	require.Zero(t, h.TID)
	// Not a boundary: inside a record.
	_, err = fsdata.Boundary(bytes.NewReader(b.Bytes()), size, b.End[1]+5, "f")
	var fe *fsdata.FormatError
	require.ErrorAs(t, err, &fe)
	require.Contains(t, err.Error(), "not a transaction boundary")
	_, err = fsdata.Boundary(bytes.NewReader(b.Bytes()), size, size+1, "f")
	require.Error(t, err)
	// Resuming with a later PrevTID than the next transaction's is caught.
	_, _, err = scanAll(t, b.Bytes(), fsdata.ScanOptions{Start: b.End[1], PrevTID: 0x0900})
	require.ErrorContains(t, err, "time-stamp reduction")
}
