package zeoproxy

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clientIdentity names the client side of a connection for correlation
// (docs/design.md, rule 2). A remote client is its host (all its connections share
// it, whatever their ports). A client on this host is its process, found once
// per connection through /proc: several Zope processes on one host must not
// all look like one client, or every one of them would link with the others.
// When the owner cannot be found the identity is the host: coarser, which
// only links more, and linking more is safe.
func clientIdentity(c net.Conn) string {
	ra, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		// Unix socket: peer credentials name the process.
		if pid := unixPeerPID(c); pid > 0 {
			return "pid:" + strconv.Itoa(pid) + procStart(pid)
		}
		return "unix:" + c.LocalAddr().String()
	}
	host := ra.IP.String()
	if ra.IP.IsLoopback() {
		if la, ok := c.LocalAddr().(*net.TCPAddr); ok {
			if pid := tcpOwnerPID(ra, la); pid > 0 {
				return "pid:" + strconv.Itoa(pid) + procStart(pid) + "@" + host
			}
		}
	}
	return "host:" + host
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

// tcpOwnerPID finds the process that owns the socket whose local address is
// the client's address and whose remote address is ours (Linux only).
func tcpOwnerPID(client, us *net.TCPAddr) int {
	files := []string{"/proc/net/tcp"}
	if client.IP.To4() == nil {
		files = []string{"/proc/net/tcp6"}
	}
	want1, want2 := procAddr(client), procAddr(us)
	inode := ""
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 9 && strings.EqualFold(fields[1], want1) && strings.EqualFold(fields[2], want2) {
				inode = fields[9]
				break
			}
		}
		fh.Close()
		if inode != "" {
			break
		}
	}
	if inode == "" || inode == "0" {
		return 0
	}
	return socketOwner("socket:[" + inode + "]")
}

// procAddr formats an address as /proc/net/tcp does: the IP in host byte
// order (little-endian words on x86) and the port, both in hex.
func procAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	if ip == nil {
		ip = a.IP.To16()
	}
	b := make([]byte, len(ip))
	for i := 0; i < len(ip); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = ip[i+3], ip[i+2], ip[i+1], ip[i]
	}
	return strings.ToUpper(hex.EncodeToString(b)) + ":" + fmt.Sprintf("%04X", a.Port)
}

// socketOwner scans /proc/*/fd for a link to the socket.
func socketOwner(link string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range procs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil || pid == os.Getpid() {
			continue
		}
		fds, err := os.ReadDir(dir + "/fd")
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if target, err := os.Readlink(dir + "/fd/" + fd.Name()); err == nil && target == link {
				return pid
			}
		}
	}
	return 0
}
