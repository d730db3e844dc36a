// Package rawconn reads and writes sockets with raw read(2) and write(2)
// calls through their syscall.RawConn (Linux; elsewhere, and for
// connections that are not plain sockets, the connection's own Read and
// Write).
//
// Why: the sockets of package net are non-blocking (the runtime's poller
// waits for them), so a read or write never blocks; yet net.Conn's Read and
// Write go through the runtime's system-call bookkeeping, which wakes the
// runtime's monitor thread (sysmon) whenever the process was idle. On a
// relay that handles one small burst of frames at a time — a ZEO proxy
// under a committing client — that is a thread wake-up, and a millisecond
// of sysmon polling every 20 µs, per burst: more CPU than the relaying.
// A raw call skips it. Waiting is still the runtime poller's, as for
// net.Conn, so deadlines and Close from another goroutine behave the same;
// errors are the poller's (net.ErrClosed, os.ErrDeadlineExceeded, wrapped
// in *net.OpError) or an *os.SyscallError, and a closed peer reads as
// io.EOF.
package rawconn
