package backup

import (
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"time"

	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/internal/atomicfile"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// Spec is one storage to back up or restore.
type Spec struct {
	ID         string
	Label      string // directory name for restores; see Label
	DataFS     string
	BlobDir    string // "" = no blobs
	Repository string
}

var unsafeLabel = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Label makes a directory name from parts (e.g. the zeo block and storage
// name), replacing anything but letters, digits, '.', '_' and '-'.
func Label(parts ...string) string {
	s := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if s != "" {
			s += "-"
		}
		s += p
	}
	s = unsafeLabel.ReplaceAllString(s, "_")
	for len(s) > 0 && (s[0] == '.' || s[0] == '_') {
		s = s[1:]
	}
	if s == "" {
		s = "storage"
	}
	return s
}

// Options tune Backup.
type Options struct {
	// Full forces full backups; otherwise a storage whose repository holds
	// a chain that the Data.fs still extends gets an incremental.
	Full bool
	// Quick checks the chain an incremental extends by its files' sizes and
	// its last transaction (the same bytes in the Data.fs and in the
	// repository) instead of re-reading it all: an incremental then costs
	// about its new bytes (repozo -Q). A damaged file in the middle of the
	// chain goes unnoticed until verify or restore.
	Quick bool
	// Gzip writes compressed data files (.fsz, .deltafsz) as repozo -z
	// does: the ledger's md5 and the manifest's sha256 are of the
	// uncompressed bytes, as repozo checks them.
	Gzip bool
	// Now is the backup's time (default time.Now).
	Now time.Time
	// PointSource describes where the point came from, for the manifest.
	PointSource string
	// Log receives one line per decision (full or incremental and why);
	// Progress receives periodic "copied X of Y" lines every ProgressEvery.
	Log           io.Writer
	Progress      io.Writer
	ProgressEvery time.Duration
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// Backup backs up every storage of specs to its TID in point, as one set
// with one stamp, and writes the set's manifest to every repository. Every
// spec needs a Data.fs, a repository (distinct per storage) and a TID in
// point.
func Backup(specs []Spec, point map[string]txn.TID, opts Options) (*Manifest, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if len(specs) == 0 {
		return nil, errors.New("backup: no storage to back up (a storage needs data_fs and repository)")
	}
	repos := make([]string, 0, len(specs))
	seen := map[string]string{}
	for _, s := range specs {
		if s.DataFS == "" || s.Repository == "" {
			return nil, fmt.Errorf("backup: storage %s: needs data_fs and repository", s.ID)
		}
		if _, ok := point[s.ID]; !ok {
			return nil, fmt.Errorf("backup: storage %s: not in the point (%s has no TID for it)", s.ID, pointName(opts.PointSource))
		}
		abs, err := filepath.Abs(s.Repository)
		if err != nil {
			return nil, err
		}
		if other, ok := seen[abs]; ok {
			return nil, fmt.Errorf("backup: storages %s and %s share the repository %s: give each its own", other, s.ID, s.Repository)
		}
		seen[abs] = s.ID
		// Created on first use, as repozo users expect of a new storage.
		if err := os.MkdirAll(s.Repository, 0o755); err != nil {
			return nil, fmt.Errorf("backup: storage %s: repository: %w", s.ID, err)
		}
		repos = append(repos, s.Repository)
	}
	// Two writers of one repository would start two incrementals at the
	// same offset, or delete what the other extends.
	locks, err := lockRepositories(repos, "backup", opts.logf)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer unlockAll(locks)
	stamp, err := nextStamp(opts.Now, repos)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	m := &Manifest{Format: ManifestFormat, Stamp: stamp, Time: opts.Now.UTC(), PointSource: opts.PointSource, Point: map[string]string{}}
	for id, t := range point {
		m.Point[id] = t.Hex()
	}
	for _, s := range specs {
		e, err := backupOne(s, point[s.ID], stamp, &opts)
		if err != nil {
			return nil, fmt.Errorf("backup: storage %s: %w", s.ID, err)
		}
		m.Storages = append(m.Storages, e)
	}
	// A run that changed nothing would only add a set identical to the
	// previous one: a backup every few minutes of an idle site would bury
	// the real sets under copies.
	if prev := sameAsNewest(m, repos); prev != nil {
		prev.SameAs = prev.Stamp
		opts.logf("nothing new since set %s (same files, same TIDs): no new set written", prev.Stamp)
		return prev, nil
	}
	// The manifest goes last: a set without one is incomplete and restore
	// ignores it.
	for _, s := range specs {
		if err := writeManifest(s.Repository, m); err != nil {
			return nil, fmt.Errorf("backup: manifest: %w", err)
		}
	}
	return m, nil
}

// sameAsNewest returns the newest set of the first repository if it
// restores exactly what m would: the same storages, each unchanged since,
// with the same kept TID, data files and blob files.
func sameAsNewest(m *Manifest, repos []string) *Manifest {
	for _, e := range m.Storages {
		if e.Kind != "unchanged" || (e.Blobs != nil && e.Blobs.Copied > 0) {
			return nil
		}
	}
	stamps, err := Sets(repos[0])
	if err != nil || len(stamps) == 0 {
		return nil
	}
	prev, err := ReadManifest(repos[0], stamps[len(stamps)-1])
	if err != nil || len(prev.Storages) != len(m.Storages) {
		return nil
	}
	for _, e := range m.Storages {
		p := prev.Storage(e.ID)
		if p == nil || p.KeptTID != e.KeptTID || p.Size != e.Size || !slices.Equal(p.Files, e.Files) || !sameBlobs(p.Blobs, e.Blobs) {
			return nil
		}
	}
	return prev
}

func sameBlobs(a, b *BlobsEntry) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Layout == b.Layout && slices.Equal(a.Files, b.Files) && slices.Equal(a.Missing, b.Missing)
}

func pointName(source string) string {
	if source == "" {
		return "the point given"
	}
	return source
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

func findPrevious(repo string) (*previous, error) {
	names, err := chain(repo, "")
	if err != nil || len(names) == 0 {
		return nil, err
	}
	root, _ := splitExt(names[0])
	p := &previous{full: names[0], dat: root + ".dat"}
	p.lines, err = readDat(filepath.Join(repo, p.dat))
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

func md5Range(f *os.File, from, to int64) (string, error) {
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, from, to-from)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// backupOne backs up one storage of a set: it decides between a full and
// an incremental backup, finds the cut at target, writes the data file and
// its ledger line, then the blobs.
func backupOne(s Spec, target txn.TID, stamp string, opts *Options) (*StorageEntry, error) {
	// One descriptor for the scan and the copy: a pack swapping the file in
	// between cannot mix two files.
	f, e, err := openSource(s, target)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := e.SourceSize

	blobRecs := map[blobRecord]bool{}
	scan := fsdata.ScanOptions{Name: s.DataFS}
	if s.BlobDir != "" {
		scan.OnData = blobCollector(target, blobRecs)
	}
	prev, reason, err := extendable(f, size, s, target, opts, &scan)
	if err != nil {
		return nil, err
	}
	incremental := scan.Start != 0
	if !incremental {
		opts.logf("%s: full backup: %s", s.Label, reason)
	}

	copied, cut, err := scanAndCopy(f, size, target, scan, dataName(s, stamp, incremental, opts), s, opts)
	if err != nil {
		return nil, err
	}
	if cut.Behind() {
		return nil, fmt.Errorf("%s: its last committed transaction %s is before the point's TID %s: the file lacks transactions of the point", s.DataFS, cut.LastTID.Hex(), target.Hex())
	}
	recordCut(e, cut, f, size, scan.Start, s.DataFS)
	if !cut.Exact() {
		opts.logf("%s: the point's TID %s is not in the Data.fs; backing up to the last transaction before it (%s)", s.Label, target.Hex(), e.KeptTID)
	}

	if err := writeData(e, s, stamp, prev, scan.Start, cut.Offset, copied, opts); err != nil {
		return nil, err
	}
	if s.BlobDir != "" {
		pr := newProgress(opts.Progress, opts.ProgressEvery, "backup "+s.Label+" blobs", 0)
		b, err := backupBlobs(s.BlobDir, s.Repository, cut.KeptTID, blobRecs, pr)
		if err != nil {
			return nil, err
		}
		if len(b.Missing) > 0 {
			opts.logf("%s: WARNING: %d blob record(s) have no blob file in %s (first: oid tid %s): those blobs will be missing on restore", s.Label, len(b.Missing), s.BlobDir, b.Missing[0])
		}
		e.Blobs = b
	}
	return e, nil
}

// openSource opens the storage's Data.fs and starts its manifest entry
// with the file's facts. It refuses while a pack is in progress.
func openSource(s Spec, target txn.TID) (*os.File, *StorageEntry, error) {
	if _, err := os.Stat(s.DataFS + ".pack"); err == nil {
		return nil, nil, fmt.Errorf("%s.pack exists: a pack is in progress; back up after it", s.DataFS)
	}
	f, err := os.Open(s.DataFS)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	e := &StorageEntry{ID: s.ID, Label: s.Label, DataFS: s.DataFS, Repository: s.Repository, TID: target.Hex(), SourceSize: st.Size()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		e.SourceInode = sys.Ino
	}
	return f, e, nil
}

// extendable decides between a full and an incremental backup. For an
// incremental it returns the chain to extend and sets scan to start at the
// chain's end; otherwise it returns why a full backup is needed.
func extendable(f *os.File, size int64, s Spec, target txn.TID, opts *Options, scan *fsdata.ScanOptions) (*previous, string, error) {
	if opts.Full {
		return nil, "--full", nil
	}
	prev, err := findPrevious(s.Repository)
	switch {
	case err != nil:
		return nil, "", err
	case prev == nil:
		return nil, "no previous backup in the repository", nil
	case prev.mismatch != "":
		return nil, prev.mismatch, nil
	}
	last := prev.lines[len(prev.lines)-1]
	if last.End > size {
		return nil, fmt.Sprintf("the Data.fs (%d bytes) is shorter than the last backup's end %d (packed?)", size, last.End), nil
	}
	b, err := fsdata.Boundary(f, size, last.End, s.DataFS)
	if err != nil {
		return nil, fmt.Sprintf("the last backup's end %d is no longer a transaction boundary (packed?): %v", last.End, err), nil
	}
	if b.TID > target {
		return nil, fmt.Sprintf("the last backup ends after the point (tid %s > %s)", b.TID.Hex(), target.Hex()), nil
	}
	if opts.Quick {
		if why, err := quickExtendable(f, s.Repository, prev, b); why != "" || err != nil {
			return nil, why, err
		}
	} else {
		if err := checkChain(s.Repository, prev); err != nil {
			return nil, fmt.Sprintf("the repository's chain is damaged, not extending it: %v", err), nil
		}
		sum, err := md5Range(f, last.Start, last.End)
		if err != nil {
			return nil, "", err
		}
		if sum != last.MD5 {
			return nil, fmt.Sprintf("bytes %d-%d changed since the last backup (md5 %s, was %s): packed or rewritten", last.Start, last.End, sum, last.MD5), nil
		}
	}
	scan.Start, scan.PrevTID = last.End, b.TID
	return prev, "", nil
}

// recordCut fills the entry's facts about the cut: magic, size, kept
// transaction (for an incremental that adds nothing, the chain's last one).
func recordCut(e *StorageEntry, cut *fsdata.Cut, f *os.File, size, start int64, name string) {
	e.Magic = cut.Magic
	e.Size = cut.Offset
	e.Exact = cut.Exact()
	if cut.KeptTID != 0 {
		e.KeptTID = cut.KeptTID.Hex()
	}
	if cut.Kept > 0 {
		e.LastTxn = TxnRef{Pos: cut.LastTxn.Pos, Len: cut.LastTxn.Len, TID: cut.LastTxn.TID.Hex()}
	} else if start != 0 {
		h, _ := fsdata.Boundary(f, size, start, name)
		e.LastTxn = TxnRef{Pos: h.Pos, Len: h.Len, TID: h.TID.Hex()}
	}
}

// writeData writes bytes [start, end) as the set's data file (a full
// backup when start is 0, else an incremental extending prev; nothing when
// they are equal) with its ledger line, and lists the chain in the entry.
func writeData(e *StorageEntry, s Spec, stamp string, prev *previous, start, end int64, copied *copyResult, opts *Options) error {
	sums := carriedSHA256(s.Repository)
	var lines []datLine
	switch {
	case start != 0 && end == start:
		e.Kind = "unchanged"
		e.Dat = prev.dat
		lines = prev.lines
		opts.logf("%s: no new transaction up to the point since the last backup: nothing written", s.Label)
	default:
		if start != 0 {
			e.Kind = "incremental"
			e.Dat = prev.dat
			lines = prev.lines
		} else {
			e.Kind = "full"
			e.Dat = stamp + ".dat"
		}
		name := copied.name
		if copied.n != end-start {
			os.Remove(filepath.Join(s.Repository, name))
			return fmt.Errorf("copied %d bytes to %s, the scan kept %d", copied.n, name, end-start)
		}
		sums[name] = copied.sha256
		line := datLine{Path: filepath.Join(s.Repository, name), Start: start, End: end, MD5: copied.md5}
		if err := appendDat(filepath.Join(s.Repository, e.Dat), line, start == 0); err != nil {
			// A data file the ledger does not know would still be joined
			// by repozo -R: take it back.
			os.Remove(filepath.Join(s.Repository, name))
			return err
		}
		lines = append(lines, line)
	}
	for _, l := range lines {
		name := filepath.Base(l.Path)
		if _, err := os.Stat(filepath.Join(s.Repository, name)); err != nil {
			return fmt.Errorf("the ledger %s names a missing data file: %w", e.Dat, err)
		}
		e.Files = append(e.Files, FileEntry{Name: name, Start: l.Start, End: l.End, MD5: l.MD5, SHA256: sums[name]})
	}
	return nil
}

// dataName is the name of the data file a run writes: <stamp>.fs for a
// full backup, .deltafs for an incremental, with a z when gzipped.
func dataName(s Spec, stamp string, incremental bool, opts *Options) string {
	ext := ".fs"
	if incremental {
		ext = ".deltafs"
	}
	if opts.Gzip {
		ext += "z"
	}
	return stamp + ext
}

// copyResult is a data file written to the repository.
type copyResult struct {
	name        string
	n           int64 // Data.fs bytes copied
	md5, sha256 string
}

// scanAndCopy scans f for the cut after target and, at the same time,
// copies the kept bytes to the repository as name: the copy follows the
// scan (see feed). When the scan fails, finds the file behind the point or
// finds nothing new, the copy is abandoned and no file is left; the copy
// result is then nil.
func scanAndCopy(f *os.File, size int64, target txn.TID, scan fsdata.ScanOptions, name string, s Spec, opts *Options) (*copyResult, *fsdata.Cut, error) {
	fd := newFeed(scan.Start)
	scan.OnKept = fd.advance
	done := make(chan error, 1)
	res := &copyResult{name: name}
	go func() {
		var err error
		res.md5, res.sha256, res.n, err = copyToRepo(&feedReader{f: f, pos: scan.Start, feed: fd}, size-scan.Start, s.Repository, name, opts, s.Label)
		done <- err
	}()
	cut, err := fsdata.CutReader(f, size, target, scan)
	ok := err == nil && !cut.Behind() && cut.Offset != scan.Start
	if ok {
		fd.finish(cut.Offset, true)
	} else {
		fd.finish(0, false)
	}
	cerr := <-done
	switch {
	case err != nil:
		return nil, nil, err
	case !ok:
		return nil, cut, nil
	case cerr != nil:
		return nil, nil, cerr
	}
	return res, cut, nil
}

// copyToRepo copies r to repo/name through a temporary file (gzipped if
// asked), returning the md5 and sha256 of the bytes read and their count.
// total is the expected size, for progress lines.
func copyToRepo(r io.Reader, total int64, repo, name string, opts *Options, label string) (md5sum, shasum string, n int64, err error) {
	hm, hs := md5.New(), sha256.New()
	pr := newProgress(opts.Progress, opts.ProgressEvery, "backup "+label, total)
	err = atomicfile.WriteNew(filepath.Join(repo, name), 0o644, func(out io.Writer) error {
		if !opts.Gzip {
			var err error
			n, err = copyFanout(r, out, hm, hs, pr)
			return err
		}
		zw := gzip.NewWriter(out)
		var err error
		if n, err = copyFanout(r, zw, hm, hs, pr); err != nil {
			return err
		}
		return zw.Close()
	})
	pr.finish()
	if err != nil {
		return "", "", 0, err
	}
	return hex.EncodeToString(hm.Sum(nil)), hex.EncodeToString(hs.Sum(nil)), n, nil
}

// appendDat appends a line to a repozo ledger (creating it for a full
// backup, which must not find one), synced.
func appendDat(path string, l datLine, create bool) error {
	flags := os.O_WRONLY | os.O_APPEND
	if create {
		flags |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, l.String())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// carriedSHA256 maps data file names to the sha256 recorded by the newest
// manifest of repo, so that a chain keeps them across sets.
func carriedSHA256(repo string) map[string]string {
	sums := map[string]string{}
	stamps, err := Sets(repo)
	if err != nil || len(stamps) == 0 {
		return sums
	}
	m, err := ReadManifest(repo, stamps[len(stamps)-1])
	if err != nil {
		return sums
	}
	for _, s := range m.Storages {
		if filepath.Clean(s.Repository) != filepath.Clean(repo) {
			continue
		}
		for _, fe := range s.Files {
			if fe.SHA256 != "" {
				sums[fe.Name] = fe.SHA256
			}
		}
	}
	return sums
}
