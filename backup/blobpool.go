package backup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tidstorage/tidstorage/internal/atomicfile"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// blobPoolDir is the directory of a repository holding blob files: the
// same relative paths as in the blob directory (its .layout included). Blob
// files are write-once and named by oid and tid, so one pool serves every
// set; a set's manifest lists the files that belong to it.
const blobPoolDir = "blobs"

// blobPool is a repository's pool of blob files.
type blobPool struct{ dir string }

func (r *repository) blobs() blobPool { return blobPool{dir: r.path(blobPoolDir)} }

// file is the path of a pooled blob file from its manifest path, which
// must stay inside the pool.
func (p blobPool) file(rel string) (string, error) {
	local := filepath.FromSlash(rel)
	if !filepath.IsLocal(local) {
		return "", fmt.Errorf("manifest: blob path %q leaves the blob directory", rel)
	}
	return filepath.Join(p.dir, local), nil
}

// store copies into the pool every blob file of src whose tid is <= kept
// and that the pool lacks, and lists them all; records are the blob
// records of the kept transactions, to name those without a file. Run it
// after the Data.fs bytes are fixed: a blob file exists before its
// transaction commits.
func (p blobPool) store(src string, kept txn.TID, records map[blobRecord]bool, pr *progress) (*BlobsEntry, error) {
	layout, err := readLayout(src)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, err
	}
	if old, err := os.ReadFile(filepath.Join(p.dir, ".layout")); err == nil {
		if strings.TrimSpace(string(old)) != layout {
			return nil, fmt.Errorf("%s/.layout says %q but %s is %q", p.dir, strings.TrimSpace(string(old)), src, layout)
		}
	} else if err := atomicfile.WriteFile(filepath.Join(p.dir, ".layout"), []byte(layout+"\n"), 0o644); err != nil {
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
		dst := filepath.Join(p.dir, rel)
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

// restoreTo copies a set's blob files from the pool to dst (with the
// .layout), checking their sizes; existing files are replaced (the caller
// refused them unless forced).
func (p blobPool) restoreTo(b *BlobsEntry, dst string, pr *progress) (int, error) {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return 0, err
	}
	if err := atomicfile.WriteFile(filepath.Join(dst, ".layout"), []byte(b.Layout+"\n"), 0o644); err != nil {
		return 0, err
	}
	n := 0
	for _, bf := range b.Files {
		src, err := p.file(bf.Path)
		if err != nil {
			return n, err
		}
		st, err := os.Stat(src)
		if err != nil {
			return n, fmt.Errorf("blob %s: %w", bf.Path, err)
		}
		if st.Size() != bf.Size {
			return n, fmt.Errorf("blob %s: %d bytes in the repository, the manifest says %d", bf.Path, st.Size(), bf.Size)
		}
		if err := copyBlob(src, filepath.Join(dst, filepath.FromSlash(bf.Path)), pr); err != nil {
			return n, fmt.Errorf("blob %s: %w", bf.Path, err)
		}
		n++
	}
	pr.finish()
	return n, nil
}

// check checks a set's blob files in the pool: present, with their size,
// and with readData read through.
func (p blobPool) check(b *BlobsEntry, readData bool) error {
	var bad []string
	for _, bf := range b.Files {
		rel := filepath.FromSlash(bf.Path)
		if !filepath.IsLocal(rel) {
			bad = append(bad, fmt.Sprintf("%s: leaves the pool", bf.Path))
			continue
		}
		path := filepath.Join(p.dir, rel)
		st, err := os.Stat(path)
		switch {
		case err != nil:
			bad = append(bad, err.Error())
		case st.Size() != bf.Size:
			bad = append(bad, fmt.Sprintf("%s: %d bytes, the manifest says %d", path, st.Size(), bf.Size))
		case readData:
			if err := readThrough(path); err != nil {
				bad = append(bad, err.Error())
			}
		}
	}
	if len(bad) > 0 {
		more := ""
		if len(bad) > 5 {
			more = fmt.Sprintf(" (and %d more)", len(bad)-5)
			bad = bad[:5]
		}
		return fmt.Errorf("%d blob file(s) bad: %s%s", len(bad), strings.Join(bad, "; "), more)
	}
	return nil
}

func readThrough(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(io.Discard, f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// exists reports whether the repository has a blob pool.
func (p blobPool) exists() bool {
	_, err := os.Stat(p.dir)
	return !errors.Is(err, fs.ErrNotExist)
}

// unlisted lists the pooled blob files (relative, "/" separated) that
// needed lacks, with their total size.
func (p blobPool) unlisted(needed map[string]bool) ([]string, int64, error) {
	var out []string
	var bytes int64
	err := filepath.WalkDir(p.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if _, ok := blobTID(d.Name()); !ok {
			return nil
		}
		rel, err := filepath.Rel(p.dir, path)
		if err != nil {
			return err
		}
		if !needed[filepath.ToSlash(rel)] {
			info, err := d.Info()
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
			bytes += info.Size()
		}
		return nil
	})
	return out, bytes, err
}

// remove removes pooled blob files (relative, "/" separated), then the
// directories they leave empty.
func (p blobPool) remove(rels []string) error {
	dirs := map[string]bool{}
	for _, rel := range rels {
		path := filepath.Join(p.dir, filepath.FromSlash(rel))
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for d := filepath.Dir(path); d != p.dir && strings.HasPrefix(d, p.dir); d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	// Deepest first; a directory still holding files stays.
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	for _, d := range sorted {
		os.Remove(d)
	}
	return nil
}

// copyBlob copies a blob file to dst through a temporary file, read-only as
// ZODB leaves committed blobs. Nothing hashes a blob's bytes: file to file,
// the kernel copies them (copy_file_range) without a pass through this
// process.
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
		n, err := io.Copy(out, in)
		pr.add(n)
		return err
	})
}
