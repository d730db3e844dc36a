package zrpc_test

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/zrpc"
)

// Declared lengths far beyond the input must fail without allocating
// anything near the declared size (og-rek caps its preallocation at 64 KiB;
// the msgpack walker checks lengths against the bytes left; vmihailenco's
// own DecodeInterface would preallocate a 4G-element slice).
func TestHostileLengthsBoundedAllocation(t *testing.T) {
	cases := []struct {
		name string
		enc  zrpc.Encoding
		p    string
	}{
		{"pickle BINBYTES 2GiB", zrpc.Pickle, "\x80\x03(K\x01\x89X\x04\x00\x00\x00pingB\xff\xff\xff\x7f\x85t."},
		{"pickle BINUNICODE 4GiB", zrpc.Pickle, "\x80\x03(K\x01\x89X\xff\xff\xff\xffping"},
		{"pickle BINSTRING 2GiB", zrpc.Pickle, "(K\x01K\x00U\x04pingT\xff\xff\xff\x7fxx"},
		{"msgpack array32", zrpc.Msgpack, "\x94\x01\xc2\xa4ping\xdd\xff\xff\xff\xff\x01"},
		{"msgpack map32", zrpc.Msgpack, "\x94\x01\xc2\xa4ping\xdf\xff\xff\xff\xff\x01\x01"},
		{"msgpack bin32", zrpc.Msgpack, "\x94\x01\xc2\xa4ping\xc6\xff\xff\xff\xffxx"},
		{"msgpack str32", zrpc.Msgpack, "\x94\x01\xc2\xa4ping\xdb\xff\xff\xff\xffxx"},
		{"msgpack envelope array32", zrpc.Msgpack, "\xdd\xff\xff\xff\xff\x01"},
	}
	for _, c := range cases {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := zrpc.DecodeMessage(c.enc, []byte(c.p))
		runtime.ReadMemStats(&after)
		require.Error(t, err, c.name)
		allocated := after.TotalAlloc - before.TotalAlloc
		require.Less(t, allocated, uint64(1<<20), "%s: allocated %d bytes", c.name, allocated)
		t.Logf("%s: %v (allocated %d bytes)", c.name, err, allocated)
	}
}

// Deep nesting and memo cycles end with an error, not a stack overflow or
// an endless walk.
func TestHostileStructure(t *testing.T) {
	deep := "\x80\x03"
	for i := 0; i < 10000; i++ {
		deep += "]"
	}
	for i := 0; i < 9999; i++ {
		deep += "a"
	}
	deep += "."
	_, err := zrpc.DecodePickle([]byte(deep))
	require.ErrorContains(t, err, "too deeply nested")

	// a dict that contains itself: } PUT0 'k' GET0 SETITEM (og-rek dicts
	// are references, so this is a real cycle)
	cycle := "\x80\x03}q\x00X\x01\x00\x00\x00kh\x00s."
	_, err = zrpc.DecodePickle([]byte(cycle))
	require.ErrorContains(t, err, "too deeply nested or too many shared references")

	mp := ""
	for i := 0; i < 10000; i++ {
		mp += "\x91"
	}
	mp += "\xc0"
	_, err = zrpc.DecodeMsgpack([]byte(mp))
	require.ErrorContains(t, err, "too deeply nested")
}
