package tracker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// A bypassing client's flood of unaccounted commits is logged one by one up
// to the burst per storage and window, then summarised once per window.
func TestLogLimiter(t *testing.T) {
	var l LogLimiter
	now := time.Unix(1000, 0).UnixNano()
	allowed := 0
	for i := range 100 {
		require.Empty(t, l.Due(now))
		if l.Allow("A", txn.TID(i+1), now) {
			allowed++
		}
		require.True(t, l.Allow("B", txn.TID(i+1), now) || i >= UnaccountedLogBurst, "B has its own budget")
		now += int64(100 * time.Millisecond)
	}
	require.Equal(t, UnaccountedLogBurst, allowed)
	now += int64(UnaccountedLogWindow)
	due := l.Due(now)
	require.Len(t, due, 2)
	for _, d := range due {
		require.Equal(t, 100-UnaccountedLogBurst, d.Count)
		require.Equal(t, txn.TID(100), d.Last)
	}
	require.Empty(t, l.Due(now), "reset")
	require.True(t, l.Allow("A", 101, now), "a new window")
}
