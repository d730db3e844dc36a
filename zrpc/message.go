package zrpc

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ReplyName is the method name of every reply frame (normal and error).
const ReplyName = ".reply"

// Flag values. ZEO 5/6 send Python bools for calls (False sync, True
// async) and ints for replies (0, 2 = error); ZEO 4 sends ints throughout.
const (
	FlagNone  = 0 // sync call, or normal reply
	FlagAsync = 1 // one-way call, msgid 0
	FlagError = 2 // error reply: args = (class name, payload)
)

// ErrBadMessage is wrapped by every envelope decoding error.
var ErrBadMessage = errors.New("bad message")

// Message is one post-handshake frame: (msgid, flags, name, args).
type Message struct {
	// MsgID is an int64 for ordinary calls (0 = async, -1 = heartbeat) or a
	// Tuple (oid, tid) for loadBefore calls and their replies.
	MsgID Value
	// Flags: FlagNone, FlagAsync or FlagError (bools map to 0/1).
	Flags int64
	// BoolFlags records that flags was a Python bool on the wire, so that
	// encoding reproduces ZEO 5's exact bytes.
	BoolFlags bool
	Name      string
	// Args is the argument Tuple of a call, or the bare result of a reply.
	Args Value
}

// IsReply reports a '.reply' frame (result or error).
func (m *Message) IsReply() bool { return m.Name == ReplyName }

// IsError reports an error reply (ZEO 5/6: '.reply' with a truthy flag).
func (m *Message) IsError() bool { return m.Name == ReplyName && m.Flags != 0 }

// IsHeartbeat reports the client heartbeat (-1, 0, '.reply', None).
func (m *Message) IsHeartbeat() bool {
	id, ok := m.MsgID.(int64)
	return ok && id == -1 && m.Name == ReplyName
}

// IsAsync reports a one-way call.
func (m *Message) IsAsync() bool { return m.Name != ReplyName && m.Flags&FlagAsync != 0 }

// IntMsgID returns the msgid when it is an int.
func (m *Message) IntMsgID() (int64, bool) {
	id, ok := m.MsgID.(int64)
	return id, ok
}

// CallArgs returns the argument tuple of a call.
func (m *Message) CallArgs() (Tuple, error) {
	switch a := m.Args.(type) {
	case Tuple:
		return a, nil
	case List: // not sent by ZEO, but Python would accept it
		return Tuple(a), nil
	}
	return nil, fmt.Errorf("zrpc: %s: args are %s, want tuple", m.Name, typeName(m.Args))
}

func (m *Message) String() string {
	return fmt.Sprintf("(%v, %d, %q, %s)", m.MsgID, m.Flags, m.Name, shortRepr(m.Args))
}

// NewCall builds a sync call as a ZEO 5 client sends it: (msgid, False, name, args).
func NewCall(msgid int64, name string, args Tuple) *Message {
	if args == nil {
		args = Tuple{}
	}
	return &Message{MsgID: msgid, Flags: FlagNone, BoolFlags: true, Name: name, Args: args}
}

// NewAsync builds a one-way call: (0, True, name, args).
func NewAsync(name string, args Tuple) *Message {
	if args == nil {
		args = Tuple{}
	}
	return &Message{MsgID: int64(0), Flags: FlagAsync, BoolFlags: true, Name: name, Args: args}
}

// NewReply builds a server reply: (msgid, 0, '.reply', result).
func NewReply(msgid Value, result Value) *Message {
	return &Message{MsgID: msgid, Flags: FlagNone, Name: ReplyName, Args: result}
}

// NewErrorReply builds an error reply: (msgid, 2, '.reply', (class, payload)).
func NewErrorReply(msgid Value, class string, payload Value) *Message {
	return &Message{MsgID: msgid, Flags: FlagError, Name: ReplyName, Args: Tuple{class, payload}}
}

// Heartbeat is the ZEO 5 client heartbeat message.
func Heartbeat() *Message { return NewReply(int64(-1), nil) }

// DecodeMessage fully decodes a frame payload. The result does not alias p.
func DecodeMessage(enc Encoding, p []byte) (*Message, error) {
	var v Value
	var err error
	switch enc {
	case Pickle:
		v, err = DecodePickle(p)
	case Msgpack:
		v, err = DecodeMsgpack(p)
	default:
		return nil, fmt.Errorf("zrpc: decode: unknown encoding %v", enc)
	}
	if err != nil {
		return nil, fmt.Errorf("zrpc: decode %s message: %w", enc, err)
	}
	m, err := MessageFromValue(v)
	if err != nil {
		return nil, fmt.Errorf("zrpc: decode %s message: %w", enc, err)
	}
	return m, nil
}

// MessageFromValue checks the envelope shape of a decoded frame.
func MessageFromValue(v Value) (*Message, error) {
	t, ok := v.(Tuple)
	if !ok || len(t) != 4 {
		if ok {
			return nil, fmt.Errorf("%w: envelope is a %d-tuple, want 4", ErrBadMessage, len(t))
		}
		return nil, fmt.Errorf("%w: envelope is %s, want a 4-tuple", ErrBadMessage, typeName(v))
	}
	m := &Message{Args: t[3]}
	switch id := t[0].(type) {
	case int64, Tuple:
		m.MsgID = id
	default:
		return nil, fmt.Errorf("%w: msgid is %s, want int or tuple", ErrBadMessage, typeName(t[0]))
	}
	switch f := t[1].(type) {
	case bool:
		m.BoolFlags = true
		if f {
			m.Flags = 1
		}
	case int64:
		m.Flags = f
	default:
		return nil, fmt.Errorf("%w: flags is %s, want bool or int", ErrBadMessage, typeName(t[1]))
	}
	switch n := t[2].(type) {
	case string:
		m.Name = n
	case []byte: // ZEO 4 on Python 2: method names are py2 str
		if !utf8.Valid(n) {
			return nil, fmt.Errorf("%w: method name %q is not valid UTF-8", ErrBadMessage, n)
		}
		m.Name = string(n)
	default:
		return nil, fmt.Errorf("%w: method name is %s, want str", ErrBadMessage, typeName(t[2]))
	}
	return m, nil
}

// Value returns the envelope as a canonical Value.
func (m *Message) Value() Value {
	var flags Value = m.Flags
	if m.BoolFlags && (m.Flags == 0 || m.Flags == 1) {
		flags = m.Flags == 1
	}
	return Tuple{m.MsgID, flags, m.Name, m.Args}
}

// AppendMessage appends the payload (no frame header) of m encoded as ZEO
// 5/6 does: pickle protocol 3, or msgpack.
func AppendMessage(dst []byte, enc Encoding, m *Message) ([]byte, error) {
	switch enc {
	case Pickle:
		return AppendPickle(dst, m.Value(), 3)
	case Msgpack:
		return AppendMsgpack(dst, m.Value())
	}
	return dst, fmt.Errorf("zrpc: encode: unknown encoding %v", enc)
}

// AppendMessageZ4 appends m in the ZEO 4 / Python 2 form: pickle protocol 1,
// strings (including the method name) as py2 str.
func AppendMessageZ4(dst []byte, m *Message) ([]byte, error) {
	return AppendPickle(dst, m.Value(), 1)
}

// EncodeMessage returns the payload of m (ZEO 5/6 form).
func EncodeMessage(enc Encoding, m *Message) ([]byte, error) {
	return AppendMessage(nil, enc, m)
}

func shortRepr(v Value) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%v", v)
	if b.Len() > 200 {
		return b.String()[:200] + "..."
	}
	return b.String()
}
