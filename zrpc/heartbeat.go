package zrpc

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// startHeartbeat starts the ping loop once, if configured. It is called
// after a successful register because ZEO closes connections that call
// anything else before it.
func (c *Client) startHeartbeat() {
	if c.opts.Heartbeat <= 0 {
		return
	}
	c.heartbeatOnce.Do(func() { go c.heartbeatLoop() })
}

func (c *Client) heartbeatLoop() {
	every := c.opts.Heartbeat
	timeout := c.opts.HeartbeatTimeout
	if timeout <= 0 {
		timeout = every
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := c.Ping(ctx)
		cancel()
		if err == nil || c.Err() != nil {
			continue // fine, or already broken for another reason (Done says so)
		}
		var er *ErrorReply
		if errors.As(err, &er) {
			continue // the server answered: it is alive
		}
		// No reply in time (or the write itself timed out): the peer is dead
		// or stalled. Fail first so that the reader's own error (the closed
		// socket) does not hide the reason; then closing wakes it.
		c.fail(fmt.Errorf("%w: %w: no reply to ping within %v: %w", ErrClientClosed, ErrHeartbeat, timeout, err))
		c.conn.Close()
		return
	}
}
