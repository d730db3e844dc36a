package zrpc_test

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/zrpc"
)

// handPickles are pickles ZEO does not write but a peer may: edge cases of
// the opcodes the fast path takes (negative and wide LONG1, duplicate and
// non-string dict keys, marks in the wrong place, protocol 1 strings,
// trailing bytes) and opcodes it leaves to og-rek (memo, globals).
var handPickles = []string{
	"\x80\x03N.", "\x80\x03\x88.", "\x80\x03\x89.", "\x80\x03K\xff.", "\x80\x03M\xff\xff.",
	"\x80\x03J\xff\xff\xff\xff.", "\x80\x03J\x00\x00\x00\x80.",
	"\x80\x03\x8a\x00.", "\x80\x03\x8a\x01\xff.", "\x80\x03\x8a\x01\x7f.", "\x80\x03\x8a\x02\x00\x80.",
	"\x80\x03\x8a\x08\xff\xff\xff\xff\xff\xff\xff\xff.", "\x80\x03\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80.",
	"\x80\x03\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.",
	"\x80\x03G?\xf0\x00\x00\x00\x00\x00\x00.",
	"\x80\x03C\x03abc.", "\x80\x03B\x03\x00\x00\x00abc.", "\x80\x03U\x03abc.", "\x80\x03T\x03\x00\x00\x00abc.",
	"\x80\x03\x8c\x03abc.", "\x80\x03X\x03\x00\x00\x00abc.", "\x80\x03X\x02\x00\x00\x00\xff\xfe.",
	"\x80\x03).", "\x80\x03(t.", "\x80\x03(K\x01K\x02t.", "\x80\x03K\x01\x85.", "\x80\x03K\x01K\x02\x86.",
	"\x80\x03K\x01K\x02K\x03\x87.", "\x80\x03(K\x01\x86.", "\x80\x03(\x85.",
	"\x80\x03].", "\x80\x03]K\x01a.", "\x80\x03](K\x01K\x02e.", "\x80\x03](e.", "\x80\x03](K\x01a.",
	"\x80\x03}.", "\x80\x03}\x8c\x01aK\x01s.", "\x80\x03}(\x8c\x01bK\x02\x8c\x01aK\x01u.",
	"\x80\x03}(\x8c\x01aK\x01\x8c\x01aK\x02u.", "\x80\x03}(K\x01K\x01\x88K\x02u.", "\x80\x03}(C\x01aK\x01u.",
	"\x80\x03}(\x8c\x01aK\x01u(\x8c\x01aK\x02u.", "\x80\x03}(\x8c\x01au.",
	"\x80\x03K\x01K\x02.", "\x80\x03(.", "\x80\x03K\x01.junk", "\x80\x03K\x01", "\x80\x06K\x01.",
	"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.",
	"\x80\x03K\x01q\x00h\x00\x86.", "\x80\x03cbuiltins\nset\n).",
	"(K\x01K\x02t.", "I1\n.", "\x80\x03]\x8c\x01aa.", "\x80\x03N]a.",
}

// deep is a pickle of n nested one-tuples.
func deep(n int) string { return "\x80\x03N" + strings.Repeat("\x85", n) + "." }

// When the fast path decodes a pickle, og-rek decodes it to the same value.
func checkFast(t *testing.T, p []byte) {
	v, ok := zrpc.FastPickle(p)
	if !ok {
		return
	}
	w, err := zrpc.DecodePickleOgorek(p)
	require.NoError(t, err, "%q: og-rek refuses what the fast path took", p)
	require.True(t, sameValue(w, v), "%q: og-rek %#v, fast %#v", p, w, v)
}

// sameValue is reflect.DeepEqual with floats compared by their bits (NaN).
func sameValue(a, b zrpc.Value) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case zrpc.Tuple:
		y, ok := b.(zrpc.Tuple)
		return ok && y != nil && sameList(x, y)
	case zrpc.List:
		y, ok := b.(zrpc.List)
		return ok && y != nil && sameList(x, y)
	case zrpc.Dict:
		y, ok := b.(zrpc.Dict)
		if !ok || y == nil || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i].Key, y[i].Key) || !sameValue(x[i].Value, y[i].Value) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func sameList(x, y []zrpc.Value) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !sameValue(x[i], y[i]) {
			return false
		}
	}
	return true
}

func TestFastPickleAgreesWithOgrek(t *testing.T) {
	for _, p := range append(handPickles, deep(10), deep(59), deep(60), deep(70)) {
		checkFast(t, []byte(p))
	}
	for _, frames := range []map[string][]byte{goldenFrames(t), capturedFrames(t)} {
		for _, p := range frames {
			checkFast(t, p)
		}
	}
}

// The frames the proxy decodes whole, and an invalidation, take the fast
// path (else the optimisation is silently lost).
func TestFastPickleCoversZEOFrames(t *testing.T) {
	for _, name := range []string{"z5_tpc_begin", "z5_tpc_begin_empty", "z5_vote_reply", "z5_vote_reply_resolved",
		"z5_vote_reply_conflict", "z5_tpc_finish_reply", "z5_invalidate", "z5_register", "z5_ping_reply"} {
		_, ok := zrpc.FastPickle(golden(t, name))
		require.True(t, ok, name)
	}
	frames := capturedFrames(t)
	for _, name := range []string{"z5_c2s_tpc_begin_1", "z5_c2s_tpc_begin_2", "z5_s2c_invalidateTransaction_1", "z5_s2c_reply_1"} {
		_, ok := zrpc.FastPickle(frames[name])
		require.True(t, ok, name)
	}
}

// FuzzFastPickle: whatever the input, the fast path either declines or
// agrees with og-rek.
func FuzzFastPickle(f *testing.F) {
	addSeeds(f, zrpc.Pickle)
	for _, p := range handPickles {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, p []byte) { checkFast(t, p) })
}
