// Package classic serves and speaks the line protocol of the original
// Products.TIDStorage daemon (BEGIN, ABORT, COMMIT, DUMP, BOOTSTRAPED, QUIT),
// so that patched Zopes and the original backup scripts can talk to
// tidstorage unchanged.
//
// The wire format is described in docs/classic-protocol.md: every field ends with
// "\n", every "\r" is dropped, lists are a count then the items, dicts are a
// count, then the keys, then the values. The server is wire-compatible with
// the original but stricter about garbage: where the original logged an
// exception and went on reading (so that the arguments of an unknown command
// were read as commands), this server logs what was wrong, names the peer and
// closes that connection, because its stream can no longer be trusted.
// Nothing already handed to the Backend is undone, and a command is handed to
// the Backend only once it has been read completely.
//
// The package holds no tracking logic: it decodes commands and feeds a
// Backend, which owns the coherency algorithm.
package classic
