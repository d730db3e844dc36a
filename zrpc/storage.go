package zrpc

import (
	"context"
	"fmt"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// DialStorage dials a ZEO server and registers read-only on its storage
// named storage: the connections tidstorage opens of its own (the
// bootstrap read, the history watchers, in-doubt resolution, the commit
// lock's witness). It returns the client, bound to the storage, and the
// last TID register answered. Errors name the address and the storage.
func DialStorage(ctx context.Context, network, addr, storage string, opts *ClientOptions) (*Client, txn.TID, error) {
	c, err := Dial(ctx, network, addr, opts)
	if err != nil {
		return nil, 0, err
	}
	last, err := c.Register(ctx, storage, true)
	if err != nil {
		c.Close()
		return nil, 0, fmt.Errorf("zrpc: %s storage %q: register: %w", addr, storage, err)
	}
	return c, last, nil
}

// LastTID is the bootstrap read (docs/design.md, "Bootstrap"): the last
// TID of the storage named storage, asked with lastTransaction on a
// connection of its own (DialStorage), which is closed after.
func LastTID(ctx context.Context, network, addr, storage string, opts *ClientOptions) (txn.TID, error) {
	c, _, err := DialStorage(ctx, network, addr, storage, opts)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	tid, err := c.LastTransaction(ctx)
	if err != nil {
		return 0, fmt.Errorf("zrpc: %s storage %q: lastTransaction: %w", addr, storage, err)
	}
	return tid, nil
}
