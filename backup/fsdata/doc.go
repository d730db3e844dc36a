// Package fsdata reads ZODB FileStorage files (Data.fs) natively.
//
// It scans transaction records forward from the file header, checking every
// structural rule ZODB's own checkers rely on (fstest, read_index, checkTxn,
// checkData), and finds where to cut a file right after a transaction. It
// never reads the .index file: after a cut or a restore that index is stale,
// and a forward scan is the only anchor that cannot lie.
//
// Layout (all integers big-endian): a 4-byte magic ("FS30", or "FS21" for
// files written by Python 2), then transaction records back to back. A
// transaction record is a 23-byte header (tid, tlen, status, user,
// description and extension lengths), the three strings, data records
// (42-byte header, then the pickle or an 8-byte back-pointer), and an 8-byte
// copy of tlen. The next transaction starts at pos+tlen+8.
//
// The end of a live file may hold a transaction being committed (status 'c',
// written at vote and flipped to ' ' at finish) or a record torn by a crash;
// both are reported as the Tail, not as errors. Anything else that breaks the
// rules is a *FormatError naming the offset and the rule.
package fsdata
