package input

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
)

const (
	sA = "((('localhost', 8100),), 'A')"
	sB = "((('localhost', 8200),), 'B')"
	sC = "((('localhost', 8300),), 'C')"
)

type timed struct {
	now int64
	in  Input
}

// samples has one input of every type (and the variants of some).
func samples() []timed {
	return []timed{
		{1, Event{Event: txn.Event{Kind: txn.Begin, Part: 7, Storage: sA, Key: txn.NewKey("c", "u", "d", "{}"),
			Info: txn.Info{Client: "c", User: "u", Description: "d", Extension: "{}"}}}},
		{2, Event{Event: txn.Event{Kind: txn.Finished, Part: 7, TID: 1<<63 + 5}}},
		{-3, Event{Event: txn.Event{Kind: txn.Blind, Storage: sB, Reason: "undecodable"}}},
		{4, ClassicBegin{ID: "t1", Storages: []string{sA, sB}}},
		{5, ClassicCommit{ID: "t1", TIDs: []StorageTID{{sA, 11}, {sB, 21}}, None: []string{sC}}},
		{6, ClassicAbort{ID: "t2"}},
		{7, Bootstrap{Last: []StorageTID{{sA, 10}}, Clean: true}},
		{8, History{Commit: txn.Commit{Storage: sA, TID: 12, HasMeta: true, User: "u", Description: "é\n", Extension: "{'x': 1}"}}},
		{9, HistoryStart{Storage: sA, After: 10, WarnOnly: true}},
		{10, Tick{}},
		{11, Accept{Pin: 3}},
		{11, Event{Event: txn.Event{Kind: txn.Vote, Part: 1<<40 | 3, OK: true}, Source: "zope-host-1", Seq: 12345}},
		{12, Recover{Live: []StorageTID{{sA, 30}, {sB, 40}}}},
		{13, Restore{Snapshot: Snapshot{NextPin: 9, Bootstrapped: true, BootRequested: true,
			Storages: []StorageSnapshot{{Storage: sA, Published: 5, HasPublished: true, Transient: 6, Known: true, Watched: true, Hist: 6}},
			Sources:  []SourceSeq{{"zope-host-1", 12345}}}}},
		{14, LastTID{Storage: sA, TID: 15}},
		{15, SettleAt{Storage: sB, TID: 16}},
		{16, Suspect{Storage: sC, TID: 17}},
		{17, AcceptUnaccounted{Pin: 4, Live: []StorageTID{{sA, 18}}}},
		{18, Image{Bytes: []byte("img")}},
		{19, Floor{Live: []StorageTID{{sA, 19}}, Floor: []StorageTID{{sA, 18}}}},
		{20, Retire{Source: "zope3"}},
		{21, Gap{Source: "zope2", Seq: 99}},
		{22, RecoverRun{Source: "zope2", Seq: 100, Run: 7 << 32, Live: []StorageTID{{sA, 20}}}},
		{23, Recover{Live: []StorageTID{{sA, 20}}, Floor: []StorageTID{{sA, 19}}, TailLost: true}},
		{24, Tick{Awaited: []string{sA}}},
	}
}

// golden are the samples' bytes as the journal held them when every input
// was one struct (tracker.Input and its AppendInput): journals written then
// replay unchanged.
var golden = []string{
	"01010201071d282828276c6f63616c686f7374272c2038313030292c292c202741272900000d313a63313a75313a64323a7b7d016301750164027b7d000000000000000000000000000000",
	"01010404070085808080808080808001000000000000000000000000000000000000000000",
	"01010508001d282828276c6f63616c686f7374272c2038323030292c292c2027422729000000000000000b756e6465636f6461626c650000000000000000000000000000",
	"0102080000000000000000000000000000000000027431021d282828276c6f63616c686f7374272c2038313030292c292c20274127291d282828276c6f63616c686f7374272c2038323030292c292c2027422729000000000000",
	"01030a0000000000000000000000000000000000027431011d282828276c6f63616c686f7374272c2038333030292c292c2027432729021d282828276c6f63616c686f7374272c2038313030292c292c20274127290b1d282828276c6f63616c686f7374272c2038323030292c292c2027422729150000000000",
	"01040c000000000000000000000000000000000002743200000000000000",
	"01050e00000000000000000000000000000000000000011d282828276c6f63616c686f7374272c2038313030292c292c20274127290a0100000000",
	"01081000000000000000000000001d282828276c6f63616c686f7374272c2038313030292c292c20274127290c01017503c3a90a087b2778273a20317d0000000000000000",
	"01071200000000000000000000000000000000000000011d282828276c6f63616c686f7374272c2038313030292c292c20274127290a0100000000",
	"01091400000000000000000000000000000000000000000000000000",
	"010a1600000000000000000000000000000000000000000003000000",
	"0101160283808080802000000100000000000000000000000000000000000b7a6f70652d686f73742d31b96000",
	"010b1800000000000000000000000000000000000000021d282828276c6f63616c686f7374272c2038313030292c292c20274127291e1d282828276c6f63616c686f7374272c2038323030292c292c2027422729280000000000",
	"010c1a00000000000000000000000000000000000000000000000001090101011d282828276c6f63616c686f7374272c2038313030292c292c202741272905010601010006010b7a6f70652d686f73742d31b960",
	"01061c00000000000000000000000000000000000000011d282828276c6f63616c686f7374272c2038313030292c292c20274127290f0000000000",
	"010d1e00000000000000000000000000000000000000011d282828276c6f63616c686f7374272c2038323030292c292c2027422729100000000000",
	"010e2000000000000000000000000000000000000000011d282828276c6f63616c686f7374272c2038333030292c292c2027432729110000000000",
	"010f2200000000000000000000000000000000000000011d282828276c6f63616c686f7374272c2038313030292c292c2027412729120004000000",
	"021024000000000000000000000000000000000000000000000000000003696d67",
	"02112600000000000000000000000000000000000000011d282828276c6f63616c686f7374272c2038313030292c292c2027412729130000000000011d282828276c6f63616c686f7374272c2038313030292c292c20274127291200",
	"0112280000000000000000000000000000000000057a6f70653300000000000000",
	"01132a00000000000000000000000000000000000000000000057a6f7065326300",
	"010b2c00000000000000000000000000000000000000011d282828276c6f63616c686f7374272c2038313030292c292c202741272914008080808070057a6f7065326400",
	"020b2e00000000000000000000000000000000000000011d282828276c6f63616c686f7374272c2038313030292c292c2027412729140100000000011d282828276c6f63616c686f7374272c2038313030292c292c20274127291300",
	"010930000000000000000000000000000000000000011d282828276c6f63616c686f7374272c2038313030292c292c2027412729000000000000",
}

func TestCodecGolden(t *testing.T) {
	ss := samples()
	require.Len(t, golden, len(ss))
	for k, s := range ss {
		require.Equal(t, golden[k], hex.EncodeToString(Append(nil, s.now, s.in)), "%d: %s", k, Name(s.in))
	}
}

func TestCodecRoundTrip(t *testing.T) {
	var buf []byte
	kinds := map[Kind]bool{}
	for _, s := range samples() {
		buf = Append(buf[:0], s.now, s.in)
		now, got, err := Decode(buf)
		require.NoError(t, err, Name(s.in))
		require.Equal(t, s.now, now)
		require.Equal(t, s.in, got)
		kinds[KindOf(got)] = true
		for cut := range len(buf) {
			_, _, err := Decode(buf[:cut])
			require.Error(t, err, "%s cut at %d", Name(s.in), cut)
		}
	}
	for k := KindEvent; k <= KindGap; k++ {
		require.True(t, kinds[k], "no sample of %v", k)
	}
}

// A record of a kind that needs one storage and has another count, of an
// unknown kind or version, is refused with what is wrong.
func TestCodecRefuses(t *testing.T) {
	rec := Append(nil, 1, LastTID{Storage: sA, TID: 2})
	bad := Append(nil, 1, Bootstrap{Last: []StorageTID{{sA, 1}, {sB, 2}}})
	bad[1] = byte(KindLastTID)
	_, _, err := Decode(bad)
	require.ErrorContains(t, err, "last-tid: 2 storages, want one")
	unknown := append([]byte(nil), rec...)
	unknown[1] = 200
	_, _, err = Decode(unknown)
	require.ErrorContains(t, err, "unknown input kind")
	newer := append([]byte(nil), rec...)
	newer[0] = 3
	_, _, err = Decode(newer)
	require.ErrorContains(t, err, "input version 3")
}

func TestCodecNoAllocEncode(t *testing.T) {
	for _, k := range []int{0, 14} {
		s := samples()[k]
		buf := make([]byte, 0, 512)
		allocs := testing.AllocsPerRun(100, func() { buf = Append(buf[:0], s.now, s.in) })
		require.Zero(t, allocs, Name(s.in))
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range samples() {
		f.Add(Append(nil, s.now, s.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		now, in, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes survives a round trip unchanged (the input
		// bytes may be a non-canonical varint of the same value).
		now2, again, err := Decode(Append(nil, now, in))
		require.NoError(t, err)
		require.Equal(t, now, now2)
		require.Equal(t, in, again)
	})
}
