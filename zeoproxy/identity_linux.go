package zeoproxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func unixPeerPID(c net.Conn) int {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0
	}
	pid := 0
	_ = raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			pid = int(cred.Pid)
		}
	})
	return pid
}

// minScanGap is the least time between two /proc scans: connections that
// arrive meanwhile wait and are resolved together by the next scan, so a
// burst costs a few scans, not one per connection, and the scans never take
// more than a fraction of a core.
const minScanGap = 100 * time.Millisecond

// owners finds the process that owns the client end of a loopback
// connection, off the relay's path. One goroutine takes the waiting
// connections in batches: sock_diag gives each client socket's inode and
// uid for its exact 4-tuple (O(1) in the kernel); an inode found in the
// index of the last scan, and still linked from the same descriptor, is
// resolved at once; the others wait for one new scan of the /proc/PID/fd
// links of the processes of those uids, which indexes every socket they
// own. This process is never scanned (it is never its own client).
type owners struct {
	self  int
	mu    sync.Mutex
	queue []ownerReq
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	// the worker's own
	index    map[uint32]sockRef // socket inode → owning descriptor, from the last scan
	nl       int                // netlink socket, -1 when closed
	req, buf []byte
	seq      uint32
	lastScan time.Time
	scans    int
}

type ownerReq struct {
	c          *conn
	client, us *net.TCPAddr
	host       string
}

type sockRef struct{ pid, fd int }

func newOwners() *owners {
	o := &owners{self: os.Getpid(), wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		index: map[uint32]sockRef{}, nl: -1, req: make([]byte, diagReqLen), buf: make([]byte, 8192)}
	go o.run()
	return o
}

// resolve queues c; its identity is set (c.setIdentity) when found.
func (o *owners) resolve(c *conn, client, us *net.TCPAddr, host string) {
	o.mu.Lock()
	o.queue = append(o.queue, ownerReq{c, client, us, host})
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *owners) close() {
	close(o.stop)
	<-o.done
}

func (o *owners) take() []ownerReq {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.queue
	o.queue = nil
	return q
}

type ownerMiss struct {
	r          ownerReq
	inode, uid uint32
}

func (o *owners) run() {
	defer close(o.done)
	defer o.closeNetlink()
	var misses []ownerMiss
	for {
		select {
		case <-o.stop:
			o.giveUp(misses)
			return
		case <-o.wake:
		}
		misses = o.lookup(o.take(), misses[:0])
		if len(misses) == 0 {
			continue
		}
		if wait := time.Until(o.lastScan.Add(minScanGap)); wait > 0 {
			select {
			case <-o.stop:
				o.giveUp(misses)
				return
			case <-time.After(wait):
			}
			misses = o.lookup(o.take(), misses) // those that came meanwhile join this scan
		}
		uids := map[uint32]bool{}
		for _, m := range misses {
			uids[m.uid] = true
		}
		o.scan(uids)
		for _, m := range misses {
			if ref, ok := o.index[m.inode]; ok {
				m.r.c.setIdentity(pidIdentity(ref.pid, m.r.host[len("host:"):]))
			} else {
				m.r.c.setIdentity(m.r.host)
			}
		}
		misses = misses[:0]
	}
}

// giveUp gives every waiting connection its host identity (the proxy is
// closing).
func (o *owners) giveUp(misses []ownerMiss) {
	for _, m := range misses {
		m.r.c.setIdentity(m.r.host)
	}
	for _, r := range o.take() {
		r.c.setIdentity(r.host)
	}
}

// lookup resolves what the index already knows and appends the rest to
// misses.
func (o *owners) lookup(reqs []ownerReq, misses []ownerMiss) []ownerMiss {
	for _, r := range reqs {
		inode, uid, err := o.diag(r.client, r.us)
		if err != nil || inode == 0 {
			// Gone already, or sock_diag unavailable: nothing to scan for.
			r.c.setIdentity(r.host)
			continue
		}
		if ref, ok := o.index[inode]; ok && linksTo(ref, inode) {
			r.c.setIdentity(pidIdentity(ref.pid, r.host[len("host:"):]))
			continue
		}
		misses = append(misses, ownerMiss{r: r, inode: inode, uid: uid})
	}
	return misses
}

func linksTo(ref sockRef, inode uint32) bool {
	l, err := os.Readlink("/proc/" + strconv.Itoa(ref.pid) + "/fd/" + strconv.Itoa(ref.fd))
	return err == nil && l == "socket:["+strconv.FormatUint(uint64(inode), 10)+"]"
}

// scan rebuilds the index from the socket links of every process owned by
// one of uids (this one excepted).
func (o *owners) scan(uids map[uint32]bool) {
	o.scans++
	index := make(map[uint32]sockRef, len(o.index))
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == o.self {
			continue
		}
		dir := "/proc/" + p.Name()
		var st unix.Stat_t
		if unix.Stat(dir, &st) != nil || !uids[st.Uid] {
			continue
		}
		fds, _ := os.ReadDir(dir + "/fd")
		for _, fd := range fds {
			l, err := os.Readlink(dir + "/fd/" + fd.Name())
			if err != nil || !strings.HasPrefix(l, "socket:[") {
				continue
			}
			inode, err := strconv.ParseUint(strings.TrimSuffix(l[len("socket:["):], "]"), 10, 32)
			n, nerr := strconv.Atoi(fd.Name())
			if err == nil && nerr == nil {
				index[uint32(inode)] = sockRef{pid, n}
			}
		}
	}
	o.index = index
	o.lastScan = time.Now()
}

// inet_diag_req_v2 after a netlink header, and the offsets of an
// inet_diag_msg's uid and inode (linux/inet_diag.h).
const (
	nlHdrLen    = unix.SizeofNlMsghdr
	diagReqLen  = nlHdrLen + 56
	diagMsgLen  = 72
	diagMsgUID  = 64
	diagMsgIno  = 68
	diagTimeout = time.Second
)

// diag asks sock_diag for the TCP socket whose local end is client and
// remote end us (the client's own socket), exactly: no dump, no flag but
// NLM_F_REQUEST, so the kernel looks that one socket up.
func (o *owners) diag(client, us *net.TCPAddr) (inode, uid uint32, err error) {
	if o.nl < 0 {
		if err := o.openNetlink(); err != nil {
			return 0, 0, err
		}
	}
	family, src, dst := byte(unix.AF_INET), client.IP.To4(), us.IP.To4()
	if src == nil || dst == nil {
		family, src, dst = unix.AF_INET6, client.IP.To16(), us.IP.To16()
	}
	o.seq++
	b := o.req
	clear(b)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], diagReqLen)
	ne.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(b[8:], o.seq)
	r := b[nlHdrLen:]
	r[0], r[1] = family, unix.IPPROTO_TCP
	ne.PutUint32(r[4:], 0xffffffff) // every state
	id := r[8:]
	binary.BigEndian.PutUint16(id[0:], uint16(client.Port))
	binary.BigEndian.PutUint16(id[2:], uint16(us.Port))
	copy(id[4:20], src)
	copy(id[20:36], dst)
	ne.PutUint32(id[40:], 0xffffffff) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], 0xffffffff)
	if err := unix.Sendto(o.nl, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		o.closeNetlink()
		return 0, 0, fmt.Errorf("sock_diag: send: %w", err)
	}
	for range 16 { // skip answers to earlier requests that timed out
		n, _, err := unix.Recvfrom(o.nl, o.buf, 0)
		if err != nil {
			o.closeNetlink()
			return 0, 0, fmt.Errorf("sock_diag: receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(o.buf[:n])
		if err != nil {
			return 0, 0, fmt.Errorf("sock_diag: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != o.seq {
				continue
			}
			switch {
			case m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4:
				return 0, 0, fmt.Errorf("sock_diag: %w", syscall.Errno(-int32(ne.Uint32(m.Data))))
			case m.Header.Type == unix.SOCK_DIAG_BY_FAMILY && len(m.Data) >= diagMsgLen:
				return ne.Uint32(m.Data[diagMsgIno:]), ne.Uint32(m.Data[diagMsgUID:]), nil
			}
			return 0, 0, errors.New("sock_diag: unexpected answer")
		}
	}
	return 0, 0, errors.New("sock_diag: no answer")
}

func (o *owners) openNetlink() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return fmt.Errorf("sock_diag: socket: %w", err)
	}
	tv := unix.NsecToTimeval(diagTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		_ = unix.Close(fd)
		return fmt.Errorf("sock_diag: timeout: %w", err)
	}
	o.nl = fd
	return nil
}

func (o *owners) closeNetlink() {
	if o.nl >= 0 {
		_ = unix.Close(o.nl)
		o.nl = -1
	}
}
