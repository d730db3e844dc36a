package txn

import (
	"fmt"
	"net"
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

// ClassicStorageIDOf is the storage id for the address clients dial given
// as one string, "host:port" or "unix:/path" (the form the configuration
// writes addresses in): ClassicStorageID or ClassicUnixStorageID. An
// address that is not host:port is kept whole, as a unix path would be.
// The configuration names its storages by it, and the relay the storages
// the configuration does not list.
func ClassicStorageIDOf(addr, name string) string {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return ClassicUnixStorageID(path, name)
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return ClassicUnixStorageID(addr, name)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return ClassicUnixStorageID(addr, name)
	}
	return ClassicStorageID(host, port, name)
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
