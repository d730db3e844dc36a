package tracker

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A bug that panics inside the tracker must not take the relay down with it:
// the call returns, the Service stops taking inputs, Dump keeps the last point
// published by a completed input, and nothing blocks.
func TestServiceFailsOpen(t *testing.T) {
	for _, where := range []string{"machine", "records"} {
		t.Run(where, func(t *testing.T) {
			var armed bool
			s := NewService(ServiceConfig{Config: Config{ClassicTimeout: time.Hour}, OnRecord: func(r Record) {
				if armed && where == "records" {
					panic("injected in a record hook")
				}
			}})
			s.Bootstrap(map[string]uint64{"a": 5, "b": 7}, true)
			s.Begin("t1", []string{"a", "b"})
			s.Commit("t1", map[string]uint64{"a": 8, "b": 9}, nil)
			require.Equal(t, map[string]uint64{"a": 8, "b": 9}, s.Dump())

			armed = true
			if where == "machine" {
				s.mu.Lock()
				s.m.parts = nil // a corrupted machine: the next proxy input panics
				s.mu.Unlock()
				require.NotPanics(t, func() { s.BeginPart(PartBegin{ID: 1, Storage: "a", Key: "k"}) })
			} else {
				require.NotPanics(t, func() {
					s.Begin("t2", []string{"a"})
					s.Commit("t2", map[string]uint64{"a": 10}, nil)
				})
			}
			require.NotEmpty(t, s.Broken())
			require.Equal(t, map[string]uint64{"a": 8, "b": 9}, s.Dump(), "the last good point stays")
			for _, st := range s.Status().Storages {
				require.Equal(t, map[string]uint64{"a": 8, "b": 9}[st.ID], st.Published, "Status shows the good point too")
			}

			// Later inputs, from many goroutines, neither block nor panic.
			var wg sync.WaitGroup
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.Begin("t3", []string{"a"})
					s.Commit("t3", map[string]uint64{"a": 20}, nil)
					s.Vote(1, true)
					s.Tick()
				}()
			}
			wg.Wait()
			require.Equal(t, map[string]uint64{"a": 8, "b": 9}, s.Dump())
			require.Error(t, s.AcceptPartial(1))
		})
	}
}
