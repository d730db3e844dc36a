package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/internal/atomicfile"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// blobPool is the directory of a repository holding blob files: the same
// relative paths as in the blob directory (its .layout included). Blob files
// are write-once and named by oid and tid, so one pool serves every set; a
// set's manifest lists the files that belong to it.
const blobPool = "blobs"

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

// backupBlobs copies into repo/blobs every blob file of src whose tid is <=
// kept and that the pool lacks, and lists them all. Run it after the Data.fs
// bytes are fixed: a blob file exists before its transaction commits.
func backupBlobs(src, repo string, kept txn.TID, records map[blobRecord]bool, pr *progress) (*BlobsEntry, error) {
	layout, err := readLayout(src)
	if err != nil {
		return nil, err
	}
	pool := filepath.Join(repo, blobPool)
	if err := os.MkdirAll(pool, 0o755); err != nil {
		return nil, err
	}
	if old, err := os.ReadFile(filepath.Join(pool, ".layout")); err == nil {
		if strings.TrimSpace(string(old)) != layout {
			return nil, fmt.Errorf("%s/.layout says %q but %s is %q", pool, strings.TrimSpace(string(old)), src, layout)
		}
	} else if err := atomicfile.WriteFile(filepath.Join(pool, ".layout"), []byte(layout+"\n"), 0o644); err != nil {
		return nil, err
	}
	e := &BlobsEntry{Dir: src, Layout: layout}
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			// tmp/ holds uncommitted and temporary files; hidden
			// directories are not ZODB's.
			if rel == "tmp" || (rel != "." && strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		t, ok := blobTID(d.Name())
		if !ok || t > kept || !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		dst := filepath.Join(pool, rel)
		if st, err := os.Stat(dst); err == nil && st.Size() == info.Size() {
			// Write-once: same name and size is the same revision.
		} else {
			if err := copyBlob(path, dst, pr); err != nil {
				return err
			}
			e.Copied++
		}
		e.Files = append(e.Files, BlobFile{Path: filepath.ToSlash(rel), Size: info.Size()})
		e.Bytes += info.Size()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("blobs of %s: %w", src, err)
	}
	for r := range records {
		if _, err := os.Stat(filepath.Join(src, blobPath(layout, r))); err != nil {
			e.Missing = append(e.Missing, fmt.Sprintf("%016x %s", r.oid, r.tid.Hex()))
		}
	}
	sort.Strings(e.Missing)
	return e, nil
}

// copyBlob copies a blob file to dst through a temporary file, read-only as
// ZODB leaves committed blobs.
func copyBlob(src, dst string, pr *progress) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.Write(dst, 0o444, func(out io.Writer) error {
		if pr != nil {
			out = io.MultiWriter(out, pr)
		}
		_, err := io.Copy(out, in)
		return err
	})
}
