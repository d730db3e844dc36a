package txn

import (
	"fmt"
	"strconv"
	"strings"
)

// ClassicStorageID is the storage id a patched Zope (Products.TIDStorage)
// reports for the storage named name that it reaches at host:port: the Python
// repr of ((address,), name), here `((('<host>', <port>),), '<name>')`.
// It is the default key of a storage in DUMP, the status file and backups
// (docs/design.md, "Storage ids"): the address must be the one clients dial.
func ClassicStorageID(host string, port int, name string) string {
	return "(((" + PyRepr(host) + ", " + strconv.Itoa(port) + "),), " + PyRepr(name) + ")"
}

// ClassicUnixStorageID is ClassicStorageID for a unix-socket address: ZEO's
// ClientStorage keeps it as the bare path, so the id is `(('<path>',), '<name>')`.
func ClassicUnixStorageID(path, name string) string {
	return "((" + PyRepr(path) + ",), " + PyRepr(name) + ")"
}

// PyRepr returns the Python 3 repr of s (a str): single quotes unless s
// contains a single quote and no double quote, the usual backslash escapes,
// and \xNN for other control characters.
func PyRepr(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}
