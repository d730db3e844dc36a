// Package zrpc speaks the ZEO client/server wire protocol: framing, the
// version handshake, and the (msgid, flags, name, args) messages in both
// encodings (pickle 'Z' and msgpack 'M').
//
// Layers, from the wire up (no I/O policy inside except in Client):
//
//   - frame.go: 4-byte big-endian length + payload. FrameReader reads whole
//     frames into one reused buffer (the Go client's need). The relay in
//     zeoproxy does its own framing over bufio, peeking at each frame's head
//     and streaming large payloads from socket to socket.
//   - handshake.go: the first raw frame of each side ("Z5", "M5", "Z4",
//     "Z3101", ..., or the client's "ruok").
//   - peek.go: msgid, flags and method name of a frame from its first bytes,
//     without decoding the arguments and without allocating: what the relay
//     looks at on every frame.
//   - message.go, value.go, pickle.go, msgpack.go: full decode/encode of a
//     Message into canonical Go values (see Value), for both encodings.
//   - messages.go: one Go type per message kind (TPCBegin, Vote, Reply, ...),
//     decode and encode symmetric, in the style of pgx's pgproto3.
//   - client.go: a small ZEO client (register, lastTransaction, get_info,
//     ping, iterator_start/next) used for bootstrap and in-doubt resolution.
//
// The wire facts this package relies on are in docs/zeo-protocol.md (ZEO
// 5/6 asyncio, with ZEO 4 differences), and are pinned by the captured and
// golden frames in testdata/.
package zrpc
