package fsdata

import (
	"encoding/binary"
	"fmt"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// File magics: FS30 is written by ZODB on Python 3, FS21 by Python 2. The
// record layout is the same.
const (
	MagicFS30 = "FS30"
	MagicFS21 = "FS21"
)

// Sizes of the fixed parts of the format.
const (
	HeaderSize     = 4  // the magic; an empty storage is just this
	TxnHeaderSize  = 23 // tid(8) tlen(8) status(1) ulen(2) dlen(2) elen(2)
	DataHeaderSize = 42 // oid(8) tid(8) prev(8) tloc(8) vlen(2) plen(8)
	trailerSize    = 8  // redundant tlen after each transaction
)

// Transaction status bytes.
const (
	StatusCommitted  = ' ' // committed, never packed
	StatusPacked     = 'p' // rewritten by a pack
	StatusUncertain  = 'u' // obsolete marker of non-transactional undo; still valid
	StatusCheckpoint = 'c' // voted but not finished: in progress, end of committed data
)

// TxnHeader is a transaction record's header.
type TxnHeader struct {
	Pos     int64   // offset of the record
	TID     txn.TID // transaction id
	Len     uint64  // tlen: record length without the 8-byte trailer
	Status  byte
	UserLen uint16
	DescLen uint16
	ExtLen  uint16
}

// End is the offset right after the record (its trailer included): where
// the next transaction starts, and where to cut to keep this one.
func (h *TxnHeader) End() int64 { return h.Pos + int64(h.Len) + trailerSize }

// DataPos is the offset of the first data record.
func (h *TxnHeader) DataPos() int64 {
	return h.Pos + TxnHeaderSize + int64(h.UserLen) + int64(h.DescLen) + int64(h.ExtLen)
}

// DataEnd is the offset right after the last data record (the trailer's).
func (h *TxnHeader) DataEnd() int64 { return h.Pos + int64(h.Len) }

func (h *TxnHeader) decode(pos int64, b []byte) {
	h.Pos = pos
	h.TID = txn.TID(binary.BigEndian.Uint64(b[0:8]))
	h.Len = binary.BigEndian.Uint64(b[8:16])
	h.Status = b[16]
	h.UserLen = binary.BigEndian.Uint16(b[17:19])
	h.DescLen = binary.BigEndian.Uint16(b[19:21])
	h.ExtLen = binary.BigEndian.Uint16(b[21:23])
}

// DataHeader is a data record's header.
type DataHeader struct {
	Pos  int64 // offset of the record
	OID  uint64
	TID  txn.TID
	Prev int64 // offset of the previous revision of OID, 0 if none
	TLoc int64 // offset of the enclosing transaction
	VLen uint16
	PLen uint64 // pickle length; 0 = a back-pointer follows
	Back int64  // back-pointer when PLen == 0 (0 = deleted / creation undone)
}

// Len is the record's length: header plus pickle or back-pointer.
func (d *DataHeader) Len() int64 {
	if d.PLen == 0 {
		return DataHeaderSize + 8
	}
	return DataHeaderSize + int64(d.PLen)
}

func (d *DataHeader) decode(pos int64, b []byte) {
	d.Pos = pos
	d.OID = binary.BigEndian.Uint64(b[0:8])
	d.TID = txn.TID(binary.BigEndian.Uint64(b[8:16]))
	d.Prev = int64(binary.BigEndian.Uint64(b[16:24]))
	d.TLoc = int64(binary.BigEndian.Uint64(b[24:32]))
	d.VLen = binary.BigEndian.Uint16(b[32:34])
	d.PLen = binary.BigEndian.Uint64(b[34:42])
}

// FormatError is a broken rule of the format at an offset.
type FormatError struct {
	File   string // file name, when known
	Offset int64
	Msg    string
}

func (e *FormatError) Error() string {
	name := e.File
	if name == "" {
		name = "Data.fs"
	}
	return fmt.Sprintf("fsdata: %s: offset %d: %s", name, e.Offset, e.Msg)
}

func statusName(s byte) string {
	switch s {
	case StatusCommitted:
		return "' ' (committed)"
	case StatusPacked:
		return "'p' (packed)"
	case StatusUncertain:
		return "'u' (uncertain)"
	case StatusCheckpoint:
		return "'c' (in progress)"
	}
	return fmt.Sprintf("%q", s)
}
