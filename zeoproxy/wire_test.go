package zeoproxy

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/zrpc"
)

// A vote reply leaves the server holding the commit lock unless it lists
// conflicts for the client to resolve.
func TestVoteReplyVoted(t *testing.T) {
	conflict := zrpc.Dict{{Key: "oid", Value: make([]byte, 8)}, {Key: "serials", Value: zrpc.Tuple{make([]byte, 8), make([]byte, 8)}},
		{Key: "data", Value: []byte("state")}}
	for _, tc := range []struct {
		name   string
		result zrpc.Value
		voted  bool
	}{
		{"none (ZEO 4)", nil, true},
		{"resolved oids", zrpc.List{make([]byte, 8)}, true},
		{"conflicts", zrpc.List{conflict}, false},
		{"unparsable", zrpc.List{int64(3)}, true},
	} {
		for _, enc := range []zrpc.Encoding{zrpc.Pickle, zrpc.Msgpack} {
			payload, err := zrpc.EncodeMessage(enc, zrpc.NewReply(int64(5), tc.result))
			require.NoError(t, err, tc.name)
			r, err := decodeReply(enc, payload)
			require.NoError(t, err, tc.name)
			require.Equal(t, tc.voted, r.Voted(), "%s (%s)", tc.name, enc)
		}
	}
}
