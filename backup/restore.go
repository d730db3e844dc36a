package backup

import (
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/internal/atomicfile"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// FindSet reads the manifest of set stamp ("" = the newest) from the first
// of repos that has it.
func FindSet(repos []string, stamp string) (*Manifest, error) {
	if len(repos) == 0 {
		return nil, errors.New("restore: no repository configured")
	}
	var tried []string
	for _, repo := range repos {
		stamps, err := Sets(repo)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", repo, err))
			continue
		}
		if len(stamps) == 0 {
			tried = append(tried, repo+": no backup set")
			continue
		}
		want := stamp
		if want == "" {
			want = stamps[len(stamps)-1]
		}
		m, err := ReadManifest(repo, want)
		if errors.Is(err, fs.ErrNotExist) {
			tried = append(tried, fmt.Sprintf("%s: no set %s (sets: %s)", repo, want, strings.Join(stamps, ", ")))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("restore: no backup set found:\n  %s", strings.Join(tried, "\n  "))
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Force allows replacing existing files at the destination (a stale
	// .index there is deleted).
	Force bool
	// RepoOf overrides a storage's repository by id (e.g. from the current
	// configuration); nil or "" keeps the manifest's.
	RepoOf func(id string) string
	// Dest, if set, gives each storage's destination instead of
	// dir/<label>/ (restore in place: the configured data_fs and blob_dir).
	Dest func(e *StorageEntry) (dataFS, blobDir string, err error)
	// Aside, if not "", is a suffix: the Data.fs, its .index and the blob
	// directory a restore replaces are renamed with it and kept, instead
	// of being overwritten.
	Aside         string
	Progress      io.Writer
	ProgressEvery time.Duration
}

// Restored is one restored storage.
type Restored struct {
	ID      string
	Label   string
	DataFS  string // restored file
	BlobDir string // restored blob directory, "" if none
	Size    int64
	KeptTID txn.TID
	Files   int  // data files joined
	Index   bool // a fresh .index was written
	Blobs   int  // blob files restored
	// Aside lists the replaced files and directories kept (with
	// RestoreOptions.Aside).
	Aside []string
}

// Target paths of a storage restored under dir.
func restorePaths(dir string, e *StorageEntry) (dataFS, blobDir string) {
	base := filepath.Join(dir, e.Label)
	dataFS = filepath.Join(base, filepath.Base(e.DataFS))
	if e.Blobs != nil {
		blobDir = filepath.Join(base, filepath.Base(e.Blobs.Dir))
	}
	return dataFS, blobDir
}

// Restore writes every storage of set m under dir/<label>/: the Data.fs
// joined from its chain (each file's size and md5 checked, the result
// scanned: it must end exactly with the set's kept TID) and its blob files.
// Without Force it refuses, before writing anything, if a destination file
// exists.
func Restore(m *Manifest, dir string, opts RestoreOptions) ([]Restored, error) {
	if opts.Dest == nil {
		opts.Dest = func(e *StorageEntry) (string, string, error) {
			out, blobs := restorePaths(dir, e)
			return out, blobs, nil
		}
	}
	var clashes, inUse []string
	for _, e := range m.Storages {
		out, blobs, err := opts.Dest(e)
		if err != nil {
			return nil, fmt.Errorf("restore: storage %s: %w", e.Label, err)
		}
		for _, p := range []string{out, out + ".index", blobs} {
			if p == "" {
				continue
			}
			if _, err := os.Lstat(p); err == nil {
				clashes = append(clashes, p)
			}
		}
		// Every storage is checked before any is written: a site
		// restored in part is worse than one not restored.
		if _, err := os.Stat(out); err == nil {
			lock, err := LockDataFS(out)
			if err != nil {
				inUse = append(inUse, err.Error())
				continue
			}
			lock.Unlock()
		}
	}
	if len(inUse) > 0 {
		return nil, fmt.Errorf("restore: %s: %w", strings.Join(inUse, "; "), ErrInUse)
	}
	if len(clashes) > 0 && !opts.Force {
		return nil, fmt.Errorf("restore: refusing to overwrite existing files (use --force):\n  %s", strings.Join(clashes, "\n  "))
	}
	var repos []string
	for _, e := range m.Storages {
		repos = append(repos, restoreRepo(e, &opts))
	}
	rl, err := lockReaders(repos, false)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer rl.unlock()
	// Every storage is built and checked beside its destination first,
	// then all are put in place: a chain that fails leaves the whole site
	// as it was, not half restored.
	var ready []*prepared
	discard := func() {
		for _, p := range ready {
			p.discard()
		}
	}
	for _, e := range m.Storages {
		p, err := prepareOne(e, &opts)
		if err != nil {
			discard()
			return nil, fmt.Errorf("restore: storage %s: %w", e.Label, err)
		}
		ready = append(ready, p)
	}
	defer discard()
	var done []Restored
	for _, p := range ready {
		if err := p.install(&opts); err != nil {
			return done, fmt.Errorf("restore: storage %s: %w", p.e.Label, err)
		}
		done = append(done, *p.r)
	}
	return done, nil
}

// prepared is one storage built beside its destination, locked, ready to
// be put in place.
type prepared struct {
	e          *StorageEntry
	r          *Restored
	out, part  string
	blobTarget string // where the blobs were restored: the destination, or <blob dir>.part
	c          *fsdata.Cut
	ix         *fsdata.Index
	lock       *Lock
}

// discard removes what was built and releases the lock; after install it
// only releases the lock.
func (p *prepared) discard() {
	os.Remove(p.part)
	if p.blobTarget != p.r.BlobDir {
		os.RemoveAll(p.blobTarget)
	}
	p.lock.Unlock()
}

// restoreRepo is the repository storage e is restored from.
func restoreRepo(e *StorageEntry, opts *RestoreOptions) string {
	if opts.RepoOf != nil {
		if r := opts.RepoOf(e.ID); r != "" {
			return r
		}
	}
	return e.Repository
}

// prepareOne builds one storage of a set beside its destination: the
// chain joined into <Data.fs>.part, checked by a full scan, and the set's
// blobs (into <blob dir>.part when the replaced directory is kept aside).
// The destination's Data.fs, if any, stays locked until discard.
func prepareOne(e *StorageEntry, opts *RestoreOptions) (*prepared, error) {
	repo := restoreRepo(e, opts)
	out, blobOut, err := opts.Dest(e)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	p := &prepared{e: e, out: out, part: out + ".part"}
	if _, err := os.Stat(out); err == nil {
		if p.lock, err = LockDataFS(out); err != nil {
			return nil, err
		}
	}
	fail := func(err error) (*prepared, error) {
		p.lock.Unlock()
		return nil, err
	}
	var kept txn.TID
	if e.KeptTID != "" {
		if kept, err = txn.ParseTID(e.KeptTID, txn.FormatHex); err != nil {
			return fail(fmt.Errorf("manifest: kept_tid: %w", err))
		}
	}
	if len(e.Files) == 0 {
		return fail(errors.New("manifest lists no data file"))
	}
	if err := checkLedger(repo, e); err != nil {
		return fail(err)
	}
	if p.c, p.ix, err = buildDataFS(e, repo, p.part, kept, opts); err != nil {
		return fail(err)
	}
	p.r = &Restored{ID: e.ID, Label: e.Label, DataFS: out, Size: e.Size, KeptTID: kept, Files: len(e.Files), Index: p.c.Magic == fsdata.MagicFS30}
	p.blobTarget = blobOut
	if e.Blobs != nil {
		p.r.BlobDir = blobOut
		if opts.Aside != "" {
			// Into a new directory, swapped in with the Data.fs.
			p.blobTarget = blobOut + ".part"
			if err := os.RemoveAll(p.blobTarget); err != nil {
				p.discard()
				return nil, err
			}
		}
		if p.r.Blobs, err = restoreBlobs(e, filepath.Join(repo, blobPool), p.blobTarget, opts); err != nil {
			p.discard()
			return nil, err
		}
	}
	return p, nil
}

// install puts a prepared storage in place: the replaced files kept aside
// if asked, the new Data.fs renamed in, a fresh index written.
func (p *prepared) install(opts *RestoreOptions) error {
	if opts.Aside != "" {
		var err error
		if p.r.Aside, err = moveAside(opts.Aside, p.out, p.out+".index", p.r.BlobDir); err != nil {
			return err
		}
		if p.blobTarget != p.r.BlobDir {
			if err := os.Rename(p.blobTarget, p.r.BlobDir); err != nil {
				return err
			}
			p.blobTarget = p.r.BlobDir
		}
	}
	// A stale index next to the restored file would point past it or at
	// other revisions: replace it with a fresh one (FS30), or remove it.
	if err := os.Remove(p.out + ".index"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Rename(p.part, p.out); err != nil {
		return err
	}
	atomicfile.SyncDir(filepath.Dir(p.out))
	return writeIndex(p.out, p.c.Magic, p.ix, p.e.Size)
}

// moveAside renames each existing path to path+suffix, returning the new
// names. Nothing is deleted, and nothing is moved unless every new name is
// free: a half-moved storage would have lost its live file without getting
// the restored one.
func moveAside(suffix string, paths ...string) ([]string, error) {
	var todo []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if _, err := os.Lstat(p + suffix); err == nil {
			return nil, fmt.Errorf("%s already exists: not replacing it", p+suffix)
		}
		todo = append(todo, p)
	}
	var moved []string
	for _, p := range todo {
		if err := os.Rename(p, p+suffix); err != nil {
			return moved, fmt.Errorf("keep %s aside: %w", p, err)
		}
		moved = append(moved, p+suffix)
	}
	return moved, nil
}

// buildDataFS joins the storage's chain into part and checks it; it
// returns the scan and the index built while checking. part is removed on
// failure.
func buildDataFS(e *StorageEntry, repo, part string, kept txn.TID, opts *RestoreOptions) (*fsdata.Cut, *fsdata.Index, error) {
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	// The check scans what the join has written so far, as it is written
	// (see feed): the file is read once from the page cache, not joined
	// and then read again.
	fd := newFeed(0)
	type checked struct {
		c   *fsdata.Cut
		ix  *fsdata.Index
		err error
	}
	done := make(chan checked, 1)
	go func() {
		c, ix, err := checkRestored(&feedReaderAt{f: f, feed: fd}, part, e, kept)
		done <- checked{c, ix, err}
	}()
	err = joinChain(f, repo, e, opts, fd.advance)
	fd.finish(e.Size, err == nil)
	res := <-done
	switch {
	case err != nil:
	case res.err != nil:
		err = fmt.Errorf("check the restored file: %w", res.err)
	}
	if err != nil {
		os.Remove(part)
		return nil, nil, err
	}
	return res.c, res.ix, nil
}

// joinChain appends the chain's data files to f, checking that their byte
// ranges follow each other and end at the set's size, and syncs f. written,
// if not nil, is told how far f is written after each block.
func joinChain(f *os.File, repo string, e *StorageEntry, opts *RestoreOptions, written func(end int64)) error {
	pr := newProgress(opts.Progress, opts.ProgressEvery, "restore "+e.Label, e.Size)
	var out io.Writer = f
	if written != nil {
		out = &publishingWriter{w: f, fn: written}
	}
	var pos int64
	for _, fe := range e.Files {
		if fe.Start != pos {
			return fmt.Errorf("%s starts at byte %d, but the files before it end at %d", fe.Name, fe.Start, pos)
		}
		if err := joinFile(out, filepath.Join(repo, fe.Name), fe, pr, false); err != nil {
			return err
		}
		pos = fe.End
	}
	pr.finish()
	if pos != e.Size {
		return fmt.Errorf("the data files end at byte %d, the manifest says %d", pos, e.Size)
	}
	return f.Sync()
}

// checkRestored scans the joined file with every format check: it must end
// exactly with the kept transaction, with no tail, and have the recorded
// magic. It returns the scan and the index built while scanning.
func checkRestored(f io.ReaderAt, name string, e *StorageEntry, kept txn.TID) (*fsdata.Cut, *fsdata.Index, error) {
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

// restoreBlobs copies the set's blob files from the pool to blobOut (with
// the .layout), checking their sizes; existing files are replaced (the
// caller refused them unless forced).
func restoreBlobs(e *StorageEntry, pool, blobOut string, opts *RestoreOptions) (int, error) {
	if err := os.MkdirAll(blobOut, 0o755); err != nil {
		return 0, err
	}
	if err := atomicfile.WriteFile(filepath.Join(blobOut, ".layout"), []byte(e.Blobs.Layout+"\n"), 0o644); err != nil {
		return 0, err
	}
	bp := newProgress(opts.Progress, opts.ProgressEvery, "restore "+e.Label+" blobs", e.Blobs.Bytes)
	n := 0
	for _, b := range e.Blobs.Files {
		rel := filepath.FromSlash(b.Path)
		if !filepath.IsLocal(rel) {
			return n, fmt.Errorf("manifest: blob path %q leaves the blob directory", b.Path)
		}
		src := filepath.Join(pool, rel)
		st, err := os.Stat(src)
		if err != nil {
			return n, fmt.Errorf("blob %s: %w", b.Path, err)
		}
		if st.Size() != b.Size {
			return n, fmt.Errorf("blob %s: %d bytes in the repository, the manifest says %d", b.Path, st.Size(), b.Size)
		}
		if err := copyBlob(src, filepath.Join(blobOut, rel), bp); err != nil {
			return n, fmt.Errorf("blob %s: %w", b.Path, err)
		}
		n++
	}
	bp.finish()
	return n, nil
}

// joinFile appends a repository data file (gunzipped if named *z) to out,
// checking its size and checksums against fe.
func joinFile(out io.Writer, path string, fe FileEntry, pr *progress, both bool) error {
	r, err := openData(path)
	if err != nil {
		return err
	}
	defer r.Close()
	// Restoring (!both), one hash: sha256 when the manifest has it (the
	// ledger's md5 was compared with the manifest's by checkLedger, both
	// computed from the same bytes at backup time), else the md5: md5 is
	// the slowest pass over the data. Checking a chain (verify, before an
	// incremental), both, as the ledger and the manifest say.
	var hm, hs hash.Hash
	ws := []io.Writer{out}
	if both || fe.SHA256 == "" {
		hm = md5.New()
		ws = append(ws, hm)
	}
	if fe.SHA256 != "" {
		hs = sha256.New()
		ws = append(ws, hs)
	}
	n, err := copyFanout(r, append(ws, pr)...)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if want := fe.End - fe.Start; n != want {
		return fmt.Errorf("%s: %d bytes, the ledger says %d (%d-%d)", path, n, want, fe.Start, fe.End)
	}
	if hm != nil {
		if got := hex.EncodeToString(hm.Sum(nil)); got != fe.MD5 {
			return fmt.Errorf("%s: md5 %s, the ledger says %s", path, got, fe.MD5)
		}
	}
	if hs != nil {
		if got := hex.EncodeToString(hs.Sum(nil)); got != fe.SHA256 {
			return fmt.Errorf("%s: sha256 %s, the manifest says %s", path, got, fe.SHA256)
		}
	}
	return nil
}

// openData opens a repository data file for reading its Data.fs bytes:
// gunzipped when named *z (repozo -z's .fsz and .deltafsz).
func openData(path string) (io.ReadCloser, error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(path, "z") {
		return in, nil
	}
	zr, err := gzip.NewReader(in)
	if err != nil {
		in.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return gzipFile{zr, in}, nil
}

// gzipFile closes the gzip stream and the file under it.
type gzipFile struct {
	*gzip.Reader
	f *os.File
}

func (g gzipFile) Close() error {
	g.Reader.Close()
	return g.f.Close()
}
