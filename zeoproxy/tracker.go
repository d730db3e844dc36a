package zeoproxy

import "github.com/tidstorage/tidstorage/internal/txn"

// Tracker receives the participation events the relay observes
// (txn.Observer: one Observe per event, synchronous — docs/design.md, rule 1).
// tracker.Service implements it in-process.
type Tracker = txn.Observer
