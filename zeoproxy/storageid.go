package zeoproxy

import (
	"net"
	"strconv"
	"strings"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// classicStorageID names a storage the configuration did not list: the id a
// patched Zope reports for it when it dials addr ("host:port" or
// "unix:/path"), by the same rule the configuration uses for the storages it
// lists (txn.ClassicStorageID; config.DefaultStorageID). An address that is
// not host:port is kept whole, as a unix path would be.
func classicStorageID(addr, name string) string {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return txn.ClassicUnixStorageID(path, name)
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return txn.ClassicUnixStorageID(addr, name)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return txn.ClassicUnixStorageID(addr, name)
	}
	return txn.ClassicStorageID(host, port, name)
}
