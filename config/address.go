package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// Address is a listen or dial address as written in the config: "host:port"
// or "unix:/absolute/path". The host is kept exactly as written because the
// default storage id is built from it, and patched Zopes key storages by the
// address text of their zope.conf ("localhost" and "127.0.0.1" differ).
type Address struct {
	Network string // "tcp" or "unix"; "" for the zero Address
	Host    string // tcp: host as written, without IPv6 brackets; "" = every interface
	Port    int    // tcp only
	Path    string // unix only: absolute socket path
}

// maxUnixPath is the size of sun_path on Linux minus the terminating NUL.
const maxUnixPath = 107

// ParseAddress parses "host:port", "[v6]:port" or "unix:/path".
func ParseAddress(s string) (Address, error) {
	if rest, ok := strings.CutPrefix(s, "unix:"); ok {
		switch {
		case rest == "":
			return Address{}, fmt.Errorf("%q: unix socket path is empty", s)
		case !strings.HasPrefix(rest, "/"):
			return Address{}, fmt.Errorf("%q: unix socket path must be absolute", s)
		case len(rest) > maxUnixPath:
			return Address{}, fmt.Errorf("%q: unix socket path is %d bytes long, the limit is %d", s, len(rest), maxUnixPath)
		}
		return Address{Network: "unix", Path: rest}, nil
	}
	host, portText, err := net.SplitHostPort(s)
	if err != nil {
		return Address{}, fmt.Errorf("%q is not host:port or unix:/path (%v)", s, strings.TrimPrefix(err.Error(), "address "+s+": "))
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return Address{}, fmt.Errorf("%q: port %q is not a number between 0 and 65535", s, portText)
	}
	if strings.ContainsAny(host, " \t\r\n/") {
		return Address{}, fmt.Errorf("%q: host %q contains a space or a slash", s, host)
	}
	return Address{Network: "tcp", Host: host, Port: port}, nil
}

// Loopback reports whether a is a TCP address on this host's loopback
// ("localhost", 127.0.0.0/8, ::1).
func (a Address) Loopback() bool {
	if a.Network != "tcp" {
		return false
	}
	if strings.EqualFold(a.Host, "localhost") {
		return true
	}
	ip := net.ParseIP(a.Host)
	return ip != nil && ip.IsLoopback()
}

// IsZero reports whether a is the zero Address (not configured).
func (a Address) IsZero() bool { return a.Network == "" }

// IsUnix reports whether a is a unix socket address.
func (a Address) IsUnix() bool { return a.Network == "unix" }

// String returns the address in config syntax.
func (a Address) String() string {
	switch a.Network {
	case "unix":
		return "unix:" + a.Path
	case "tcp":
		return net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	}
	return ""
}

// NetAddress returns the address argument for net.Listen / net.Dial with
// network a.Network.
func (a Address) NetAddress() string {
	if a.Network == "unix" {
		return a.Path
	}
	return a.String()
}

// wildcard reports whether a tcp address listens on every interface, so that
// clients cannot reach it by the host written here.
func (a Address) wildcard() bool {
	if a.Network != "tcp" {
		return false
	}
	if a.Host == "" {
		return true
	}
	ip := net.ParseIP(a.Host)
	return ip != nil && ip.IsUnspecified()
}

// overlaps reports whether two listen addresses would collide on bind.
func (a Address) overlaps(b Address) bool {
	if a.Network != b.Network {
		return false
	}
	if a.Network == "unix" {
		return a.Path == b.Path
	}
	if a.Port != b.Port || a.Port == 0 {
		return false // port 0 picks a free port each time
	}
	return a.Host == b.Host || a.wildcard() || b.wildcard()
}

// DefaultStorageID returns the storage id a patched Zope would report for the
// storage named name behind addr, the address clients dial (ZEO.ClientAddress):
// txn.ClassicStorageIDOf, the rule the relay names storages the config does
// not list by.
func DefaultStorageID(addr Address, name string) string {
	return txn.ClassicStorageIDOf(addr.String(), name)
}
