package zrpc

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// CanonicalText renders a decoded value the same way whatever the encoding it came
// in (pickle sends str or bytes, msgpack str or bin; dict order may differ), so
// that one transaction's extension gives the same correlation key on every
// connection, and reads well in reports.
func CanonicalText(v Value) string {
	var b strings.Builder
	writeCanon(&b, v, 0)
	return b.String()
}

func writeCanon(b *strings.Builder, v Value, depth int) {
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
	case Tuple:
		writeSeq(b, x, depth, "(", ")")
	case List:
		writeSeq(b, x, depth, "[", "]")
	case Dict:
		items := make([][2]string, len(x))
		for i, it := range x {
			items[i] = [2]string{CanonicalText(it.Key), CanonicalText(it.Value)}
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

func writeSeq(b *strings.Builder, s []Value, depth int, open, close string) {
	b.WriteString(open)
	for i, e := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		writeCanon(b, e, depth+1)
	}
	b.WriteString(close)
}
