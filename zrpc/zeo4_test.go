package zrpc_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/zrpc"
)

// ZEO 4 frames, hand-encoded from the spec (ZEO 4.3.1 zrpc/marshal.py on
// Python 2: pickle protocol 1, no PROTO opcode, method names and byte
// strings as py2 str (SHORT_BINSTRING 'U'), ints beyond 32 bits as INT
// text, tuples as MARK...TUPLE, msgids from 0, int flags). No ZEO 4
// server runs on this Python, so these are the Z4 ground truth.
var zeo4Frames = []struct {
	name    string
	payload string
	msgid   int64
	flags   int64
	method  string
	check   func(t *testing.T, m *zrpc.Message)
	noEnc   bool // not reproducible by the encoder (opaque objects, py2 bool)
}{
	{name: "heartbeat", payload: "(J\xff\xff\xff\xffK\x00U\x06.replyNt.", msgid: -1, method: ".reply",
		check: func(t *testing.T, m *zrpc.Message) { require.True(t, m.IsHeartbeat()) }},
	{name: "tpc_begin", payload: "(K\x00K\x01U\ttpc_begin(I140234567890123\nU\x04userU\x04desc}NU\x01 tt.",
		flags: 1, method: "tpc_begin", check: func(t *testing.T, m *zrpc.Message) {
			c, err := zrpc.DecodeCall(m)
			require.NoError(t, err)
			require.Equal(t, &zrpc.TPCBegin{TxnID: txnID, User: []byte("user"), Description: []byte("desc"),
				Extension: zrpc.Dict{}, Status: " "}, c)
		}},
	{name: "vote", payload: "(K\x07K\x00U\x04vote(I140234567890123\ntt.", msgid: 7, method: "vote",
		check: func(t *testing.T, m *zrpc.Message) {
			c, err := zrpc.DecodeCall(m)
			require.NoError(t, err)
			require.Equal(t, &zrpc.Vote{TxnID: txnID}, c)
		}},
	// ZEO 4 client msgids start at 0: the first sync call has msgid 0, flags 0
	{name: "tpc_finish_msgid0", payload: "(K\x00K\x00U\ntpc_finish(I140234567890123\ntt.", method: "tpc_finish",
		check: func(t *testing.T, m *zrpc.Message) {
			require.False(t, m.IsAsync())
			c, err := zrpc.DecodeCall(m)
			require.NoError(t, err)
			require.Equal(t, &zrpc.TPCFinish{TxnID: txnID}, c)
		}},
	{name: "tpc_finish_reply", payload: "(K\x08K\x00U\x06.replyU\x08" + string(tidBytes(goldTID)) + "t.", msgid: 8, method: ".reply",
		check: func(t *testing.T, m *zrpc.Message) {
			tid, err := zrpc.ReplyTID(m)
			require.NoError(t, err)
			require.Equal(t, goldTID, tid)
		}},
	{name: "register", payload: "(K\x00K\x00U\x08register(U\x011I00\ntt.", method: "register",
		check: func(t *testing.T, m *zrpc.Message) {
			c, err := zrpc.DecodeCall(m)
			require.NoError(t, err)
			require.Equal(t, &zrpc.Register{Storage: "1"}, c)
		}},
	// vote-time serialnos([(oid, serial)]): leaks the tid in ZEO 4
	{name: "serialnos", payload: "(K\x00K\x01U\tserialnos(](U\x08\x00\x00\x00\x00\x00\x00\x00\x01U\x08" + string(tidBytes(goldTID)) + "tatt.",
		flags: 1, method: "serialnos", check: func(t *testing.T, m *zrpc.Message) {
			args, err := m.CallArgs()
			require.NoError(t, err)
			require.Equal(t, zrpc.List{zrpc.Tuple{oid1, tidBytes(goldTID)}}, args[0])
		}},
	// py2 bool flag: I01
	{name: "bool_flag", payload: "(K\x00I01\nU\x04ping)t.", flags: 1, method: "ping", noEnc: true},
	// a big msgid as Python 2 long text
	{name: "long_msgid", payload: "(L12345678901L\nK\x00U\x04ping)t.", msgid: 12345678901, method: "ping", noEnc: true},
	// ZEO 4 error: flags 0, args (exception class, exception instance)
	{name: "error_reply", payload: "(K\x09K\x00U\x06.reply(cZODB.POSException\nPOSKeyError\nq\x01h\x01(U\x08\x00\x00\x00\x00\x00\x00\x00\x01tRq\x02tt.",
		msgid: 9, method: ".reply", noEnc: true, check: func(t *testing.T, m *zrpc.Message) {
			args, ok := m.Args.(zrpc.Tuple)
			require.True(t, ok)
			require.Len(t, args, 2)
			require.IsType(t, zrpc.Opaque{}, args[0])
			require.IsType(t, zrpc.Opaque{}, args[1])
		}},
}

func TestZEO4Frames(t *testing.T) {
	for _, f := range zeo4Frames {
		t.Run(f.name, func(t *testing.T) {
			p := []byte(f.payload)
			m, err := zrpc.DecodeMessage(zrpc.Pickle, p)
			require.NoError(t, err)
			require.Equal(t, f.method, m.Name)
			require.Equal(t, f.flags, m.Flags)
			require.Equal(t, f.msgid, m.MsgID)
			pk, err := zrpc.PeekPickle(p)
			require.NoError(t, err)
			require.Equal(t, f.method, string(pk.Name))
			require.Equal(t, f.msgid, pk.MsgID)
			require.Equal(t, f.flags, pk.Flags)
			if f.check != nil {
				f.check(t, m)
			}
			if !f.noEnc {
				b, err := zrpc.AppendMessageZ4(nil, m)
				require.NoError(t, err)
				require.Equal(t, f.payload, string(b))
			}
		})
	}
}
