package backup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/internal/atomicfile"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// CutPlan is a Data.fs locked and scanned, ready to be cut right after the
// point's TID. Make one per storage with PlanCut, check them all, then Apply
// (or Release for a dry run): no file is changed before every storage is
// known to be cuttable.
type CutPlan struct {
	Path   string
	Target txn.TID
	Cut    *fsdata.Cut
	// InUse, for a preview, says which program holds the file: the real
	// cut will refuse until it stops.
	InUse string
	lock  *Lock
	f     *os.File
}

// PlanCut locks path (refusing if a ZODB process holds it) and finds where
// to cut it after target. It refuses a file whose committed data ends before
// target unless allowBehind: its storage lacks transactions of the point.
func PlanCut(path string, target txn.TID, allowBehind bool) (*CutPlan, error) {
	return planCut(path, target, allowBehind, false)
}

// PreviewCut is PlanCut for a dry run on a live system: when a ZEO server
// holds the file, it still reads it (read-only, as of now) and says so in
// InUse instead of refusing. A preview cannot be applied.
func PreviewCut(path string, target txn.TID, allowBehind bool) (*CutPlan, error) {
	return planCut(path, target, allowBehind, true)
}

func planCut(path string, target txn.TID, allowBehind, preview bool) (*CutPlan, error) {
	p := &CutPlan{Path: path, Target: target}
	lock, err := LockDataFS(path)
	switch {
	case err != nil && preview && errors.Is(err, ErrInUse):
		p.InUse = err.Error()
	case err != nil:
		return nil, err
	}
	p.lock = lock
	mode := os.O_RDWR
	if lock == nil {
		mode = os.O_RDONLY
	}
	f, err := os.OpenFile(path, mode, 0)
	if err != nil {
		p.Release()
		return nil, err
	}
	p.f = f
	st, err := f.Stat()
	if err != nil {
		p.Release()
		return nil, err
	}
	p.Cut, err = fsdata.CutReader(f, st.Size(), target, fsdata.ScanOptions{Name: path})
	if err != nil {
		p.Release()
		return nil, err
	}
	if p.Cut.Behind() && !allowBehind {
		p.Release()
		return nil, fmt.Errorf("%s: its last committed transaction %s is before the point's TID %s: the file lacks transactions of the point (restored from an older copy?); nothing to cut, refusing (use --allow-behind to go on)",
			path, p.Cut.LastTID.Hex(), target.Hex())
	}
	return p, nil
}

// Noop reports whether the file already ends right after the target.
func (p *CutPlan) Noop() bool { return p.Cut.RemovedBytes() == 0 }

// CutResult says what Apply did.
type CutResult struct {
	TailFile     string // where the removed bytes were saved ("" if none)
	IndexMoved   string // where the stale .index went ("" if none)
	IndexWritten bool   // a fresh <path>.index was written (FS30 files)
}

// Apply saves the bytes after the cut to <path>.cut-<tid>-<stamp>, moves a
// stale <path>.index aside to <path>.index.cut-<tid>-<stamp>, truncates the
// file, checks by a rescan that it now ends with the kept transaction, and
// writes a fresh index from that rescan. It releases the plan.
func (p *CutPlan) Apply(now time.Time) (*CutResult, error) {
	defer p.Release()
	if p.lock == nil {
		return nil, fmt.Errorf("%s: a preview cannot be applied: the file is not locked", p.Path)
	}
	res := &CutResult{}
	if p.Noop() {
		return res, nil
	}
	suffix := fmt.Sprintf(".cut-%s-%s", p.Target.Hex(), now.UTC().Format("20060102T150405Z"))
	res.TailFile = p.Path + suffix
	if err := copyRange(p.f, p.Cut.Offset, p.Cut.Size, res.TailFile); err != nil {
		return nil, fmt.Errorf("save the removed bytes: %w", err)
	}
	if _, err := os.Stat(p.Path + ".index"); err == nil {
		res.IndexMoved = p.Path + ".index" + suffix
		if err := os.Rename(p.Path+".index", res.IndexMoved); err != nil {
			return res, fmt.Errorf("move the stale index aside: %w", err)
		}
	}
	if err := p.f.Truncate(p.Cut.Offset); err != nil {
		return res, fmt.Errorf("truncate %s: %w", p.Path, err)
	}
	if err := p.f.Sync(); err != nil {
		return res, fmt.Errorf("sync %s: %w", p.Path, err)
	}
	atomicfile.SyncDir(filepath.Dir(p.Path))
	ix := fsdata.NewIndex()
	c, err := fsdata.CutReader(p.f, p.Cut.Offset, p.Target, fsdata.ScanOptions{Name: p.Path, OnData: ix.Collect(p.Target)})
	if err != nil {
		return res, fmt.Errorf("check after the cut: %w", err)
	}
	if c.LastTID != p.Cut.KeptTID || c.Tail.Kind != fsdata.TailNone || c.Committed != p.Cut.Offset {
		return res, fmt.Errorf("check after the cut: %s ends with tid %s at %d (tail %s), want %s at %d",
			p.Path, c.LastTID.Hex(), c.Committed, c.Tail.Kind, p.Cut.KeptTID.Hex(), p.Cut.Offset)
	}
	if err := writeIndex(p.Path, c.Magic, ix, p.Cut.Offset); err != nil {
		return res, err
	}
	res.IndexWritten = c.Magic == fsdata.MagicFS30
	return res, nil
}

// Release unlocks the file without changing it.
func (p *CutPlan) Release() {
	if p.f != nil {
		p.f.Close()
		p.f = nil
	}
	p.lock.Unlock()
}

// copyRange copies bytes [from, to) of f to a new file dst (which must not
// exist), synced. Nothing hashes them: the kernel copies them file to file
// (copy_file_range). It moves f's offset; the cut reads f at offsets.
func copyRange(f *os.File, from, to int64, dst string) error {
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return err
	}
	return atomicfile.WriteNew(dst, 0o644, func(out io.Writer) error {
		n, err := io.Copy(out, io.LimitReader(f, to-from))
		if err == nil && n != to-from {
			err = fmt.Errorf("copied %d bytes of %d: the file shrank", n, to-from)
		}
		return err
	})
}
