package tracker

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidstorage/tidstorage/internal/txn"
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
			s.Bootstrap(map[string]txn.TID{"a": 5, "b": 7}, true)
			s.ClassicBegin("t1", []string{"a", "b"})
			s.ClassicCommit("t1", map[string]txn.TID{"a": 8, "b": 9}, nil)
			require.Equal(t, map[string]txn.TID{"a": 8, "b": 9}, s.Dump())

			armed = true
			if where == "machine" {
				s.mu.Lock()
				s.m.parts = nil // a corrupted machine: the next proxy input panics
				s.mu.Unlock()
				require.NotPanics(t, func() { s.Observe(txn.Event{Kind: txn.Begin, Part: 1, Storage: "a", Key: txn.Key("k")}) })
			} else {
				require.NotPanics(t, func() {
					s.ClassicBegin("t2", []string{"a"})
					s.ClassicCommit("t2", map[string]txn.TID{"a": 10}, nil)
				})
			}
			require.NotEmpty(t, s.Broken())
			require.Equal(t, map[string]txn.TID{"a": 8, "b": 9}, s.Dump(), "the last good point stays")
			for _, st := range s.Status().Storages {
				require.Equal(t, map[string]txn.TID{"a": 8, "b": 9}[st.ID], st.Published, "Status shows the good point too")
			}

			// Later inputs, from many goroutines, neither block nor panic.
			var wg sync.WaitGroup
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.ClassicBegin("t3", []string{"a"})
					s.ClassicCommit("t3", map[string]txn.TID{"a": 20}, nil)
					s.Observe(txn.Event{Kind: txn.Vote, Part: 1, OK: true})
					s.Tick()
				}()
			}
			wg.Wait()
			require.Equal(t, map[string]txn.TID{"a": 8, "b": 9}, s.Dump())
			require.Error(t, s.AcceptPartial(1))
		})
	}
}
