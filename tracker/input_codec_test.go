package tracker

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidstorage/tidstorage/internal/txn"
)

func sampleInputs() []Input {
	return []Input{
		{Kind: InEvent, Time: 1, Event: txn.Event{Kind: txn.Begin, Part: 7, Storage: sA, Key: txn.NewKey("c", "u", "d", "{}"),
			Info: txn.Info{Client: "c", User: "u", Description: "d", Extension: "{}"}}},
		{Kind: InEvent, Time: 2, Event: txn.Event{Kind: txn.Finished, Part: 7, TID: 1<<63 + 5}},
		{Kind: InEvent, Time: -3, Event: txn.Event{Kind: txn.Blind, Storage: sB, Reason: "undecodable"}},
		{Kind: InClassicBegin, Time: 4, ID: "t1", Storages: []string{sA, sB}},
		{Kind: InClassicCommit, Time: 5, ID: "t1", TIDs: []StorageTID{{sA, 11}, {sB, 21}}, Storages: []string{sC}},
		{Kind: InClassicAbort, Time: 6, ID: "t2"},
		{Kind: InBootstrap, Time: 7, TIDs: []StorageTID{{sA, 10}}, Flag: true},
		{Kind: InHistory, Time: 8, Commit: txn.Commit{Storage: sA, TID: 12, HasMeta: true, User: "u", Description: "é\n", Extension: "{'x': 1}"}},
		{Kind: InHistoryStart, Time: 9, TIDs: []StorageTID{{sA, 10}}, Flag: true},
		{Kind: InTick, Time: 10},
		{Kind: InAccept, Time: 11, Pin: 3},
		{Kind: InEvent, Time: 11, Event: txn.Event{Kind: txn.Vote, Part: 1<<40 | 3, OK: true}, Source: "zope-host-1", Seq: 12345},
		{Kind: InRecover, Time: 12, TIDs: []StorageTID{{sA, 30}, {sB, 40}}},
		{Kind: InRestore, Time: 13, Snapshot: &Snapshot{NextPin: 9, Bootstrapped: true, BootRequested: true,
			Storages: []StorageSnapshot{{Storage: sA, Published: 5, HasPublished: true, Transient: 6, Known: true, Watched: true, Hist: 6}},
			Sources:  []SourceSeq{{"zope-host-1", 12345}}}},
	}
}

func TestInputCodecRoundTrip(t *testing.T) {
	var buf []byte
	for _, in := range sampleInputs() {
		buf = AppendInput(buf[:0], &in)
		got, err := DecodeInput(buf)
		require.NoError(t, err, in.Kind)
		require.Equal(t, in, got)
		for cut := range len(buf) {
			_, err := DecodeInput(buf[:cut])
			require.Error(t, err, "%v cut at %d", in.Kind, cut)
		}
	}
}

func TestInputCodecNoAllocEncode(t *testing.T) {
	in := sampleInputs()[0]
	buf := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() { buf = AppendInput(buf[:0], &in) })
	require.Zero(t, allocs)
}

func FuzzDecodeInput(f *testing.F) {
	for _, in := range sampleInputs() {
		f.Add(AppendInput(nil, &in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := DecodeInput(b)
		if err != nil {
			return
		}
		// Whatever decodes survives a round trip unchanged (the input
		// bytes may be a non-canonical varint of the same value).
		again, err := DecodeInput(AppendInput(nil, &in))
		require.NoError(t, err)
		require.Equal(t, in, again)
		m := New(Config{})
		_ = m.Apply(&in) // must not panic
	})
}
