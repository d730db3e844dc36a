package backup

import (
	"fmt"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// ManifestFormat identifies the manifest's schema.
const ManifestFormat = "tidstorage-backup-set/1"

// manifestSuffix ends a manifest's name: <stamp>.tidstorage.json. repozo
// ignores it (not a data file name) and -k does not delete it.
const manifestSuffix = ".tidstorage.json"

// Manifest describes one backup set: every storage backed up to one
// coherent point. The same manifest is written to every repository of the
// set.
type Manifest struct {
	Format      string            `json:"format"`
	Stamp       string            `json:"stamp"` // repozo stamp of the set's files
	Time        time.Time         `json:"time"`  // when the backup ran (UTC)
	PointSource string            `json:"point_source"`
	Point       map[string]string `json:"point"` // storage id → TID (16 hex digits)
	Storages    []*StorageEntry   `json:"storages"`
	// SameAs, set by Backup only, says that the run would have repeated
	// this existing set (its stamp): nothing was written and Backup
	// returned that set.
	SameAs string `json:"-"`
}

// StorageEntry is one storage of a set.
type StorageEntry struct {
	ID         string `json:"id"`
	Label      string `json:"label"` // directory name on restore
	DataFS     string `json:"data_fs"`
	Repository string `json:"repository"`
	Magic      string `json:"magic"`

	TID     string `json:"tid"`      // the point's TID for this storage
	KeptTID string `json:"kept_tid"` // last transaction kept (<= TID), "" if none
	Exact   bool   `json:"exact"`    // KeptTID == TID

	// Kind is full, incremental, or unchanged (nothing new since the
	// previous set: no data file written).
	Kind string `json:"kind"`
	// Size is the length of the backed-up Data.fs: the cut offset.
	Size int64 `json:"size"`
	// LastTxn locates the last kept transaction, to check next time that
	// the Data.fs is still append-only.
	LastTxn TxnRef `json:"last_txn"`
	// Source file facts at backup time.
	SourceSize  int64  `json:"source_size"`
	SourceInode uint64 `json:"source_inode,omitempty"`
	// Dat is the repozo ledger of the chain; Files the chain's data files
	// (the full backup, then incrementals), in order.
	Dat   string      `json:"dat"`
	Files []FileEntry `json:"files"`

	Blobs *BlobsEntry `json:"blobs,omitempty"`
}

// TxnRef locates a transaction record.
type TxnRef struct {
	Pos int64  `json:"pos"`
	Len uint64 `json:"tlen"`
	TID string `json:"tid"`
}

// FileEntry is one data file of a chain: bytes [Start, End) of the Data.fs.
type FileEntry struct {
	Name   string `json:"name"`
	Start  int64  `json:"start"`
	End    int64  `json:"end"`
	MD5    string `json:"md5"`
	SHA256 string `json:"sha256,omitempty"` // of files tidstorage wrote
}

// BlobsEntry lists the blob files of a storage's set, relative to the
// repository's blobs/ pool (and to the blob directory).
type BlobsEntry struct {
	Dir     string     `json:"dir"` // source blob directory
	Layout  string     `json:"layout"`
	Files   []BlobFile `json:"files"`
	Bytes   int64      `json:"bytes"`
	Copied  int        `json:"copied"`            // new in the pool in this run
	Missing []string   `json:"missing,omitempty"` // blob records without a file (oid tid)
}

// BlobFile is one blob revision.
type BlobFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// Storage returns the entry of storage id, or nil.
func (m *Manifest) Storage(id string) *StorageEntry {
	for _, s := range m.Storages {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// keptTID is the entry's kept transaction (0 if none).
func (e *StorageEntry) keptTID() (txn.TID, error) {
	if e.KeptTID == "" {
		return 0, nil
	}
	t, err := txn.ParseTID(e.KeptTID, txn.FormatHex)
	if err != nil {
		return 0, fmt.Errorf("manifest: kept_tid: %w", err)
	}
	return t, nil
}
