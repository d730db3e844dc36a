package zrpc

import (
	"fmt"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// Call is one typed client→server or server→client call. Decode and Args
// are symmetric: x.Decode(x.Args()) restores x.
type Call interface {
	// Method is the wire method name.
	Method() string
	// Args returns the argument tuple as ZEO sends it.
	Args() Tuple
	// Decode fills the call from an argument tuple.
	Decode(args Tuple) error
}

// ParseTID accepts an 8-byte bytes value (a TID on the wire).
func ParseTID(v Value) (txn.TID, error) {
	b, err := AsBytes(v)
	if err != nil {
		return 0, fmt.Errorf("tid: %w", err)
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("tid: %d bytes, want 8", len(b))
	}
	return txn.TIDFromBytes([8]byte(b)), nil
}

func wantArgs(name string, args Tuple, n ...int) error {
	for _, k := range n {
		if len(args) == k {
			return nil
		}
	}
	return fmt.Errorf("zrpc: %s: %d args, want %v", name, len(args), n)
}

func argErr(name string, i int, field string, err error) error {
	return fmt.Errorf("zrpc: %s: arg %d (%s): %w", name, i, field, err)
}

// Register: register(storage_name, read_only) → last tid (ZEO 5+).
type Register struct {
	Storage  string
	ReadOnly bool
}

func (*Register) Method() string { return "register" }
func (x *Register) Args() Tuple  { return Tuple{x.Storage, x.ReadOnly} }
func (x *Register) Decode(a Tuple) (err error) {
	// ZEO 5.x may add a third, optional credentials argument.
	if err = wantArgs("register", a, 2, 3); err != nil {
		return err
	}
	if x.Storage, err = AsString(a[0]); err != nil {
		return argErr("register", 0, "storage", err)
	}
	if x.ReadOnly, err = AsBool(a[1]); err != nil {
		return argErr("register", 1, "read_only", err)
	}
	return nil
}

// TPCBegin: tpc_begin(txnid, user, description, extension, tid, status), async.
type TPCBegin struct {
	TxnID       uint64 // CPython id() of the client's transaction metadata
	User        []byte
	Description []byte
	Extension   Dict
	TID         []byte // nil (None) except for restores
	Status      string // " " normally
}

func (*TPCBegin) Method() string { return "tpc_begin" }
func (x *TPCBegin) Args() Tuple {
	ext := x.Extension
	if ext == nil {
		ext = Dict{}
	}
	user, desc := x.User, x.Description
	if user == nil {
		user = []byte{}
	}
	if desc == nil {
		desc = []byte{}
	}
	var tid Value
	if x.TID != nil {
		tid = x.TID
	}
	return Tuple{Uint64Value(x.TxnID), user, desc, ext, tid, x.Status}
}
func (x *TPCBegin) Decode(a Tuple) (err error) {
	const n = "tpc_begin"
	if err = wantArgs(n, a, 6); err != nil {
		return err
	}
	if x.TxnID, err = AsUint64(a[0]); err != nil {
		return argErr(n, 0, "txnid", err)
	}
	if x.User, err = AsBytes(a[1]); err != nil {
		return argErr(n, 1, "user", err)
	}
	if x.Description, err = AsBytes(a[2]); err != nil {
		return argErr(n, 2, "description", err)
	}
	if x.Extension, err = AsDict(a[3]); err != nil {
		return argErr(n, 3, "extension", err)
	}
	if x.TID, err = AsOptBytes(a[4]); err != nil {
		return argErr(n, 4, "tid", err)
	}
	if x.Status, err = AsString(a[5]); err != nil {
		return argErr(n, 5, "status", err)
	}
	return nil
}

// txnCall is the shape of vote, tpc_finish and tpc_abort: (txnid,).
func decodeTxnID(name string, a Tuple) (uint64, error) {
	if err := wantArgs(name, a, 1); err != nil {
		return 0, err
	}
	id, err := AsUint64(a[0])
	if err != nil {
		return 0, argErr(name, 0, "txnid", err)
	}
	return id, nil
}

// Vote: vote(txnid), sync → list of resolved oids or conflict dicts.
type Vote struct{ TxnID uint64 }

func (*Vote) Method() string               { return "vote" }
func (x *Vote) Args() Tuple                { return Tuple{Uint64Value(x.TxnID)} }
func (x *Vote) Decode(a Tuple) (err error) { x.TxnID, err = decodeTxnID("vote", a); return }

// TPCFinish: tpc_finish(txnid), sync → committed tid.
type TPCFinish struct{ TxnID uint64 }

func (*TPCFinish) Method() string               { return "tpc_finish" }
func (x *TPCFinish) Args() Tuple                { return Tuple{Uint64Value(x.TxnID)} }
func (x *TPCFinish) Decode(a Tuple) (err error) { x.TxnID, err = decodeTxnID("tpc_finish", a); return }

// TPCAbort: tpc_abort(txnid), sync → None.
type TPCAbort struct{ TxnID uint64 }

func (*TPCAbort) Method() string               { return "tpc_abort" }
func (x *TPCAbort) Args() Tuple                { return Tuple{Uint64Value(x.TxnID)} }
func (x *TPCAbort) Decode(a Tuple) (err error) { x.TxnID, err = decodeTxnID("tpc_abort", a); return }

// Storea: storea(oid, serial, data, txnid), async.
type Storea struct {
	OID, Serial, Data []byte
	TxnID             uint64
}

func (*Storea) Method() string { return "storea" }
func (x *Storea) Args() Tuple {
	return Tuple{nonNil(x.OID), nonNil(x.Serial), nonNil(x.Data), Uint64Value(x.TxnID)}
}
func (x *Storea) Decode(a Tuple) (err error) {
	const n = "storea"
	if err = wantArgs(n, a, 4); err != nil {
		return err
	}
	if x.OID, err = AsBytes(a[0]); err != nil {
		return argErr(n, 0, "oid", err)
	}
	if x.Serial, err = AsBytes(a[1]); err != nil {
		return argErr(n, 1, "serial", err)
	}
	if x.Data, err = AsBytes(a[2]); err != nil {
		return argErr(n, 2, "data", err)
	}
	if x.TxnID, err = AsUint64(a[3]); err != nil {
		return argErr(n, 3, "txnid", err)
	}
	return nil
}

// LoadBefore: loadBefore(oid, tid), sync, msgid = (oid, tid).
type LoadBefore struct{ OID, TID []byte }

func (*LoadBefore) Method() string { return "loadBefore" }
func (x *LoadBefore) Args() Tuple  { return Tuple{nonNil(x.OID), nonNil(x.TID)} }
func (x *LoadBefore) Decode(a Tuple) (err error) {
	if err = wantArgs("loadBefore", a, 2); err != nil {
		return err
	}
	if x.OID, err = AsBytes(a[0]); err != nil {
		return argErr("loadBefore", 0, "oid", err)
	}
	if x.TID, err = AsBytes(a[1]); err != nil {
		return argErr("loadBefore", 1, "tid", err)
	}
	return nil
}

// MsgID is the tuple msgid ZEO clients use for this call.
func (x *LoadBefore) MsgID() Tuple { return Tuple{nonNil(x.OID), nonNil(x.TID)} }

// noArgs implements calls without arguments.
type noArgs struct{}

func (noArgs) Args() Tuple { return Tuple{} }

// LastTransaction: lastTransaction() → tid.
type LastTransaction struct{ noArgs }

func (*LastTransaction) Method() string       { return "lastTransaction" }
func (*LastTransaction) Decode(a Tuple) error { return wantArgs("lastTransaction", a, 0) }

// GetInfo: get_info() → dict.
type GetInfo struct{ noArgs }

func (*GetInfo) Method() string       { return "get_info" }
func (*GetInfo) Decode(a Tuple) error { return wantArgs("get_info", a, 0) }

// Ping: ping() → None.
type Ping struct{ noArgs }

func (*Ping) Method() string       { return "ping" }
func (*Ping) Decode(a Tuple) error { return wantArgs("ping", a, 0) }

// IteratorStart: iterator_start(start, stop) → iterator id. nil = None
// (from the first / to the last transaction).
type IteratorStart struct{ Start, Stop []byte }

func (*IteratorStart) Method() string { return "iterator_start" }
func (x *IteratorStart) Args() Tuple  { return Tuple{optBytes(x.Start), optBytes(x.Stop)} }
func (x *IteratorStart) Decode(a Tuple) (err error) {
	if err = wantArgs("iterator_start", a, 2); err != nil {
		return err
	}
	if x.Start, err = AsOptBytes(a[0]); err != nil {
		return argErr("iterator_start", 0, "start", err)
	}
	if x.Stop, err = AsOptBytes(a[1]); err != nil {
		return argErr("iterator_start", 1, "stop", err)
	}
	return nil
}

// IteratorNext: iterator_next(iid) → (tid, status, user, description,
// extension) or None at the end.
type IteratorNext struct{ IID int64 }

func (*IteratorNext) Method() string { return "iterator_next" }
func (x *IteratorNext) Args() Tuple  { return Tuple{x.IID} }
func (x *IteratorNext) Decode(a Tuple) (err error) {
	if err = wantArgs("iterator_next", a, 1); err != nil {
		return err
	}
	if x.IID, err = AsInt64(a[0]); err != nil {
		return argErr("iterator_next", 0, "iid", err)
	}
	return nil
}

// InvalidateTransaction: server→client invalidateTransaction(tid, oids), async.
type InvalidateTransaction struct {
	TID  []byte
	OIDs [][]byte
}

func (*InvalidateTransaction) Method() string { return "invalidateTransaction" }
func (x *InvalidateTransaction) Args() Tuple {
	l := make(List, len(x.OIDs))
	for i, o := range x.OIDs {
		l[i] = nonNil(o)
	}
	return Tuple{nonNil(x.TID), l}
}
func (x *InvalidateTransaction) Decode(a Tuple) (err error) {
	const n = "invalidateTransaction"
	if err = wantArgs(n, a, 2); err != nil {
		return err
	}
	if x.TID, err = AsBytes(a[0]); err != nil {
		return argErr(n, 0, "tid", err)
	}
	seq, err := AsSeq(a[1])
	if err != nil {
		return argErr(n, 1, "oids", err)
	}
	x.OIDs = make([][]byte, len(seq))
	for i, o := range seq {
		if x.OIDs[i], err = AsBytes(o); err != nil {
			return argErr(n, 1, fmt.Sprintf("oids[%d]", i), err)
		}
	}
	return nil
}

// Info: server→client info(dict), async (sent to a committer just before
// its tpc_finish reply).
type Info struct{ Info Dict }

func (*Info) Method() string { return "info" }
func (x *Info) Args() Tuple {
	d := x.Info
	if d == nil {
		d = Dict{}
	}
	return Tuple{d}
}
func (x *Info) Decode(a Tuple) (err error) {
	if err = wantArgs("info", a, 1); err != nil {
		return err
	}
	if x.Info, err = AsDict(a[0]); err != nil {
		return argErr("info", 0, "info", err)
	}
	return nil
}

// UnknownCall keeps any other call undecoded.
type UnknownCall struct {
	Name      string
	Arguments Tuple
}

func (x *UnknownCall) Method() string       { return x.Name }
func (x *UnknownCall) Args() Tuple          { return x.Arguments }
func (x *UnknownCall) Decode(a Tuple) error { x.Arguments = a; return nil }

// newCallByName returns an empty typed Call for a method name
// (UnknownCall for names zrpc does not model).
func newCallByName(name string) Call {
	switch MethodOf(name) {
	case MethodRegister:
		return &Register{}
	case MethodTPCBegin:
		return &TPCBegin{}
	case MethodVote:
		return &Vote{}
	case MethodTPCFinish:
		return &TPCFinish{}
	case MethodTPCAbort:
		return &TPCAbort{}
	case MethodStorea:
		return &Storea{}
	case MethodLoadBefore:
		return &LoadBefore{}
	case MethodLastTransaction:
		return &LastTransaction{}
	case MethodGetInfo:
		return &GetInfo{}
	case MethodPing:
		return &Ping{}
	case MethodIteratorStart:
		return &IteratorStart{}
	case MethodIteratorNext:
		return &IteratorNext{}
	case MethodInvalidateTransaction:
		return &InvalidateTransaction{}
	case MethodInfo:
		return &Info{}
	}
	return &UnknownCall{Name: name}
}

// DecodeCall turns a call message into its typed form.
func DecodeCall(m *Message) (Call, error) {
	if m.IsReply() {
		return nil, fmt.Errorf("zrpc: DecodeCall on a reply (msgid %v)", m.MsgID)
	}
	args, err := m.CallArgs()
	if err != nil {
		return nil, err
	}
	c := newCallByName(m.Name)
	if err := c.Decode(args); err != nil {
		return nil, err
	}
	return c, nil
}

// CallMessage wraps a typed call into a sync-call envelope (ZEO 5 client form).
func CallMessage(msgid int64, c Call) *Message { return NewCall(msgid, c.Method(), c.Args()) }

// AsyncMessage wraps a typed call into a one-way envelope.
func AsyncMessage(c Call) *Message { return NewAsync(c.Method(), c.Args()) }

// ErrorReply is the payload of an error reply: (dotted class name,
// exc.__dict__ or exc.args) — so Payload is a Dict or a Tuple.
type ErrorReply struct {
	Class   string
	Payload Value
}

func (e *ErrorReply) Error() string {
	return fmt.Sprintf("ZEO server error %s: %s", e.Class, shortRepr(e.Payload))
}

// Message returns the "message" item of a dict payload, or the first
// str/bytes arg of a tuple payload, when there is one.
func (e *ErrorReply) Message() string {
	switch p := e.Payload.(type) {
	case Dict:
		if v, ok := p.Get("message"); ok {
			s, _ := AsString(v)
			return s
		}
	case Tuple:
		if len(p) > 0 {
			s, _ := AsString(p[0])
			return s
		}
	}
	return ""
}

// ParseErrorReply decodes the args of a flags-2 reply.
func ParseErrorReply(m *Message) (*ErrorReply, error) {
	if !m.IsError() {
		return nil, fmt.Errorf("zrpc: msgid %v: not an error reply", m.MsgID)
	}
	t, ok := m.Args.(Tuple)
	if !ok || len(t) != 2 {
		return nil, fmt.Errorf("zrpc: msgid %v: error reply args are %s, want (class, payload)", m.MsgID, typeName(m.Args))
	}
	cls, err := AsString(t[0])
	if err != nil {
		return nil, fmt.Errorf("zrpc: msgid %v: error class: %w", m.MsgID, err)
	}
	return &ErrorReply{Class: cls, Payload: t[1]}, nil
}

// ReplyTID decodes a reply whose result is a tid (tpc_finish, register,
// lastTransaction). An error reply gives its *ErrorReply as the error.
func ReplyTID(m *Message) (txn.TID, error) {
	if err := replyOK(m); err != nil {
		return 0, err
	}
	t, err := ParseTID(m.Args)
	if err != nil {
		return 0, fmt.Errorf("zrpc: reply to msgid %v: %w", m.MsgID, err)
	}
	return t, nil
}

func replyOK(m *Message) error {
	if !m.IsReply() {
		return fmt.Errorf("zrpc: msgid %v: %s is not a reply", m.MsgID, m.Name)
	}
	if m.IsError() {
		e, err := ParseErrorReply(m)
		if err != nil {
			return err
		}
		return e
	}
	return nil
}

// TransactionInfo is one iterator_next result.
type TransactionInfo struct {
	TID         txn.TID
	Status      string
	User        []byte
	Description []byte
	Extension   Value // a Dict from ZODB ≥5 FileStorage; kept as sent
}

// Tuple is the reply form of the item.
func (x *TransactionInfo) Tuple() Tuple {
	return Tuple{x.TID.Bytes(), x.Status, nonNil(x.User), nonNil(x.Description), x.Extension}
}

// ParseTransactionInfo decodes an iterator_next result; nil, nil at the end (None).
func ParseTransactionInfo(v Value) (*TransactionInfo, error) {
	if v == nil {
		return nil, nil
	}
	t, err := AsSeq(v)
	if err != nil || len(t) != 5 {
		return nil, fmt.Errorf("zrpc: iterator_next result is %s, want a 5-tuple", typeName(v))
	}
	x := &TransactionInfo{Extension: t[4]}
	if x.TID, err = ParseTID(t[0]); err != nil {
		return nil, fmt.Errorf("zrpc: iterator_next: %w", err)
	}
	if x.Status, err = AsString(t[1]); err != nil {
		return nil, fmt.Errorf("zrpc: iterator_next: status: %w", err)
	}
	if x.User, err = AsBytes(t[2]); err != nil {
		return nil, fmt.Errorf("zrpc: iterator_next: user: %w", err)
	}
	if x.Description, err = AsBytes(t[3]); err != nil {
		return nil, fmt.Errorf("zrpc: iterator_next: description: %w", err)
	}
	return x, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func optBytes(b []byte) Value {
	if b == nil {
		return nil
	}
	return b
}

// VoteConflict is one conflict a server reports in a vote reply when the
// client resolves conflicts itself (client-side conflict resolution).
type VoteConflict struct {
	OID     []byte
	Serials [][]byte // (committed, read)
	Data    []byte
}

// VoteResult is a vote reply: oids the server resolved or undid, or
// conflicts for the client to resolve (then more storea and another vote
// follow: the transaction is not voted yet).
type VoteResult struct {
	Resolved  [][]byte
	Conflicts []VoteConflict
}

// Voted reports a successful vote (no conflicts left to resolve).
func (v *VoteResult) Voted() bool { return len(v.Conflicts) == 0 }

// ParseVoteResult decodes the reply to vote. An error reply (failed vote;
// the server has already aborted) is returned as *ErrorReply. ZEO 4's None
// gives an empty result.
func ParseVoteResult(m *Message) (*VoteResult, error) {
	if err := replyOK(m); err != nil {
		return nil, err
	}
	r := &VoteResult{}
	if m.Args == nil {
		return r, nil
	}
	seq, err := AsSeq(m.Args)
	if err != nil {
		return nil, fmt.Errorf("zrpc: vote reply: %w", err)
	}
	for i, it := range seq {
		d, ok := it.(Dict)
		if !ok {
			oid, err := AsBytes(it)
			if err != nil {
				return nil, fmt.Errorf("zrpc: vote reply item %d: %w", i, err)
			}
			r.Resolved = append(r.Resolved, oid)
			continue
		}
		var c VoteConflict
		oid, _ := d.Get("oid")
		if c.OID, err = AsBytes(oid); err != nil {
			return nil, fmt.Errorf("zrpc: vote reply conflict %d: oid: %w", i, err)
		}
		data, _ := d.Get("data")
		if c.Data, err = AsOptBytes(data); err != nil {
			return nil, fmt.Errorf("zrpc: vote reply conflict %d: data: %w", i, err)
		}
		serials, _ := d.Get("serials")
		ss, err := AsSeq(serials)
		if err != nil {
			return nil, fmt.Errorf("zrpc: vote reply conflict %d: serials: %w", i, err)
		}
		for _, s := range ss {
			b, err := AsBytes(s)
			if err != nil {
				return nil, fmt.Errorf("zrpc: vote reply conflict %d: serials: %w", i, err)
			}
			c.Serials = append(c.Serials, b)
		}
		r.Conflicts = append(r.Conflicts, c)
	}
	return r, nil
}
