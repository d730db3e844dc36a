package history

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// Commit is one transaction committed on a storage.
type Commit struct {
	// Storage is the storage id (the tracker's key), as configured.
	Storage string
	TID     txn.TID
	// Meta is the transaction's metadata when it was read from the
	// iterator (gap fills, or always with Config.Metadata); nil when the
	// commit was learnt from an invalidation, which carries none.
	Meta *Meta
}

// Time is the commit time encoded in the TID.
func (c Commit) Time() time.Time { return c.TID.Time() }

// Meta is what the storage's iterator says of a transaction.
type Meta struct {
	// Status is the FileStorage status byte: " " committed, "p" packed.
	Status      string
	User        string
	Description string
	// Extension is the extension as the server sent it (a zrpc.Dict for
	// ZODB ≥ 5 storages), undecoded beyond the wire encoding.
	Extension zrpc.Value
}

func metaOf(ti *zrpc.TransactionInfo) *Meta {
	return &Meta{Status: ti.Status, User: string(ti.User), Description: string(ti.Description), Extension: ti.Extension}
}

// ErrNotFound is returned by Lookup for a TID the storage does not hold.
var ErrNotFound = errors.New("history: no such transaction")

// Lookup reads one transaction's metadata through a registered client,
// with an iterator bounded to [tid, tid].
func Lookup(ctx context.Context, c *zrpc.Client, tid txn.TID) (*Meta, error) {
	if tid == 0 {
		return nil, fmt.Errorf("history: lookup of TID 0: %w", ErrNotFound)
	}
	it, err := c.Iterate(ctx, tid, tid)
	if err != nil {
		return nil, fmt.Errorf("history: lookup %s: %w", tid.Hex(), err)
	}
	defer it.Close(ctx)
	ti, err := it.Next(ctx)
	if err != nil {
		return nil, fmt.Errorf("history: lookup %s: %w", tid.Hex(), err)
	}
	if ti == nil || ti.TID != tid {
		return nil, fmt.Errorf("history: lookup %s: %w", tid.Hex(), ErrNotFound)
	}
	return metaOf(ti), nil
}
