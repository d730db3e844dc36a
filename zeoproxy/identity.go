package zeoproxy

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Client identity for correlation (docs/design.md, rule 2). A remote client
// is its host (all its connections share it, whatever their ports). A
// client on this host is its process: several Zope processes on one host
// must not all look like one client, or every one of them would link with
// the others. When the owner cannot be found the identity is the host:
// coarser, which only links more, and linking more is safe as long as every
// connection of that process gets the same answer (an owner in another pid
// namespace, or this process itself, is never found).
//
// The cost is kept off the relay's path and O(1) per connection
// (docs/zeo-protocol.md §1, "Client identity"): over a Unix socket the
// peer's credentials give the pid; over loopback TCP the socket's inode
// comes from sock_diag for the exact 4-tuple and its owner from an index of
// socket inodes, rebuilt by one /proc scan for a whole batch of connections
// (identity_linux.go). The relay starts at once; only a tpc_begin waits for
// its connection's identity.

// quickIdentity returns the identity of a connection when it needs no
// lookup (ok), else the loopback addresses to look up.
func quickIdentity(c net.Conn) (id string, client, us *net.TCPAddr, ok bool) {
	ra, isTCP := c.RemoteAddr().(*net.TCPAddr)
	if !isTCP {
		// Unix socket: peer credentials name the process.
		if pid := unixPeerPID(c); pid > 0 {
			return "pid:" + strconv.Itoa(pid) + procStart(pid), nil, nil, true
		}
		return "unix:" + c.LocalAddr().String(), nil, nil, true
	}
	host := "host:" + ra.IP.String()
	la, isTCP := c.LocalAddr().(*net.TCPAddr)
	if !ra.IP.IsLoopback() || !isTCP {
		return host, nil, nil, true
	}
	return host, ra, la, false
}

// pidIdentity is the identity of a local client process seen from host.
func pidIdentity(pid int, host string) string {
	return "pid:" + strconv.Itoa(pid) + procStart(pid) + "@" + host
}

// procStart returns "/<start time>" of a process so that a reused pid is not
// mistaken for the same client.
func procStart(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// Field 22 (starttime) counts after the command name, which ends at ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f := strings.Fields(s[i+1:])
		if len(f) > 19 {
			return "/" + f[19]
		}
	}
	return ""
}
