package zrpc

import (
	"fmt"
	"math"
	"math/big"
	"sort"
)

// Value is a decoded Python value in canonical form, the same for both
// encodings:
//
//	None          nil
//	bool          bool
//	int           int64, or *big.Int when outside int64 (e.g. a txnid ≥ 2^63)
//	float         float64
//	bytes         []byte (also ZEO 4's Python 2 str: oids, tids, names)
//	str           string
//	tuple         Tuple (msgpack arrays always decode as Tuple, like ZEO's use_list=False)
//	list          List
//	dict          Dict (items in wire order for msgpack, sorted by key for pickle)
//	other         Opaque (pickled objects the envelope may carry, e.g. ZEO 4 exceptions)
type Value = any

// Tuple is a Python tuple.
type Tuple []Value

// List is a Python list.
type List []Value

// DictItem is one key/value pair of a Dict.
type DictItem struct {
	Key, Value Value
}

// Dict is a Python dict as an ordered list of items.
type Dict []DictItem

// Get returns the value for a str (or bytes) key.
func (d Dict) Get(key string) (Value, bool) {
	for _, it := range d {
		switch k := it.Key.(type) {
		case string:
			if k == key {
				return it.Value, true
			}
		case []byte:
			if string(k) == key {
				return it.Value, true
			}
		}
	}
	return nil, false
}

// Opaque is a pickled object zrpc does not model (GLOBAL/REDUCE/BUILD
// results such as ZEO 4 exception instances): its og-rek form is kept.
type Opaque struct{ V any }

func (o Opaque) String() string { return fmt.Sprintf("Opaque(%v)", o.V) }

// sortDict orders items deterministically (pickle dicts decoded by og-rek
// come out in hash order).
func sortDict(d Dict) {
	sort.SliceStable(d, func(i, j int) bool { return keyLess(d[i].Key, d[j].Key) })
}

func keyRank(v Value) int {
	switch v.(type) {
	case nil:
		return 0
	case bool:
		return 1
	case int64, *big.Int, float64:
		return 2
	case []byte:
		return 3
	case string:
		return 4
	}
	return 5
}

func keyLess(a, b Value) bool {
	ra, rb := keyRank(a), keyRank(b)
	if ra != rb {
		return ra < rb
	}
	switch x := a.(type) {
	case bool:
		return !x && b.(bool)
	case []byte:
		return string(x) < string(b.([]byte))
	case string:
		return x < b.(string)
	case int64:
		if y, ok := b.(int64); ok {
			return x < y
		}
	}
	return fmt.Sprint(a) < fmt.Sprint(b)
}

// AsBytes accepts bytes (and, for tolerance, str) values.
func AsBytes(v Value) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case string:
		return []byte(x), nil
	}
	return nil, fmt.Errorf("want bytes, got %s", typeName(v))
}

// AsOptBytes is AsBytes that maps None to nil.
func AsOptBytes(v Value) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return AsBytes(v)
}

// AsString accepts str, and bytes (ZEO 4 / Python 2 str), as a Go string.
func AsString(v Value) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	}
	return "", fmt.Errorf("want str, got %s", typeName(v))
}

// AsInt64 accepts ints (and bools, which Python treats as ints).
func AsInt64(v Value) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), nil
		}
		return 0, fmt.Errorf("int %s out of int64 range", x)
	}
	return 0, fmt.Errorf("want int, got %s", typeName(v))
}

// AsUint64 accepts non-negative ints below 2^64 (txnids are CPython id()s).
func AsUint64(v Value) (uint64, error) {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return 0, fmt.Errorf("want unsigned int, got %d", x)
		}
		return uint64(x), nil
	case *big.Int:
		if x.Sign() >= 0 && x.IsUint64() {
			return x.Uint64(), nil
		}
		return 0, fmt.Errorf("int %s out of uint64 range", x)
	}
	return 0, fmt.Errorf("want int, got %s", typeName(v))
}

// AsBool accepts bool and int (ZEO 4 clients send ints for flags).
func AsBool(v Value) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int64:
		return x != 0, nil
	}
	return false, fmt.Errorf("want bool, got %s", typeName(v))
}

// AsSeq accepts tuples and lists.
func AsSeq(v Value) ([]Value, error) {
	switch x := v.(type) {
	case Tuple:
		return x, nil
	case List:
		return x, nil
	}
	return nil, fmt.Errorf("want tuple or list, got %s", typeName(v))
}

// AsDict accepts dicts (None gives an empty Dict).
func AsDict(v Value) (Dict, error) {
	switch x := v.(type) {
	case Dict:
		return x, nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("want dict, got %s", typeName(v))
}

// Uint64Value is the canonical Value of an unsigned int.
func Uint64Value(u uint64) Value {
	if u <= math.MaxInt64 {
		return int64(u)
	}
	return new(big.Int).SetUint64(u)
}

func typeName(v Value) string {
	switch v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case []byte:
		return "bytes"
	case string:
		return "str"
	case Tuple:
		return "tuple"
	case List:
		return "list"
	case Dict:
		return "dict"
	}
	return fmt.Sprintf("%T", v)
}

// normInt turns a *big.Int that fits into int64 into int64.
func normInt(b *big.Int) Value {
	if b.IsInt64() {
		return b.Int64()
	}
	return b
}
