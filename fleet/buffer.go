package fleet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/journal"
)

// The sidecar's send buffer on disk: a tracker/journal file (framed,
// checksummed, torn tail cut, atomic Rotate) whose records are, by their
// first byte:
//
//	'e' an event:   varint time, uvarint seq, then the txn.Event: kind byte,
//	                uvarint part, storage, uvarint TID, ok byte, key, client,
//	                user, description, extension, reason (strings are a
//	                uvarint length and the bytes)
//	'r' a recover:  varint time, uvarint seq, uvarint part base, uvarint n,
//	                n × (storage, uvarint TID): the live last TIDs
//	'G' a gap:      uvarint from, uvarint to, varint time, reason
//	'I' a run:      uint32 incarnation (appended at each start)
//	'S' a state:    uvarint last seq, uvarint n, n × uint32 incarnation, then
//	                the pending items, each a uvarint length and a record
//	                ('e', 'r' or 'G'): the first record after a rotation.
//
// The encoding is the fleet's own (the tracker's journal has its own
// format for its inputs). Records 'E' and 'R' of the first format (the
// tracker's input encoding) are not read: a buffer that still held some
// declares a gap.
//
// Seqs only grow across restarts (a start takes at least the wall clock in
// nanoseconds), so that a lost or damaged buffer can never make new reports
// look like resends to the tracker.

const (
	recEvent   = 'e'
	recRecover = 'r'
	recGap     = 'G'
	recRun     = 'I'
	recState   = 'S'
	// The first format's event and recover records (not read).
	recOldEvent   = 'E'
	recOldRecover = 'R'
)

// item is one report waiting for the tracker's acknowledgement.
type item struct {
	seq  uint64
	time int64 // unix ns when observed
	kind byte  // recEvent, recRecover, recGap
	ev   txn.Event
	// recover: the part base and live TIDs; gap: from (in base) and reason.
	base    uint64
	live    map[string]txn.TID
	gapFrom uint64
	reason  string
}

func (it *item) appendRecord(dst []byte) []byte {
	switch it.kind {
	case recEvent:
		dst = append(dst, recEvent)
		dst = binary.AppendVarint(dst, it.time)
		dst = binary.AppendUvarint(dst, it.seq)
		e := &it.ev
		dst = append(dst, byte(e.Kind))
		dst = binary.AppendUvarint(dst, uint64(e.Part))
		dst = protowire.AppendString(dst, e.Storage)
		dst = binary.AppendUvarint(dst, uint64(e.TID))
		dst = protowire.AppendVarint(dst, protowire.EncodeBool(e.OK))
		for _, s := range [...]string{string(e.Key), e.Info.Client, e.Info.User, e.Info.Description, e.Info.Extension, e.Reason} {
			dst = protowire.AppendString(dst, s)
		}
		return dst
	case recRecover:
		dst = append(dst, recRecover)
		dst = binary.AppendVarint(dst, it.time)
		dst = binary.AppendUvarint(dst, it.seq)
		dst = binary.AppendUvarint(dst, it.base)
		dst = binary.AppendUvarint(dst, uint64(len(it.live)))
		for _, st := range slices.Sorted(maps.Keys(it.live)) {
			dst = protowire.AppendString(dst, st)
			dst = binary.AppendUvarint(dst, uint64(it.live[st]))
		}
		return dst
	default:
		dst = append(dst, recGap)
		dst = binary.AppendUvarint(dst, it.gapFrom)
		dst = binary.AppendUvarint(dst, it.seq)
		dst = binary.AppendVarint(dst, it.time)
		return append(dst, it.reason...)
	}
}

// reader decodes a record's fields; the first failure sticks.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || r.bad {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

// varint reads binary.AppendVarint's zig-zag encoding.
func (r *reader) varint() int64 { return protowire.DecodeZigZag(r.uvarint()) }

func (r *reader) byte() byte {
	if len(r.b) == 0 || r.bad {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) str() string {
	v, n := protowire.ConsumeBytes(r.b)
	if n < 0 || r.bad {
		r.bad = true
		return ""
	}
	r.b = r.b[n:]
	return string(v)
}

// errOldFormat: a record of the first buffer format.
var errOldFormat = errors.New("a report in the first buffer format (not read)")

func decodeItem(rec []byte) (item, error) {
	if len(rec) == 0 {
		return item{}, errors.New("empty record")
	}
	r := reader{b: rec[1:]}
	var it item
	switch rec[0] {
	case recEvent:
		it = item{kind: recEvent, time: r.varint(), seq: r.uvarint()}
		e := &it.ev
		e.Kind = txn.EventKind(r.byte())
		e.Part = txn.PartID(r.uvarint())
		e.Storage = r.str()
		e.TID = txn.TID(r.uvarint())
		e.OK = r.byte() == 1
		e.Key = txn.Key(r.str())
		e.Info = txn.Info{Client: r.str(), User: r.str(), Description: r.str(), Extension: r.str()}
		e.Reason = r.str()
	case recRecover:
		it = item{kind: recRecover, time: r.varint(), seq: r.uvarint(), base: r.uvarint()}
		n := r.uvarint()
		if n > uint64(len(r.b)) {
			return item{}, errors.New("bad recover record")
		}
		it.live = make(map[string]txn.TID, n)
		for range n {
			st := r.str()
			it.live[st] = txn.TID(r.uvarint())
		}
	case recGap:
		it = item{kind: recGap, gapFrom: r.uvarint(), seq: r.uvarint(), time: r.varint()}
		if r.bad {
			return item{}, errors.New("bad gap record")
		}
		it.reason, r.b = string(r.b), nil
	case recOldEvent, recOldRecover:
		return item{}, errOldFormat
	default:
		return item{}, fmt.Errorf("unknown record type %q", rec[0])
	}
	if r.bad || len(r.b) != 0 {
		return item{}, fmt.Errorf("bad record %q", rec[0])
	}
	return it, nil
}

// replayed is what a buffer file held.
type replayed struct {
	lastSeq   uint64
	runs      []uint32 // incarnations seen, in order
	recovered map[uint64]bool
	items     []item
	records   int
	old       int // reports of the first format, not read (a gap)
}

func (r *replayed) add(rec []byte) error {
	if len(rec) == 0 {
		return fmt.Errorf("%w: empty record", journal.ErrCut)
	}
	r.records++
	switch rec[0] {
	case recRun:
		if len(rec) != 5 {
			return fmt.Errorf("%w: bad run record", journal.ErrCut)
		}
		r.runs = append(r.runs, binary.LittleEndian.Uint32(rec[1:]))
		return nil
	case recState:
		b := rec[1:]
		last, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("%w: bad state record", journal.ErrCut)
		}
		b = b[n:]
		r.lastSeq = max(r.lastSeq, last)
		cnt, n := binary.Uvarint(b)
		if n <= 0 || cnt > uint64(len(b))/4 {
			return fmt.Errorf("%w: bad state record", journal.ErrCut)
		}
		b = b[n:]
		for range cnt {
			r.runs = append(r.runs, binary.LittleEndian.Uint32(b))
			b = b[4:]
		}
		for len(b) > 0 {
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return fmt.Errorf("%w: bad state record", journal.ErrCut)
			}
			if err := r.addItem(b[n : n+int(l)]); err != nil {
				return err
			}
			b = b[n+int(l):]
		}
		return nil
	}
	return r.addItem(rec)
}

func (r *replayed) addItem(rec []byte) error {
	it, err := decodeItem(rec)
	if errors.Is(err, errOldFormat) {
		r.old++
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", journal.ErrCut, err)
	}
	r.lastSeq = max(r.lastSeq, it.seq)
	if it.kind == recRecover {
		r.recovered[it.base] = true
	}
	r.items = append(r.items, it)
	return nil
}

// appendState encodes the 'S' record: last seq, runs, pending items.
func appendState(dst []byte, lastSeq uint64, runs []uint32, pending []item) []byte {
	dst = append(dst, recState)
	dst = binary.AppendUvarint(dst, lastSeq)
	dst = binary.AppendUvarint(dst, uint64(len(runs)))
	for _, r := range runs {
		dst = binary.LittleEndian.AppendUint32(dst, r)
	}
	var rec []byte
	for i := range pending {
		rec = pending[i].appendRecord(rec[:0])
		dst = binary.AppendUvarint(dst, uint64(len(rec)))
		dst = append(dst, rec...)
	}
	return dst
}
