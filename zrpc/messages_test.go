package zrpc_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

const txnID = 140234567890123

var (
	goldTID  = txn.TID(0x03ec8a5b12345678)
	goldTID2 = txn.TID(0x03ec8a5b12345699)
	oid1     = []byte{0, 0, 0, 0, 0, 0, 0, 1}
	oid2     = []byte{0, 0, 0, 0, 0, 0, 0x12, 0x34}
)

func decodeBoth(t *testing.T, name string) map[zrpc.Encoding]*zrpc.Message {
	t.Helper()
	out := map[zrpc.Encoding]*zrpc.Message{}
	for prefix, enc := range map[string]zrpc.Encoding{"z5_": zrpc.Pickle, "m5_": zrpc.Msgpack} {
		m, err := zrpc.DecodeMessage(enc, golden(t, prefix+name))
		require.NoError(t, err, prefix+name)
		out[enc] = m
	}
	return out
}

func decodeCall(t *testing.T, name string) map[zrpc.Encoding]zrpc.Call {
	t.Helper()
	out := map[zrpc.Encoding]zrpc.Call{}
	for enc, m := range decodeBoth(t, name) {
		prefix := map[zrpc.Encoding]string{zrpc.Pickle: "z5_", zrpc.Msgpack: "m5_"}[enc]
		c, err := zrpc.DecodeCall(m)
		require.NoError(t, err)
		out[enc] = c
		// symmetric: encoding the typed call gives the original envelope back
		var m2 *zrpc.Message
		if m.IsAsync() {
			m2 = zrpc.AsyncMessage(c)
		} else {
			id, ok := m.IntMsgID()
			if ok {
				m2 = zrpc.CallMessage(id, c)
			} else {
				m2 = zrpc.NewCall(0, c.Method(), c.Args())
				m2.MsgID = m.MsgID
			}
		}
		// symmetric down to the bytes ZEO wrote
		b, err := zrpc.EncodeMessage(enc, m2)
		require.NoError(t, err)
		if !hasMultiKeyDict(m.Args) {
			require.Equal(t, golden(t, prefix+name), b, "typed %T does not round-trip", c)
		}
	}
	return out
}

func TestTypedCalls(t *testing.T) {
	for _, c := range decodeCall(t, "tpc_begin") {
		require.Equal(t, &zrpc.TPCBegin{TxnID: txnID, User: []byte("user"), Description: []byte("desc"),
			Extension: zrpc.Dict{{Key: "x", Value: "y"}}, Status: " "}, c)
	}
	for _, c := range decodeCall(t, "tpc_begin_bigtxnid") {
		b := c.(*zrpc.TPCBegin)
		require.Equal(t, uint64(18446744073709551557), b.TxnID)
		require.Equal(t, "café ☃", string(b.Description))
		v, ok := b.Extension.Get("n")
		require.True(t, ok)
		require.Equal(t, int64(42), v)
	}
	for _, c := range decodeCall(t, "tpc_begin_empty") {
		b := c.(*zrpc.TPCBegin)
		require.Empty(t, b.User)
		require.Empty(t, b.Extension)
		require.Nil(t, b.TID)
	}
	for _, c := range decodeCall(t, "vote") {
		require.Equal(t, &zrpc.Vote{TxnID: txnID}, c)
	}
	for _, c := range decodeCall(t, "tpc_finish") {
		require.Equal(t, &zrpc.TPCFinish{TxnID: txnID}, c)
	}
	for _, c := range decodeCall(t, "tpc_abort") {
		require.Equal(t, &zrpc.TPCAbort{TxnID: txnID}, c)
	}
	for _, c := range decodeCall(t, "register") {
		require.Equal(t, &zrpc.Register{Storage: "1"}, c)
	}
	for _, c := range decodeCall(t, "register_ro") {
		require.Equal(t, &zrpc.Register{Storage: "main", ReadOnly: true}, c)
	}
	for _, c := range decodeCall(t, "storea") {
		require.Equal(t, &zrpc.Storea{OID: oid1, Serial: tidBytes(goldTID), Data: []byte("\x80\x03data"), TxnID: txnID}, c)
	}
	for _, c := range decodeCall(t, "load_before") {
		require.Equal(t, &zrpc.LoadBefore{OID: oid1, TID: tidBytes(goldTID)}, c)
	}
	for _, c := range decodeCall(t, "invalidate") {
		require.Equal(t, &zrpc.InvalidateTransaction{TID: tidBytes(goldTID), OIDs: [][]byte{oid1, oid2}}, c)
	}
	for _, c := range decodeCall(t, "invalidate_empty") {
		require.Empty(t, c.(*zrpc.InvalidateTransaction).OIDs)
	}
	for _, c := range decodeCall(t, "info") {
		require.Equal(t, &zrpc.Info{Info: zrpc.Dict{{Key: "length", Value: int64(3)}, {Key: "size", Value: int64(4567)}}}, c)
	}
	for _, c := range decodeCall(t, "iterator_start") {
		require.Equal(t, &zrpc.IteratorStart{Start: tidBytes(goldTID)}, c)
	}
	for _, c := range decodeCall(t, "iterator_next") {
		require.Equal(t, &zrpc.IteratorNext{IID: 1}, c)
	}
	for _, name := range []string{"get_info", "last_transaction", "ping"} {
		for _, c := range decodeCall(t, name) {
			require.Empty(t, c.Args())
		}
	}
	for _, c := range decodeCall(t, "store_blob_chunk") {
		u := c.(*zrpc.UnknownCall)
		require.Equal(t, "storeBlobChunk", u.Method())
		require.Len(t, u.Args(), 1)
	}
}

func TestReplies(t *testing.T) {
	for _, name := range []string{"tpc_finish_reply", "register_reply", "last_transaction_reply"} {
		for enc, m := range decodeBoth(t, name) {
			tid, err := zrpc.ReplyTID(m)
			require.NoError(t, err, "%s %v", name, enc)
			require.Equal(t, goldTID, tid)
			require.False(t, m.IsError())
		}
	}
	for _, m := range decodeBoth(t, "register_reply_empty") {
		tid, err := zrpc.ReplyTID(m)
		require.NoError(t, err)
		require.Zero(t, tid)
	}
	for _, m := range decodeBoth(t, "tpc_abort_reply") {
		require.Nil(t, m.Args)
	}
	for enc, m := range decodeBoth(t, "vote_reply_resolved") {
		seq, err := zrpc.AsSeq(m.Args)
		require.NoError(t, err)
		require.Equal(t, []zrpc.Value{oid1, oid2}, seq, enc)
	}
	for _, m := range decodeBoth(t, "vote_reply_conflict") {
		seq, err := zrpc.AsSeq(m.Args)
		require.NoError(t, err)
		d := seq[0].(zrpc.Dict)
		oid, ok := d.Get("oid")
		require.True(t, ok)
		require.Equal(t, oid2, oid)
	}
	for _, m := range decodeBoth(t, "iterator_next_reply") {
		ti, err := zrpc.ParseTransactionInfo(m.Args)
		require.NoError(t, err)
		require.Equal(t, goldTID, ti.TID)
		require.Equal(t, " ", ti.Status)
		require.Equal(t, "user", string(ti.User))
		require.Equal(t, "desc", string(ti.Description))
		require.Equal(t, zrpc.Dict{{Key: "x", Value: "y"}}, ti.Extension)
	}
	for _, m := range decodeBoth(t, "iterator_next_end") {
		ti, err := zrpc.ParseTransactionInfo(m.Args)
		require.NoError(t, err)
		require.Nil(t, ti)
	}
	for _, m := range decodeBoth(t, "get_info_reply") {
		d, err := zrpc.AsDict(m.Args)
		require.NoError(t, err)
		n, ok := d.Get("length")
		require.True(t, ok)
		require.Equal(t, int64(3), n)
		ifaces, _ := d.Get("interfaces")
		seq, err := zrpc.AsSeq(ifaces)
		require.NoError(t, err)
		require.Len(t, seq, 2)
	}
}

func TestErrorReplies(t *testing.T) {
	for enc, m := range decodeBoth(t, "vote_error_conflict") {
		require.True(t, m.IsError())
		require.Equal(t, int64(zrpc.FlagError), m.Flags)
		e, err := zrpc.ParseErrorReply(m)
		require.NoError(t, err)
		require.Equal(t, "ZODB.POSException.ConflictError", e.Class, enc)
		require.Equal(t, "database conflict error", e.Message())
		d := e.Payload.(zrpc.Dict)
		oid, _ := d.Get("oid")
		require.Equal(t, oid2, oid)
		serials, _ := d.Get("serials")
		require.Equal(t, zrpc.Tuple{tidBytes(goldTID2), tidBytes(goldTID)}, serials)
		_, err = zrpc.ReplyTID(m)
		var er *zrpc.ErrorReply
		require.ErrorAs(t, err, &er)
		require.Contains(t, err.Error(), "ConflictError")
	}
	for enc, m := range decodeBoth(t, "load_before_poskey") {
		require.Equal(t, zrpc.Tuple{oid1, tidBytes(goldTID)}, m.MsgID, enc)
		e, err := zrpc.ParseErrorReply(m)
		require.NoError(t, err)
		require.Equal(t, "ZODB.POSException.POSKeyError", e.Class)
		require.Equal(t, zrpc.Tuple{oid1}, e.Payload)
	}
	// not an error reply
	for _, m := range decodeBoth(t, "ping_reply") {
		_, err := zrpc.ParseErrorReply(m)
		require.Error(t, err)
	}
}

func TestLoadBeforeTupleMsgID(t *testing.T) {
	for _, enc := range []zrpc.Encoding{zrpc.Pickle, zrpc.Msgpack} {
		prefix := map[zrpc.Encoding]string{zrpc.Pickle: "z5_", zrpc.Msgpack: "m5_"}[enc]
		call := golden(t, prefix+"load_before")
		reply := golden(t, prefix+"load_before_reply")
		pc, err := zrpc.PeekMessage(enc, call)
		require.NoError(t, err)
		pr, err := zrpc.PeekMessage(enc, reply)
		require.NoError(t, err)
		require.Equal(t, zrpc.MsgIDTuple, pc.MsgIDKind)
		require.Equal(t, zrpc.MethodLoadBefore, pc.Method)
		require.Equal(t, zrpc.MethodReply, pr.Method)
		// a proxy matches the reply to its call by the raw msgid bytes
		require.Equal(t, pc.MsgIDRaw, pr.MsgIDRaw)
		m, err := zrpc.DecodeMessage(enc, reply)
		require.NoError(t, err)
		require.Equal(t, zrpc.Tuple{oid1, tidBytes(goldTID)}, m.MsgID)
		res, err := zrpc.AsSeq(m.Args)
		require.NoError(t, err)
		require.Equal(t, tidBytes(goldTID2), res[1])
		require.Nil(t, res[2])
	}
}

func TestHeartbeat(t *testing.T) {
	for enc, m := range decodeBoth(t, "heartbeat") {
		require.True(t, m.IsHeartbeat(), enc)
		require.Equal(t, zrpc.Heartbeat(), m)
		b, err := zrpc.EncodeMessage(enc, zrpc.Heartbeat())
		require.NoError(t, err)
		pk, err := zrpc.PeekMessage(enc, b)
		require.NoError(t, err)
		require.True(t, pk.IsHeartbeat())
		require.False(t, pk.BoolFlags)
	}
	// the exact bytes from docs/zeo-protocol.md §3.6
	require.Equal(t, []byte("\x80\x03(J\xff\xff\xff\xffK\x00X\x06\x00\x00\x00.replyNt."), golden(t, "z5_heartbeat"))
	require.Equal(t, []byte("\x94\xff\x00\xa6.reply\xc0"), golden(t, "m5_heartbeat"))
}

func TestBigMsgIDs(t *testing.T) {
	for enc, m := range decodeBoth(t, "huge_msgid") {
		pk, err := zrpc.PeekMessage(enc, golden(t, map[zrpc.Encoding]string{zrpc.Pickle: "z5_", zrpc.Msgpack: "m5_"}[enc]+"huge_msgid"))
		require.NoError(t, err)
		require.Equal(t, int64(1<<40), pk.MsgID)
		require.Equal(t, int64(1<<40), m.MsgID)
	}
}

func TestEnvelopeErrors(t *testing.T) {
	bad := []zrpc.Value{
		zrpc.Tuple{int64(1), false, "x"},                    // 3-tuple
		zrpc.List{int64(1), false, "x", zrpc.Tuple{}},       // list, not tuple: ok for msgpack only
		zrpc.Tuple{"id", false, "x", zrpc.Tuple{}},          // str msgid
		zrpc.Tuple{int64(1), "f", "x", zrpc.Tuple{}},        // str flags
		zrpc.Tuple{int64(1), false, int64(3), zrpc.Tuple{}}, // int name
		int64(7),
	}
	for _, v := range bad {
		b, err := zrpc.AppendPickle(nil, v, 3)
		require.NoError(t, err)
		_, err = zrpc.DecodeMessage(zrpc.Pickle, b)
		require.ErrorIs(t, err, zrpc.ErrBadMessage, "%v", v)
	}
	// msgpack garbage and trailing bytes
	_, err := zrpc.DecodeMessage(zrpc.Msgpack, append(golden(t, "m5_ping"), 0xc0))
	require.ErrorContains(t, err, "extra data")
	_, err = zrpc.DecodeMessage(zrpc.Msgpack, []byte{0x94, 0x01, 0xc2, 0xa4, 'p', 'i', 'n', 0xff})
	require.Error(t, err)
	// invalid UTF-8 in a msgpack str
	_, err = zrpc.DecodeMessage(zrpc.Msgpack, []byte{0x94, 0x01, 0xc2, 0xa1, 0xff, 0x90})
	require.ErrorContains(t, err, "UTF-8")
	// typed decode errors name the argument
	m := zrpc.NewCall(1, "vote", zrpc.Tuple{"notanint"})
	_, err = zrpc.DecodeCall(m)
	require.ErrorContains(t, err, "vote: arg 0 (txnid)")
	m = zrpc.NewCall(1, "tpc_begin", zrpc.Tuple{int64(1)})
	_, err = zrpc.DecodeCall(m)
	require.ErrorContains(t, err, "tpc_begin: 1 args, want [6]")
}

func TestTruncatedPayloads(t *testing.T) {
	for name, payload := range goldenFrames(t) {
		enc := encOf(name)
		for n := 0; n < len(payload); n++ {
			_, err := zrpc.DecodeMessage(enc, payload[:n])
			require.Error(t, err, "%s cut at %d", name, n)
			// peek on a cut prefix: either a full head (it fits) or an error
			if pk, err := zrpc.PeekMessage(enc, payload[:n]); err == nil {
				require.LessOrEqual(t, pk.ArgsOff, n)
			}
		}
	}
}

// The relay peeks at every frame of a two-phase commit: the peek names the
// method and the msgid of each, without allocating.
func TestPeek2PCFrames(t *testing.T) {
	for _, prefix := range []string{"z5_", "m5_"} {
		enc := encOf(prefix)
		for name, want := range map[string]zrpc.Method{
			"tpc_begin": zrpc.MethodTPCBegin, "vote": zrpc.MethodVote, "tpc_finish": zrpc.MethodTPCFinish,
			"tpc_abort": zrpc.MethodTPCAbort, "tpc_finish_reply": zrpc.MethodReply, "vote_reply": zrpc.MethodReply,
		} {
			p := golden(t, prefix+name)
			pk, err := zrpc.PeekMessage(enc, p)
			require.NoError(t, err, prefix+name)
			require.Equal(t, want, pk.Method, prefix+name)
			m, err := zrpc.DecodeMessage(enc, p)
			require.NoError(t, err, prefix+name)
			id, _ := m.IntMsgID()
			require.Equal(t, id, pk.MsgID, prefix+name)
			allocs := testing.AllocsPerRun(100, func() { _, _ = zrpc.PeekMessage(enc, p) })
			require.Zero(t, allocs, prefix+name)
		}
	}
}

func TestVoteResult(t *testing.T) {
	for enc, m := range decodeBoth(t, "vote_reply") {
		r, err := zrpc.ParseVoteResult(m)
		require.NoError(t, err, enc)
		require.True(t, r.Voted())
		require.Empty(t, r.Resolved)
	}
	for _, m := range decodeBoth(t, "vote_reply_resolved") {
		r, err := zrpc.ParseVoteResult(m)
		require.NoError(t, err)
		require.True(t, r.Voted())
		require.Equal(t, [][]byte{oid1, oid2}, r.Resolved)
	}
	for _, m := range decodeBoth(t, "vote_reply_conflict") {
		r, err := zrpc.ParseVoteResult(m)
		require.NoError(t, err)
		require.False(t, r.Voted())
		require.Equal(t, []zrpc.VoteConflict{{OID: oid2, Serials: [][]byte{tidBytes(goldTID2), tidBytes(goldTID)}, Data: []byte("state")}}, r.Conflicts)
	}
	for _, m := range decodeBoth(t, "vote_error_conflict") {
		_, err := zrpc.ParseVoteResult(m)
		var er *zrpc.ErrorReply
		require.ErrorAs(t, err, &er)
		require.Equal(t, "ZODB.POSException.ConflictError", er.Class)
	}
	// ZEO 4: the vote reply is None (results came in serialnos)
	r, err := zrpc.ParseVoteResult(zrpc.NewReply(int64(3), nil))
	require.NoError(t, err)
	require.True(t, r.Voted())
}

// tidBytes is the wire form of a TID (8 big-endian bytes).
func tidBytes(t txn.TID) []byte { b := t.Bytes(); return b[:] }

// The relay reads the tid of every invalidateTransaction it forwards from a
// peek: it must agree with the full decode, in both encodings, without
// allocating.
func TestPeekInvalidationTID(t *testing.T) {
	for _, enc := range []zrpc.Encoding{zrpc.Pickle, zrpc.Msgpack} {
		for _, oids := range []int{0, 1, 500} {
			list := make([][]byte, oids)
			for i := range list {
				list[i] = make([]byte, 8)
			}
			const tid = txn.TID(0x040d76a65abb2266)
			b := tid.Bytes()
			p, err := zrpc.EncodeMessage(enc, zrpc.AsyncMessage(&zrpc.InvalidateTransaction{TID: b[:], OIDs: list}))
			require.NoError(t, err)
			prefix := p[:min(len(p), 512)]
			pk, err := zrpc.PeekMessage(enc, prefix)
			require.NoError(t, err)
			require.Equal(t, zrpc.MethodInvalidateTransaction, pk.Method)
			got, err := zrpc.PeekArgTID(enc, prefix, &pk)
			require.NoError(t, err)
			require.Equal(t, tid, got)
			require.Zero(t, testing.AllocsPerRun(100, func() { _, _ = zrpc.PeekArgTID(enc, prefix, &pk) }))
			_, err = zrpc.PeekArgTID(enc, prefix[:pk.ArgsOff+3], &pk)
			require.ErrorIs(t, err, zrpc.ErrPeekShort)
		}
		// Not a tid: a vote's txnid.
		p, err := zrpc.EncodeMessage(enc, zrpc.CallMessage(3, &zrpc.Vote{TxnID: 12345}))
		require.NoError(t, err)
		pk, err := zrpc.PeekMessage(enc, p)
		require.NoError(t, err)
		_, err = zrpc.PeekArgTID(enc, p, &pk)
		require.Error(t, err)
	}
}
