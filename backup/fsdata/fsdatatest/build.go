// Package fsdatatest writes FileStorage (Data.fs) bytes for tests that need
// no Python: records are laid out as ZODB lays them out (per-oid previous
// record pointers, back-pointers, transaction trailers), so that the
// fsdata scanner and the backup package can be tested in Go alone. The real
// ZODB tests stay the reference for interoperability.
package fsdatatest

import (
	"bytes"
	"encoding/binary"

	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// Rec is one data record of a transaction.
type Rec struct {
	OID  uint64
	Data []byte // nil: a back-pointer record (no data of its own)
	// Back is the back-pointer of a record without data: an offset, 0 for
	// a deletion, or -1 for the oid's revision before its latest (an undo).
	Back int64
}

// Txn is one transaction record.
type Txn struct {
	TID             txn.TID
	Status          byte // 0 means fsdata.StatusCommitted
	User, Desc, Ext string
	Recs            []Rec
}

// Builder appends transactions to a Data.fs image. Adding to a builder
// keeps every byte already built, as a live FileStorage only ever appends:
// write Bytes() to a file again after more Add calls to simulate commits.
type Builder struct {
	buf    bytes.Buffer
	last   map[uint64]int64 // oid → offset of its latest record
	before map[uint64]int64 // oid → offset of the record before that
	// Pos and End are the offsets of each transaction record and of its
	// end (after the trailer), in the order added.
	Pos, End []int64
}

// New starts a file with magic (fsdata.MagicFS30 or fsdata.MagicFS21).
func New(magic string) *Builder {
	b := &Builder{last: map[uint64]int64{}, before: map[uint64]int64{}}
	b.buf.WriteString(magic)
	return b
}

// Build is New(magic) with txns added.
func Build(magic string, txns ...Txn) *Builder {
	b := New(magic)
	b.Add(txns...)
	return b
}

// Bytes returns the file built so far (aliasing the builder's buffer until
// the next Add).
func (b *Builder) Bytes() []byte { return b.buf.Bytes() }

// Add appends transactions.
func (b *Builder) Add(txns ...Txn) {
	for _, t := range txns {
		b.add(t)
	}
}

func (b *Builder) add(t Txn) {
	be := binary.BigEndian
	pos := int64(b.buf.Len())
	var body bytes.Buffer
	body.WriteString(t.User)
	body.WriteString(t.Desc)
	body.WriteString(t.Ext)
	for _, r := range t.Recs {
		rpos := pos + fsdata.TxnHeaderSize + int64(body.Len())
		var h [fsdata.DataHeaderSize]byte
		be.PutUint64(h[0:], r.OID)
		be.PutUint64(h[8:], uint64(t.TID))
		be.PutUint64(h[16:], uint64(b.last[r.OID]))
		be.PutUint64(h[24:], uint64(pos))
		be.PutUint64(h[34:], uint64(len(r.Data)))
		body.Write(h[:])
		if r.Data == nil {
			back := r.Back
			if back == -1 {
				back = b.before[r.OID]
			}
			body.Write(be.AppendUint64(nil, uint64(back)))
		} else {
			body.Write(r.Data)
		}
		b.before[r.OID], b.last[r.OID] = b.last[r.OID], rpos
	}
	tlen := uint64(fsdata.TxnHeaderSize + body.Len())
	var h [fsdata.TxnHeaderSize]byte
	be.PutUint64(h[0:], uint64(t.TID))
	be.PutUint64(h[8:], tlen)
	h[16] = t.Status
	if h[16] == 0 {
		h[16] = fsdata.StatusCommitted
	}
	be.PutUint16(h[17:], uint16(len(t.User)))
	be.PutUint16(h[19:], uint16(len(t.Desc)))
	be.PutUint16(h[21:], uint16(len(t.Ext)))
	b.buf.Write(h[:])
	b.buf.Write(body.Bytes())
	b.buf.Write(be.AppendUint64(nil, tlen))
	b.Pos = append(b.Pos, pos)
	b.End = append(b.End, int64(b.buf.Len()))
}

// Sample returns five transactions on three oids, tids 0x0100..0x0500:
// creation, two writes, an undo (back-pointer to the revision before) and,
// in a packed-status transaction, a deletion.
func Sample() []Txn {
	return []Txn{
		{TID: 0x0100, Desc: "initial database creation", Recs: []Rec{{OID: 0, Data: []byte("root-0")}}},
		{TID: 0x0200, User: "/ bob", Desc: "add", Recs: []Rec{{OID: 0, Data: []byte("root-1")}, {OID: 1, Data: []byte("one")}}},
		{TID: 0x0300, User: "/ bob", Ext: "\x80\x03}q\x00.", Recs: []Rec{{OID: 1, Data: []byte("one-b")}, {OID: 2, Data: []byte("two")}}},
		{TID: 0x0400, Desc: "undo", Recs: []Rec{{OID: 1, Back: -1}}},
		{TID: 0x0500, Status: fsdata.StatusPacked, Recs: []Rec{{OID: 2, Back: 0}}},
	}
}

// BlobPickle returns the start of a data record pickle of a ZODB blob
// (protocol 3: the class reference ZODB writes for ZODB.blob.Blob), which
// is what the backup recognises a blob record by.
func BlobPickle() []byte {
	return []byte("\x80\x03cZODB.blob\nBlob\nq\x00.\x80\x03}q\x01.")
}
