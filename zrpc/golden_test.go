package zrpc_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/zrpc"
)

// goldenFrames loads testdata/frames/{z5,m5}_*.bin, produced by ZEO's own
// encoder (testdata/gen_frames.py).
func goldenFrames(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/frames/*.bin")
	require.NoError(t, err)
	require.NotEmpty(t, files, "run .venv-zeo/bin/python zrpc/testdata/gen_frames.py")
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		out[strings.TrimSuffix(filepath.Base(f), ".bin")] = b
	}
	return out
}

func encOf(name string) zrpc.Encoding {
	if strings.HasPrefix(name, "m5_") {
		return zrpc.Msgpack
	}
	return zrpc.Pickle
}

func golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/frames", name+".bin"))
	require.NoError(t, err)
	return b
}

// Every golden frame decodes, peeks consistently with the full decode, and
// re-encodes to the very bytes ZEO wrote (dicts with several keys excepted
// for pickle: og-rek does not keep dict order).
func TestGoldenDecodePeekEncode(t *testing.T) {
	for name, payload := range goldenFrames(t) {
		t.Run(name, func(t *testing.T) {
			enc := encOf(name)
			m, err := zrpc.DecodeMessage(enc, payload)
			require.NoError(t, err)

			pk, err := zrpc.PeekMessage(enc, payload)
			require.NoError(t, err)
			require.Equal(t, m.Name, string(pk.Name))
			require.Equal(t, zrpc.MethodOf(m.Name), pk.Method)
			require.Equal(t, m.Flags, pk.Flags)
			require.Equal(t, m.BoolFlags, pk.BoolFlags)
			switch id := m.MsgID.(type) {
			case int64:
				require.Equal(t, zrpc.MsgIDInt, pk.MsgIDKind)
				require.Equal(t, id, pk.MsgID)
			case zrpc.Tuple:
				require.Equal(t, zrpc.MsgIDTuple, pk.MsgIDKind)
				idv, err := zrpc.DecodeMessage(enc, payload)
				require.NoError(t, err)
				require.Equal(t, id, idv.MsgID)
			}
			// The args start where the peek says: decoding the rest of the
			// envelope from there must be possible for msgpack.
			require.Greater(t, pk.ArgsOff, 0)
			require.Less(t, pk.ArgsOff, len(payload))

			// Peek on a 64-byte prefix agrees or asks for more.
			if len(payload) > 64 {
				pk2, err := zrpc.PeekMessage(enc, payload[:64])
				if err == nil {
					require.Equal(t, pk, pk2)
				} else {
					require.ErrorIs(t, err, zrpc.ErrPeekShort)
				}
			}

			out, err := zrpc.EncodeMessage(enc, m)
			require.NoError(t, err)
			if enc == zrpc.Msgpack || !hasMultiKeyDict(m.Args) {
				require.Equal(t, payload, out, "re-encoding differs from ZEO's bytes")
			}
			m2, err := zrpc.DecodeMessage(enc, out)
			require.NoError(t, err)
			require.Equal(t, m, m2)
		})
	}
}

func hasMultiKeyDict(v zrpc.Value) bool {
	switch x := v.(type) {
	case zrpc.Dict:
		if len(x) > 1 {
			return true
		}
		for _, it := range x {
			if hasMultiKeyDict(it.Value) {
				return true
			}
		}
	case zrpc.Tuple:
		for _, e := range x {
			if hasMultiKeyDict(e) {
				return true
			}
		}
	case zrpc.List:
		for _, e := range x {
			if hasMultiKeyDict(e) {
				return true
			}
		}
	}
	return false
}

var _ = bytes.Equal
