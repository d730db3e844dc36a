package fleet

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/journal"
)

// Every kind of report survives the buffer's encoding, field for field.
func TestBufferRecordRoundTrip(t *testing.T) {
	items := []item{
		{kind: recEvent, seq: 7, time: -3, ev: txn.Event{Kind: txn.Finished, Part: 1<<40 + 2, Storage: "A\xff", TID: 99, OK: true,
			Key: "k\x00", Info: txn.Info{Client: "pid:1", User: "/ admin", Description: "d", Extension: "e"}, Reason: "r"}},
		{kind: recEvent, seq: 8, time: 5, ev: txn.Event{Kind: txn.Blind, Storage: "B"}},
		{kind: recRecover, seq: 9, time: 6, run: 3 << 32, live: map[string]txn.TID{"A": 1, "B": 2}},
		{kind: recRecover, seq: 10, time: 6, run: 4 << 32, live: map[string]txn.TID{}},
		{kind: recGap, seq: 20, time: 7, gapFrom: 11, reason: "overflow"},
	}
	for _, it := range items {
		got, err := decodeItem(it.appendRecord(nil))
		require.NoError(t, err)
		require.Equal(t, it, got)
	}
	for _, bad := range [][]byte{{recEvent}, {recEvent, 1, 1, 1}, {recRecover, 0, 0, 0, 200}, {'x'}} {
		_, err := decodeItem(bad)
		require.Error(t, err, "%q", bad)
	}
	rec := items[0].appendRecord(nil)
	_, err := decodeItem(append(rec, 0))
	require.Error(t, err, "bytes left over")
}

// A buffer file that still holds reports of the first format (the
// tracker's input encoding) is read: those reports are a declared gap, the
// rest is resent.
func TestBufferOldFormatIsAGap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buf")
	j, _, err := journal.Open(path, journal.Options{}, func([]byte) error { return nil })
	require.NoError(t, err)
	require.NoError(t, j.Append([]byte{'I', 1, 0, 0, 0}))
	require.NoError(t, j.Append([]byte{recOldEvent, 1, 1, 2, 3}))
	ev := item{kind: recEvent, seq: 5, time: 1, ev: txn.Event{Kind: txn.Vote, Part: 1 << 32, OK: true}}
	require.NoError(t, j.Append(ev.appendRecord(nil)))
	require.NoError(t, j.Close())
	s, err := OpenSidecar(SidecarConfig{Name: "x", Address: "127.0.0.1:1", BufferFile: path})
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, 1, s.PreviousRuns())
	var kinds []byte
	for _, it := range s.q {
		kinds = append(kinds, it.kind)
	}
	require.Equal(t, []byte{recEvent, recGap}, kinds)
	require.Contains(t, s.q[1].reason, "first format")
}
