package zrpc

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// DecodeMsgpack decodes one msgpack object into a canonical Value, the way
// ZEO reads it (unpackb raw=False, use_list=False: arrays are tuples, str
// must be UTF-8). Declared lengths are checked against the bytes left
// before anything is allocated, so garbage cannot make it allocate more
// than the input size; trailing bytes are an error, as in Python.
//
// It drives vmihailenco/msgpack's low-level API instead of
// DecodeInterface, which preallocates from declared array/map lengths.
func DecodeMsgpack(p []byte) (Value, error) {
	rd := bytes.NewReader(p)
	md := &mpDecoder{rd: rd, d: msgpack.NewDecoder(rd)}
	v, err := md.value(0)
	if err != nil {
		return nil, fmt.Errorf("msgpack: at byte %d: %w", len(p)-rd.Len(), err)
	}
	if rd.Len() != 0 {
		return nil, fmt.Errorf("msgpack: %d bytes of extra data after the object", rd.Len())
	}
	return v, nil
}

type mpDecoder struct {
	rd *bytes.Reader
	d  *msgpack.Decoder
}

func (m *mpDecoder) value(depth int) (Value, error) {
	if depth > maxDepth {
		return nil, errTooComplex
	}
	c, err := m.d.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case c == msgpcode.Nil:
		return nil, m.d.DecodeNil()
	case c == msgpcode.True || c == msgpcode.False:
		return m.d.DecodeBool()
	case msgpcode.IsFixedNum(c), c == msgpcode.Int8, c == msgpcode.Int16, c == msgpcode.Int32, c == msgpcode.Int64,
		c == msgpcode.Uint8, c == msgpcode.Uint16, c == msgpcode.Uint32:
		return m.d.DecodeInt64()
	case c == msgpcode.Uint64:
		u, err := m.d.DecodeUint64()
		if err != nil {
			return nil, err
		}
		return Uint64Value(u), nil
	case c == msgpcode.Float || c == msgpcode.Double:
		return m.d.DecodeFloat64()
	case msgpcode.IsString(c), msgpcode.IsBin(c):
		n, err := m.d.DecodeBytesLen()
		if err != nil {
			return nil, err
		}
		if n < 0 || n > m.rd.Len() {
			return nil, fmt.Errorf("string/bin of %d bytes but only %d left", n, m.rd.Len())
		}
		b := make([]byte, n)
		if err := m.d.ReadFull(b); err != nil {
			return nil, err
		}
		if msgpcode.IsString(c) {
			if !utf8.Valid(b) {
				return nil, fmt.Errorf("str is not valid UTF-8")
			}
			return string(b), nil
		}
		return b, nil
	case msgpcode.IsFixedArray(c), c == msgpcode.Array16, c == msgpcode.Array32:
		n, err := m.d.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		if n < 0 || n > m.rd.Len() {
			return nil, fmt.Errorf("array of %d items but only %d bytes left", n, m.rd.Len())
		}
		t := make(Tuple, n)
		for i := range t {
			if t[i], err = m.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return t, nil
	case msgpcode.IsFixedMap(c), c == msgpcode.Map16, c == msgpcode.Map32:
		n, err := m.d.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		if n < 0 || 2*n > m.rd.Len() {
			return nil, fmt.Errorf("map of %d items but only %d bytes left", n, m.rd.Len())
		}
		d := make(Dict, n)
		for i := range d {
			if d[i].Key, err = m.value(depth + 1); err != nil {
				return nil, err
			}
			if d[i].Value, err = m.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return d, nil
	}
	return nil, fmt.Errorf("unsupported msgpack code %#02x", c)
}

// AppendMsgpack appends v packed the way ZEO's encoder does it
// (packb(use_bin_type=True): bytes as bin, str as str, ints in the
// smallest format, tuples and lists as arrays, dicts as maps).
func AppendMsgpack(dst []byte, v Value) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	e := msgpack.NewEncoder(buf)
	if err := encodeMsgpack(e, buf, v, 0); err != nil {
		return buf.Bytes(), err
	}
	return buf.Bytes(), nil
}

func encodeMsgpack(e *msgpack.Encoder, w *bytes.Buffer, v Value, depth int) error {
	if depth > maxDepth {
		return errTooComplex
	}
	switch x := v.(type) {
	case nil:
		return e.EncodeNil()
	case bool:
		return e.EncodeBool(x)
	case int:
		return e.EncodeInt(int64(x))
	case int64:
		return e.EncodeInt(x)
	case uint64:
		return e.EncodeUint(x)
	case *big.Int:
		if x.IsInt64() {
			return e.EncodeInt(x.Int64())
		}
		if x.Sign() > 0 && x.IsUint64() {
			return e.EncodeUint(x.Uint64())
		}
		return fmt.Errorf("msgpack: int %s does not fit 64 bits", x)
	case float64:
		return e.EncodeFloat64(x)
	case []byte:
		// EncodeBytes turns a nil slice into nil; b'' must stay bin.
		if len(x) > math.MaxUint32 {
			return fmt.Errorf("msgpack: bytes too long")
		}
		if err := e.EncodeBytesLen(len(x)); err != nil {
			return err
		}
		_, err := w.Write(x)
		return err
	case string:
		return e.EncodeString(x)
	case Tuple:
		return encodeMsgpackSeq(e, w, x, depth)
	case List:
		return encodeMsgpackSeq(e, w, x, depth)
	case Dict:
		if err := e.EncodeMapLen(len(x)); err != nil {
			return err
		}
		for _, it := range x {
			if err := encodeMsgpack(e, w, it.Key, depth+1); err != nil {
				return err
			}
			if err := encodeMsgpack(e, w, it.Value, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("msgpack: cannot encode %T", v)
}

func encodeMsgpackSeq(e *msgpack.Encoder, w *bytes.Buffer, x []Value, depth int) error {
	if err := e.EncodeArrayLen(len(x)); err != nil {
		return err
	}
	for _, it := range x {
		if err := encodeMsgpack(e, w, it, depth+1); err != nil {
			return err
		}
	}
	return nil
}
