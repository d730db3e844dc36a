package zeoproxy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

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

// canonText renders a decoded value the same way whatever the encoding it came
// in (pickle sends str or bytes, msgpack str or bin; dict order may differ), so
// that one transaction's extension gives the same correlation key on every
// connection, and reads well in reports.
func canonText(v zrpc.Value) string {
	var b strings.Builder
	writeCanon(&b, v, 0)
	return b.String()
}

func writeCanon(b *strings.Builder, v zrpc.Value, depth int) {
	if depth > 32 {
		b.WriteString("…")
		return
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if x {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case uint64:
		b.WriteString(strconv.FormatUint(x, 10))
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
	case string:
		b.WriteString(strconv.Quote(x))
	case []byte:
		b.WriteString(strconv.Quote(string(x)))
	case zrpc.Tuple:
		writeSeq(b, x, depth, "(", ")")
	case zrpc.List:
		writeSeq(b, x, depth, "[", "]")
	case zrpc.Dict:
		items := make([][2]string, len(x))
		for i, it := range x {
			items[i] = [2]string{canonText(it.Key), canonText(it.Value)}
		}
		sort.Slice(items, func(i, j int) bool { return items[i][0] < items[j][0] })
		b.WriteByte('{')
		for i, it := range items {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(it[0])
			b.WriteString(": ")
			b.WriteString(it[1])
		}
		b.WriteByte('}')
	default:
		fmt.Fprintf(b, "%v", x)
	}
}

func writeSeq(b *strings.Builder, s []zrpc.Value, depth int, open, close string) {
	b.WriteString(open)
	for i, e := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		writeCanon(b, e, depth+1)
	}
	b.WriteString(close)
}
