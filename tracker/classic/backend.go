package classic

import "github.com/tidstorage/tidstorage/internal/txn"

// Backend receives the decoded commands. It must be safe for concurrent use:
// the server calls it from one goroutine per connection. Transactions are not
// bound to connections, so a Begin and its Commit may come from different
// goroutines.
//
// The server never reuses the slices and maps it passes; a Backend may keep
// them.
type Backend interface {
	// ClassicBegin registers transaction id as in flight on storages.
	ClassicBegin(id string, storages []string)
	// ClassicCommit ends transaction id. tids holds the committed TID of each
	// storage; none lists the storages whose TID field was "None" (a patched
	// Zope sends that for a storage that has not committed yet).
	ClassicCommit(id string, tids map[string]txn.TID, none []string)
	// ClassicAbort ends transaction id without commits.
	ClassicAbort(id string)
	// Dump returns the published (coherent) TID of every storage.
	Dump() map[string]txn.TID
	// Bootstrapped reports whether bootstrap is complete.
	Bootstrapped() bool
}
