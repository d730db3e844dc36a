package fleet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/input"
	"github.com/tidstorage/tidstorage/tracker/journal"
)

// The sidecar's send buffer on disk: a tracker/journal file (framed,
// checksummed, torn tail cut, atomic Rotate) whose records are, by their
// first byte:
//
//	'e' an event:   varint time, uvarint seq, then the txn.Event as the
//	                tracker's journal encodes it (input.AppendEvent: kind
//	                byte, uvarint part, storage, uvarint TID, ok byte, key,
//	                client, user, description, extension, reason; strings
//	                are a uvarint length and the bytes)
//	'r' a recover:  varint time, uvarint seq, uvarint run (the run's first
//	                participation id, its number << 32), uvarint n,
//	                n × (storage, uvarint TID): the live last TIDs
//	'G' a gap:      uvarint from, uvarint to, varint time, reason
//	'I' a run:      uint32 incarnation (appended at each start)
//	'S' a state:    uvarint last seq, uvarint n, n × uint32 incarnation, then
//	                the pending items, each a uvarint length and a record
//	                ('e', 'r' or 'G'): the first record after a rotation.
//
// The records are the fleet's own: what a sidecar has yet to have
// acknowledged (its runs, the gaps it declares with their reasons, the
// state a rotation keeps), not the inputs a tracker applied. They share the
// tracker's primitives and event encoding (tracker/input, which the fleet
// imports without the tracker). Records 'E' and 'R' of the first format
// (the tracker's whole input encoding) are not read: a buffer that still
// held some declares a gap.
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
	// recover: the run gone (its first participation id) and the live
	// TIDs; gap: from (in gapFrom) and reason.
	run     uint64
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
		return input.AppendEvent(dst, &it.ev)
	case recRecover:
		dst = append(dst, recRecover)
		dst = binary.AppendVarint(dst, it.time)
		dst = binary.AppendUvarint(dst, it.seq)
		dst = binary.AppendUvarint(dst, it.run)
		dst = binary.AppendUvarint(dst, uint64(len(it.live)))
		for _, st := range slices.Sorted(maps.Keys(it.live)) {
			dst = input.AppendString(dst, st)
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

// errOldFormat: a record of the first buffer format.
var errOldFormat = errors.New("a report in the first buffer format (not read)")

func decodeItem(rec []byte) (item, error) {
	if len(rec) == 0 {
		return item{}, errors.New("empty record")
	}
	r := input.Decoder{B: rec[1:]}
	var it item
	switch rec[0] {
	case recEvent:
		it = item{kind: recEvent, time: r.Varint(), seq: r.Uvarint()}
		it.ev = r.Event()
	case recRecover:
		it = item{kind: recRecover, time: r.Varint(), seq: r.Uvarint(), run: r.Uvarint()}
		n := r.Count()
		it.live = make(map[string]txn.TID, n)
		for range n {
			st := r.String()
			it.live[st] = txn.TID(r.Uvarint())
		}
	case recGap:
		it = item{kind: recGap, gapFrom: r.Uvarint(), seq: r.Uvarint(), time: r.Varint()}
		if r.Err != nil {
			return item{}, fmt.Errorf("bad gap record: %w", r.Err)
		}
		it.reason, r.B = string(r.B), nil
	case recOldEvent, recOldRecover:
		return item{}, errOldFormat
	default:
		return item{}, fmt.Errorf("unknown record type %q", rec[0])
	}
	if r.Err != nil {
		return item{}, fmt.Errorf("bad record %q: %w", rec[0], r.Err)
	}
	if len(r.B) != 0 {
		return item{}, fmt.Errorf("bad record %q: %d bytes left over", rec[0], len(r.B))
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
		r.recovered[it.run] = true
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
