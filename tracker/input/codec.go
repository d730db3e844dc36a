package input

import (
	"encoding/binary"
	"fmt"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// The journal's encoding of an input (one journal record; tracker/journal
// frames and checksums it): a version byte, the Kind, the time (zig-zag
// varint), then one fixed sequence of fields, each input filling those it
// has (the others cost a byte each):
//
//	event      AppendEvent's encoding                Event
//	commit     AppendCommit's encoding               History
//	id         string                                ClassicBegin, ClassicCommit, ClassicAbort; Retire's Source
//	storages   uvarint n, n × string                 ClassicBegin, Tick's Awaited, ClassicCommit's None
//	tids       uvarint n, n × (string, uvarint TID)  the Live, Last or committed TIDs; the one storage of
//	                                                 LastTID, HistoryStart, SettleAt, Suspect
//	flag       bool                                  Bootstrap's Clean, HistoryStart's WarnOnly, Recover's TailLost
//	pin        uvarint                               Accept, AcceptUnaccounted; RecoverRun's Run
//	source     string                                Event, RecoverRun, Gap
//	seq        uvarint                               Event, RecoverRun, Gap
//	snapshot   bool, then the Snapshot if set        Restore
//
// Version 2 is version 1 followed by the fields added later, floor (as
// tids) and image (a uvarint length and the bytes): an input that has
// neither is still written as version 1, so older journals and the hot path
// keep their bytes. The sequence is the format of journals on disk: it
// only grows at its end, under a new version.

const (
	version1 = 1
	version2 = 2
)

// wire is one record's fields in their order.
type wire struct {
	kind     Kind
	time     int64
	event    *txn.Event
	commit   *txn.Commit
	id       string
	storages []string
	tids     []StorageTID
	flag     bool
	pin      uint64
	source   string
	seq      uint64
	snapshot *Snapshot
	floor    []StorageTID
	image    []byte
}

var (
	noEvent  txn.Event
	noCommit txn.Commit
)

// Append appends the journal encoding of in, applied at now (unix ns), to
// dst. It does not allocate beyond growing dst. An Input not of this package
// panics (a bug).
func Append(dst []byte, now int64, in Input) []byte {
	w := wire{time: now, event: &noEvent, commit: &noCommit}
	var one [1]StorageTID
	switch in := in.(type) {
	case Event:
		w.kind, w.event, w.source, w.seq = KindEvent, &in.Event, in.Source, in.Seq
	case ClassicBegin:
		w.kind, w.id, w.storages = KindClassicBegin, in.ID, in.Storages
	case ClassicCommit:
		w.kind, w.id, w.tids, w.storages = KindClassicCommit, in.ID, in.TIDs, in.None
	case ClassicAbort:
		w.kind, w.id = KindClassicAbort, in.ID
	case Bootstrap:
		w.kind, w.tids, w.flag = KindBootstrap, in.Last, in.Clean
	case LastTID:
		one[0] = StorageTID(in)
		w.kind, w.tids = KindLastTID, one[:]
	case HistoryStart:
		one[0] = StorageTID{in.Storage, in.After}
		w.kind, w.tids, w.flag = KindHistoryStart, one[:], in.WarnOnly
	case History:
		w.kind, w.commit = KindHistory, &in.Commit
	case Tick:
		w.kind, w.storages = KindTick, in.Awaited
	case Accept:
		w.kind, w.pin = KindAccept, in.Pin
	case AcceptUnaccounted:
		w.kind, w.pin, w.tids = KindAcceptUnaccounted, in.Pin, in.Live
	case Recover:
		w.kind, w.tids, w.floor, w.flag = KindRecover, in.Live, in.Floor, in.TailLost
	case RecoverRun:
		w.kind, w.source, w.seq, w.pin, w.tids = KindRecover, in.Source, in.Seq, uint64(in.Run), in.Live
	case Gap:
		w.kind, w.source, w.seq = KindGap, in.Source, in.Seq
	case Retire:
		w.kind, w.id = KindRetire, in.Source
	case Restore:
		w.kind, w.snapshot = KindRestore, &in.Snapshot
	case SettleAt:
		one[0] = StorageTID(in)
		w.kind, w.tids = KindSettleAt, one[:]
	case Suspect:
		one[0] = StorageTID(in)
		w.kind, w.tids = KindSuspect, one[:]
	case Image:
		w.kind, w.image = KindImage, in.Bytes
	case Floor:
		w.kind, w.tids, w.floor = KindFloor, in.Live, in.Floor
	default:
		panic("input: not a tracker input (Append)") // no %T: in would escape
	}
	return w.append(dst)
}

func (w *wire) append(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, version1, byte(w.kind))
	dst = binary.AppendVarint(dst, w.time)
	dst = AppendEvent(dst, w.event)
	dst = AppendCommit(dst, w.commit)
	dst = AppendString(dst, w.id)
	dst = binary.AppendUvarint(dst, uint64(len(w.storages)))
	for _, s := range w.storages {
		dst = AppendString(dst, s)
	}
	dst = appendTIDs(dst, w.tids)
	dst = AppendBool(dst, w.flag)
	dst = binary.AppendUvarint(dst, w.pin)
	dst = AppendString(dst, w.source)
	dst = binary.AppendUvarint(dst, w.seq)
	sn := w.snapshot
	dst = AppendBool(dst, sn != nil)
	if sn != nil {
		dst = binary.AppendUvarint(dst, sn.NextPin)
		dst = AppendBool(dst, sn.Bootstrapped)
		dst = AppendBool(dst, sn.BootRequested)
		dst = binary.AppendUvarint(dst, uint64(len(sn.Storages)))
		for _, s := range sn.Storages {
			dst = AppendString(dst, s.Storage)
			dst = binary.AppendUvarint(dst, uint64(s.Published))
			dst = AppendBool(dst, s.HasPublished)
			dst = binary.AppendUvarint(dst, uint64(s.Transient))
			dst = AppendBool(dst, s.Known)
			dst = AppendBool(dst, s.Watched)
			dst = AppendBool(dst, s.WarnOnly)
			dst = binary.AppendUvarint(dst, uint64(s.Hist))
		}
		dst = binary.AppendUvarint(dst, uint64(len(sn.Sources)))
		for _, v := range sn.Sources {
			dst = AppendString(dst, v.Source)
			dst = binary.AppendUvarint(dst, v.Seq)
		}
	}
	if len(w.floor) > 0 || len(w.image) > 0 {
		dst[start] = version2
		dst = appendTIDs(dst, w.floor)
		dst = binary.AppendUvarint(dst, uint64(len(w.image)))
		dst = append(dst, w.image...)
	}
	return dst
}

// Decode decodes one journal record: the time it was applied at and the
// input. A record that is cut, has bytes left over, an unknown version or
// kind, or lacks what its kind needs is an error (a journal's replay cuts
// its tail there). Fields that the kind does not use are ignored.
func Decode(b []byte) (int64, Input, error) {
	now, in, err := decode(b)
	if err != nil {
		return 0, nil, fmt.Errorf("tracker: decoding a journaled input: %w", err)
	}
	return now, in, nil
}

func decode(b []byte) (int64, Input, error) {
	d := &Decoder{B: b}
	v := d.Byte()
	if d.Err == nil && v != version1 && v != version2 {
		return 0, nil, fmt.Errorf("input version %d, want %d or %d", v, version1, version2)
	}
	var w wire
	w.kind = Kind(d.Byte())
	w.time = d.Varint()
	ev := d.Event()
	c := d.Commit()
	w.id = d.String()
	if n := d.Count(); n > 0 {
		w.storages = make([]string, n)
		for k := range w.storages {
			w.storages[k] = d.String()
		}
	}
	w.tids = d.tids()
	w.flag = d.Bool()
	w.pin = d.Uvarint()
	w.source = d.String()
	w.seq = d.Uvarint()
	if d.Bool() {
		sn := &Snapshot{NextPin: d.Uvarint(), Bootstrapped: d.Bool(), BootRequested: d.Bool()}
		if n := d.Count(); n > 0 {
			sn.Storages = make([]StorageSnapshot, n)
			for k := range sn.Storages {
				s := &sn.Storages[k]
				s.Storage = d.String()
				s.Published = txn.TID(d.Uvarint())
				s.HasPublished = d.Bool()
				s.Transient = txn.TID(d.Uvarint())
				s.Known = d.Bool()
				s.Watched = d.Bool()
				s.WarnOnly = d.Bool()
				s.Hist = txn.TID(d.Uvarint())
			}
		}
		if n := d.Count(); n > 0 {
			sn.Sources = make([]SourceSeq, n)
			for k := range sn.Sources {
				sn.Sources[k] = SourceSeq{Source: d.String(), Seq: d.Uvarint()}
			}
		}
		w.snapshot = sn
	}
	if v == version2 {
		w.floor = d.tids()
		w.image = d.Bytes()
	}
	if d.Err == nil && len(d.B) != 0 {
		d.Err = fmt.Errorf("%d bytes left over", len(d.B))
	}
	if d.Err != nil {
		return 0, nil, d.Err
	}
	in, err := w.input(&ev, &c)
	if err != nil {
		return 0, nil, fmt.Errorf("%v: %w", w.kind, err)
	}
	return w.time, in, nil
}

// input builds the typed input of a decoded record.
func (w *wire) input(ev *txn.Event, c *txn.Commit) (Input, error) {
	one := func() (StorageTID, error) {
		if len(w.tids) != 1 {
			return StorageTID{}, fmt.Errorf("%d storages, want one", len(w.tids))
		}
		return w.tids[0], nil
	}
	switch w.kind {
	case KindEvent:
		return Event{Event: *ev, Source: w.source, Seq: w.seq}, nil
	case KindClassicBegin:
		return ClassicBegin{ID: w.id, Storages: w.storages}, nil
	case KindClassicCommit:
		return ClassicCommit{ID: w.id, TIDs: w.tids, None: w.storages}, nil
	case KindClassicAbort:
		return ClassicAbort{ID: w.id}, nil
	case KindBootstrap:
		return Bootstrap{Last: w.tids, Clean: w.flag}, nil
	case KindLastTID:
		t, err := one()
		return LastTID(t), err
	case KindHistoryStart:
		t, err := one()
		return HistoryStart{Storage: t.Storage, After: t.TID, WarnOnly: w.flag}, err
	case KindHistory:
		return History{Commit: *c}, nil
	case KindTick:
		return Tick{Awaited: w.storages}, nil
	case KindAccept:
		return Accept{Pin: w.pin}, nil
	case KindAcceptUnaccounted:
		return AcceptUnaccounted{Pin: w.pin, Live: w.tids}, nil
	case KindRecover:
		if w.pin != 0 {
			return RecoverRun{Source: w.source, Seq: w.seq, Run: txn.PartID(w.pin), Live: w.tids}, nil
		}
		return Recover{Live: w.tids, Floor: w.floor, TailLost: w.flag}, nil
	case KindGap:
		return Gap{Source: w.source, Seq: w.seq}, nil
	case KindRetire:
		return Retire{Source: w.id}, nil
	case KindRestore:
		if w.snapshot == nil {
			return nil, fmt.Errorf("no snapshot")
		}
		return Restore{Snapshot: *w.snapshot}, nil
	case KindSettleAt:
		t, err := one()
		return SettleAt(t), err
	case KindSuspect:
		t, err := one()
		return Suspect(t), err
	case KindImage:
		return Image{Bytes: w.image}, nil
	case KindFloor:
		return Floor{Live: w.tids, Floor: w.floor}, nil
	}
	return nil, fmt.Errorf("unknown input kind")
}
