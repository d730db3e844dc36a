package backup

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"time"

	"github.com/tidstorage/tidstorage/backup/fsdata"
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
	dirs := make([]string, 0, len(specs))
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
		dirs = append(dirs, s.Repository)
	}
	rs := openRepositories(dirs, nil)
	// Two writers of one repository would start two incrementals at the
	// same offset, or delete what the other extends.
	locks, err := rs.lock("backup", opts.logf)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer locks.unlock()
	stamp, err := rs.nextStamp(opts.Now)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	m := &Manifest{Format: ManifestFormat, Stamp: stamp, Time: opts.Now.UTC(), PointSource: opts.PointSource, Point: map[string]string{}}
	for id, t := range point {
		m.Point[id] = t.Hex()
	}
	repos := rs.each()
	for i, s := range specs {
		e, err := backupOne(repos[i], s, point[s.ID], stamp, &opts)
		if err != nil {
			return nil, fmt.Errorf("backup: storage %s: %w", s.ID, err)
		}
		m.Storages = append(m.Storages, e)
	}
	// A run that changed nothing would only add a set identical to the
	// previous one: a backup every few minutes of an idle site would bury
	// the real sets under copies.
	if prev := sameAsNewest(m, repos[0]); prev != nil {
		prev.SameAs = prev.Stamp
		opts.logf("nothing new since set %s (same files, same TIDs): no new set written", prev.Stamp)
		return prev, nil
	}
	// The manifest goes last: a set without one is incomplete and restore
	// ignores it.
	for _, r := range repos {
		if err := r.writeManifest(m); err != nil {
			return nil, fmt.Errorf("backup: manifest: %w", err)
		}
	}
	return m, nil
}

// sameAsNewest returns the newest set of repo (the first repository of
// the set) if it restores exactly what m would: the same storages, each
// unchanged since, with the same kept TID, data files and blob files.
func sameAsNewest(m *Manifest, repo *repository) *Manifest {
	for _, e := range m.Storages {
		if e.Kind != "unchanged" || (e.Blobs != nil && e.Blobs.Copied > 0) {
			return nil
		}
	}
	prev := repo.newestManifest()
	if prev == nil || len(prev.Storages) != len(m.Storages) {
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

// backupOne backs up one storage of a set to its repository, in steps: it
// decides between a full and an incremental backup, finds the cut at
// target while writing the data file, adds it to the chain's ledger, then
// stores the blobs in the pool.
func backupOne(repo *repository, s Spec, target txn.TID, stamp string, opts *Options) (*StorageEntry, error) {
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
	prev, reason, err := extendable(repo, f, size, s, target, opts, &scan)
	if err != nil {
		return nil, err
	}
	incremental := scan.Start != 0
	if !incremental {
		opts.logf("%s: full backup: %s", s.Label, reason)
	}

	written, cut, err := scanAndCopy(repo, f, size, target, scan, dataName(stamp, incremental, opts), s.Label, opts)
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

	if err := recordChain(repo, e, stamp, prev, scan.Start, cut.Offset, written, opts); err != nil {
		return nil, err
	}
	if s.BlobDir != "" {
		pr := newProgress(opts.Progress, opts.ProgressEvery, "backup "+s.Label+" blobs", 0)
		b, err := repo.blobs().store(s.BlobDir, cut.KeptTID, blobRecs, pr)
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
// incremental it returns the repository's chain to extend and sets scan to
// start at the chain's end; otherwise it returns why a full backup is
// needed.
func extendable(repo *repository, f *os.File, size int64, s Spec, target txn.TID, opts *Options, scan *fsdata.ScanOptions) (*previous, string, error) {
	if opts.Full {
		return nil, "--full", nil
	}
	prev, err := repo.previous()
	switch {
	case err != nil:
		return nil, "", err
	case prev == nil:
		return nil, "no previous backup in the repository", nil
	case prev.mismatch != "":
		return nil, prev.mismatch, nil
	}
	last := prev.last()
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
		if why, err := quickExtendable(repo, f, prev, b); why != "" || err != nil {
			return nil, why, err
		}
	} else {
		if err := repo.checkChain(prev); err != nil {
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

// quickExtendable is the quick check of a chain before an incremental: the
// ledger's files are there with their sizes (uncompressed ones), and the
// last transaction the chain holds, last, has the same bytes in the Data.fs
// and in the repository. It returns why the chain cannot be extended, or "".
func quickExtendable(repo *repository, f *os.File, prev *previous, last fsdata.TxnHeader) (string, error) {
	if p := repo.quickCheckChain(prev); p != "" {
		return "the repository's chain is damaged, not extending it: " + p, nil
	}
	end := last.End()
	if end-last.Pos > maxTailCheck {
		return "", nil // a huge last transaction: its boundary and TID were checked
	}
	saved, err := repo.chainTail(prev.files(nil), last.Pos)
	if err != nil {
		return "the repository's chain is damaged, not extending it: " + err.Error(), nil
	}
	live := make([]byte, end-last.Pos)
	if _, err := f.ReadAt(live, last.Pos); err != nil {
		return "", err
	}
	if !bytes.Equal(saved, live) {
		return fmt.Sprintf("the last backed-up transaction (%s at %d) differs between the Data.fs and the repository: packed or rewritten", last.TID.Hex(), last.Pos), nil
	}
	return "", nil
}

func md5Range(f *os.File, from, to int64) (string, error) {
	h := md5.New()
	if _, err := copyFanout(io.NewSectionReader(f, from, to-from), h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
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

// recordChain adds the data file written for bytes [start, end) to its
// chain's ledger (a new chain when start is 0, else prev; nothing written
// when they are equal) and lists the chain in the entry.
func recordChain(repo *repository, e *StorageEntry, stamp string, prev *previous, start, end int64, written *writtenData, opts *Options) error {
	sums := repo.carriedSHA256()
	var lines []datLine
	switch {
	case start != 0 && end == start:
		e.Kind, e.Dat, lines = "unchanged", prev.dat, prev.lines
		opts.logf("%s: no new transaction up to the point since the last backup: nothing written", e.Label)
	case start != 0:
		e.Kind, e.Dat, lines = "incremental", prev.dat, prev.lines
	default:
		e.Kind, e.Dat = "full", stamp+".dat"
	}
	if e.Kind != "unchanged" {
		var err error
		if lines, err = repo.extendChain(e.Dat, lines, written, start, end); err != nil {
			return err
		}
		sums[written.name] = written.sha256
	}
	var err error
	e.Files, err = repo.chainFiles(e.Dat, lines, sums)
	return err
}

// dataName is the name of the data file a run writes: <stamp>.fs for a
// full backup, .deltafs for an incremental, with a z when gzipped.
func dataName(stamp string, incremental bool, opts *Options) string {
	ext := ".fs"
	if incremental {
		ext = ".deltafs"
	}
	if opts.Gzip {
		ext += "z"
	}
	return stamp + ext
}

// scanAndCopy scans f for the cut after target and, at the same time,
// writes the kept bytes to the repository as data file name: the copy
// follows the scan (see feed). When the scan fails, finds the file behind
// the point or finds nothing new, the copy is abandoned and no file is
// left; the written file is then nil.
func scanAndCopy(repo *repository, f *os.File, size int64, target txn.TID, scan fsdata.ScanOptions, name, label string, opts *Options) (*writtenData, *fsdata.Cut, error) {
	fd := newFeed(scan.Start)
	scan.OnKept = fd.advance
	done := make(chan error, 1)
	var written *writtenData
	go func() {
		pr := newProgress(opts.Progress, opts.ProgressEvery, "backup "+label, size-scan.Start)
		var err error
		written, err = repo.writeData(name, &feedReader{f: f, pos: scan.Start, feed: fd}, pr)
		pr.finish()
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
	return written, cut, nil
}
