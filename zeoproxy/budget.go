package zeoproxy

import (
	"context"
	"time"

	"golang.org/x/sync/semaphore"
)

// decodeBudget bounds the bytes held for decoding over every connection of
// a proxy: a frame that must be decoded whole and does not fit in its
// pump's read buffer is read into memory only once its size is taken from
// the budget (docs/zeo-protocol.md §1, "Memory"). A frame that cannot get it
// within wait is relayed without being decoded, which makes its storage
// blind: a peer that holds the budget (a slow sender in the middle of a
// large frame) can delay the decoding of others by wait at most, never
// stall their relay.
type decodeBudget struct {
	sem  *semaphore.Weighted
	size int
	wait time.Duration
	ctx  context.Context // the proxy's: closing it ends every wait
}

func newDecodeBudget(ctx context.Context, size int, wait time.Duration) *decodeBudget {
	return &decodeBudget{sem: semaphore.NewWeighted(int64(size)), size: size, wait: wait, ctx: ctx}
}

// acquire takes n bytes, waiting at most b.wait; false when they could not
// be had.
func (b *decodeBudget) acquire(n int) bool {
	if n > b.size {
		return false
	}
	if b.sem.TryAcquire(int64(n)) {
		return true
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.wait)
	defer cancel()
	return b.sem.Acquire(ctx, int64(n)) == nil
}

func (b *decodeBudget) release(n int) { b.sem.Release(int64(n)) }
