package fsdata

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
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
