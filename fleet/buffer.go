package fleet

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/tracker/journal"
)

// The sidecar's send buffer on disk: a tracker/journal file (framed,
// checksummed, torn tail cut, atomic Rotate) whose records are, by their
// first byte:
//
//	'E' an event:   tracker.AppendInput of Input{Kind: InEvent, Time, Event, Seq}
//	'R' a recover:  tracker.AppendInput of Input{Kind: InRecover, Time, Pin: part base, TIDs: live, Seq}
//	'G' a gap:      uvarint from, uvarint to, reason
//	'I' a run:      uint32 incarnation (appended at each start)
//	'S' a state:    uvarint last seq, uvarint n, n × uint32 incarnation, then
//	                the pending items, each a uvarint length and a record
//	                ('E', 'R' or 'G'): the first record after a rotation.
//
// Seqs only grow across restarts (a start takes at least the wall clock in
// nanoseconds), so that a lost or damaged buffer can never make new reports
// look like resends to the tracker.

const (
	recEvent   = 'E'
	recRecover = 'R'
	recGap     = 'G'
	recRun     = 'I'
	recState   = 'S'
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
		return tracker.AppendInput(dst, &tracker.Input{Kind: tracker.InEvent, Time: it.time, Event: it.ev, Seq: it.seq})
	case recRecover:
		dst = append(dst, recRecover)
		in := tracker.Input{Kind: tracker.InRecover, Time: it.time, Pin: it.base, Seq: it.seq}
		for s, t := range it.live {
			in.TIDs = append(in.TIDs, tracker.StorageTID{Storage: s, TID: t})
		}
		return tracker.AppendInput(dst, &in)
	default:
		dst = append(dst, recGap)
		dst = binary.AppendUvarint(dst, it.gapFrom)
		dst = binary.AppendUvarint(dst, it.seq)
		dst = binary.AppendVarint(dst, it.time)
		return append(dst, it.reason...)
	}
}

func decodeItem(rec []byte) (item, error) {
	if len(rec) == 0 {
		return item{}, errors.New("empty record")
	}
	switch rec[0] {
	case recEvent, recRecover:
		in, err := tracker.DecodeInput(rec[1:])
		if err != nil {
			return item{}, err
		}
		it := item{seq: in.Seq, time: in.Time, kind: rec[0]}
		if rec[0] == recEvent {
			it.ev = in.Event
		} else {
			it.base = in.Pin
			it.live = map[string]txn.TID{}
			for _, v := range in.TIDs {
				it.live[v.Storage] = v.TID
			}
		}
		return it, nil
	case recGap:
		b := rec[1:]
		from, n := binary.Uvarint(b)
		if n <= 0 {
			return item{}, errors.New("bad gap record")
		}
		b = b[n:]
		to, n := binary.Uvarint(b)
		if n <= 0 {
			return item{}, errors.New("bad gap record")
		}
		b = b[n:]
		t, n := binary.Varint(b)
		if n <= 0 {
			return item{}, errors.New("bad gap record")
		}
		return item{kind: recGap, gapFrom: from, seq: to, time: t, reason: string(b[n:])}, nil
	}
	return item{}, fmt.Errorf("unknown record type %q", rec[0])
}

// replayed is what a buffer file held.
type replayed struct {
	lastSeq   uint64
	runs      []uint32 // incarnations seen, in order
	recovered map[uint64]bool
	items     []item
	records   int
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
