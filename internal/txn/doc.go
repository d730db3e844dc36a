// Package txn is the shared vocabulary of tidstorage: the types that cross
// the boundary between whoever observes ZODB two-phase commits (the zeoproxy
// relay, later a remote sidecar) and the tracker that turns them into
// coherent points, and between the tracker and its outputs (status file,
// DUMP, backups).
//
// It holds one type per notion — TID, storage id rule, participation id,
// correlation key, participation phase, and the participation events — and
// nothing else: no I/O, no dependencies inside this module. Like etcd's
// raftpb beside raft, every other package imports it and it imports none of
// them; an Event is plain data so that it can be journaled or sent over a
// network unchanged. See docs/design.md for what the events mean.
package txn
