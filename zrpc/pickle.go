package zrpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"

	ogorek "github.com/kisielk/og-rek"
)

// maxDepth bounds nesting of decoded values (ZEO envelopes nest 4 deep;
// transaction extensions a little more).
const maxDepth = 64

var errTooComplex = errors.New("value too deeply nested or too many shared references")

// DecodePickle decodes one pickle (any protocol og-rek supports: ZEO 5's
// protocol 3 and ZEO 4's protocol 1) into a canonical Value.
func DecodePickle(p []byte) (Value, error) {
	if v, ok := fastPickle(p); ok {
		return v, nil
	}
	return decodePickleOgorek(p)
}

// decodePickleOgorek is DecodePickle through og-rek, for every pickle.
func decodePickleOgorek(p []byte) (Value, error) {
	d := ogorek.NewDecoderWithConfig(bytes.NewReader(p), &ogorek.DecoderConfig{StrictUnicode: true, PyDict: true})
	v, err := d.Decode()
	if err != nil {
		return nil, fmt.Errorf("pickle: %w", err)
	}
	// Memo opcodes (absent in ZEO's fast-mode pickles but legal) can share
	// or even cycle values; the budget keeps normalisation linear in the
	// input size.
	n := &normalizer{budget: len(p) + 16}
	out, err := n.norm(v, 0)
	if err != nil {
		return nil, fmt.Errorf("pickle: %w", err)
	}
	return out, nil
}

type normalizer struct{ budget int }

func (n *normalizer) norm(v any, depth int) (Value, error) {
	n.budget--
	if depth > maxDepth || n.budget < 0 {
		return nil, errTooComplex
	}
	switch x := v.(type) {
	case ogorek.None:
		return nil, nil
	case nil:
		return nil, nil
	case bool, int64, float64, string:
		return x, nil
	case *big.Int:
		return normInt(x), nil
	case ogorek.Bytes:
		return []byte(x), nil
	case ogorek.ByteString:
		return []byte(x), nil
	case ogorek.Tuple:
		out := make(Tuple, len(x))
		for i, e := range x {
			var err error
			if out[i], err = n.norm(e, depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	case []any:
		out := make(List, len(x))
		for i, e := range x {
			var err error
			if out[i], err = n.norm(e, depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	case ogorek.Dict:
		out := make(Dict, 0, x.Len())
		var err error
		x.Iter()(func(k, v any) bool {
			var kk, vv Value
			if kk, err = n.norm(k, depth+1); err != nil {
				return false
			}
			if vv, err = n.norm(v, depth+1); err != nil {
				return false
			}
			out = append(out, DictItem{kk, vv})
			return true
		})
		if err != nil {
			return nil, err
		}
		sortDict(out)
		return out, nil
	case map[any]any:
		out := make(Dict, 0, len(x))
		for k, v := range x {
			kk, err := n.norm(k, depth+1)
			if err != nil {
				return nil, err
			}
			vv, err := n.norm(v, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, DictItem{kk, vv})
		}
		sortDict(out)
		return out, nil
	}
	return Opaque{V: v}, nil
}

// Pickle opcodes written by AppendPickle (the subset ZEO's encoder uses).
const (
	opMark           = '('
	opStop           = '.'
	opInt            = 'I'
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opBinInt2        = 'M'
	opLong           = 'L'
	opNone           = 'N'
	opBinUnicode     = 'X'
	opShortBinUni    = 0x8c
	opBinString      = 'T'
	opShortBinString = 'U'
	opBinBytes       = 'B'
	opShortBinBytes  = 'C'
	opTuple          = 't'
	opEmptyTuple     = ')'
	opEmptyList      = ']'
	opAppend         = 'a'
	opAppends        = 'e'
	opEmptyDict      = '}'
	opSetItem        = 's'
	opSetItems       = 'u'
	opBinFloat       = 'G'
	opProto          = 0x80
	opNewTrue        = 0x88
	opNewFalse       = 0x89
	opLong1          = 0x8a
	opTuple1         = 0x85
	opTuple2         = 0x86
	opTuple3         = 0x87
	opFrame          = 0x95
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opMemoize        = 0x94
)

// AppendPickle appends v pickled the way ZEO's encoder does it:
// protocol 3 (zodbpickle, fast mode: no memo) or protocol 1 (ZEO 4 on
// Python 2: no PROTO, bytes as py2 str, str as py2 str too, ints as INT
// text beyond 32 bits, bools as I01/I00).
func AppendPickle(dst []byte, v Value, protocol int) ([]byte, error) {
	if protocol != 1 && protocol != 3 {
		return dst, fmt.Errorf("pickle: protocol %d not supported for encoding (1 or 3)", protocol)
	}
	if protocol >= 2 {
		dst = append(dst, opProto, byte(protocol))
	}
	dst, err := appendPickleValue(dst, v, protocol, 0)
	if err != nil {
		return dst, err
	}
	return append(dst, opStop), nil
}

func appendPickleValue(b []byte, v Value, proto, depth int) ([]byte, error) {
	if depth > maxDepth {
		return b, errTooComplex
	}
	switch x := v.(type) {
	case nil:
		return append(b, opNone), nil
	case bool:
		return appendPickleBool(b, x, proto), nil
	case int:
		return appendPickleInt(b, int64(x), proto), nil
	case int64:
		return appendPickleInt(b, x, proto), nil
	case uint64:
		return appendPickleValue(b, Uint64Value(x), proto, depth)
	case *big.Int:
		return appendPickleBigInt(b, x, proto)
	case float64:
		b = append(b, opBinFloat)
		return binary.BigEndian.AppendUint64(b, math.Float64bits(x)), nil
	case []byte:
		return appendPickleBytes(b, x, proto), nil
	case string:
		return appendPickleString(b, x, proto), nil
	case Tuple:
		return appendPickleTuple(b, x, proto, depth)
	case List:
		return appendPickleList(b, x, proto, depth)
	case Dict:
		return appendPickleDict(b, x, proto, depth)
	default:
		return b, fmt.Errorf("pickle: cannot encode %T", v)
	}
}

func appendPickleBool(b []byte, x bool, proto int) []byte {
	switch {
	case proto >= 2 && x:
		return append(b, opNewTrue)
	case proto >= 2:
		return append(b, opNewFalse)
	case x:
		return append(b, "I01\n"...)
	default:
		return append(b, "I00\n"...)
	}
}

func appendPickleBigInt(b []byte, x *big.Int, proto int) ([]byte, error) {
	if x.IsInt64() {
		return appendPickleInt(b, x.Int64(), proto), nil
	}
	if proto >= 2 {
		return appendLong1(b, x)
	}
	b = append(b, opLong)
	b = x.Append(b, 10)
	return append(b, "L\n"...), nil
}

func appendPickleBytes(b, x []byte, proto int) []byte {
	switch {
	case proto < 3:
		b = appendBinString(b, len(x))
	case len(x) < 256:
		b = append(b, opShortBinBytes, byte(len(x)))
	default:
		b = append(b, opBinBytes)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(x)))
	}
	return append(b, x...)
}

func appendPickleString(b []byte, x string, proto int) []byte {
	if proto >= 3 {
		b = append(b, opBinUnicode)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(x)))
	} else {
		b = appendBinString(b, len(x))
	}
	return append(b, x...)
}

func appendPickleTuple(b []byte, x Tuple, proto, depth int) ([]byte, error) {
	if len(x) == 0 {
		return append(b, opEmptyTuple), nil
	}
	short := proto >= 2 && len(x) <= 3
	if !short {
		b = append(b, opMark)
	}
	var err error
	for _, e := range x {
		if b, err = appendPickleValue(b, e, proto, depth+1); err != nil {
			return b, err
		}
	}
	if short {
		return append(b, opTuple1+byte(len(x)-1)), nil
	}
	return append(b, opTuple), nil
}

// Python batches appends and setitems by 1000; a batch of one uses the
// single-item opcode.
const pickleBatch = 1000

func appendPickleList(b []byte, x List, proto, depth int) ([]byte, error) {
	b = append(b, opEmptyList)
	var err error
	for i := 0; i < len(x); i += pickleBatch {
		batch := x[i:min(i+pickleBatch, len(x))]
		if len(batch) > 1 {
			b = append(b, opMark)
		}
		for _, e := range batch {
			if b, err = appendPickleValue(b, e, proto, depth+1); err != nil {
				return b, err
			}
		}
		b = append(b, batchEnd(len(batch), opAppend, opAppends))
	}
	return b, nil
}

func appendPickleDict(b []byte, x Dict, proto, depth int) ([]byte, error) {
	b = append(b, opEmptyDict)
	var err error
	for i := 0; i < len(x); i += pickleBatch {
		batch := x[i:min(i+pickleBatch, len(x))]
		if len(batch) > 1 {
			b = append(b, opMark)
		}
		for _, it := range batch {
			if b, err = appendPickleValue(b, it.Key, proto, depth+1); err != nil {
				return b, err
			}
			if b, err = appendPickleValue(b, it.Value, proto, depth+1); err != nil {
				return b, err
			}
		}
		b = append(b, batchEnd(len(batch), opSetItem, opSetItems))
	}
	return b, nil
}

func batchEnd(n int, one, many byte) byte {
	if n > 1 {
		return many
	}
	return one
}

func appendBinString(b []byte, n int) []byte {
	if n < 256 {
		return append(b, opShortBinString, byte(n))
	}
	b = append(b, opBinString)
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

func appendPickleInt(b []byte, x int64, proto int) []byte {
	switch {
	case x >= 0 && x < 256:
		return append(b, opBinInt1, byte(x))
	case x >= 0 && x < 65536:
		return append(b, opBinInt2, byte(x), byte(x>>8))
	case x >= math.MinInt32 && x <= math.MaxInt32:
		b = append(b, opBinInt)
		return binary.LittleEndian.AppendUint32(b, uint32(int32(x)))
	case proto >= 2:
		b2, _ := appendLong1(b, big.NewInt(x))
		return b2
	}
	// Python 2 int beyond 32 bits (e.g. id() on 64-bit): INT text.
	b = append(b, opInt)
	b = strconv.AppendInt(b, x, 10)
	return append(b, '\n')
}

// appendLong1 writes LONG1: minimal little-endian two's complement, as
// Python's encode_long.
func appendLong1(b []byte, x *big.Int) ([]byte, error) {
	if x.Sign() == 0 {
		return append(b, opLong1, 0), nil
	}
	// Number of bytes: enough for the magnitude plus a sign bit.
	nbytes := (x.BitLen() + 8) / 8 // Python: (bit_length >> 3) + 1
	if x.Sign() < 0 {
		// Python trims a redundant 0xff when the next byte already carries the sign.
		nbytes = (new(big.Int).Not(x).BitLen() + 8) / 8
	}
	if nbytes > 255 {
		return b, fmt.Errorf("pickle: int of %d bytes too large for LONG1", nbytes)
	}
	// two's complement of x modulo 2^(8*nbytes)
	mod := new(big.Int).Lsh(big.NewInt(1), uint(8*nbytes))
	v := new(big.Int).Mod(x, mod)
	be := v.FillBytes(make([]byte, nbytes))
	b = append(b, opLong1, byte(nbytes))
	for i := len(be) - 1; i >= 0; i-- {
		b = append(b, be[i])
	}
	return b, nil
}
