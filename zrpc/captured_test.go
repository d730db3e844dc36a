package zrpc_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/zrpc"
)

// capturedFrames loads testdata/captured/*.bin: real frames recorded by
// TestCaptureRealTraffic (regenerate with ZRPC_UPDATE_CAPTURES=1).
func capturedFrames(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/captured/*.bin")
	require.NoError(t, err)
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		out[strings.TrimSuffix(filepath.Base(f), ".bin")] = b
	}
	return out
}

// Real frames decode, peek consistently, type-decode, and (being in ZEO's
// canonical form) re-encode to the same bytes unless a dict has several keys.
func TestCapturedFrames(t *testing.T) {
	frames := capturedFrames(t)
	require.NotEmpty(t, frames)
	for name, p := range frames {
		enc := encOf(name)
		m, err := zrpc.DecodeMessage(enc, p)
		require.NoError(t, err, name)
		pk, err := zrpc.PeekMessage(enc, p)
		require.NoError(t, err, name)
		require.Equal(t, m.Name, string(pk.Name), name)
		require.Equal(t, m.Flags, pk.Flags, name)
		if !m.IsReply() {
			_, err := zrpc.DecodeCall(m)
			require.NoError(t, err, name)
		}
		if strings.Contains(name, "_reply_") && !strings.Contains(name, "tuplemsgid") {
			_, ok := m.IntMsgID()
			require.True(t, ok, name)
		}
		if strings.Contains(name, "tuplemsgid") || strings.Contains(name, "loadBefore") {
			require.Equal(t, zrpc.MsgIDTuple, pk.MsgIDKind, name)
		}
		if strings.Contains(name, "_error_") {
			e, err := zrpc.ParseErrorReply(m)
			require.NoError(t, err, name)
			require.True(t, strings.HasPrefix(e.Class, "ZODB.POSException."), e.Class)
		}
		b, err := zrpc.EncodeMessage(enc, m)
		require.NoError(t, err, name)
		if enc == zrpc.Msgpack || !hasMultiKeyDict(m.Args) {
			require.Equal(t, p, b, "%s: re-encoding differs from the captured bytes", name)
		}
	}
}
