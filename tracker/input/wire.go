package input

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// The primitives of the encoding (codec.go), shared by the tracker's image
// (tracker/image.go) and the fleet's send buffer (fleet/buffer.go): an
// unsigned varint for counts, ids and TIDs, a zig-zag varint for times, a
// byte 0 or 1 for a boolean, a uvarint length and the bytes for a string.

// MaxCount bounds counts read from a record, so a damaged record cannot
// make the decoder allocate without limit (the journal's checksum makes
// this a second line of defence).
const MaxCount = 1 << 20

// AppendString appends s as a uvarint length and its bytes.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// AppendBool appends b as one byte, 0 or 1.
func AppendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// AppendEvent appends a participation event: kind byte, uvarint part,
// storage, uvarint TID, ok, key, client, user, description, extension,
// reason.
func AppendEvent(dst []byte, e *txn.Event) []byte {
	dst = append(dst, byte(e.Kind))
	dst = binary.AppendUvarint(dst, uint64(e.Part))
	dst = AppendString(dst, e.Storage)
	dst = binary.AppendUvarint(dst, uint64(e.TID))
	dst = AppendBool(dst, e.OK)
	dst = AppendString(dst, string(e.Key))
	dst = AppendString(dst, e.Info.Client)
	dst = AppendString(dst, e.Info.User)
	dst = AppendString(dst, e.Info.Description)
	dst = AppendString(dst, e.Info.Extension)
	return AppendString(dst, e.Reason)
}

// AppendCommit appends one commit of a storage's history: storage, uvarint
// TID, has-meta, user, description, extension.
func AppendCommit(dst []byte, c *txn.Commit) []byte {
	dst = AppendString(dst, c.Storage)
	dst = binary.AppendUvarint(dst, uint64(c.TID))
	dst = AppendBool(dst, c.HasMeta)
	dst = AppendString(dst, c.User)
	dst = AppendString(dst, c.Description)
	return AppendString(dst, c.Extension)
}

func appendTIDs(dst []byte, ts []StorageTID) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ts)))
	for _, t := range ts {
		dst = AppendString(dst, t.Storage)
		dst = binary.AppendUvarint(dst, uint64(t.TID))
	}
	return dst
}

// ErrShort: a record ends before its last field.
var ErrShort = errors.New("truncated")

// Decoder reads the primitives from B; the first failure sticks in Err
// and every later read returns a zero value.
type Decoder struct {
	B   []byte
	Err error
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.Err != nil || len(d.B) == 0 {
		d.Fail(ErrShort)
		return 0
	}
	v := d.B[0]
	d.B = d.B[1:]
	return v
}

// Bool reads a byte 0 or 1 (anything else fails).
func (d *Decoder) Bool() bool {
	switch v := d.Byte(); v {
	case 0, 1:
		return v == 1
	default:
		d.Fail(fmt.Errorf("bad boolean %d", v))
		return false
	}
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 { return readVarint(d, binary.Uvarint) }

// Varint reads a zig-zag varint.
func (d *Decoder) Varint() int64 { return readVarint(d, binary.Varint) }

func readVarint[T uint64 | int64](d *Decoder, read func([]byte) (T, int)) T {
	if d.Err != nil {
		return 0
	}
	v, n := read(d.B)
	if n <= 0 {
		d.Fail(errors.New("bad varint"))
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Count reads a count of items that follow (each at least a byte): one
// above MaxCount or the bytes left fails.
func (d *Decoder) Count() int {
	n := d.Uvarint()
	if n > MaxCount || n > uint64(len(d.B)) {
		d.Fail(fmt.Errorf("count %d out of range", n))
		return 0
	}
	return int(n)
}

// String reads a length-prefixed string.
func (d *Decoder) String() string {
	n := d.Uvarint()
	if d.Err != nil {
		return ""
	}
	if n > uint64(len(d.B)) {
		d.Fail(ErrShort)
		return ""
	}
	s := string(d.B[:n])
	d.B = d.B[n:]
	return s
}

// Bytes reads a length-prefixed byte string (a copy).
func (d *Decoder) Bytes() []byte {
	n := d.Uvarint()
	if d.Err != nil {
		return nil
	}
	if n > uint64(len(d.B)) {
		d.Fail(ErrShort)
		return nil
	}
	b := append([]byte(nil), d.B[:n]...)
	d.B = d.B[n:]
	return b
}

// Event reads AppendEvent's encoding.
func (d *Decoder) Event() txn.Event {
	var e txn.Event
	e.Kind = txn.EventKind(d.Byte())
	e.Part = txn.PartID(d.Uvarint())
	e.Storage = d.String()
	e.TID = txn.TID(d.Uvarint())
	e.OK = d.Bool()
	e.Key = txn.Key(d.String())
	e.Info.Client = d.String()
	e.Info.User = d.String()
	e.Info.Description = d.String()
	e.Info.Extension = d.String()
	e.Reason = d.String()
	return e
}

// Commit reads AppendCommit's encoding.
func (d *Decoder) Commit() txn.Commit {
	c := txn.Commit{Storage: d.String(), TID: txn.TID(d.Uvarint())}
	c.HasMeta = d.Bool()
	c.User, c.Description, c.Extension = d.String(), d.String(), d.String()
	return c
}

func (d *Decoder) tids() []StorageTID {
	n := d.Count()
	if n == 0 {
		return nil
	}
	ts := make([]StorageTID, n)
	for k := range ts {
		ts[k] = StorageTID{Storage: d.String(), TID: txn.TID(d.Uvarint())}
	}
	return ts
}

// Fail records err unless a failure is already recorded.
func (d *Decoder) Fail(err error) {
	if d.Err == nil {
		d.Err = err
	}
}
