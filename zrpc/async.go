package zrpc

import (
	"fmt"
	"time"
)

// dispatchAsync hands a server-initiated call to OnAsync and Asyncs. It
// runs on the reader goroutine, so it must never wait without bound: a
// reader that stops reading also stops every reply, heartbeats included.
func (c *Client) dispatchAsync(m *Message) error {
	if c.opts.OnAsync != nil {
		c.opts.OnAsync(m)
	}
	ch := c.opts.Asyncs
	if ch == nil {
		return nil
	}
	select {
	case ch <- m:
		return nil
	default:
	}
	if c.opts.AsyncWait > 0 {
		t := time.NewTimer(c.opts.AsyncWait)
		defer t.Stop()
		select {
		case ch <- m:
			return nil
		case <-t.C:
		}
	}
	return fmt.Errorf("%w: %w: %s not taken within %v", ErrClientClosed, ErrAsyncOverflow, m.Name, c.opts.AsyncWait)
}
