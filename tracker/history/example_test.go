package history_test

import (
	"context"
	"fmt"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/history"
)

// A consumer that wants a channel: the sink blocks on it, which is the
// backpressure (the connection stays alive meanwhile, see the package doc).
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	commits := make(chan history.Commit, 64)
	w, err := history.New(history.Config{
		Storage: "((('zeo1.example.com', 8100),), '1')",
		Addr:    "127.0.0.1:8200",
		Name:    "1",
		After:   txn.TID(0x03f0a1b2c3d4e5f6), // the last TID already accounted for
		Sink: func(ctx context.Context, c history.Commit) error {
			select {
			case commits <- c:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() {
		err := w.Run(ctx) // until ctx ends, or ErrRewound
		fmt.Println("watcher stopped:", err)
	}()
	go func() {
		for c := range commits {
			fmt.Println(c.Storage, c.TID.Hex(), c.Time())
		}
	}()
	_ = w.Snapshot() // for /status and metrics
}
