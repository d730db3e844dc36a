// Package zeoproxy is a transparent proxy in front of ZEO servers that
// observes every two-phase commit.
//
// Every byte is relayed unchanged and in order in both directions; a copy of
// each frame's head is peeked (zrpc.Peek) and only the few frames that matter
// are decoded: the handshake, register, tpc_begin, and the replies to vote,
// tpc_finish and tpc_abort. What they say reaches the Tracker synchronously,
// before the frame that caused it is forwarded (docs/design.md, rule 1): at the first
// tpc_finish of a multi-storage transaction, every participation of it is
// known, because the client sends tpc_finish only after every vote reply came
// back through the proxy.
//
// Failures: a client that closes mid-commit leaves the server side open until
// the pending tpc_finish reply arrives; a server that closes decides the
// outcome from what was sent (aborted, or in doubt once tpc_finish was
// forwarded — then resolved from the order of the storage's commit lock,
// known from the vote replies and the relayed invalidations, and its
// transactions read through a zrpc.Client: docs/design.md, "In-doubt
// resolution"). Traffic the proxy cannot decode is still relayed, and the
// storage is reported blind. The Tracker can never stop the relay.
//
// Each connection's two-phase commit is a pure value (twoPC,
// docs/zeo-protocol.md §10); the pumps only frame, inspect and forward. A
// stop (Proxy.Drain) holds new transactions, lets those that have voted
// finish on every storage and closes every connection at once
// (docs/admin.md, "Stopping").
package zeoproxy
