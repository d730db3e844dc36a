package fsdata_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/backup/fsdata/fsdatatest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// Collect indexes the latest record of each oid up to the target,
// deletions and undo back-pointers included.
func TestIndexCollect(t *testing.T) {
	b := fsdatatest.Build(fsdata.MagicFS30, fsdatatest.Sample()...)
	for _, tc := range []struct {
		target uint64
		want   map[uint64]int64
	}{
		{0x0100, map[uint64]int64{0: b.Pos[0] + fsdata.TxnHeaderSize + 25}},
		{0x0500, map[uint64]int64{
			0: b.Pos[1] + fsdata.TxnHeaderSize + 5 + 3,
			1: b.Pos[3] + fsdata.TxnHeaderSize + 4,
			2: b.Pos[4] + fsdata.TxnHeaderSize,
		}},
	} {
		ix := fsdata.NewIndex()
		_, err := fsdata.CutReader(bytes.NewReader(b.Bytes()), int64(len(b.Bytes())), 0x0500, fsdata.ScanOptions{OnData: ix.Collect(txn.TID(tc.target))})
		require.NoError(t, err)
		require.Equal(t, len(tc.want), ix.Len(), "target %x", tc.target)
		for oid, pos := range tc.want {
			got, ok := ix.Get(oid)
			require.True(t, ok, "target %x: oid %d", tc.target, oid)
			require.Equal(t, pos, got, "target %x: oid %d", tc.target, oid)
		}
	}
}
