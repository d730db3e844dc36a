package backup

import (
	"fmt"
	"io"

	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// checkRebuilt scans a Data.fs rebuilt from storage e's chain (a restored
// file, or the chain read as one file) with every format check: it must
// end exactly with the kept transaction, with no tail, and have the
// recorded magic. It returns the scan and the index built while scanning.
func checkRebuilt(f io.ReaderAt, name string, e *StorageEntry, kept txn.TID) (*fsdata.Cut, *fsdata.Index, error) {
	ix := fsdata.NewIndex()
	c, err := fsdata.CutReader(f, e.Size, kept, fsdata.ScanOptions{Name: name, OnData: ix.Collect(kept)})
	if err != nil {
		return nil, nil, err
	}
	if c.Committed != e.Size || c.Tail.Kind != fsdata.TailNone || c.LastTID != kept || (e.Magic != "" && c.Magic != e.Magic) {
		return nil, nil, fmt.Errorf("it ends with tid %s at %d (tail: %s, magic %s), the manifest says %s at %d (magic %s)",
			c.LastTID.Hex(), c.Committed, c.Tail.Kind, c.Magic, kept.Hex(), e.Size, e.Magic)
	}
	return c, ix, nil
}

// writeIndex writes a fresh <path>.index for an FS30 file, so that ZODB
// opens it without a full scan. FS21 files (Python 2 pickles) get none:
// ZODB rebuilds it.
func writeIndex(path, magic string, ix *fsdata.Index, pos int64) error {
	if magic != fsdata.MagicFS30 {
		return nil
	}
	if err := ix.WriteFile(path+".index", pos); err != nil {
		return fmt.Errorf("write a fresh index: %w", err)
	}
	return nil
}
