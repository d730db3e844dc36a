package classic

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// DefaultTimeout is used by Dial when given a timeout of zero or less.
const DefaultTimeout = 10 * time.Second

// maxReplySize bounds a DUMP reply: generous (DefaultMaxCount storages with
// long ids), but a misbehaving server cannot make the client buffer forever.
const maxReplySize = 64 << 20

// ErrClientClosed is returned by calls on a closed Client, including one
// closed because an earlier call failed half-way (its stream could no longer
// be trusted).
var ErrClientClosed = errors.New("classic: client closed")

// Client speaks the classic protocol to a server. It is safe for concurrent
// use; calls are serialised. Every call is bounded by the timeout given to
// Dial. After a call that failed on the connection, the connection is
// closed, since a half-sent command or half-read reply leaves the stream out
// of step; a value refused before sending (ErrForbiddenByte) leaves it open.
type Client struct {
	mu      sync.Mutex
	nc      net.Conn
	dec     *decoder
	timeout time.Duration
	buf     []byte
	err     error // set once the client is unusable
}

// Dial connects to a classic server at the TCP address addr.
func Dial(addr string, timeout time.Duration) (*Client, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("classic: dial %s: %w", addr, err)
	}
	dec := newDecoder(bufio.NewReader(nc), DefaultMaxFieldSize, DefaultMaxCount)
	dec.maxTotal = maxReplySize
	return &Client{nc: nc, dec: dec, timeout: timeout}, nil
}

// Begin announces that transaction id starts committing on storages.
func (c *Client) Begin(id string, storages []string) error {
	return c.send(&command{kind: kindBegin, id: id, storages: storages})
}

// Abort ends transaction id without commits.
func (c *Client) Abort(id string) error {
	return c.send(&command{kind: kindAbort, id: id})
}

// Commit ends transaction id with the committed TID of each storage.
func (c *Client) Commit(id string, tids map[string]txn.TID) error {
	return c.send(&command{kind: kindCommit, id: id, tids: tids})
}

// Dump returns the published TIDs.
func (c *Client) Dump() (map[string]txn.TID, error) {
	var m map[string]txn.TID
	err := c.roundTrip(kindDump, func() (err error) {
		m, err = c.dec.readDict()
		return err
	})
	return m, err
}

// Bootstraped reports whether the server finished its bootstrap (the
// protocol's spelling).
func (c *Client) Bootstraped() (bool, error) {
	var done bool
	err := c.roundTrip(kindBootstraped, func() error {
		v, err := c.dec.readInt("BOOTSTRAPED reply")
		if err != nil {
			return err
		}
		if v > 1 {
			return fmt.Errorf("%w: BOOTSTRAPED reply %d is neither 0 nor 1", ErrProtocol, v)
		}
		done = v == 1
		return nil
	})
	return done, err
}

// Quit asks the server to close the connection, then closes it.
func (c *Client) Quit() error {
	err := c.send(&command{kind: kindQuit})
	c.Close()
	return err
}

// Close closes the connection without a QUIT.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil // already closed
	}
	c.err = ErrClientClosed
	return c.nc.Close()
}

// send writes one command; nothing is sent if it cannot be encoded.
func (c *Client) send(cmd *command) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	buf, err := cmd.appendTo(c.buf[:0])
	if err != nil {
		return err
	}
	c.buf = buf
	return c.write(cmd.kind)
}

func (c *Client) write(k kind) error {
	if err := c.nc.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return c.fail(fmt.Errorf("classic: %v: %w", k, err))
	}
	if _, err := c.nc.Write(c.buf); err != nil {
		return c.fail(fmt.Errorf("classic: %v: send: %w", k, err))
	}
	return nil
}

// roundTrip sends a command without arguments and reads its reply.
func (c *Client) roundTrip(k kind, read func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.buf = append(append(c.buf[:0], kindNames[k]...), '\n')
	if err := c.write(k); err != nil {
		return err
	}
	if err := read(); err != nil {
		return c.fail(fmt.Errorf("classic: %v: reply: %w", k, err))
	}
	return nil
}

// fail closes the connection after an error that may have left the stream
// out of step, and returns err.
func (c *Client) fail(err error) error {
	c.err = fmt.Errorf("%w after: %v", ErrClientClosed, err)
	c.nc.Close()
	return err
}
