package fsdata

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
)

func scanAll(t *testing.T, data []byte, opts ScanOptions) ([]TxnHeader, *Scanner, error) {
	t.Helper()
	s, err := NewScanner(bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		return nil, nil, err
	}
	var hs []TxnHeader
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
	for _, magic := range []string{MagicFS30, MagicFS21} {
		b := buildFS(magic, sampleTxns()...)
		var recs int
		hs, s, err := scanAll(t, b.data, ScanOptions{OnData: func(_ *TxnHeader, d *DataHeader, head []byte) error {
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
			require.Equal(t, sampleTxns()[i].tid, h.TID)
			require.Equal(t, b.poss[i], h.Pos)
			require.Equal(t, b.ends[i], h.End())
		}
		require.Equal(t, byte(StatusPacked), hs[4].Status)
		require.Equal(t, 7, recs)
		require.Equal(t, TailNone, s.Tail().Kind)
		require.Equal(t, int64(len(b.data)), s.Pos())
	}
}

func TestScanEmptyStorage(t *testing.T) {
	hs, s, err := scanAll(t, []byte(MagicFS30), ScanOptions{})
	require.NoError(t, err)
	require.Empty(t, hs)
	require.Equal(t, int64(4), s.Pos())
	c, err := CutReader(bytes.NewReader([]byte(MagicFS30)), 4, 123, ScanOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(4), c.Offset)
	require.True(t, c.Behind())
}

func TestCutSample(t *testing.T) {
	b := buildFS(MagicFS30, sampleTxns()...)
	size := int64(len(b.data))
	for i, spec := range sampleTxns() {
		for _, target := range []txn.TID{spec.tid, spec.tid + 1, spec.tid + 0xff} {
			c, err := CutReader(bytes.NewReader(b.data), size, target, ScanOptions{})
			require.NoError(t, err)
			require.Equal(t, b.ends[i], c.Offset, "target %s", target.Hex())
			require.Equal(t, spec.tid, c.KeptTID)
			require.Equal(t, target == spec.tid, c.Exact())
			require.Equal(t, i+1, c.Kept)
			require.Equal(t, 4-i, c.Removed)
			require.Equal(t, spec.tid, c.LastTxn.TID)
			require.Equal(t, txn.TID(0x0500), c.LastTID)
			require.Equal(t, target > 0x0500, c.Behind())
			if i < 4 {
				require.Equal(t, sampleTxns()[i+1].tid, c.FirstRemoved)
				require.Equal(t, txn.TID(0x0500), c.LastRemoved)
			}
		}
	}
	c, err := CutReader(bytes.NewReader(b.data), size, 0x00ff, ScanOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(4), c.Offset)
	require.Zero(t, c.KeptTID)
	require.Equal(t, 5, c.Removed)
	require.Contains(t, c.Summary(), "no transaction")
	c, err = CutReader(bytes.NewReader(b.data), size, 0x0600, ScanOptions{})
	require.NoError(t, err)
	require.Equal(t, size, c.Offset)
	require.True(t, c.Behind())
}

// Every truncation inside the last transaction is a torn tail, never an
// error, and the cut keeps the transactions before it.
func TestTornTailAtEveryByte(t *testing.T) {
	b := buildFS(MagicFS30, sampleTxns()...)
	start := b.poss[4]
	for n := start + 1; n < int64(len(b.data)); n++ {
		data := b.data[:n]
		hs, s, err := scanAll(t, data, ScanOptions{})
		require.NoError(t, err, "truncated at %d", n)
		require.Len(t, hs, 4)
		require.Equal(t, TailTorn, s.Tail().Kind, "truncated at %d", n)
		require.Equal(t, start, s.Tail().Offset)
		require.Equal(t, n-start, s.Tail().Size)
		c, err := CutReader(bytes.NewReader(data), n, 0xffff, ScanOptions{})
		require.NoError(t, err)
		require.Equal(t, start, c.Offset)
		require.Equal(t, txn.TID(0x0400), c.KeptTID)
	}
}

func TestInProgressTail(t *testing.T) {
	txns := sampleTxns()
	txns[4].status = StatusCheckpoint
	b := buildFS(MagicFS30, txns...)
	hs, s, err := scanAll(t, b.data, ScanOptions{})
	require.NoError(t, err)
	require.Len(t, hs, 4)
	tail := s.Tail()
	require.Equal(t, TailInProgress, tail.Kind)
	require.Equal(t, txn.TID(0x0500), tail.TID)
	require.Equal(t, b.poss[4], tail.Offset)
	c, err := CutReader(bytes.NewReader(b.data), int64(len(b.data)), 0x0500, ScanOptions{})
	require.NoError(t, err)
	require.Equal(t, b.poss[4], c.Offset)
	require.Equal(t, txn.TID(0x0400), c.KeptTID)
	require.False(t, c.Exact())
	require.Contains(t, c.Summary(), "in-progress")
}

func TestZeroTail(t *testing.T) {
	b := buildFS(MagicFS30, sampleTxns()...)
	data := append(append([]byte{}, b.data...), make([]byte, 4096)...)
	hs, s, err := scanAll(t, data, ScanOptions{})
	require.NoError(t, err)
	require.Len(t, hs, 5)
	require.Equal(t, TailTorn, s.Tail().Kind)
	require.Equal(t, "4096 zero bytes", s.Tail().Reason)
	// A zero block in the middle is corruption, not a tail.
	data = append(append(append([]byte{}, b.data[:b.ends[1]]...), make([]byte, 64)...), b.data[b.ends[1]:]...)
	_, _, err = scanAll(t, data, ScanOptions{})
	var fe *FormatError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, b.ends[1], fe.Offset)
}

func TestCorruption(t *testing.T) {
	b := buildFS(MagicFS30, sampleTxns()...)
	be := binary.BigEndian
	rec := b.poss[2] + TxnHeaderSize + 5 + 0 + 6 // first data record of txn 3 (user "/ bob", ext 6 bytes)
	cases := []struct {
		name   string
		edit   func(d []byte)
		offset int64
		msg    string
	}{
		{"status", func(d []byte) { d[b.poss[1]+16] = 'x' }, b.poss[1], "invalid status byte"},
		{"tid reduction", func(d []byte) { be.PutUint64(d[b.poss[2]:], 0x0150) }, b.poss[2], "time-stamp reduction"},
		{"equal tid", func(d []byte) { be.PutUint64(d[b.poss[2]:], 0x0200) }, b.poss[2], "time-stamp reduction"},
		{"trailer", func(d []byte) { be.PutUint64(d[b.ends[1]-8:], 99) }, b.ends[1] - 8, "trailer length 99"},
		{"short tlen", func(d []byte) { be.PutUint64(d[b.poss[1]+8:], 10) }, b.poss[1], "shorter than its header"},
		{"tloc", func(d []byte) { be.PutUint64(d[rec+24:], 4) }, rec, "transaction pointer 4"},
		{"data tid", func(d []byte) { be.PutUint64(d[rec+8:], 0x0299) }, rec, "differs from its transaction"},
		{"version", func(d []byte) { be.PutUint16(d[rec+32:], 3) }, rec, "version length 3"},
		{"prev", func(d []byte) { be.PutUint64(d[rec+16:], uint64(rec)) }, rec, "previous-revision pointer"},
		{"plen", func(d []byte) { be.PutUint64(d[rec+34:], 1000) }, rec, "runs past its transaction's end"},
		{"tlen past the end", func(d []byte) { be.PutUint64(d[b.poss[1]+8:], 1<<40) }, b.poss[1], "damaged length"},
		{"tlen longer", func(d []byte) {
			// tlen one more than the records fill: the trailer read lands a
			// byte late, the last record looks short.
			be.PutUint64(d[b.poss[0]+8:], be.Uint64(d[b.poss[0]+8:])+1)
		}, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := append([]byte{}, b.data...)
			tc.edit(data)
			_, _, err := scanAll(t, data, ScanOptions{Name: "x/Data.fs"})
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			require.Contains(t, err.Error(), "x/Data.fs")
			if tc.msg != "" {
				require.Equal(t, tc.offset, fe.Offset, err.Error())
				require.Contains(t, err.Error(), tc.msg)
			}
			_, err = CutReader(bytes.NewReader(data), int64(len(data)), 0xffff, ScanOptions{})
			require.Error(t, err)
		})
	}
}

func TestBadMagic(t *testing.T) {
	_, err := NewScanner(bytes.NewReader([]byte("FS99xxxx")), 8, ScanOptions{Name: "a.fs"})
	require.EqualError(t, err, `fsdata: a.fs: offset 0: bad magic "FS99": not a FileStorage file (want "FS30" or "FS21")`)
	_, err = NewScanner(bytes.NewReader([]byte("FS")), 2, ScanOptions{})
	require.ErrorContains(t, err, "shorter than the 4-byte magic")
}

func TestBoundaryResume(t *testing.T) {
	b := buildFS(MagicFS30, sampleTxns()...)
	size := int64(len(b.data))
	for i, end := range b.ends {
		h, err := Boundary(bytes.NewReader(b.data), size, end, "")
		require.NoError(t, err)
		require.Equal(t, sampleTxns()[i].tid, h.TID)
		require.Equal(t, b.poss[i], h.Pos)
		hs, s, err := scanAll(t, b.data, ScanOptions{Start: end, PrevTID: h.TID})
		require.NoError(t, err)
		require.Len(t, hs, 4-i)
		require.Equal(t, size, s.Pos())
	}
	h, err := Boundary(bytes.NewReader(b.data), size, 4, "")
	require.NoError(t, err)
	require.Zero(t, h.TID)
	// Not a boundary: inside a record.
	_, err = Boundary(bytes.NewReader(b.data), size, b.ends[1]+5, "f")
	var fe *FormatError
	require.ErrorAs(t, err, &fe)
	require.Contains(t, err.Error(), "not a transaction boundary")
	_, err = Boundary(bytes.NewReader(b.data), size, size+1, "f")
	require.Error(t, err)
	// Resuming with a later PrevTID than the next transaction's is caught.
	_, _, err = scanAll(t, b.data, ScanOptions{Start: b.ends[1], PrevTID: 0x0900})
	require.ErrorContains(t, err, "time-stamp reduction")
}
