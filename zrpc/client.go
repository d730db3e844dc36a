package zrpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/tidstorage/tidstorage/internal/rawconn"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// ClientOptions configure Dial. The zero value is usable.
type ClientOptions struct {
	// CallTimeout bounds every call whose context has no deadline
	// (default 30 s). The handshake is bounded by the Dial context, or by
	// CallTimeout if it has none.
	CallTimeout time.Duration
	// Encoding, if set, is the letter answered to the server instead of
	// echoing the server's own (a ZEO server accepts either).
	Encoding Encoding
	// MaxFrameSize bounds incoming frames (default DefaultMaxFrameSize).
	MaxFrameSize uint32
	// OnAsync, if set, receives server-initiated one-way calls
	// (invalidateTransaction, info, receiveBlob*). It runs on the reader
	// goroutine: return quickly and do not call the client from it.
	OnAsync func(*Message)
	// OnInvalidate, if set, receives the TID of every invalidateTransaction
	// instead of OnAsync and Asyncs, read from the frame without decoding
	// it (zero allocations: a watcher's connection gets one per commit of
	// its storage). A frame whose TID cannot be read that way is decoded
	// and handed to OnAsync and Asyncs as any other. Same rules as OnAsync.
	OnInvalidate func(txn.TID)
	// Asyncs, if set, also receives every server-initiated one-way call, in
	// the order the server sent them. See AsyncWait for a full channel.
	Asyncs chan<- *Message
	// AsyncWait bounds how long the reader waits for room in a full Asyncs
	// channel (0: not at all). Past it the connection is closed with
	// ErrAsyncOverflow rather than the call dropped: a consumer that missed
	// an invalidation would be silently wrong, one whose connection broke
	// knows it must resynchronise.
	AsyncWait time.Duration
	// Heartbeat, if positive, is the interval of ping calls made once
	// Register succeeded (ZEO closes a connection that calls anything but
	// register first). A ping without a reply within HeartbeatTimeout
	// closes the connection with ErrHeartbeat, so that a dead or stalled
	// server is noticed by Done even when the client is otherwise idle
	// (ZEO's own heartbeat is one-way and proves nothing about the peer).
	Heartbeat time.Duration
	// HeartbeatTimeout bounds each ping (default: Heartbeat).
	HeartbeatTimeout time.Duration
	// TLS, if set, makes Dial talk TLS to the server (a ZEO server with
	// <ssl>): the TLS handshake runs first, bounded like the ZEO
	// handshake, and its configuration is used as is (RootCAs,
	// ServerName, client Certificates).
	TLS *tls.Config
}

// ErrClientClosed is wrapped by errors of calls on a closed or broken client.
var ErrClientClosed = errors.New("zrpc: client closed")

// ErrHeartbeat is wrapped (with ErrClientClosed) by the error of a client
// whose server did not answer a heartbeat ping in time.
var ErrHeartbeat = errors.New("zrpc: heartbeat not answered")

// ErrAsyncOverflow is wrapped (with ErrClientClosed) by the error of a
// client whose Asyncs channel stayed full longer than AsyncWait.
var ErrAsyncOverflow = errors.New("zrpc: async channel full")

// Client is a minimal ZEO 5/6 client: one connection bound (after
// Register) to one storage. Calls may be concurrent; replies are matched
// by msgid by a reader goroutine. ZEO servers do not time out idle
// clients, and TCP alone may take many minutes to notice a dead peer: set
// ClientOptions.Heartbeat for a bounded detection time.
type Client struct {
	conn  net.Conn
	w     io.Writer // conn's writer (package rawconn)
	proto Protocol
	enc   Encoding
	opts  ClientOptions

	wmu  sync.Mutex // serialises frame writes
	wbuf []byte

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan *Message
	err     error // set once the connection is unusable
	done    chan struct{}
	closeMu sync.Once

	heartbeatOnce sync.Once
}

// Dial connects to a ZEO server, performs the handshake and starts the
// reader goroutine.
func Dial(ctx context.Context, network, addr string, opts *ClientOptions) (*Client, error) {
	var o ClientOptions
	if opts != nil {
		o = *opts
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 30 * time.Second
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.CallTimeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("zrpc: dial %s: %w", addr, err)
	}
	if o.TLS != nil {
		tc := tls.Client(conn, o.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("zrpc: %s: TLS handshake: %w", addr, err)
		}
		conn = tc
	}
	c, err := newClient(ctx, conn, o)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("zrpc: %s: %w", addr, err)
	}
	return c, nil
}

// NewClient runs the handshake on an established connection.
func NewClient(ctx context.Context, conn net.Conn, opts *ClientOptions) (*Client, error) {
	var o ClientOptions
	if opts != nil {
		o = *opts
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 30 * time.Second
	}
	return newClient(ctx, conn, o)
}

func newClient(ctx context.Context, conn net.Conn, o ClientOptions) (*Client, error) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(o.CallTimeout))
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	// Raw reads and writes (package rawconn): a watcher's connection wakes
	// on every commit of its storage, and with metadata calls the iterator
	// for each.
	r, w := rawconn.Split(conn)
	fr := NewFrameReader(r)
	fr.SetMaxFrameSize(o.MaxFrameSize)
	hello, err := fr.ReadFrame()
	if err != nil {
		return nil, fmt.Errorf("read server handshake: %w", err)
	}
	sp, err := ParseServerHandshake(hello)
	if err != nil {
		return nil, err
	}
	answer, err := ClientAnswer(sp)
	if err != nil {
		return nil, err
	}
	if o.Encoding != 0 {
		answer.Encoding = o.Encoding
	}
	if err := WriteFrame(conn, answer.Bytes()); err != nil {
		return nil, fmt.Errorf("write client handshake: %w", err)
	}
	if !stop() || ctx.Err() != nil {
		return nil, fmt.Errorf("handshake: %w", context.Cause(ctx))
	}
	conn.SetDeadline(time.Time{})
	c := &Client{
		conn:    conn,
		w:       w,
		proto:   answer,
		enc:     answer.Encoding,
		opts:    o,
		pending: make(map[int64]chan *Message),
		done:    make(chan struct{}),
	}
	go c.readLoop(fr)
	return c, nil
}

// Protocol is the negotiated protocol (the client's answer).
func (c *Client) Protocol() Protocol { return c.proto }

// LocalAddr is the client side address of the connection.
func (c *Client) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// Close closes the connection; pending calls fail with ErrClientClosed.
func (c *Client) Close() error {
	var err error
	c.closeMu.Do(func() {
		err = c.conn.Close()
		c.fail(ErrClientClosed)
	})
	return err
}

// Done is closed when the connection is gone.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err reports why the connection is unusable (nil while it is fine).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
	c.pending = nil
}

func (c *Client) readLoop(fr *FrameReader) {
	for {
		p, err := fr.ReadFrame()
		if err != nil {
			c.conn.Close()
			c.fail(fmt.Errorf("%w: read: %w", ErrClientClosed, err))
			return
		}
		if c.opts.OnInvalidate != nil && c.peekInvalidation(p) {
			continue
		}
		m, err := DecodeMessage(c.enc, p)
		if err != nil {
			c.conn.Close()
			c.fail(fmt.Errorf("%w: frame %d: %w", ErrClientClosed, fr.Frames(), err))
			return
		}
		if !m.IsReply() {
			if err := c.dispatchAsync(m); err != nil {
				c.conn.Close()
				c.fail(err)
				return
			}
			continue
		}
		id, ok := m.IntMsgID()
		if !ok {
			continue // we never send tuple msgids
		}
		c.mu.Lock()
		ch := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- m // buffered
		}
	}
}

// peekInvalidation hands an invalidateTransaction's TID to OnInvalidate,
// read by peeking; false for any other frame, or one that does not peek.
func (c *Client) peekInvalidation(p []byte) bool {
	pk, err := PeekMessage(c.enc, p)
	if err != nil || pk.Method != MethodInvalidateTransaction {
		return false
	}
	tid, err := PeekArgTID(c.enc, p, &pk)
	if err != nil {
		return false
	}
	c.opts.OnInvalidate(tid)
	return true
}

// Call sends a sync call and waits for its reply. An error reply is
// returned as *ErrorReply. The context (or CallTimeout) bounds the wait.
func (c *Client) Call(ctx context.Context, name string, args Tuple) (Value, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.CallTimeout)
		defer cancel()
	}
	ch := make(chan *Message, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("zrpc: call %s: %w", name, err)
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()

	if err := c.send(ctx, NewCall(id, name, args)); err != nil {
		c.forget(id)
		return nil, fmt.Errorf("zrpc: call %s (msgid %d): %w", name, id, err)
	}
	select {
	case m := <-ch:
		if err := replyOK(m); err != nil {
			return nil, fmt.Errorf("zrpc: call %s (msgid %d): %w", name, id, err)
		}
		return m.Args, nil
	case <-c.done:
		return nil, fmt.Errorf("zrpc: call %s (msgid %d): %w", name, id, c.Err())
	case <-ctx.Done():
		c.forget(id)
		return nil, fmt.Errorf("zrpc: call %s (msgid %d): %w", name, id, context.Cause(ctx))
	}
}

// Async sends a one-way call.
func (c *Client) Async(ctx context.Context, call Call) error {
	if err := c.Err(); err != nil {
		return err
	}
	if err := c.send(ctx, AsyncMessage(call)); err != nil {
		return fmt.Errorf("zrpc: async %s: %w", call.Method(), err)
	}
	return nil
}

func (c *Client) forget(id int64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *Client) send(ctx context.Context, ms ...*Message) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx) // nothing written: the connection stays usable
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := c.wbuf[:0]
	for _, m := range ms { // several frames go in one write
		h := len(b)
		b = AppendFrameHeader(b, 0)
		var err error
		if b, err = AppendMessage(b, c.enc, m); err != nil {
			return err
		}
		n := len(b) - h - HeaderSize
		if uint64(n) >= macBit {
			return fmt.Errorf("message of %d bytes too large", n)
		}
		b[h], b[h+1], b[h+2], b[h+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	}
	if len(b) <= 1<<20 {
		c.wbuf = b
	}
	dl, _ := ctx.Deadline()
	c.conn.SetWriteDeadline(dl)
	_, err := c.w.Write(b)
	if err != nil {
		// a partial frame leaves the stream unusable
		c.conn.Close()
		c.fail(fmt.Errorf("%w: write: %w", ErrClientClosed, err))
	}
	return err
}

// callN sends n identical sync calls back to back, in one write, and
// hands their replies to each in order until it says no more are wanted:
// one round trip instead of n, for a caller that knows how many answers it
// needs (Iterator.NextN). The replies of the calls not handed over are
// dropped when they come. An error reply ends it with *ErrorReply.
func (c *Client) callN(ctx context.Context, name string, args Tuple, n int, each func(v Value) (more bool, err error)) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.CallTimeout)
		defer cancel()
	}
	ids := make([]int64, n)
	chs := make([]chan *Message, n)
	ms := make([]*Message, n)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("zrpc: call %s: %w", name, err)
	}
	for i := range n {
		c.nextID++
		ids[i], chs[i] = c.nextID, make(chan *Message, 1)
		c.pending[ids[i]] = chs[i]
		ms[i] = NewCall(ids[i], name, args)
	}
	c.mu.Unlock()
	forget := func(from int) {
		c.mu.Lock()
		for _, id := range ids[from:] {
			delete(c.pending, id)
		}
		c.mu.Unlock()
	}
	if err := c.send(ctx, ms...); err != nil {
		forget(0)
		return fmt.Errorf("zrpc: %d calls %s (msgids %d-%d): %w", n, name, ids[0], ids[n-1], err)
	}
	for i := range n {
		select {
		case m := <-chs[i]:
			if err := replyOK(m); err != nil {
				forget(i + 1)
				return fmt.Errorf("zrpc: call %s (msgid %d): %w", name, ids[i], err)
			}
			more, err := each(m.Args)
			if err != nil || !more {
				forget(i + 1)
				return err
			}
		case <-c.done:
			return fmt.Errorf("zrpc: call %s (msgid %d): %w", name, ids[i], c.Err())
		case <-ctx.Done():
			forget(i)
			return fmt.Errorf("zrpc: call %s (msgid %d): %w", name, ids[i], context.Cause(ctx))
		}
	}
	return nil
}

// Register binds the connection to a storage and returns its last
// committed tid (zero TID for an empty storage).
func (c *Client) Register(ctx context.Context, storage string, readOnly bool) (txn.TID, error) {
	r := &Register{Storage: storage, ReadOnly: readOnly}
	v, err := c.Call(ctx, r.Method(), r.Args())
	if err != nil {
		return 0, err
	}
	t, err := ParseTID(v)
	if err != nil {
		return 0, fmt.Errorf("zrpc: register reply: %w", err)
	}
	c.startHeartbeat()
	return t, nil
}

// LastTransaction returns the storage's last committed tid.
func (c *Client) LastTransaction(ctx context.Context) (txn.TID, error) {
	v, err := c.Call(ctx, "lastTransaction", Tuple{})
	if err != nil {
		return 0, err
	}
	t, err := ParseTID(v)
	if err != nil {
		return 0, fmt.Errorf("zrpc: lastTransaction reply: %w", err)
	}
	return t, nil
}

// GetInfo returns the storage info dict (length, size, name, ...).
func (c *Client) GetInfo(ctx context.Context) (Dict, error) {
	v, err := c.Call(ctx, "get_info", Tuple{})
	if err != nil {
		return nil, err
	}
	d, err := AsDict(v)
	if err != nil {
		return nil, fmt.Errorf("zrpc: get_info reply: %w", err)
	}
	return d, nil
}

// Ping round-trips a no-op call.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.Call(ctx, "ping", Tuple{})
	return err
}

// IteratorStart opens a server-side transaction iterator over
// [start, stop] (nil = unbounded) and returns its id.
func (c *Client) IteratorStart(ctx context.Context, start, stop []byte) (int64, error) {
	x := &IteratorStart{Start: start, Stop: stop}
	v, err := c.Call(ctx, x.Method(), x.Args())
	if err != nil {
		return 0, err
	}
	id, err := AsInt64(v)
	if err != nil {
		return 0, fmt.Errorf("zrpc: iterator_start reply: %w", err)
	}
	return id, nil
}

// IteratorNext returns the next transaction, or nil at the end (the server
// then forgets the iterator).
func (c *Client) IteratorNext(ctx context.Context, iid int64) (*TransactionInfo, error) {
	x := &IteratorNext{IID: iid}
	v, err := c.Call(ctx, x.Method(), x.Args())
	if err != nil {
		return nil, err
	}
	return ParseTransactionInfo(v)
}

// Transactions lists up to limit transactions in [start, stop] (nil =
// unbounded); more reports whether the listing stopped at limit. An
// unfinished iterator is released with iterator_gc.
func (c *Client) Transactions(ctx context.Context, start, stop []byte, limit int) (txns []*TransactionInfo, more bool, err error) {
	iid, err := c.IteratorStart(ctx, start, stop)
	if err != nil {
		return nil, false, err
	}
	for len(txns) < limit {
		ti, err := c.IteratorNext(ctx, iid)
		if err != nil {
			return txns, false, err
		}
		if ti == nil {
			return txns, false, nil
		}
		txns = append(txns, ti)
	}
	_ = c.IteratorGC(ctx, iid)
	return txns, true, nil
}

// Ruok sends the 'ruok' status probe and returns the server's JSON answer.
func Ruok(ctx context.Context, network, addr string) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("zrpc: ruok %s: %w", addr, err)
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	fr := NewFrameReader(conn)
	if _, err := fr.ReadFrame(); err != nil {
		return nil, fmt.Errorf("zrpc: ruok %s: read handshake: %w", addr, err)
	}
	if err := WriteFrame(conn, []byte(RuokHandshake)); err != nil {
		return nil, fmt.Errorf("zrpc: ruok %s: %w", addr, err)
	}
	b, err := fr.ReadFrame()
	if err != nil {
		return nil, fmt.Errorf("zrpc: ruok %s: read answer: %w", addr, err)
	}
	return append([]byte(nil), b...), nil
}
