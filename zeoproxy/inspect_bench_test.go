package zeoproxy

import (
	"testing"

	"github.com/tidstorage/tidstorage/zrpc"
)

// BenchmarkS2CHead is the relay's per-frame cost on server → client frames
// while no 2PC reply is pending: a loadBefore reply (most of the traffic)
// and an invalidateTransaction (its TID is recorded).
func BenchmarkS2CHead(b *testing.B) {
	tid := make([]byte, 8)
	tid[0] = 3
	frames := map[string]*zrpc.Message{
		"loadBefore-reply": {MsgID: zrpc.Tuple{make([]byte, 8), tid}, Flags: int64(0), Name: zrpc.ReplyName,
			Args: zrpc.Tuple{make([]byte, 200), tid, nil}},
		"invalidateTransaction": zrpc.AsyncMessage(&zrpc.InvalidateTransaction{TID: tid, OIDs: [][]byte{make([]byte, 8), make([]byte, 8)}}),
	}
	for _, enc := range []zrpc.Encoding{zrpc.Pickle, zrpc.Msgpack} {
		for name, m := range frames {
			p, err := zrpc.EncodeMessage(enc, m)
			if err != nil {
				b.Fatal(err)
			}
			prefix := p[:min(len(p), peekSize)]
			b.Run(enc.String()+"/"+name, func(b *testing.B) {
				c := &conn{s2cFrames: 1, scEnc: enc}
				i := s2cInspector{c}
				b.ReportAllocs()
				for n := 0; n < b.N; n++ {
					if i.head(prefix, len(p)) {
						b.Fatal("wanted whole")
					}
				}
				if name == "invalidateTransaction" && c.seen.Load() == 0 {
					b.Fatal("tid not seen")
				}
			})
		}
	}
}

// tupleMsgID only ever skips frames whose msgid the full peek reads as a
// tuple.
func TestTupleMsgIDAgreesWithPeek(t *testing.T) {
	tid := make([]byte, 8)
	msgs := []*zrpc.Message{
		{MsgID: zrpc.Tuple{make([]byte, 8), tid}, Flags: int64(0), Name: zrpc.ReplyName, Args: zrpc.Tuple{make([]byte, 20), tid, nil}},
		{MsgID: zrpc.Tuple{make([]byte, 8), tid}, Flags: int64(0), Name: zrpc.ReplyName, Args: nil},
		zrpc.AsyncMessage(&zrpc.InvalidateTransaction{TID: tid, OIDs: [][]byte{}}),
		zrpc.AsyncMessage(&zrpc.Info{}),
		{MsgID: int64(7), Flags: int64(0), Name: zrpc.ReplyName, Args: tid},
		{MsgID: int64(300), Flags: int64(2), Name: zrpc.ReplyName, Args: zrpc.Tuple{"ZODB.POSException.ConflictError", zrpc.Tuple{}}},
	}
	for _, enc := range []zrpc.Encoding{zrpc.Pickle, zrpc.Msgpack} {
		for i, m := range msgs {
			p, err := zrpc.EncodeMessage(enc, m)
			if err != nil {
				t.Fatal(err)
			}
			pk, err := zrpc.PeekMessage(enc, p)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := tupleMsgID(enc, p), pk.MsgIDKind == zrpc.MsgIDTuple; got != want {
				t.Errorf("%v frame %d: tupleMsgID %v, peek says tuple %v", enc, i, got, want)
			}
		}
	}
}
