package zrpc

import (
	"encoding/binary"
	"math"
	"sync"
)

// fastPickle decodes the common shape of ZEO 5 pickles without og-rek: the
// envelope and arguments of the frames the proxy decodes (tpc_begin, the
// vote and tpc_finish replies, invalidations), made of the opcodes ZEO's
// encoder writes for None, bools, ints, floats, bytes, strings, tuples,
// lists and dicts with string keys. It returns ok = false, having decided
// nothing, for anything else (memo opcodes, globals, protocol 1 text
// opcodes, big ints, other dict keys, malformed input): DecodePickle then
// decodes with og-rek, which also gives the errors. When it returns ok, the
// value is exactly the one the og-rek path returns (FuzzFastPickle checks
// it); it costs a tenth of the time and a few allocations.
func fastPickle(p []byte) (v Value, ok bool) {
	d := fastDecoders.Get().(*fastDecoder)
	v, ok = d.decode(p)
	clear(d.stack[:cap(d.stack)])
	if cap(d.stack) <= 256 {
		fastDecoders.Put(d)
	}
	return v, ok
}

var fastDecoders = sync.Pool{New: func() any { return new(fastDecoder) }}

// fastMaxDepth keeps nesting well inside what the og-rek path accepts
// (maxDepth): anything deeper goes there.
const fastMaxDepth = maxDepth - 4

// fastMaxDict bounds the dicts decoded here (duplicate keys are looked for
// one by one); larger ones go to og-rek.
const fastMaxDict = 64

type fastDecoder struct {
	stack []Value
	depth []int // nesting depth of each stack entry
	marks []int // stack positions of the open MARKs
}

func (d *fastDecoder) push(v Value, depth int) {
	d.stack = append(d.stack, v)
	d.depth = append(d.depth, depth)
}

// popMark returns the values above the last MARK (removed with it) and their
// largest depth.
func (d *fastDecoder) popMark() ([]Value, int, bool) {
	if len(d.marks) == 0 {
		return nil, 0, false
	}
	at := d.marks[len(d.marks)-1]
	d.marks = d.marks[:len(d.marks)-1]
	items := d.stack[at:]
	md := 0
	for _, x := range d.depth[at:] {
		md = max(md, x)
	}
	out := make([]Value, len(items))
	copy(out, items)
	clear(d.stack[at:])
	d.stack, d.depth = d.stack[:at], d.depth[:at]
	return out, md, true
}

// operands returns the operands of TUPLE, APPEND(S) or SETITEM(S), removed
// from the stack, and their largest depth: the values above the last MARK
// (fromMark), else the n on top.
func (d *fastDecoder) operands(fromMark bool, n int) ([]Value, int, bool) {
	if fromMark {
		return d.popMark()
	}
	return d.top(n)
}

// top returns the n values on top of the stack (no MARK among them), removed.
func (d *fastDecoder) top(n int) ([]Value, int, bool) {
	if len(d.stack) < n || (len(d.marks) > 0 && d.marks[len(d.marks)-1] > len(d.stack)-n) {
		return nil, 0, false
	}
	at := len(d.stack) - n
	out := make([]Value, n)
	copy(out, d.stack[at:])
	md := 0
	for _, x := range d.depth[at:] {
		md = max(md, x)
	}
	clear(d.stack[at:])
	d.stack, d.depth = d.stack[:at], d.depth[:at]
	return out, md, true
}

func (d *fastDecoder) decode(p []byte) (Value, bool) {
	d.stack, d.depth, d.marks = d.stack[:0], d.depth[:0], d.marks[:0]
	i := 0
	need := func(n int) bool { return n >= 0 && len(p)-i >= n }
	for i < len(p) {
		op := p[i]
		i++
		switch op {
		case opProto:
			if !need(1) || p[i] > 5 {
				return nil, false
			}
			i++
		case opFrame:
			if !need(8) {
				return nil, false
			}
			i += 8
		case opStop:
			if len(d.stack) != 1 || len(d.marks) != 0 || i != len(p) {
				return nil, false
			}
			return d.stack[0], true
		case opMark: // its place: values above it are the next TUPLE's, APPENDS' or SETITEMS'
			d.marks = append(d.marks, len(d.stack))
		case opNone:
			d.push(nil, 0)
		case opNewTrue:
			d.push(true, 0)
		case opNewFalse:
			d.push(false, 0)
		case opBinInt:
			if !need(4) {
				return nil, false
			}
			d.push(int64(int32(binary.LittleEndian.Uint32(p[i:]))), 0)
			i += 4
		case opBinInt1:
			if !need(1) {
				return nil, false
			}
			d.push(int64(p[i]), 0)
			i++
		case opBinInt2:
			if !need(2) {
				return nil, false
			}
			d.push(int64(binary.LittleEndian.Uint16(p[i:])), 0)
			i += 2
		case opLong1:
			if !need(1) {
				return nil, false
			}
			n := int(p[i])
			i++
			if n > 8 || !need(n) {
				return nil, false
			}
			var u uint64
			for k := n - 1; k >= 0; k-- {
				u = u<<8 | uint64(p[i+k])
			}
			if n > 0 && n < 8 && p[i+n-1]&0x80 != 0 {
				u |= math.MaxUint64 << (8 * n) // sign-extend
			}
			d.push(int64(u), 0)
			i += n
		case opBinFloat:
			if !need(8) {
				return nil, false
			}
			d.push(math.Float64frombits(binary.BigEndian.Uint64(p[i:])), 0)
			i += 8
		case opShortBinBytes, opShortBinString, opShortBinUni:
			if !need(1) {
				return nil, false
			}
			n := int(p[i])
			i++
			if !need(n) {
				return nil, false
			}
			d.pushText(op, p[i:i+n])
			i += n
		case opBinBytes, opBinString, opBinUnicode:
			if !need(4) {
				return nil, false
			}
			n := int(binary.LittleEndian.Uint32(p[i:]))
			i += 4
			if n > len(p) || !need(n) {
				return nil, false
			}
			d.pushText(op, p[i:i+n])
			i += n
		case opEmptyTuple:
			d.push(Tuple{}, 1)
		case opTuple, opTuple1, opTuple2, opTuple3:
			items, md, ok := d.operands(op == opTuple, int(op-opTuple1)+1)
			if !ok || md >= fastMaxDepth {
				return nil, false
			}
			d.push(Tuple(items), md+1)
		case opEmptyList:
			d.push(List{}, 1)
		case opAppend, opAppends:
			items, md, ok := d.operands(op == opAppends, 1)
			if !ok || len(d.stack) == 0 || (len(d.marks) > 0 && d.marks[len(d.marks)-1] == len(d.stack)) {
				return nil, false
			}
			l, isList := d.stack[len(d.stack)-1].(List)
			if !isList || md >= fastMaxDepth {
				return nil, false
			}
			d.stack[len(d.stack)-1] = append(l, items...)
			d.depth[len(d.depth)-1] = max(d.depth[len(d.depth)-1], md+1)
		case opEmptyDict:
			d.push(Dict{}, 1)
		case opSetItem, opSetItems:
			items, md, ok := d.operands(op == opSetItems, 2)
			if !ok || len(items)%2 != 0 || len(d.stack) == 0 || (len(d.marks) > 0 && d.marks[len(d.marks)-1] == len(d.stack)) {
				return nil, false
			}
			dict, isDict := d.stack[len(d.stack)-1].(Dict)
			if !isDict || md >= fastMaxDepth || len(dict)+len(items)/2 > fastMaxDict {
				return nil, false
			}
			for k := 0; k < len(items); k += 2 {
				key, isStr := items[k].(string)
				if !isStr {
					return nil, false // other keys: Python's equality rules, left to og-rek
				}
				for _, e := range dict {
					if e.Key.(string) == key {
						return nil, false
					}
				}
				dict = append(dict, DictItem{key, items[k+1]})
			}
			sortDict(dict)
			d.stack[len(d.stack)-1] = dict
			d.depth[len(d.depth)-1] = max(d.depth[len(d.depth)-1], md+1)
		default:
			return nil, false
		}
	}
	return nil, false // no STOP
}

// pushText pushes bytes (a copy: values never alias the frame) or a string.
func (d *fastDecoder) pushText(op byte, b []byte) {
	switch op {
	case opShortBinUni, opBinUnicode:
		d.push(string(b), 0)
	default: // bytes, and protocol-1 str read as bytes (og-rek's StrictUnicode)
		d.push(append([]byte{}, b...), 0)
	}
}
