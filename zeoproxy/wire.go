package zeoproxy

import (
	"fmt"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// reply is what the proxy needs of a reply to vote or tpc_finish.
type reply struct {
	MsgID int64
	msg   *zrpc.Message
}

func decodeReply(enc zrpc.Encoding, payload []byte) (*reply, error) {
	m, err := zrpc.DecodeMessage(enc, payload)
	if err != nil {
		return nil, err
	}
	id, ok := m.IntMsgID()
	if !ok || !m.IsReply() {
		return nil, fmt.Errorf("expected a reply with an int msgid, got %s", m.Name)
	}
	return &reply{MsgID: id, msg: m}, nil
}

func (r *reply) IsError() bool { return r.msg.IsError() }

// ErrorClass names the exception of an error reply.
func (r *reply) ErrorClass() string {
	if e, err := zrpc.ParseErrorReply(r.msg); err == nil {
		return e.Class
	}
	return "unknown"
}

// Voted reports whether a vote reply that is not an error leaves the server
// holding the commit lock: false when it lists conflicts for the client to
// resolve (it votes again). A reply that does not parse counts as voted: the
// server answered without error, and taking it for voted is the side that
// cannot hide a partial commit.
func (r *reply) Voted() bool {
	v, err := zrpc.ParseVoteResult(r.msg)
	return err != nil || v.Voted()
}

// TID returns tpc_finish's committed TID; false when the result is None.
func (r *reply) TID() (txn.TID, bool) {
	t, err := zrpc.ReplyTID(r.msg)
	if err != nil {
		return 0, false
	}
	return t, true
}

// decodeCall decodes a call the proxy observes whole (register, tpc_begin).
func decodeCall(enc zrpc.Encoding, payload []byte) (zrpc.Call, error) {
	m, err := zrpc.DecodeMessage(enc, payload)
	if err != nil {
		return nil, err
	}
	return zrpc.DecodeCall(m)
}
