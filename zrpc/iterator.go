package zrpc

import (
	"context"
	"fmt"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// IteratorGC releases server-side iterators (the one-way
// iterator_gc(iids)). An iterator read to its end is already released by
// the server; one abandoned earlier holds an open file there until this
// call or the end of the connection.
func (c *Client) IteratorGC(ctx context.Context, iids ...int64) error {
	l := make(List, len(iids))
	for i, id := range iids {
		l[i] = id
	}
	return c.Async(ctx, &UnknownCall{Name: "iterator_gc", Arguments: Tuple{l}})
}

// Iterator walks a storage's transactions on the server, oldest first.
// It is not safe for concurrent use; the client it came from is.
type Iterator struct {
	c    *Client
	id   int64
	done bool
}

// Iterate opens a server-side iterator over the transactions whose TID is
// in [start, stop]. start 0 is the first transaction; stop 0 means no upper
// bound (the storage's last transaction when the server opened it: a
// FileStorage iterator does not see commits made after iterator_start).
func (c *Client) Iterate(ctx context.Context, start, stop txn.TID) (*Iterator, error) {
	x := &IteratorStart{}
	if start != 0 {
		b := start.Bytes()
		x.Start = b[:]
	}
	if stop != 0 {
		b := stop.Bytes()
		x.Stop = b[:]
	}
	id, err := c.IteratorStart(ctx, x.Start, x.Stop)
	if err != nil {
		return nil, err
	}
	return &Iterator{c: c, id: id}, nil
}

// ID is the server's iterator id.
func (it *Iterator) ID() int64 { return it.id }

// Next returns the next transaction (tid, status, user, description,
// extension), or nil at the end.
func (it *Iterator) Next(ctx context.Context) (*TransactionInfo, error) {
	if it.done {
		return nil, nil
	}
	ti, err := it.c.IteratorNext(ctx, it.id)
	if err != nil {
		return nil, fmt.Errorf("zrpc: iterator %d: %w", it.id, err)
	}
	if ti == nil {
		it.done = true // the server forgot it
	}
	return ti, nil
}

// NextN reads up to n transactions with n iterator_next calls sent at
// once (one round trip): for a caller that knows how many the server holds
// in the iterator's range (the commits its invalidations announced). It
// returns fewer at the end of the iterator; the calls sent past the end
// are answered with errors that ZEO logs (the iterator is gone), so a
// caller should not ask for more than there are.
func (it *Iterator) NextN(ctx context.Context, n int) ([]*TransactionInfo, error) {
	if it.done || n <= 0 {
		return nil, nil
	}
	if n == 1 {
		ti, err := it.Next(ctx)
		if ti == nil {
			return nil, err
		}
		return []*TransactionInfo{ti}, err
	}
	out := make([]*TransactionInfo, 0, n)
	x := &IteratorNext{IID: it.id}
	err := it.c.callN(ctx, x.Method(), x.Args(), n, func(v Value) (bool, error) {
		ti, err := ParseTransactionInfo(v)
		if err != nil {
			return false, err
		}
		if ti == nil {
			it.done = true // the server forgot it
			return false, nil
		}
		out = append(out, ti)
		return true, nil
	})
	if err != nil {
		return out, fmt.Errorf("zrpc: iterator %d: %w", it.id, err)
	}
	return out, nil
}

// Close releases the server-side iterator if it was not read to its end.
// It is a one-way call: there is nothing to wait for.
func (it *Iterator) Close(ctx context.Context) error {
	if it.done {
		return nil
	}
	it.done = true
	if it.c.Err() != nil {
		return nil // the connection, and the iterator with it, is gone
	}
	return it.c.IteratorGC(ctx, it.id)
}
