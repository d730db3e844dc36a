// Package history is tidstorage's ground truth: for one storage, a Watcher
// keeps its own read-only ZEO connection and hands its consumer every
// transaction the storage commits, exactly once and in strictly increasing
// TID order, across disconnects, stalls and ZEO server restarts.
//
// Two sources feed it (docs/history.md says why they are enough; the rule
// they serve is docs/design.md, "Ground truth"):
//
//   - invalidateTransaction(tid, oids): a ZEO server sends it, while the
//     commit still holds the storage's commit lock, to every connection
//     registered on the storage except the committer's own. The watcher
//     never commits, so it hears every commit, in commit order.
//   - the storage's iterator (iterator_start / iterator_next), after each
//     (re)connection and whenever invalidations were not kept, from the last
//     TID delivered. It also gives user, description and extension.
//
// Delivery runs on the watcher's own goroutine, never on the socket reader:
// a consumer may block as long as it likes (backpressure), the connection
// meanwhile keeps answering heartbeats, and invalidations beyond a bounded
// buffer are dropped and re-read from the iterator later, so memory stays
// bounded and nothing is lost.
//
// Like tracker/statusfile it does I/O beside the pure tracker; it does not
// import the tracker.
package history
