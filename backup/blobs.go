package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// blobRecord is a data record whose pickle is a ZODB.blob.Blob.
type blobRecord struct {
	oid uint64
	tid txn.TID
}

// blobClass is the class reference at the start of a Blob record's pickle
// (GLOBAL opcode, any pickle protocol ZODB uses).
var blobClass = []byte("ZODB.blob\nBlob\n")

// blobCollector returns an fsdata.ScanOptions.OnData that records the blob
// records of transactions up to target.
func blobCollector(target txn.TID, into map[blobRecord]bool) func(*fsdata.TxnHeader, *fsdata.DataHeader, []byte) error {
	return func(_ *fsdata.TxnHeader, d *fsdata.DataHeader, head []byte) error {
		if d.TID <= target && bytes.Contains(head, blobClass) {
			into[blobRecord{d.OID, d.TID}] = true
		}
		return nil
	}
}

// reprHex is ZODB's oid_repr/tid_repr: 0x and the hex digits without leading
// zero bytes, at least one byte.
func reprHex(v uint64) string {
	s := strings.TrimLeft(fmt.Sprintf("%016x", v), "0")
	if len(s)%2 == 1 {
		s = "0" + s
	}
	if s == "" {
		s = "00"
	}
	return "0x" + s
}

// blobPath returns the path of a blob revision relative to the blob
// directory, for layout "bushy" or "lawn".
func blobPath(layout string, r blobRecord) string {
	name := reprHex(uint64(r.tid)) + ".blob"
	if layout == "lawn" {
		return filepath.Join(reprHex(r.oid), name)
	}
	parts := make([]string, 0, 9)
	for i := 7; i >= 0; i-- {
		parts = append(parts, fmt.Sprintf("0x%02x", byte(r.oid>>(8*i))))
	}
	return filepath.Join(append(parts, name)...)
}

// readLayout returns the blob directory's layout (bushy when .layout is
// missing, as ZODB decides for a new directory).
func readLayout(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, ".layout"))
	if errors.Is(err, fs.ErrNotExist) {
		return "bushy", nil
	}
	if err != nil {
		return "", err
	}
	layout := strings.TrimSpace(string(b))
	if layout != "bushy" && layout != "lawn" {
		return "", fmt.Errorf("%s/.layout: unknown layout %q", dir, layout)
	}
	return layout, nil
}

// blobTID parses the tid of a blob file name "0x<hex>.blob".
func blobTID(name string) (txn.TID, bool) {
	hex, ok := strings.CutSuffix(name, ".blob")
	if !ok || !strings.HasPrefix(hex, "0x") || len(hex) < 3 || len(hex) > 18 {
		return 0, false
	}
	v, err := strconv.ParseUint(hex[2:], 16, 64)
	return txn.TID(v), err == nil
}
