package classic

import (
	"bufio"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tidstorage/tidstorage/internal/txn"
)

const (
	readBufSize = 16 << 10
	// flushThreshold bounds the replies held back while a peer pipelines
	// DUMPs faster than it reads.
	flushThreshold = 64 << 10
)

// conn serves one client connection.
type conn struct {
	s    *Server
	nc   net.Conn
	peer string
	log  hclog.Logger

	out      []byte // replies not sent yet
	writeErr error

	// idleSince is when the connection began to wait for a command with
	// nothing buffered (unix ns); 0 while a command is being read or run.
	idleSince atomic.Int64
	// reporter: it sent BEGIN, COMMIT or ABORT (a patched Zope). It is
	// never closed for idleness nor evicted: its client would lose the
	// first report written after the close.
	reporter atomic.Bool
	// evicted: closed to admit a new connection (the reserve).
	evicted atomic.Bool
}

// Read feeds the decoder. Pending replies are sent before waiting for more
// input: a pipelining peer gets its replies in batches, and a peer waiting
// for a reply is never left waiting while the server waits for it.
func (c *conn) Read(p []byte) (int, error) {
	if len(c.out) > 0 {
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	n, err := c.nc.Read(p)
	if n > 0 {
		c.idleSince.Store(0)
	}
	return n, err
}

func (c *conn) flush() error {
	if c.writeErr != nil {
		return c.writeErr
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout)); err != nil {
		c.writeErr = err
		return err
	}
	_, err := c.nc.Write(c.out)
	c.out = c.out[:0]
	c.writeErr = err
	return err
}

func (c *conn) serve() {
	// Connect, quit and disconnect are DEBUG: a site polling DUMP opens and
	// closes a connection each time, and two INFO lines per poll flood the log.
	c.log.Debug("client connected")
	opts := &c.s.opts
	br := bufio.NewReaderSize(c, readBufSize)
	d := newDecoder(br, opts.MaxFieldSize, opts.MaxCount)
	d.maxTotal = opts.MaxCommandSize
	backend := c.s.backend
	for {
		if opts.IdleTimeout > 0 && !c.reporter.Load() {
			c.nc.SetReadDeadline(time.Now().Add(opts.IdleTimeout))
		}
		if br.Buffered() == 0 {
			c.idleSince.Store(time.Now().UnixNano())
		}
		cmd, err := d.readCommand()
		c.idleSince.Store(0)
		if err != nil {
			c.end(err)
			return
		}
		c.s.stats.commands[cmd.kind].Add(1)
		switch cmd.kind {
		case kindBegin:
			c.becomeReporter()
			backend.ClassicBegin(cmd.id, cmd.storages)
		case kindAbort:
			c.becomeReporter()
			backend.ClassicAbort(cmd.id)
		case kindCommit:
			c.becomeReporter()
			backend.ClassicCommit(cmd.id, cmd.tids, cmd.none)
		case kindDump:
			c.out = c.appendDump(c.out, backend.Dump())
		case kindBootstraped:
			v := uint64(0)
			if backend.Bootstrapped() {
				v = 1
			}
			c.out = appendUint(c.out, v)
		case kindQuit:
			if len(c.out) > 0 && c.flush() != nil {
				c.logWriteError()
			}
			c.log.Debug("client quit")
			return
		}
		if len(c.out) >= flushThreshold && c.flush() != nil {
			c.logWriteError()
			return
		}
	}
}

// becomeReporter marks a connection that reported a transaction: no idle
// timeout (its read deadline is lifted) and no eviction from then on.
func (c *conn) becomeReporter() {
	if !c.reporter.Swap(true) && c.s.opts.IdleTimeout > 0 {
		c.nc.SetReadDeadline(time.Time{})
	}
}

// appendDump encodes the published values. A storage id the protocol cannot
// carry (it holds "\n" or "\r") is left out and logged rather than breaking
// every DUMP.
func (c *conn) appendDump(dst []byte, m map[string]txn.TID) []byte {
	out, err := appendDict(dst, m)
	if err == nil {
		return out
	}
	var bad []string
	clean := make(map[string]txn.TID, len(m))
	for k, v := range m {
		if strings.ContainsAny(k, "\n\r") {
			bad = append(bad, k)
			continue
		}
		clean[k] = v
	}
	slices.Sort(bad)
	c.log.Error("DUMP: storage ids containing \\n or \\r left out of the reply", "storages", bad)
	out, _ = appendDict(dst, clean)
	return out
}

// end logs why the connection ends. Replies to the commands read before the
// end are sent first: the stream was valid up to there.
func (c *conn) end(err error) {
	if c.writeErr != nil {
		c.logWriteError()
		return
	}
	if len(c.out) > 0 && c.flush() != nil {
		c.logWriteError()
	}
	var fe *fieldError
	var ne net.Error
	switch {
	case err == io.EOF:
		c.log.Debug("client disconnected")
	case c.s.isClosed():
		c.log.Debug("connection closed by server shutdown", "error", err)
	case c.evicted.Load():
		c.log.Info("idle connection closed to admit a new one (max_connections reached)")
	case errors.As(err, &ne) && ne.Timeout() && c.s.opts.IdleTimeout > 0:
		c.s.stats.idleClosed.Add(1)
		c.log.Info("closing idle connection", "idle_timeout", c.s.opts.IdleTimeout)
	case errors.Is(err, ErrProtocol):
		c.s.stats.protocolErrors.Add(1)
		c.log.Error("closing connection: bad input", "error", err)
	case errors.As(err, &fe) && (fe.cmd != "" || errors.Is(err, io.ErrUnexpectedEOF)):
		c.s.stats.torn.Add(1)
		c.log.Warn("connection ended inside a command; command discarded", "error", err)
	default:
		c.log.Info("connection ended", "error", err)
	}
}

func (c *conn) logWriteError() {
	c.log.Warn("could not send reply; closing connection", "error", c.writeErr)
}
