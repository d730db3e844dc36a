package integration

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// Many concurrent client processes each commit transactions that write the
// same counter value to A and C (two ZEO servers); they conflict and retry.
// Every published point sampled while they run restores, through ZODB reads
// at the published TIDs, to equal counters in A and C; published TIDs never
// decrease; at the end the published point is the last one.
func TestPairedCountersAlwaysRestoreEqual(t *testing.T) {
	s := startSite(t,
		zeoSpec{storages: []string{"1", "2"}, dbNames: []string{"a", "b"}},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"c"}, msgpack: true})
	s.client("commit", "--count", "1")
	idA, idC := s.ids["a"], s.ids["c"]

	stop := make(chan struct{})
	var samples []map[string]txn.TID
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		prev := map[string]txn.TID{}
		for {
			p := s.published()
			for k, v := range p {
				if v < prev[k] {
					t.Errorf("published TID of %s decreased: %x after %x", k, v, prev[k])
				}
			}
			if p[idA] != prev[idA] || p[idC] != prev[idC] {
				samples = append(samples, p)
			}
			prev = p
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	const workers, each = 4, 20
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.client("paired", "--count", fmt.Sprint(each), "--seconds", "90", "--touch", "a,c", "--desc", "paired")
		}()
	}
	wg.Wait()
	last := s.last()
	s.waitPublished(last)
	close(stop)
	sampler.Wait()
	samples = append(samples, s.published())
	t.Logf("%d distinct published points sampled", len(samples))
	require.GreaterOrEqual(t, len(samples), 3, "publication keeps up with the load")

	// Check a spread of the sampled points, the last one included.
	step := max(1, len(samples)/12)
	checked := 0
	for i := len(samples) - 1; i >= 0; i -= step {
		p := samples[i]
		out := s.client("read-at", "--at", fmt.Sprintf("a=%016x,c=%016x", p[idA], p[idC]))
		var got map[string]struct{ Counter *int }
		require.NoError(t, json.Unmarshal(out, &got), string(out))
		a, c := got["a"].Counter, got["c"].Counter
		require.Equal(t, a == nil, c == nil, "point %d: %s", i, out)
		if a != nil {
			require.Equal(t, *a, *c, "point %d (A %016x, C %016x) restores to unequal counters", i, p[idA], p[idC])
		}
		checked++
	}
	final := samples[len(samples)-1]
	out := s.client("read-at", "--at", fmt.Sprintf("a=%016x,c=%016x", final[idA], final[idC]))
	var got map[string]struct{ Counter *int }
	require.NoError(t, json.Unmarshal(out, &got))
	require.Equal(t, 1+workers*each, *got["a"].Counter, "every paired commit is in the final point (after the first commit's 1)")
	t.Logf("%d points restored to equal counters", checked)
}
