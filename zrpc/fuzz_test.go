package zrpc_test

import (
	"bytes"
	"testing"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// Seeds: every golden frame (ZEO's own encoder), the frames captured from
// real ZEO traffic (testdata/captured) and the hand-encoded ZEO 4
// frames; testdata/fuzz/<Target>/ holds hand-made hostile inputs and any
// crasher found so far.
func addSeeds(f *testing.F, want zrpc.Encoding) {
	for name, p := range goldenFrames(f) {
		if encOf(name) == want {
			f.Add(p)
		}
	}
	for name, p := range capturedFrames(f) {
		if encOf(name) == want {
			f.Add(p)
		}
	}
	if want == zrpc.Pickle {
		for _, z := range zeo4Frames {
			f.Add([]byte(z.payload))
		}
	}
}

// FuzzFrameReader: any byte stream gives frames or an error; the limit
// bounds what is allocated.
func FuzzFrameReader(f *testing.F) {
	for _, p := range goldenFrames(f) {
		f.Add(zrpc.AppendFrame(zrpc.AppendFrame(nil, []byte("Z5")), p))
	}
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Add([]byte{0x80, 0, 0, 2, 'Z', '4'})
	f.Fuzz(func(t *testing.T, stream []byte) {
		const max = 1 << 16
		fr := zrpc.NewFrameReader(bytes.NewReader(stream))
		fr.SetMaxFrameSize(max)
		for {
			p, err := fr.ReadFrame()
			if err != nil {
				break
			}
			if len(p) > max {
				t.Fatalf("frame of %d bytes over the limit", len(p))
			}
		}
	})
}

func checkPeek(t *testing.T, enc zrpc.Encoding, p []byte) {
	pk, err := zrpc.PeekMessage(enc, p)
	if err != nil {
		return
	}
	if pk.ArgsOff > len(p) || pk.ArgsOff <= 0 {
		t.Fatalf("ArgsOff %d outside a %d-byte prefix", pk.ArgsOff, len(p))
	}
	// A successful peek must agree with a successful full decode: the proxy
	// trusts the peek.
	m, err := zrpc.DecodeMessage(enc, p)
	if err != nil {
		return
	}
	id, intID := m.IntMsgID()
	agree := m.Name == string(pk.Name) && m.Flags == pk.Flags &&
		intID == (pk.MsgIDKind == zrpc.MsgIDInt) && (!intID || id == pk.MsgID)
	if args, err := m.CallArgs(); agree && err == nil && pk.Method == zrpc.MethodInvalidateTransaction && len(args) == 2 {
		// The relay takes the tid of every invalidation from the peek.
		if tid, err := zrpc.PeekArgTID(enc, p, &pk); err == nil {
			if b, ok := args[0].([]byte); !ok || len(b) != 8 || txn.TIDFromBytes([8]byte(b)) != tid {
				agree = false
			}
		}
	}
	if agree {
		return
	}
	canonical := enc == zrpc.Msgpack
	if enc == zrpc.Pickle {
		canon, err := zrpc.EncodeMessage(enc, m)
		canonical = err == nil && bytes.Equal(canon, p)
	}
	// msgpack has no stack tricks: peek and decode must always agree. A
	// pickle can fool a head-only parser with stack opcodes (POP, DUP,
	// POP_MARK, memo) after the name, which ZEO never writes: peek must
	// agree on every frame in the canonical form ZEO's encoder produces.
	if !canonical {
		return
	}
	t.Fatalf("peek (%v %d, %d, %q) disagrees with decode (%v, %d, %q)", pk.MsgIDKind, pk.MsgID, pk.Flags, pk.Name, m.MsgID, m.Flags, m.Name)
}

func FuzzPeekPickle(f *testing.F) {
	addSeeds(f, zrpc.Pickle)
	f.Fuzz(func(t *testing.T, p []byte) { checkPeek(t, zrpc.Pickle, p) })
}

func FuzzPeekMsgpack(f *testing.F) {
	addSeeds(f, zrpc.Msgpack)
	f.Fuzz(func(t *testing.T, p []byte) { checkPeek(t, zrpc.Msgpack, p) })
}

// FuzzDecodePickle: og-rek plus normalisation; garbage is an error. A
// decoded message re-encodes (unless it holds opaque objects) to something
// that decodes to the same message.
func FuzzDecodePickle(f *testing.F) {
	addSeeds(f, zrpc.Pickle)
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := zrpc.DecodeMessage(zrpc.Pickle, p)
		if err != nil {
			return
		}
		exerciseTyped(m)
		b, err := zrpc.EncodeMessage(zrpc.Pickle, m)
		if err != nil {
			return // opaque objects, or ints beyond LONG1
		}
		m2, err := zrpc.DecodeMessage(zrpc.Pickle, b)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v\n%q", err, b)
		}
		b2, err := zrpc.EncodeMessage(zrpc.Pickle, m2)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("encoding not stable: %v\n%q\n%q", err, b, b2)
		}
	})
}

func FuzzDecodeMsgpack(f *testing.F) {
	addSeeds(f, zrpc.Msgpack)
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := zrpc.DecodeMessage(zrpc.Msgpack, p)
		if err != nil {
			return
		}
		exerciseTyped(m)
		b, err := zrpc.EncodeMessage(zrpc.Msgpack, m)
		if err != nil {
			t.Fatalf("decoded message does not re-encode: %v", err)
		}
		m2, err := zrpc.DecodeMessage(zrpc.Msgpack, b)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		b2, _ := zrpc.EncodeMessage(zrpc.Msgpack, m2)
		if !bytes.Equal(b, b2) {
			t.Fatalf("encoding not stable:\n%x\n%x", b, b2)
		}
	})
}

// exerciseTyped runs every typed accessor on a decoded message: garbage
// must give errors, never panics.
func exerciseTyped(m *zrpc.Message) {
	if !m.IsReply() {
		if c, err := zrpc.DecodeCall(m); err == nil {
			_ = c.Args()
		}
		return
	}
	_, _ = zrpc.ReplyTID(m)
	_, _ = zrpc.ParseVoteResult(m)
	_, _ = zrpc.ParseErrorReply(m)
	_, _ = zrpc.ParseTransactionInfo(m.Args)
	if e, err := zrpc.ParseErrorReply(m); err == nil {
		_ = e.Message()
		_ = e.Error()
	}
}
