package classic

// Backend receives the decoded commands. It must be safe for concurrent use:
// the server calls it from one goroutine per connection. Transactions are not
// bound to connections, so a Begin and its Commit may come from different
// goroutines.
//
// The server never reuses the slices and maps it passes; a Backend may keep
// them.
type Backend interface {
	// Begin registers transaction id as in flight on storages.
	Begin(id string, storages []string)
	// Commit ends transaction id. tids holds the committed TID of each
	// storage; none lists the storages whose TID field was "None" (a patched
	// Zope sends that for a storage that has not committed yet).
	Commit(id string, tids map[string]uint64, none []string)
	// Abort ends transaction id without commits.
	Abort(id string)
	// Dump returns the published (coherent) TID of every storage.
	Dump() map[string]uint64
	// Bootstrapped reports whether bootstrap is complete.
	Bootstrapped() bool
}
