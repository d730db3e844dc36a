package tracker

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// The journal's encoding of an Input: a version byte, then every field in a
// fixed order (varints and length-prefixed strings). Empty fields cost a
// byte, which keeps the format one simple sequence; the journal frames and
// checksums each encoded input (tracker/journal). Version 2 is version 1
// followed by the fields added later (Floor, Image): an input that has none
// of them is still written as version 1, so older journals and the hot path
// keep their bytes.

const (
	inputVersion  = 1
	inputVersion2 = 2
)

// maxDecodeCount bounds counts read from a record, so a damaged record
// cannot make the decoder allocate without limit (the checksum makes this a
// second line of defence).
const maxDecodeCount = 1 << 20

// AppendInput appends the encoding of in to dst.
func AppendInput(dst []byte, in *Input) []byte {
	start := len(dst)
	dst = append(dst, inputVersion, byte(in.Kind))
	dst = binary.AppendVarint(dst, in.Time)
	e := &in.Event
	dst = append(dst, byte(e.Kind))
	dst = binary.AppendUvarint(dst, uint64(e.Part))
	dst = appendStr(dst, e.Storage)
	dst = binary.AppendUvarint(dst, uint64(e.TID))
	dst = appendBool(dst, e.OK)
	dst = appendStr(dst, string(e.Key))
	dst = appendStr(dst, e.Info.Client)
	dst = appendStr(dst, e.Info.User)
	dst = appendStr(dst, e.Info.Description)
	dst = appendStr(dst, e.Info.Extension)
	dst = appendStr(dst, e.Reason)
	c := &in.Commit
	dst = appendStr(dst, c.Storage)
	dst = binary.AppendUvarint(dst, uint64(c.TID))
	dst = appendBool(dst, c.HasMeta)
	dst = appendStr(dst, c.User)
	dst = appendStr(dst, c.Description)
	dst = appendStr(dst, c.Extension)
	dst = appendStr(dst, in.ID)
	dst = binary.AppendUvarint(dst, uint64(len(in.Storages)))
	for _, s := range in.Storages {
		dst = appendStr(dst, s)
	}
	dst = binary.AppendUvarint(dst, uint64(len(in.TIDs)))
	for _, t := range in.TIDs {
		dst = appendStr(dst, t.Storage)
		dst = binary.AppendUvarint(dst, uint64(t.TID))
	}
	dst = appendBool(dst, in.Flag)
	dst = binary.AppendUvarint(dst, in.Pin)
	dst = appendStr(dst, in.Source)
	dst = binary.AppendUvarint(dst, in.Seq)
	sn := in.Snapshot
	dst = appendBool(dst, sn != nil)
	if sn != nil {
		dst = binary.AppendUvarint(dst, sn.NextPin)
		dst = appendBool(dst, sn.Bootstrapped)
		dst = appendBool(dst, sn.BootRequested)
		dst = binary.AppendUvarint(dst, uint64(len(sn.Storages)))
		for _, s := range sn.Storages {
			dst = appendStr(dst, s.Storage)
			dst = binary.AppendUvarint(dst, uint64(s.Published))
			dst = appendBool(dst, s.HasPublished)
			dst = binary.AppendUvarint(dst, uint64(s.Transient))
			dst = appendBool(dst, s.Known)
			dst = appendBool(dst, s.Watched)
			dst = appendBool(dst, s.WarnOnly)
			dst = binary.AppendUvarint(dst, uint64(s.Hist))
		}
		dst = binary.AppendUvarint(dst, uint64(len(sn.Sources)))
		for _, v := range sn.Sources {
			dst = appendStr(dst, v.Source)
			dst = binary.AppendUvarint(dst, v.Seq)
		}
	}
	if len(in.Floor) > 0 || len(in.Image) > 0 {
		dst[start] = inputVersion2
		dst = binary.AppendUvarint(dst, uint64(len(in.Floor)))
		for _, t := range in.Floor {
			dst = appendStr(dst, t.Storage)
			dst = binary.AppendUvarint(dst, uint64(t.TID))
		}
		dst = binary.AppendUvarint(dst, uint64(len(in.Image)))
		dst = append(dst, in.Image...)
	}
	return dst
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// DecodeInput decodes one encoded input.
func DecodeInput(b []byte) (Input, error) {
	d := decoder{b: b}
	var in Input
	v := d.byte()
	if d.err == nil && v != inputVersion && v != inputVersion2 {
		return in, fmt.Errorf("tracker: input version %d, want %d or %d", v, inputVersion, inputVersion2)
	}
	in.Kind = InputKind(d.byte())
	in.Time = d.varint()
	e := &in.Event
	e.Kind = txn.EventKind(d.byte())
	e.Part = txn.PartID(d.uvarint())
	e.Storage = d.str()
	e.TID = txn.TID(d.uvarint())
	e.OK = d.bool()
	e.Key = txn.Key(d.str())
	e.Info.Client = d.str()
	e.Info.User = d.str()
	e.Info.Description = d.str()
	e.Info.Extension = d.str()
	e.Reason = d.str()
	c := &in.Commit
	c.Storage = d.str()
	c.TID = txn.TID(d.uvarint())
	c.HasMeta = d.bool()
	c.User = d.str()
	c.Description = d.str()
	c.Extension = d.str()
	in.ID = d.str()
	if n := d.count(); n > 0 {
		in.Storages = make([]string, n)
		for k := range in.Storages {
			in.Storages[k] = d.str()
		}
	}
	if n := d.count(); n > 0 {
		in.TIDs = make([]StorageTID, n)
		for k := range in.TIDs {
			in.TIDs[k] = StorageTID{Storage: d.str(), TID: txn.TID(d.uvarint())}
		}
	}
	in.Flag = d.bool()
	in.Pin = d.uvarint()
	in.Source = d.str()
	in.Seq = d.uvarint()
	if d.bool() {
		sn := &Snapshot{NextPin: d.uvarint(), Bootstrapped: d.bool(), BootRequested: d.bool()}
		if n := d.count(); n > 0 {
			sn.Storages = make([]StorageSnapshot, n)
			for k := range sn.Storages {
				s := &sn.Storages[k]
				s.Storage = d.str()
				s.Published = txn.TID(d.uvarint())
				s.HasPublished = d.bool()
				s.Transient = txn.TID(d.uvarint())
				s.Known = d.bool()
				s.Watched = d.bool()
				s.WarnOnly = d.bool()
				s.Hist = txn.TID(d.uvarint())
			}
		}
		if n := d.count(); n > 0 {
			sn.Sources = make([]SourceSeq, n)
			for k := range sn.Sources {
				sn.Sources[k] = SourceSeq{Source: d.str(), Seq: d.uvarint()}
			}
		}
		in.Snapshot = sn
	}
	if v == inputVersion2 {
		if n := d.count(); n > 0 {
			in.Floor = make([]StorageTID, n)
			for k := range in.Floor {
				in.Floor[k] = StorageTID{Storage: d.str(), TID: txn.TID(d.uvarint())}
			}
		}
		if n := d.uvarint(); d.err == nil {
			if n > uint64(len(d.b)) {
				d.fail(errShort)
			} else {
				in.Image = append([]byte(nil), d.b[:n]...)
				d.b = d.b[n:]
			}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d bytes left over", len(d.b))
	}
	if d.err != nil {
		return Input{}, fmt.Errorf("tracker: decoding a journaled input: %w", d.err)
	}
	return in, nil
}

var errShort = errors.New("truncated")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail(errShort)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bool() bool {
	switch v := d.byte(); v {
	case 0, 1:
		return v == 1
	default:
		d.fail(fmt.Errorf("bad boolean %d", v))
		return false
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errors.New("bad varint"))
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errors.New("bad varint"))
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) count() int {
	n := d.uvarint()
	if n > maxDecodeCount || n > uint64(len(d.b)) {
		d.fail(fmt.Errorf("count %d out of range", n))
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}
