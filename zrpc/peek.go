package zrpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// MsgIDKind tells how a peeked msgid is encoded.
type MsgIDKind uint8

const (
	MsgIDInt   MsgIDKind = iota + 1 // an int (0 async, -1 heartbeat, n sync)
	MsgIDTuple                      // a tuple of scalars: loadBefore's (oid, tid)
)

// Peek is the envelope head of a frame: everything but the arguments.
// Slices alias the peeked bytes.
type Peek struct {
	MsgIDKind MsgIDKind
	MsgID     int64  // valid when MsgIDKind == MsgIDInt
	MsgIDRaw  []byte // the msgid's encoded bytes; equal for a call and its reply in one encoding
	Flags     int64  // 0, 1 (async), 2 (error reply); bools map to 0/1
	BoolFlags bool   // flags was a bool on the wire (ZEO 5 calls)
	Name      []byte // method name bytes
	Method    Method // MethodUnknown for names not in the enum
	ArgsOff   int    // offset of the args (or reply result) in the payload
}

// IsReply reports a '.reply' frame.
func (p *Peek) IsReply() bool { return p.Method == MethodReply }

// IsError reports an error reply (ZEO 5/6).
func (p *Peek) IsError() bool { return p.Method == MethodReply && p.Flags != 0 }

// IsHeartbeat reports the client heartbeat.
func (p *Peek) IsHeartbeat() bool {
	return p.Method == MethodReply && p.MsgIDKind == MsgIDInt && p.MsgID == -1
}

// ErrPeekShort means the prefix ended before the method name: peek more
// bytes (or, if the prefix was the whole payload, the frame is truncated).
var ErrPeekShort = errors.New("zrpc: peek: prefix ends inside the envelope head")

// PeekMessage reads msgid, flags and method name from the first bytes of a
// frame payload without decoding the arguments and without allocating
// (on success). A few hundred bytes are always enough for ZEO's envelopes
// except a pathological method name. Anything unexpected is an error: the
// caller should fall back to DecodeMessage or treat the frame as opaque.
func PeekMessage(enc Encoding, p []byte) (Peek, error) {
	switch enc {
	case Pickle:
		return PeekPickle(p)
	case Msgpack:
		return PeekMsgpack(p)
	}
	return Peek{}, fmt.Errorf("zrpc: peek: unknown encoding %v", enc)
}

type peekErr struct {
	enc  string
	off  int
	what string
	op   byte
}

func (e *peekErr) Error() string {
	return fmt.Sprintf("zrpc: peek %s: byte %d (%#02x): %s", e.enc, e.off, e.op, e.what)
}

func pickleErr(p []byte, off int, what string) error {
	var op byte
	if off < len(p) {
		op = p[off]
	}
	return &peekErr{"pickle", off, what, op}
}

// PeekPickle is PeekMessage for pickles: protocol 3 as ZEO 5 writes
// (PROTO 3, MARK, msgid, flags, BINUNICODE name, ...) and protocol 1 as
// ZEO 4 on Python 2 writes (no PROTO, SHORT_BINSTRING name, INT text).
//
// It reads the envelope head as ZEO's encoder lays it out. A hand-made
// pickle can still contradict it further on with stack opcodes (POP, DUP,
// POP_MARK after the name) that no ZEO encoder writes; the fuzz tests check
// that peek and full decode agree on every frame in ZEO's canonical form.
func PeekPickle(p []byte) (Peek, error) {
	var pk Peek
	i := 0
	if len(p) < 2 {
		return pk, ErrPeekShort
	}
	if p[0] == opProto {
		if p[1] > 5 {
			return pk, pickleErr(p, 1, "unsupported pickle protocol")
		}
		i = 2
	}
	if i < len(p) && p[i] == opFrame {
		i += 9
	}
	if i >= len(p) {
		return pk, ErrPeekShort
	}
	if p[i] != opMark {
		return pk, pickleErr(p, i, "envelope does not start with MARK")
	}
	i++
	// msgid
	if i >= len(p) {
		return pk, ErrPeekShort
	}
	start := i
	switch op := p[i]; op {
	case opMark, opEmptyTuple, opShortBinBytes, opBinBytes, opShortBinString, opBinString, opBinUnicode, opShortBinUni:
		j, err := pickleTuple(p, i)
		if err != nil {
			return pk, err
		}
		pk.MsgIDKind = MsgIDTuple
		i = j
	default:
		v, j, err := pickleInt(p, i)
		if err != nil {
			return pk, err
		}
		pk.MsgIDKind, pk.MsgID = MsgIDInt, v
		i = j
	}
	pk.MsgIDRaw = p[start:i]
	i, err := skipMemo(p, i)
	if err != nil {
		return pk, err
	}
	// flags
	if i >= len(p) {
		return pk, ErrPeekShort
	}
	switch p[i] {
	case opNewTrue:
		pk.Flags, pk.BoolFlags = 1, true
		i++
	case opNewFalse:
		pk.BoolFlags = true
		i++
	default:
		v, j, err := pickleInt(p, i)
		if err != nil {
			return pk, err
		}
		if j-i == 4 && p[i] == opInt && (v == 0 || v == 1) && p[i+1] == '0' {
			pk.BoolFlags = true // Python 2 bool: I00 / I01
		}
		pk.Flags = v
		i = j
	}
	if i, err = skipMemo(p, i); err != nil {
		return pk, err
	}
	// name
	name, j, err := pickleStr(p, i)
	if err != nil {
		return pk, err
	}
	pk.Name = name
	pk.Method = methodOfBytes(name)
	if pk.ArgsOff, err = skipMemo(p, j); err != nil {
		return pk, err
	}
	return pk, nil
}

// skipMemo skips memo opcodes (absent from ZEO's fast-mode pickles, legal
// elsewhere); a memo opcode cut by the prefix end gives ErrPeekShort.
func skipMemo(p []byte, i int) (int, error) {
	for i < len(p) {
		switch p[i] {
		case opBinPut:
			i += 2
		case opLongBinPut:
			i += 5
		case opMemoize:
			i++
		default:
			return i, nil
		}
	}
	if i > len(p) {
		return i, ErrPeekShort
	}
	return i, nil
}

// pickleInt parses one int opcode at p[i].
func pickleInt(p []byte, i int) (int64, int, error) {
	if i >= len(p) {
		return 0, i, ErrPeekShort
	}
	switch p[i] {
	case opBinInt1:
		if i+2 > len(p) {
			return 0, i, ErrPeekShort
		}
		return int64(p[i+1]), i + 2, nil
	case opBinInt2:
		if i+3 > len(p) {
			return 0, i, ErrPeekShort
		}
		return int64(binary.LittleEndian.Uint16(p[i+1:])), i + 3, nil
	case opBinInt:
		if i+5 > len(p) {
			return 0, i, ErrPeekShort
		}
		return int64(int32(binary.LittleEndian.Uint32(p[i+1:]))), i + 5, nil
	case opLong1:
		if i+2 > len(p) {
			return 0, i, ErrPeekShort
		}
		n := int(p[i+1])
		if n > 8 {
			return 0, i, pickleErr(p, i, "LONG1 int wider than 64 bits")
		}
		if i+2+n > len(p) {
			return 0, i, ErrPeekShort
		}
		var u uint64
		for k := n - 1; k >= 0; k-- {
			u = u<<8 | uint64(p[i+2+k])
		}
		if n > 0 && n < 8 && p[i+2+n-1]&0x80 != 0 { // sign-extend
			u |= ^uint64(0) << (8 * n)
		}
		return int64(u), i + 2 + n, nil
	case opInt, opLong:
		// text: I<digits>\n (Python 2 int; I00/I01 are bools) or L<digits>L\n
		j := i + 1
		neg := false
		if j < len(p) && p[j] == '-' {
			neg = true
			j++
		}
		var v uint64
		digits := 0
		for ; j < len(p) && p[j] >= '0' && p[j] <= '9'; j++ {
			if v > (math.MaxInt64-9)/10 {
				return 0, i, pickleErr(p, i, "text int out of int64 range")
			}
			v = v*10 + uint64(p[j]-'0')
			digits++
		}
		if p[i] == opLong && j < len(p) && p[j] == 'L' {
			j++
		}
		if j >= len(p) {
			return 0, i, ErrPeekShort
		}
		if digits == 0 || p[j] != '\n' {
			return 0, i, pickleErr(p, i, "malformed text int")
		}
		x := int64(v)
		if neg {
			x = -x
		}
		return x, j + 1, nil
	}
	return 0, i, pickleErr(p, i, "expected an int opcode")
}

// pickleStr parses one string/bytes opcode at p[i] and returns its bytes.
func pickleStr(p []byte, i int) ([]byte, int, error) {
	if i >= len(p) {
		return nil, i, ErrPeekShort
	}
	var n, hdr int
	switch p[i] {
	case opShortBinUni, opShortBinString, opShortBinBytes:
		if i+2 > len(p) {
			return nil, i, ErrPeekShort
		}
		n, hdr = int(p[i+1]), 2
	case opBinUnicode, opBinString, opBinBytes:
		if i+5 > len(p) {
			return nil, i, ErrPeekShort
		}
		u := binary.LittleEndian.Uint32(p[i+1:])
		if u > math.MaxInt32 {
			return nil, i, pickleErr(p, i, "string length out of range")
		}
		n, hdr = int(u), 5
	default:
		return nil, i, pickleErr(p, i, "expected a string opcode")
	}
	end := i + hdr + n
	if end > len(p) || end < i {
		return nil, i, ErrPeekShort
	}
	return p[i+hdr : end], end, nil
}

// pickleTuple skips a tuple of scalars (a loadBefore msgid) starting at
// p[i]: MARK items TUPLE, items TUPLE1..3, or EMPTY_TUPLE.
func pickleTuple(p []byte, i int) (int, error) {
	if p[i] == opEmptyTuple {
		return i + 1, nil
	}
	marked := p[i] == opMark
	if marked {
		i++
	}
	for n := 0; ; n++ {
		var err error
		if i, err = skipMemo(p, i); err != nil {
			return i, err
		}
		if i >= len(p) {
			return i, ErrPeekShort
		}
		switch op := p[i]; {
		case marked && op == opTuple:
			return i + 1, nil
		case !marked && op >= opTuple1 && op <= opTuple3:
			if int(op-opTuple1)+1 != n {
				return i, pickleErr(p, i, "tuple arity does not match its items")
			}
			return i + 1, nil
		case n >= 16:
			return i, pickleErr(p, i, "msgid tuple too long")
		case op == opNone || op == opNewTrue || op == opNewFalse:
			i++
		default:
			if _, j, err := pickleStr(p, i); err == nil {
				i = j
				continue
			} else if err == ErrPeekShort {
				return i, err
			}
			_, j, err := pickleInt(p, i)
			if err != nil {
				return i, err
			}
			i = j
		}
	}
}

func mpErr(p []byte, off int, what string) error {
	var op byte
	if off < len(p) {
		op = p[off]
	}
	return &peekErr{"msgpack", off, what, op}
}

// PeekMsgpack is PeekMessage for msgpack frames: array(4) of msgid (int or
// array of scalars), flags (bool or int), name (str, or bin from Python 2
// clients), args.
func PeekMsgpack(p []byte) (Peek, error) {
	var pk Peek
	if len(p) < 1 {
		return pk, ErrPeekShort
	}
	n, i, err := mpArrayLen(p, 0)
	if err != nil {
		return pk, err
	}
	if n != 4 {
		return pk, mpErr(p, 0, "envelope is not a 4-array")
	}
	start := i
	if i >= len(p) {
		return pk, ErrPeekShort
	}
	if c := p[i]; c&0xf0 == 0x90 || c == 0xdc || c == 0xdd {
		m, j, err := mpArrayLen(p, i)
		if err != nil {
			return pk, err
		}
		if m > 16 {
			return pk, mpErr(p, i, "msgid array too long")
		}
		for k := 0; k < m; k++ {
			if j, err = mpSkipScalar(p, j); err != nil {
				return pk, err
			}
		}
		pk.MsgIDKind = MsgIDTuple
		i = j
	} else {
		v, j, err := mpInt(p, i)
		if err != nil {
			return pk, err
		}
		pk.MsgIDKind, pk.MsgID = MsgIDInt, v
		i = j
	}
	pk.MsgIDRaw = p[start:i]
	if i >= len(p) {
		return pk, ErrPeekShort
	}
	switch p[i] {
	case 0xc2:
		pk.BoolFlags = true
		i++
	case 0xc3:
		pk.Flags, pk.BoolFlags = 1, true
		i++
	default:
		v, j, err := mpInt(p, i)
		if err != nil {
			return pk, err
		}
		pk.Flags = v
		i = j
	}
	name, j, err := mpStr(p, i)
	if err != nil {
		return pk, err
	}
	pk.Name = name
	pk.Method = methodOfBytes(name)
	pk.ArgsOff = j
	return pk, nil
}

func mpArrayLen(p []byte, i int) (int, int, error) {
	if i >= len(p) {
		return 0, i, ErrPeekShort
	}
	c := p[i]
	switch {
	case c&0xf0 == 0x90:
		return int(c & 0x0f), i + 1, nil
	case c == 0xdc:
		if i+3 > len(p) {
			return 0, i, ErrPeekShort
		}
		return int(binary.BigEndian.Uint16(p[i+1:])), i + 3, nil
	case c == 0xdd:
		if i+5 > len(p) {
			return 0, i, ErrPeekShort
		}
		u := binary.BigEndian.Uint32(p[i+1:])
		if u > math.MaxInt32 {
			return 0, i, mpErr(p, i, "array length out of range")
		}
		return int(u), i + 5, nil
	}
	return 0, i, mpErr(p, i, "expected an array")
}

func mpInt(p []byte, i int) (int64, int, error) {
	if i >= len(p) {
		return 0, i, ErrPeekShort
	}
	c := p[i]
	if c <= 0x7f {
		return int64(c), i + 1, nil
	}
	if c >= 0xe0 {
		return int64(int8(c)), i + 1, nil
	}
	var size int
	switch c {
	case 0xcc, 0xd0:
		size = 1
	case 0xcd, 0xd1:
		size = 2
	case 0xce, 0xd2:
		size = 4
	case 0xcf, 0xd3:
		size = 8
	default:
		return 0, i, mpErr(p, i, "expected an int")
	}
	if i+1+size > len(p) {
		return 0, i, ErrPeekShort
	}
	b := p[i+1 : i+1+size]
	var v int64
	switch c {
	case 0xcc:
		v = int64(b[0])
	case 0xcd:
		v = int64(binary.BigEndian.Uint16(b))
	case 0xce:
		v = int64(binary.BigEndian.Uint32(b))
	case 0xcf:
		u := binary.BigEndian.Uint64(b)
		if u > math.MaxInt64 {
			return 0, i, mpErr(p, i, "uint64 msgid/flags out of int64 range")
		}
		v = int64(u)
	case 0xd0:
		v = int64(int8(b[0]))
	case 0xd1:
		v = int64(int16(binary.BigEndian.Uint16(b)))
	case 0xd2:
		v = int64(int32(binary.BigEndian.Uint32(b)))
	case 0xd3:
		v = int64(binary.BigEndian.Uint64(b))
	}
	return v, i + 1 + size, nil
}

// mpStr parses a str or bin at p[i].
func mpStr(p []byte, i int) ([]byte, int, error) {
	if i >= len(p) {
		return nil, i, ErrPeekShort
	}
	c := p[i]
	var n, hdr int
	switch {
	case c&0xe0 == 0xa0:
		n, hdr = int(c&0x1f), 1
	case c == 0xd9 || c == 0xc4:
		if i+2 > len(p) {
			return nil, i, ErrPeekShort
		}
		n, hdr = int(p[i+1]), 2
	case c == 0xda || c == 0xc5:
		if i+3 > len(p) {
			return nil, i, ErrPeekShort
		}
		n, hdr = int(binary.BigEndian.Uint16(p[i+1:])), 3
	case c == 0xdb || c == 0xc6:
		if i+5 > len(p) {
			return nil, i, ErrPeekShort
		}
		u := binary.BigEndian.Uint32(p[i+1:])
		if u > math.MaxInt32 {
			return nil, i, mpErr(p, i, "string length out of range")
		}
		n, hdr = int(u), 5
	default:
		return nil, i, mpErr(p, i, "expected a str")
	}
	end := i + hdr + n
	if end > len(p) || end < i {
		return nil, i, ErrPeekShort
	}
	return p[i+hdr : end], end, nil
}

func mpSkipScalar(p []byte, i int) (int, error) {
	if i >= len(p) {
		return i, ErrPeekShort
	}
	switch c := p[i]; c {
	case 0xc0, 0xc2, 0xc3:
		return i + 1, nil
	default:
		if _, j, err := mpStr(p, i); err == nil || err == ErrPeekShort {
			return j, err
		}
		_, j, err := mpInt(p, i)
		if err != nil {
			return i, mpErr(p, i, "msgid array item is not a scalar")
		}
		return j, nil
	}
}

// PeekArgTID reads, without allocating, the first argument of a call when it
// is an 8-byte bytes value: the tid of the server's
// invalidateTransaction(tid, oids). p must hold the bytes up to and including
// that argument (a 512-byte prefix always does); pk comes from PeekMessage
// on p. Anything else is an error.
func PeekArgTID(enc Encoding, p []byte, pk *Peek) (txn.TID, error) {
	if pk.Method == MethodReply {
		return 0, errors.New("zrpc: peek: a reply has no arguments")
	}
	i := pk.ArgsOff
	var b []byte
	var err error
	switch enc {
	case Pickle:
		// args: first ... TUPLE2 (ZEO's two-argument calls), or MARK first ... TUPLE
		if i < len(p) && p[i] == opMark {
			i++
		}
		switch {
		case i >= len(p):
			err = ErrPeekShort
		case p[i] == opShortBinBytes || p[i] == opBinBytes || p[i] == opShortBinString || p[i] == opBinString:
			b, _, err = pickleStr(p, i)
		default:
			err = pickleErr(p, i, "first argument is not bytes")
		}
	case Msgpack:
		var n, j int
		if n, j, err = mpArrayLen(p, i); err == nil {
			switch {
			case n < 1:
				err = mpErr(p, i, "args are empty")
			case j >= len(p):
				err = ErrPeekShort
			case p[j] == 0xc4 || p[j] == 0xc5 || p[j] == 0xc6:
				b, _, err = mpStr(p, j)
			default:
				err = mpErr(p, j, "first argument is not bin")
			}
		}
	default:
		err = fmt.Errorf("zrpc: peek: unknown encoding %v", enc)
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, errors.New("zrpc: peek: first argument is not an 8-byte tid")
	}
	return txn.TIDFromBytes([8]byte(b)), nil
}
