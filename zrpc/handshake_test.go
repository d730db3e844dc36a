package zrpc_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/zrpc"
)

func TestHandshake(t *testing.T) {
	for _, s := range []string{"Z5", "M5", "Z4", "Z3101", "Z310", "Z309", "Z308"} {
		p, err := zrpc.ParseServerHandshake([]byte(s))
		require.NoError(t, err, s)
		require.Equal(t, s, p.String())
		require.Equal(t, s != "Z5" && s != "M5", p.ZEO4())
	}
	p, _ := zrpc.ParseServerHandshake([]byte("M5"))
	require.Equal(t, zrpc.Msgpack, p.Encoding)

	for _, bad := range []string{"", "Z", "X5", "Z6", "M4", "Z5\x00", "hello world, garbage", "z5"} {
		_, err := zrpc.ParseServerHandshake([]byte(bad))
		require.ErrorIs(t, err, zrpc.ErrBadHandshake, "%q", bad)
	}

	h, err := zrpc.ParseClientHandshake([]byte("ruok"))
	require.NoError(t, err)
	require.True(t, h.Ruok)
	// the client's letter fixes the encoding, whatever the server announced
	h, err = zrpc.ParseClientHandshake([]byte("Z5"))
	require.NoError(t, err)
	require.Equal(t, zrpc.Pickle, h.Protocol.Encoding)
	_, err = zrpc.ParseClientHandshake([]byte("ruok?"))
	require.ErrorContains(t, err, "client handshake \"ruok?\": bad handshake")

	a, err := zrpc.ClientAnswer(zrpc.Protocol{Encoding: zrpc.Msgpack, Version: "5"})
	require.NoError(t, err)
	require.Equal(t, "M5", string(a.Bytes()))
	_, err = zrpc.ClientAnswer(zrpc.Protocol{Encoding: zrpc.Pickle, Version: "4"})
	require.ErrorIs(t, err, zrpc.ErrBadHandshake)
}
