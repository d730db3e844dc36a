package fsdata

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"slices"

	"github.com/tidstorage/tidstorage/internal/atomicfile"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// Index maps each oid to the offset of its latest data record (deletions
// included, records of 'u' transactions excluded): what ZODB's fsIndex holds
// and saves as Data.fs.index. Writing a fresh one after a cut or a restore
// spares ZODB a full scan at its next open (minutes on large files); an
// index must never be kept with a pos beyond the file's committed end.
type Index struct {
	m map[uint64]int64
}

// NewIndex returns an empty index.
func NewIndex() *Index { return &Index{m: map[uint64]int64{}} }

// Len is the number of oids.
func (ix *Index) Len() int { return len(ix.m) }

// Get returns the offset of oid's latest record.
func (ix *Index) Get(oid uint64) (int64, bool) {
	pos, ok := ix.m[oid]
	return pos, ok
}

// Collect returns a ScanOptions.OnData that records the data records of
// transactions up to target (the scanner already skips 'u' transactions).
func (ix *Index) Collect(target txn.TID) func(*TxnHeader, *DataHeader, []byte) error {
	return func(_ *TxnHeader, d *DataHeader, _ []byte) error {
		if d.TID <= target {
			ix.m[d.OID] = d.Pos
		}
		return nil
	}
}

// maxIndexPos is the largest offset fsIndex can store (6 bytes).
const maxIndexPos = 1<<48 - 1

// Write writes the index in fsIndex's file format for a Python 3 ZODB
// (FS30): a stream of protocol-3 pickles, pos (the end of the committed data
// it describes), then one (6-byte oid prefix, bucket) tuple per prefix in
// ascending order, the bucket being the 2-byte oid suffixes then the 6-byte
// offsets, then None.
func (ix *Index) Write(w io.Writer, pos int64) error {
	if pos < 0 || pos > maxIndexPos {
		return fmt.Errorf("fsdata: index pos %d does not fit in 6 bytes", pos)
	}
	oids := make([]uint64, 0, len(ix.m))
	for oid := range ix.m {
		oids = append(oids, oid)
	}
	slices.Sort(oids)
	bw := bufio.NewWriter(w)
	p := pickler{w: bw}
	p.begin()
	p.int(pos)
	p.end()
	var keys, vals []byte
	for i := 0; i < len(oids); {
		prefix := oids[i] >> 16
		keys, vals = keys[:0], vals[:0]
		for ; i < len(oids) && oids[i]>>16 == prefix; i++ {
			off := ix.m[oids[i]]
			if off < 0 || off > maxIndexPos {
				return fmt.Errorf("fsdata: index: offset %d of oid %016x does not fit in 6 bytes", off, oids[i])
			}
			keys = binary.BigEndian.AppendUint16(keys, uint16(oids[i]))
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(off))
			vals = append(vals, b[2:]...)
		}
		var pb [8]byte
		binary.BigEndian.PutUint64(pb[:], prefix)
		p.begin()
		p.bytes(pb[2:])
		p.bytes(append(keys, vals...))
		p.w.WriteByte(0x86) // TUPLE2
		p.end()
	}
	p.begin()
	p.w.WriteByte('N')
	p.end()
	if p.err != nil {
		return p.err
	}
	return bw.Flush()
}

// WriteFile writes the index to path (normally <Data.fs>.index) through a
// synced temporary file and a rename.
func (ix *Index) WriteFile(path string, pos int64) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return ix.Write(w, pos) })
}

// pickler writes the few protocol-3 opcodes an index needs.
type pickler struct {
	w   *bufio.Writer
	err error
}

func (p *pickler) begin() { p.write([]byte{0x80, 3}) } // PROTO 3
func (p *pickler) end()   { p.write([]byte{'.'}) }     // STOP

func (p *pickler) write(b []byte) {
	if p.err == nil {
		_, p.err = p.w.Write(b)
	}
}

func (p *pickler) int(v int64) {
	switch {
	case v >= 0 && v < 1<<8:
		p.write([]byte{'K', byte(v)}) // BININT1
	case v >= 0 && v < 1<<16:
		p.write([]byte{'M', byte(v), byte(v >> 8)}) // BININT2
	case v >= -1<<31 && v < 1<<31:
		b := []byte{'J', 0, 0, 0, 0} // BININT
		binary.LittleEndian.PutUint32(b[1:], uint32(int32(v)))
		p.write(b)
	default:
		// LONG1: little-endian two's complement in as few bytes as Python
		// uses (bit length / 8 + 1: the top bit stays 0 for a positive v).
		n := bits.Len64(uint64(v))/8 + 1
		b := make([]byte, 10)
		b[0], b[1] = 0x8a, byte(n)
		binary.LittleEndian.PutUint64(b[2:], uint64(v))
		p.write(b[:2+n])
	}
}

func (p *pickler) bytes(b []byte) {
	if len(b) < 256 {
		p.write([]byte{'C', byte(len(b))}) // SHORT_BINBYTES
	} else {
		h := []byte{'B', 0, 0, 0, 0} // BINBYTES
		binary.LittleEndian.PutUint32(h[1:], uint32(len(b)))
		p.write(h)
	}
	p.write(b)
}
