package backup

import (
	"errors"
	"fmt"
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
	rs := openRepositories(nil, opts.RepoOf)
	for _, e := range m.Storages {
		rs.dirs = append(rs.dirs, rs.storage(e).dir)
	}
	rl, err := rs.lockReaders(false)
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
		p, err := prepareOne(rs.storage(e), e, &opts)
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

// prepareOne builds one storage of a set beside its destination: the
// chain joined into <Data.fs>.part, checked by a full scan, and the set's
// blobs (into <blob dir>.part when the replaced directory is kept aside).
// The destination's Data.fs, if any, stays locked until discard.
func prepareOne(repo *repository, e *StorageEntry, opts *RestoreOptions) (*prepared, error) {
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
	kept, err := e.keptTID()
	if err != nil {
		return fail(err)
	}
	if len(e.Files) == 0 {
		return fail(errors.New("manifest lists no data file"))
	}
	if err := repo.checkLedger(e); err != nil {
		return fail(err)
	}
	if p.c, p.ix, err = buildDataFS(repo, e, p.part, kept, opts); err != nil {
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
		bp := newProgress(opts.Progress, opts.ProgressEvery, "restore "+e.Label+" blobs", e.Blobs.Bytes)
		if p.r.Blobs, err = repo.blobs().restoreTo(e.Blobs, p.blobTarget, bp); err != nil {
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
func buildDataFS(repo *repository, e *StorageEntry, part string, kept txn.TID, opts *RestoreOptions) (*fsdata.Cut, *fsdata.Index, error) {
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
		c, ix, err := checkRebuilt(&feedReaderAt{f: f, feed: fd}, part, e, kept)
		done <- checked{c, ix, err}
	}()
	pr := newProgress(opts.Progress, opts.ProgressEvery, "restore "+e.Label, e.Size)
	err = repo.join(&publishingWriter{w: f, fn: fd.advance}, e, pr)
	pr.finish()
	fd.finish(e.Size, err == nil)
	if err == nil {
		// While the check scans the last block.
		err = f.Sync()
	}
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
