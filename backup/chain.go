package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// StampLayout is repozo's file name stamp: the backup's UTC wall-clock time.
const StampLayout = "2006-01-02-15-04-05"

// isDataFile matches repozo's data file names (repozo.py is_data_file).
var isDataFile = regexp.MustCompile(`^\d{4}(?:-\d\d){5}\.(?:delta)?fsz?$`)

// isStamped matches every file a backup run names by its stamp.
var isStamped = regexp.MustCompile(`^(\d{4}(?:-\d\d){5})\.`)

func splitExt(name string) (root, ext string) {
	ext = filepath.Ext(name)
	return strings.TrimSuffix(name, ext), ext
}

func isFull(name string) bool {
	_, ext := splitExt(name)
	return ext == ".fs" || ext == ".fsz"
}

// chain returns the data files repozo -R would join to restore the state as
// of stamp when (all if ""): the newest full backup not after it and the
// incrementals after that full, oldest first (repozo.py find_files). The
// comparison is on strings, as repozo's.
func (r *repository) chain(when string) ([]string, error) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if isDataFile.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	slices.Reverse(names)
	var needed []string
	for _, name := range names {
		root, _ := splitExt(name)
		if when != "" && root > when {
			continue
		}
		needed = append(needed, name)
		if isFull(name) {
			break
		}
	}
	if len(needed) > 0 && !isFull(needed[len(needed)-1]) {
		return nil, fmt.Errorf("%s: incremental backups without a full backup before them", r.dir)
	}
	slices.Reverse(needed)
	return needed, nil
}

// fulls lists the stamps of the repository's full backups, oldest first.
func (r *repository) fulls() ([]string, error) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, err
	}
	var fulls []string
	for _, e := range ents {
		if isDataFile.MatchString(e.Name()) && isFull(e.Name()) {
			root, _ := splitExt(e.Name())
			fulls = append(fulls, root)
		}
	}
	slices.Sort(fulls)
	return fulls, nil
}

// previous is the chain a new incremental would extend.
type previous struct {
	full  string // name of the chain's full backup
	dat   string // its ledger
	lines []datLine
	// mismatch, if not "", says why the data files repozo would join
	// differ from the ledger (a run that died between writing a data file
	// and its ledger line): the chain cannot be extended.
	mismatch string
}

// last is the chain's last ledger line.
func (p *previous) last() datLine { return p.lines[len(p.lines)-1] }

// files are the chain's data files as the ledger gives them, with the
// sha256 of sums where known.
func (p *previous) files(sums map[string]string) []FileEntry {
	files := make([]FileEntry, len(p.lines))
	for i, l := range p.lines {
		name := filepath.Base(l.Path)
		files[i] = FileEntry{Name: name, Start: l.Start, End: l.End, MD5: l.MD5, SHA256: sums[name]}
	}
	return files
}

// previous returns the newest chain of the repository, the one a new
// incremental would extend; nil if there is none (or no ledger for it).
func (r *repository) previous() (*previous, error) {
	names, err := r.chain("")
	if err != nil || len(names) == 0 {
		return nil, err
	}
	root, _ := splitExt(names[0])
	p := &previous{full: names[0], dat: root + ".dat"}
	p.lines, err = r.ledger(p.dat)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(p.lines) == 0 {
		return nil, nil
	}
	ledger := make([]string, len(p.lines))
	for i, l := range p.lines {
		ledger[i] = filepath.Base(l.Path)
	}
	if !slices.Equal(ledger, names) {
		p.mismatch = fmt.Sprintf("the repository's chain %v differs from its ledger %s %v", names, p.dat, ledger)
	}
	return p, nil
}

// checkChain re-reads every data file of the chain a new incremental would
// extend and checks it against its ledger line (size, md5) and the sha256
// the newest manifest recorded, as repozo's default (non-quick) mode
// checks the whole chain: a damaged file in the middle would make every
// later set of the chain unrestorable.
func (r *repository) checkChain(prev *previous) error {
	var pos int64
	for _, fe := range prev.files(r.carriedSHA256()) {
		if fe.Start != pos {
			return fmt.Errorf("ledger %s: %s starts at byte %d, but the files before it end at %d", prev.dat, fe.Name, fe.Start, pos)
		}
		if err := r.checkData(fe); err != nil {
			return err
		}
		pos = fe.End
	}
	return nil
}

// quickCheckChain checks that the chain's data files are there with their
// sizes (uncompressed ones), reading none: "" or what is wrong.
func (r *repository) quickCheckChain(prev *previous) string {
	for _, fe := range prev.files(nil) {
		if p := r.quickCheckData(fe); p != "" {
			return p
		}
	}
	return ""
}

// join appends the data files of storage e's chain to out, checking that
// their byte ranges follow each other and end at the set's size, and each
// file's size and checksum (see readData).
func (r *repository) join(out io.Writer, e *StorageEntry, pr *progress) error {
	var pos int64
	for _, fe := range e.Files {
		if fe.Start != pos {
			return fmt.Errorf("%s starts at byte %d, but the files before it end at %d", fe.Name, fe.Start, pos)
		}
		if err := r.readData(out, fe, pr, false); err != nil {
			return err
		}
		pos = fe.End
	}
	if pos != e.Size {
		return fmt.Errorf("the data files end at byte %d, the manifest says %d", pos, e.Size)
	}
	return nil
}

// errCompressed: a chain with gzipped files cannot be read at random
// offsets.
var errCompressed = errors.New("compressed chain")

// chainReader reads the data files of a chain as the one Data.fs they
// rebuild, without writing it: an io.ReaderAt over the files in order.
type chainReader struct {
	files  []*os.File
	starts []int64 // offset in the rebuilt file of each file's first byte
	size   int64
}

// openChain opens the chain's files for reading as one Data.fs; a chain
// with a gzipped file gives errCompressed.
func (r *repository) openChain(files []FileEntry) (*chainReader, error) {
	c := &chainReader{}
	for _, fe := range files {
		if strings.HasSuffix(fe.Name, "z") {
			c.Close()
			return nil, errCompressed
		}
		f, err := os.Open(r.path(fe.Name))
		if err != nil {
			c.Close()
			return nil, err
		}
		c.files = append(c.files, f)
		c.starts = append(c.starts, fe.Start)
		c.size = fe.End
	}
	return c, nil
}

func (c *chainReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("chain: negative offset %d", off)
	}
	n := 0
	// One iteration per file touched: bounded by the number of files.
	i := sort.Search(len(c.starts), func(i int) bool { return c.starts[i] > off }) - 1
	for ; n < len(p) && i >= 0 && i < len(c.files); i++ {
		m, err := c.files[i].ReadAt(p[n:], off+int64(n)-c.starts[i])
		n += m
		if err != nil && !errors.Is(err, io.EOF) {
			return n, err
		}
		if i+1 < len(c.starts) && off+int64(n) < c.starts[i+1] {
			break // a file shorter than its range: a hole
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (c *chainReader) Close() error {
	for _, f := range c.files {
		f.Close()
	}
	return nil
}

// maxTailCheck bounds the memory chainTail may take to check a chain's
// last transaction without reading the whole chain (verify without
// --read-data on a compressed chain, backup -Q).
const maxTailCheck = 64 << 20

// chainTail returns bytes [from, end of chain) of the file the chain
// rebuilds, decompressing gzipped files as it streams through them.
func (r *repository) chainTail(files []FileEntry, from int64) ([]byte, error) {
	var out []byte
	for _, fe := range files {
		if fe.End <= from {
			continue
		}
		err := func() error {
			in, err := r.openData(fe.Name)
			if err != nil {
				return err
			}
			defer in.Close()
			if skip := from - fe.Start; skip > 0 {
				if _, err := io.CopyN(io.Discard, in, skip); err != nil {
					return fmt.Errorf("%s: %w", fe.Name, err)
				}
			}
			b, err := io.ReadAll(in)
			if err != nil {
				return fmt.Errorf("%s: %w", fe.Name, err)
			}
			out = append(out, b...)
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// offsetReader reads b as the bytes at offset base of a larger file.
type offsetReader struct {
	b    []byte
	base int64
}

func (o offsetReader) ReadAt(p []byte, off int64) (int, error) {
	if off < o.base {
		return 0, fmt.Errorf("offset %d is before the bytes read (%d)", off, o.base)
	}
	return bytes.NewReader(o.b).ReadAt(p, off-o.base)
}

// extendChain records data file w, holding bytes [start, end) of the
// Data.fs, as the next line of the ledger dat (a new ledger when start is
// 0: a full backup starts a chain), after lines, the chain's lines so far.
// A data file the ledger could not take is removed: repozo -R would still
// join it. It returns the chain's lines.
func (r *repository) extendChain(dat string, lines []datLine, w *writtenData, start, end int64) ([]datLine, error) {
	if w.n != end-start {
		r.removeData(w.name)
		return nil, fmt.Errorf("copied %d bytes to %s, the scan kept %d", w.n, w.name, end-start)
	}
	line := datLine{Path: r.path(w.name), Start: start, End: end, MD5: w.md5}
	if err := r.appendLedger(dat, line, start == 0); err != nil {
		r.removeData(w.name)
		return nil, err
	}
	return append(slices.Clip(lines), line), nil
}

// chainFiles lists the data files of the chain of ledger dat (its lines),
// with the sha256 of sums where known; each must be in the repository.
func (r *repository) chainFiles(dat string, lines []datLine, sums map[string]string) ([]FileEntry, error) {
	var files []FileEntry
	for _, l := range lines {
		name := filepath.Base(l.Path)
		if _, err := os.Stat(r.path(name)); err != nil {
			return nil, fmt.Errorf("the ledger %s names a missing data file: %w", dat, err)
		}
		files = append(files, FileEntry{Name: name, Start: l.Start, End: l.End, MD5: l.MD5, SHA256: sums[name]})
	}
	return files, nil
}
