package zrpc_test

import (
	"testing"

	"github.com/tidstorage/tidstorage/zrpc"
)

// The proxy peeks at most this many leading bytes of a frame.
const peekPrefix = 256

func benchPeek(b *testing.B, enc zrpc.Encoding, payload []byte) {
	head := payload
	if len(head) > peekPrefix {
		head = head[:peekPrefix]
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		pk, err := zrpc.PeekMessage(enc, head)
		if err != nil || pk.Method == zrpc.MethodUnknown {
			b.Fatal(err)
		}
	}
}

// ~100-byte frames: a tpc_begin with a little metadata.
func BenchmarkPeekSmall(b *testing.B) {
	for _, enc := range []zrpc.Encoding{zrpc.Pickle, zrpc.Msgpack} {
		m := zrpc.AsyncMessage(&zrpc.TPCBegin{TxnID: txnID, User: []byte("/plone admin"), Description: []byte("/plone/front-page/edit"),
			Extension: zrpc.Dict{{Key: "x", Value: "y"}}, Status: " "})
		p, err := zrpc.EncodeMessage(enc, m)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(enc.String(), func(b *testing.B) {
			benchPeek(b, enc, p)
		})
	}
}

// A 1 MiB storea: peek cost must not depend on the frame size.
func BenchmarkPeekStorea1MiB(b *testing.B) {
	for _, enc := range []zrpc.Encoding{zrpc.Pickle, zrpc.Msgpack} {
		p := bigStorea(b, enc, 1<<20)
		b.Run(enc.String(), func(b *testing.B) { benchPeek(b, enc, p) })
	}
}

// Peek of a loadBefore call (tuple msgid).
func BenchmarkPeekLoadBefore(b *testing.B) {
	for _, enc := range []zrpc.Encoding{zrpc.Pickle, zrpc.Msgpack} {
		prefix := map[zrpc.Encoding]string{zrpc.Pickle: "z5_", zrpc.Msgpack: "m5_"}[enc]
		p := golden(b, prefix+"load_before")
		b.Run(enc.String(), func(b *testing.B) { benchPeek(b, enc, p) })
	}
}

// Full decode of a tpc_begin frame into the typed message.
func BenchmarkDecodeTPCBegin(b *testing.B) {
	for _, enc := range []zrpc.Encoding{zrpc.Pickle, zrpc.Msgpack} {
		prefix := map[zrpc.Encoding]string{zrpc.Pickle: "z5_", zrpc.Msgpack: "m5_"}[enc]
		p := golden(b, prefix+"tpc_begin")
		b.Run(enc.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				m, err := zrpc.DecodeMessage(enc, p)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := zrpc.DecodeCall(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Encode of a tpc_begin (client side).
func BenchmarkEncodeTPCBegin(b *testing.B) {
	m := zrpc.AsyncMessage(&zrpc.TPCBegin{TxnID: txnID, User: []byte("user"), Description: []byte("desc"),
		Extension: zrpc.Dict{{Key: "x", Value: "y"}}, Status: " "})
	for _, enc := range []zrpc.Encoding{zrpc.Pickle, zrpc.Msgpack} {
		b.Run(enc.String(), func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				var err error
				buf, err = zrpc.AppendMessage(buf[:0], enc, m)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Peek at a vote and at a tpc_finish reply: what the relay does per 2PC
// frame before forwarding it.
func BenchmarkPeek2PC(b *testing.B) {
	for _, enc := range []zrpc.Encoding{zrpc.Pickle, zrpc.Msgpack} {
		prefix := map[zrpc.Encoding]string{zrpc.Pickle: "z5_", zrpc.Msgpack: "m5_"}[enc]
		vote, reply := golden(b, prefix+"vote"), golden(b, prefix+"tpc_finish_reply")
		b.Run(enc.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := zrpc.PeekMessage(enc, vote); err != nil {
					b.Fatal(err)
				}
				if _, err := zrpc.PeekMessage(enc, reply); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
