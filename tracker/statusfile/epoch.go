package statusfile

import (
	"fmt"
	"os"
	"strings"

	"github.com/tidstorage/tidstorage/internal/atomicfile"
)

// Epochs. Published TIDs never decrease within a
// status file (docs/design.md, "Monotonic"): readers (ours and the original's check_tid_log.py) refuse a
// line that lowers a storage. But a storage's history can go back between
// two runs — an older set restored in place, a cut, a pack that rewrote it —
// and the first full line of the next run would then lower it. So when the
// point this run starts from is below the file's last point for some
// storage (or the file does not replay at all), the first line begins a new
// epoch — at start, or later for a storage first published later (a
// classic-only daemon learns each storage from its first COMMIT): the file so far is kept as <path>.epoch-<UTC time> (a hard link,
// so that the path always exists for a reader), and a new file at path
// begins with a full line. Every file is a classic status file on its own;
// backup and cut read the current one. A storage that merely left the
// configuration is not a new epoch: it is absent from the next full line,
// which readers take as the storage leaving the point.

// epochReason says why the first line of this run must begin a new epoch
// ("" if it must not).
func (w *Writer) epochReason(point []Entry) string {
	if w.path == "" {
		return ""
	}
	if w.prevE != nil {
		return fmt.Sprintf("the file does not replay (%v)", w.prevE)
	}
	if w.prev == nil {
		return ""
	}
	var why []string
	for _, e := range point {
		if old, ok := w.prev.Point[e.Storage]; ok && e.TID < old {
			why = append(why, fmt.Sprintf("%s went back from %s to %s", e.Storage, old.Hex(), e.TID.Hex()))
		}
	}
	return strings.Join(why, "; ")
}

// newEpoch keeps the file so far aside and continues in a new, empty file
// at the same path; the next line is a full one.
func (w *Writer) newEpoch() error {
	if w.osf == nil {
		return fmt.Errorf("statusfile: a new epoch needs a file opened by path")
	}
	// The file so far gets its second name first, then an empty file
	// replaces it whole (internal/atomicfile), opened for appending.
	aside, err := w.setAside()
	if err == nil {
		err = atomicfile.WriteFile(w.path, nil, 0o644)
	}
	var nf *os.File
	if err == nil {
		nf, err = os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND, 0)
	}
	if err != nil {
		return fmt.Errorf("statusfile: new epoch: %w", err)
	}
	_ = w.osf.Close()
	w.osf, w.f = nf, nf
	w.lines.f, w.lines.size, w.lines.needFull = nf, 0, true
	w.log.Error("status file: a NEW EPOCH begins — "+w.epochWhy+" (a restore in place, a cut or a rewritten storage). "+
		"The previous file is kept aside; backup and cut read the new one, which starts with a full line of the live point",
		"path", w.path, "previous_epoch", aside)
	w.mu.Lock()
	w.stats.Epochs++
	w.base = -w.lines.count // the new file starts empty
	w.stats.FileLines = 0
	w.stats.LastAside = aside
	w.mu.Unlock()
	w.epochWhy, w.prev, w.prevE = "", nil, nil
	return nil
}

// setAside gives the current file a second name <path>.epoch-<time>: a
// hard link where the file system has them (path never disappears for a
// reader), else a rename.
func (w *Writer) setAside() (string, error) {
	name, f, err := createAside(w.path, ".epoch-")
	if err != nil {
		return "", err
	}
	_ = f.Close()
	_ = os.Remove(name)
	if err := os.Link(w.path, name); err == nil {
		return name, nil
	}
	return name, os.Rename(w.path, name)
}
