package backup

import (
	"path/filepath"

	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// BlobRef is a blob revision a Data.fs records: the oid and tid of a data
// record whose pickle is a ZODB.blob.Blob (the archive uses it).
type BlobRef struct {
	OID uint64
	TID txn.TID
}

// CollectBlobs returns an fsdata.ScanOptions.OnData that adds to into the
// blob records of transactions up to target.
func CollectBlobs(target txn.TID, into map[BlobRef]bool) func(*fsdata.TxnHeader, *fsdata.DataHeader, []byte) error {
	recs := map[blobRecord]bool{}
	collect := blobCollector(target, recs)
	return func(h *fsdata.TxnHeader, d *fsdata.DataHeader, head []byte) error {
		clear(recs)
		if err := collect(h, d, head); err != nil {
			return err
		}
		for r := range recs {
			into[BlobRef{r.oid, r.tid}] = true
		}
		return nil
	}
}

// Path is the revision's file relative to the blob directory ("/"
// separated), for layout "bushy" or "lawn".
func (r BlobRef) Path(layout string) string {
	return filepath.ToSlash(blobPath(layout, blobRecord{r.OID, r.TID}))
}

// BlobLayout returns a blob directory's layout (bushy when .layout is
// missing, as ZODB decides for a new directory).
func BlobLayout(dir string) (string, error) { return readLayout(dir) }
