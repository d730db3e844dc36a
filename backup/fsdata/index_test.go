package fsdata

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// The bytes ZODB's fsIndex.save writes for the same map (Python 3, ZODB 6):
// several 6-byte prefixes, ints of every pickle size, an empty index.
func TestIndexBytesMatchZODB(t *testing.T) {
	ix := NewIndex()
	for oid, pos := range map[uint64]int64{0: 4, 1: 300, 0x10000: 70000, 0x100000000: 1<<40 + 5, 2: 1<<31 + 7} {
		ix.m[oid] = pos
	}
	var b bytes.Buffer
	require.NoError(t, ix.Write(&b, 1<<40+100))
	require.Equal(t, "80038a066400000000012e80034306000000000000431800000001000200000000000400000000012c000080000007862e8003430600000000000143080000000000011170862e8003430600000001000043080000010000000005862e80034e2e", hex.EncodeToString(b.Bytes()))

	for pos, want := range map[int64]string{5: "80034b052e80034e2e", 100000: "80034aa08601002e80034e2e"} {
		b.Reset()
		require.NoError(t, NewIndex().Write(&b, pos))
		require.Equal(t, want, hex.EncodeToString(b.Bytes()))
	}
	require.Error(t, NewIndex().Write(&b, 1<<48))
}

// Collect indexes the latest record of each oid up to the target,
// deletions and undo back-pointers included.
func TestIndexCollect(t *testing.T) {
	b := buildFS(MagicFS30, sampleTxns()...)
	for _, tc := range []struct {
		target uint64
		want   map[uint64]int64
	}{
		{0x0100, map[uint64]int64{0: b.poss[0] + TxnHeaderSize + 25}},
		{0x0500, map[uint64]int64{
			0: b.poss[1] + TxnHeaderSize + 5 + 3,
			1: b.poss[3] + TxnHeaderSize + 4,
			2: b.poss[4] + TxnHeaderSize,
		}},
	} {
		ix := NewIndex()
		_, err := CutReader(bytes.NewReader(b.data), int64(len(b.data)), 0x0500, ScanOptions{OnData: ix.Collect(txn.TID(tc.target))})
		require.NoError(t, err)
		require.Equal(t, tc.want, ix.m, "target %x", tc.target)
	}
}
