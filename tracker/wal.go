package tracker

import (
	"time"

	"github.com/tidstorage/tidstorage/tracker/input"
	"github.com/tidstorage/tidstorage/tracker/journal"
)

// wal is the write-ahead log of the Machine's inputs (etcd keeps its wal
// apart from raft the same way): each input's encoding (tracker/input)
// appended to a tracker/journal file before the Machine applies it, and
// the image of the whole Machine the file restarts from at a rotation. It
// knows nothing of the Service's lock, holds or logs: the Service acts on
// the errors it returns (service_journal.go).
type wal struct {
	j      *journal.Journal
	buf    []byte
	recs   [][]byte
	offs   []int
	rotate int64
	stats  JournalStats
	// damaged: the replayed journal lost its tail (Recover is told).
	damaged bool
}

// writing says whether inputs are journaled: a journal is open and has not
// broken.
func (w *wal) writing() bool { return w.j != nil && w.stats.Broken == "" }

// append writes the inputs of ins applied at now, but a remote observer's
// resends (fresh: lastSeq gives the last seq applied from a source), with
// one write; it returns how many it wrote.
func (w *wal) append(now int64, ins []input.Input, lastSeq func(source string) uint64) (int, error) {
	w.buf = w.buf[:0]
	w.offs = w.offs[:0]
	f := fresh{lastSeq: lastSeq}
	for _, in := range ins {
		if f.keep(in) {
			w.buf = input.Append(w.buf, now, in)
			w.offs = append(w.offs, len(w.buf))
		}
	}
	switch len(w.offs) {
	case 0:
		return 0, nil
	case 1:
		return 1, w.j.Append(w.buf)
	}
	w.recs = w.recs[:0]
	from := 0
	for _, to := range w.offs {
		w.recs = append(w.recs, w.buf[from:to])
		from = to
	}
	return len(w.offs), w.j.AppendBatch(w.recs...)
}

// due says whether the journal should restart from an image: it grew past
// its rotation size, or it is broken (a rotation makes it whole again).
func (w *wal) due() bool {
	return w.j != nil && (w.stats.Broken != "" || w.j.Size() >= w.rotate)
}

// rotateTo restarts the journal from image (Machine.AppendImage's bytes,
// taken at now). On success the journal is whole again (Broken cleared).
func (w *wal) rotateTo(now int64, image []byte) error {
	t0 := time.Now()
	w.buf = input.Append(w.buf[:0], now, input.Image{Bytes: image})
	if err := w.j.Rotate(w.buf); err != nil {
		return err
	}
	w.stats.LastRotation = time.Since(t0)
	w.stats.Rotations++
	w.stats.Broken = ""
	if r := w.j.ReserveErr(); r != nil {
		w.stats.Reserve = r.Error()
	} else {
		w.stats.Reserve = ""
	}
	return nil
}

// current returns the stats with the file's size now.
func (w *wal) current() JournalStats {
	st := w.stats
	if w.j != nil {
		st.Size = w.j.Size()
	}
	return st
}

// close syncs and closes the file (nothing once closed).
func (w *wal) close() error {
	if w.j == nil {
		return nil
	}
	err := w.j.Close()
	w.j = nil
	return err
}

// fresh selects the inputs of a batch that the Machine will apply, before
// it applies them: not a remote observer's resends (input.Numbered: a Seq
// not above the last applied from its Source, lastSeq). A function of the
// source, not of the input: an input given to an unknown function would
// escape to the heap, and the relay's path does not allocate.
type fresh struct {
	lastSeq func(source string) uint64
	src     string
	last    uint64
}

func (f *fresh) keep(in input.Input) bool {
	source, seq := input.Numbered(in)
	if source == "" {
		return true
	}
	if source != f.src {
		f.src, f.last = source, f.lastSeq(source)
	}
	if seq <= f.last {
		return false
	}
	f.last = seq
	return true
}
