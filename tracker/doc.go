// Package tracker decides which TID of each storage forms a coherent
// cross-storage point, and publishes it.
//
// A point (storage id → TID) is coherent when every transaction is wholly in
// it or wholly out of it: for each transaction T, tid_s(T) ≤ point[s] holds for
// all of T's storages or for none. Published TIDs only grow.
//
// # Structure
//
// Machine is a pure, deterministic state machine in the style of etcd's raft:
// inputs are method calls carrying the current time (unix ns) as a value;
// they change the state and append output Records (Records / ClearRecords)
// that the caller drains after each input. No sockets, clocks, goroutines or
// map-order effects inside; equal inputs give equal outputs. That is what
// lets the randomized simulation (sim_test.go) check it after every input.
//
// Service wraps a Machine for the daemon: a mutex, a clock, an hclog.Logger,
// the status file (package statusfile) and an OnRecord hook for metrics.
// Every Service method is synchronous: when it returns, the input has been
// applied (docs/design.md, rule 1: observe before forward).
//
// # The algorithm
//
// The seed's grouping is the baseline: every in-flight unit (a linked set of
// proxy participations, a classic transaction, or a pin, below) holds the
// group of its storages busy; units that share storages, or participations
// linked by correlation key, merge their groups. When a group's last unit
// ends, every member publishes its highest known committed TID (its
// transient value) and the group dissolves. Every storage a transaction
// touched stays in one busy group until the transaction ended, so the whole
// group publishes at one instant with every ended transaction wholly in. The
// seed's T1/T2 case (T2 on A after half of T1) holds: A stays in T1's group.
//
// Under constant overlapping load a group may never drain (the original's
// "restore lag"), so a busy group also publishes what it safely can
// (frontier.go): units in flight cap the storages they may have committed on
// below their possible TIDs (a participation of a set still in flight that
// was sent tpc_finish, committed or not, at the highest TID known when it was
// sent; a classic transaction at the highest TID known at its BEGIN; a
// participation not yet sent tpc_finish needs no cap), and the ended
// transactions of the group are kept all in or all out by lowering bounds
// until nothing changes. The published value is the highest known commit at
// or below each bound; it never decreases. The simulation measures the gain:
// see BENCHMARKS.md.
//
// Extensions (docs/design.md, "The tracker"):
//   - Proxy participations are linked by correlation key (client identity +
//     user/description/extension, see txn.NewKey): a participation that
//     begins joins the in-flight participations of the same key that have not
//     been sent tpc_finish (a transaction gains no participation once it
//     started finishing). A set of linked participations may hold several
//     real transactions: that only delays publication.
//   - Partial commits (docs/design.md, rule 6): when a linked set drains, a
//     participation that voted yes and then ended without committing is half
//     of a partial commit if a participation of the set that was sent
//     tpc_finish while it stood voted committed. An explicit tpc_abort after
//     a failed vote elsewhere in the set (the conflict path) is excused,
//     unless a participation of the set failed its tpc_finish (error or lost
//     connection) while it stood voted. A partial commit becomes a PinPartial
//     that holds its group until AcceptPartial.
//   - In doubt: a participation whose connection was lost after tpc_finish was
//     sent stays in flight (holding its group) until PartResolved, or a late
//     PartFinished.
//   - Classic transactions that never end are declared lost by Tick after
//     Config.ClassicTimeout (or at once when their id begins again: patched
//     Zopes reuse ids per thread). Their unit becomes a PinLost, released once
//     each of their storages had a commit observed that started after the
//     loss (so its TID is above anything the lost one committed), by a late
//     COMMIT/ABORT, or by AcceptPartial.
//   - A COMMIT naming storages other than its BEGIN joins them to its group
//     first (never published apart from it), and ends it; None TIDs hold the
//     transaction's storages (PinNone) until each None storage had a later
//     commit observed. BEGIN twice, COMMIT or ABORT without BEGIN are warned
//     about and handled; nothing wedges.
//   - Blind storages (an undecodable connection) are held by a PinBlind until
//     their last such connection is unblinded.
//   - Bootstrap gives the storages' last TIDs read before the first client
//     connection; publication starts once every Config.Storages has a value
//     (or at the first Bootstrap if none is configured). An unclean previous
//     stop is reported (the live files may hold half a transaction).
//   - A published TID never decreases: a lower value is refused and reported
//     as RecCritical.
//   - A storage whose published TID has not moved for Config.LagWarning while
//     newer commits are known is reported by Tick with what holds it.
//
// # For the observers
//
// The relay (zeoproxy) reports participation events through one call,
// svc.Observe(txn.Event{...}) — Service implements txn.Observer — in
// protocol order per participation (different participations may come from
// different goroutines). The event kinds and their fields are documented in
// internal/txn: Begin, Vote, FinishSent, Finished, Aborted, Lost, Resolved,
// Blind, Unblind. Machine.Step dispatches each kind to one method (PartBegin,
// PartVote, …, Blind, Unblind). svc.LastTID(sid, tid) feeds a storage's last
// TID read by the daemon (it releases lost/None pins).
//
// PartIDs are chosen by the observer, unique among participations the tracker
// still knows. A connection lost before tpc_finish is Lost, never Aborted:
// Aborted means an explicit tpc_abort, which a failed vote elsewhere in the
// linked set excuses (the conflict path); a lost connection is never excused
// (a client crash between two tpc_finish).
//
// The daemon calls Bootstrap before the proxy accepts clients, Tick about
// once a second, Status for /status, Counters for metrics, AcceptPartial for
// the operator, and Close at a clean stop (writes the final full status
// line). The classic line-protocol server uses ClassicBegin, ClassicCommit, ClassicAbort, Dump and
// Bootstrapped (tracker/classic.Backend).
//
// # What is not seen cannot be made coherent
//
//   - A transaction whose participations are split between this tracker and
//     another (several proxies), or between a decodable and a blind
//     connection, is only as coherent as what this tracker saw.
//   - A classic transaction whose BEGIN was lost, or whose COMMIT names a
//     storage BEGIN did not, may have that storage's half published by a
//     later transaction before its COMMIT arrives (warned).
//   - A lost classic transaction must really have ended before the timeout,
//     and a classic BEGIN must reach the tracker before its commits happen
//     (patched Zopes send it first; a delayed BEGIN can let a later commit
//     publish past half of it, as in the original).
//   - Linked sets chain: a participation joins the same-key set while it
//     still has a participation not sent tpc_finish. Zope processes on one
//     remote host share a client identity, so several busy processes writing
//     with identical metadata keep one set in flight while the load lasts, and
//     nothing it touched is published until it drains (TestSameHostChains;
//     reported by the lag warning). Each input still costs O(storages), not
//     O(set length). A finer client identity cures it: the proxy's opt-in
//     client_label_identity (ZEO client-label per process, docs/config.md).
//   - An explicit abort after a failed vote is excused; if the abort is in
//     fact the cleanup of a transaction whose tpc_finish failed on the client
//     side outside ZEO (another resource manager) while a linked transaction
//     with identical metadata had a vote conflict, that partial commit is
//     missed. Crashes of a client with several transactions of identical
//     metadata in flight can pin falsely (safe).
//   - A transaction aborted explicitly after all its ZEO votes succeeded
//     (another resource manager failed its vote) while a linked transaction
//     with identical metadata finished counts as a partial commit: a false
//     pin (safe; the operator accepts it).
//   - A classic ABORT after part of a transaction committed (a Zope whose
//     commit raised mid-finish) cannot be told from a clean abort.
//   - After a crash (Recover), an orphan's outcome is read from the history
//     by user, description and extension. Several orphans of one storage
//     matching one commit pin their linked sets (safe); but a commit of a
//     client that bypasses the proxy, made before the live last TID with
//     the same metadata as a single orphan that did not commit, is taken
//     for the orphan's (the simulation gives bypassing clients their own
//     metadata). After Recover the Service must re-read each storage's
//     history above its published TID with the iterator (History with
//     metadata, at or below what was already reported): orphans whose
//     commits were reported before the crash without metadata wait for it.
package tracker
