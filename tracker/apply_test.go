package tracker

import (
	"testing"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/input"
)

// FuzzApply: whatever record decodes applies to a Machine without a panic.
func FuzzApply(f *testing.F) {
	for _, in := range []input.Input{
		input.Event{Event: txn.Event{Kind: txn.Begin, Part: 7, Storage: sA, Key: txn.NewKey("c", "u", "d", "{}")}},
		input.ClassicCommit{ID: "t1", TIDs: []StorageTID{{Storage: sA, TID: 11}}, None: []string{sB}},
		input.RecoverRun{Source: "zope1", Seq: 3, Run: 5 << 32, Live: []StorageTID{{Storage: sA, TID: 30}}},
		input.Restore{Snapshot: Snapshot{NextPin: 9, Storages: []StorageSnapshot{{Storage: sA, Published: 5, HasPublished: true}}}},
	} {
		f.Add(input.Append(nil, 1, in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		now, in, err := input.Decode(b)
		if err != nil {
			return
		}
		_ = New(Config{}).Apply(now, in) // must not panic
	})
}
