package fsdata

import (
	"bytes"
	"encoding/binary"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// A tiny FileStorage writer for unit tests that need no Python: it lays out
// records exactly as ZODB does (prev pointers per oid, tloc, trailers).
type recSpec struct {
	oid  uint64
	data []byte // nil: back-pointer record
	back int64  // -1: the revision before the oid's latest (an undo)
}

type txnSpec struct {
	tid             txn.TID
	status          byte // 0 = ' '
	user, desc, ext string
	recs            []recSpec
}

type built struct {
	data []byte
	ends []int64 // End of each transaction
	poss []int64 // Pos of each transaction
}

func buildFS(magic string, txns ...txnSpec) built {
	var b bytes.Buffer
	b.WriteString(magic)
	last := map[uint64]int64{}
	before := map[uint64]int64{}
	var out built
	be := binary.BigEndian
	for _, t := range txns {
		pos := int64(b.Len())
		var body bytes.Buffer
		body.WriteString(t.user)
		body.WriteString(t.desc)
		body.WriteString(t.ext)
		for _, r := range t.recs {
			rpos := pos + TxnHeaderSize + int64(body.Len())
			var h [DataHeaderSize]byte
			be.PutUint64(h[0:], r.oid)
			be.PutUint64(h[8:], uint64(t.tid))
			be.PutUint64(h[16:], uint64(last[r.oid]))
			be.PutUint64(h[24:], uint64(pos))
			be.PutUint64(h[34:], uint64(len(r.data)))
			body.Write(h[:])
			if r.data == nil {
				var bp [8]byte
				back := r.back
				if back == -1 {
					back = before[r.oid]
				}
				be.PutUint64(bp[:], uint64(back))
				body.Write(bp[:])
			} else {
				body.Write(r.data)
			}
			before[r.oid], last[r.oid] = last[r.oid], rpos
		}
		tlen := uint64(TxnHeaderSize + body.Len())
		var h [TxnHeaderSize]byte
		be.PutUint64(h[0:], uint64(t.tid))
		be.PutUint64(h[8:], tlen)
		h[16] = t.status
		if h[16] == 0 {
			h[16] = StatusCommitted
		}
		be.PutUint16(h[17:], uint16(len(t.user)))
		be.PutUint16(h[19:], uint16(len(t.desc)))
		be.PutUint16(h[21:], uint16(len(t.ext)))
		b.Write(h[:])
		b.Write(body.Bytes())
		var tr [8]byte
		be.PutUint64(tr[:], tlen)
		b.Write(tr[:])
		out.poss = append(out.poss, pos)
		out.ends = append(out.ends, int64(b.Len()))
	}
	out.data = b.Bytes()
	return out
}

// sampleTxns are five transactions on three oids, with a back-pointer (an
// undo) and a deletion, tids 0x0100..0x0500.
func sampleTxns() []txnSpec {
	return []txnSpec{
		{tid: 0x0100, desc: "initial database creation", recs: []recSpec{{oid: 0, data: []byte("root-0")}}},
		{tid: 0x0200, user: "/ bob", desc: "add", recs: []recSpec{{oid: 0, data: []byte("root-1")}, {oid: 1, data: []byte("one")}}},
		{tid: 0x0300, user: "/ bob", ext: "\x80\x03}q\x00.", recs: []recSpec{{oid: 1, data: []byte("one-b")}, {oid: 2, data: []byte("two")}}},
		{tid: 0x0400, desc: "undo", recs: []recSpec{{oid: 1, back: -1}}},
		{tid: 0x0500, status: StatusPacked, recs: []recSpec{{oid: 2, data: nil, back: 0}}},
	}
}
