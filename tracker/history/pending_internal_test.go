package history

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
)

func TestPendingBoundedAndOverflow(t *testing.T) {
	p := newPending(3)
	for i := range 3 {
		p.push(txn.TID(i + 1))
	}
	require.Equal(t, 3, p.len())
	got, overflow := p.take(nil)
	require.Equal(t, []txn.TID{1, 2, 3}, got)
	require.False(t, overflow)
	require.Len(t, p.ready, 1, "one wake-up however many pushes")

	for i := range 10 {
		p.push(txn.TID(i + 10))
	}
	require.Zero(t, p.len(), "past max everything is dropped, not kept")
	got, overflow = p.take(got[:0])
	require.Empty(t, got)
	require.True(t, overflow)
	_, overflow = p.take(nil)
	require.False(t, overflow, "take resets the flag")

	p.push(20)
	p.lose()
	got, overflow = p.take(nil)
	require.Empty(t, got)
	require.True(t, overflow)
}
