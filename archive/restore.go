package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/internal/atomicfile"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// Selector chooses a point: the newest at or before At, or (TIDs set) the
// newest whose TIDs are all at or below those given; zero: the newest.
type Selector struct {
	At   time.Time
	TIDs map[string]txn.TID
}

// FindPoint returns the record of the point sel chooses among the points
// whose bases are all present.
func FindPoint(ctx context.Context, s Store, sel Selector) (*Record, error) {
	tl, bases, err := listPoints(ctx, s)
	if err != nil {
		return nil, err
	}
	if len(tl) == 0 {
		return nil, fmt.Errorf("%s holds no restorable point", s)
	}
	for i := len(tl) - 1; i >= 0; i-- {
		e := tl[i]
		if !sel.At.IsZero() && e.Time.After(sel.At) {
			continue
		}
		rec, err := readRecord(ctx, s, e.Key)
		if err != nil {
			return nil, err
		}
		if !recordBasesPresent(rec, bases) {
			break // older points lost their bases to retention
		}
		if sel.TIDs != nil && !below(rec, sel.TIDs) {
			continue
		}
		return rec, nil
	}
	first := tl[0].Time.Format(time.RFC3339Nano)
	if !sel.At.IsZero() {
		return nil, fmt.Errorf("%s has no restorable point at or before %s (the archive starts at %s)", s, sel.At.UTC().Format(time.RFC3339Nano), first)
	}
	return nil, fmt.Errorf("%s has no restorable point at or below the TIDs given", s)
}

func below(rec *Record, tids map[string]txn.TID) bool {
	for id, t := range tids {
		sr := rec.Storages[id]
		if sr == nil || sr.tid() > t {
			return false
		}
	}
	return true
}

// listBases returns the present bases: label → base names.
func listBases(ctx context.Context, s Store) (map[string]map[string]bool, error) {
	objs, err := s.List(ctx, dataP)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]bool{}
	for _, o := range objs {
		parts := strings.Split(strings.TrimPrefix(o.Key, dataP), "/")
		if len(parts) == 3 && parts[2] == baseMarker {
			if out[parts[0]] == nil {
				out[parts[0]] = map[string]bool{}
			}
			out[parts[0]][parts[1]] = true
		}
	}
	return out, nil
}

func recordBasesPresent(rec *Record, bases map[string]map[string]bool) bool {
	for _, sr := range rec.Storages {
		if !bases[sr.Label][sr.Base] {
			return false
		}
	}
	return true
}

// chain returns the segments of a base that join into [0, end), preferring
// the longest ones. Segments uploaded by a shipment that never wrote its
// record may overlap the others: they are skipped when they lead nowhere.
func chain(ctx context.Context, s Store, label, base string, end int64) ([]segment, error) {
	objs, err := s.List(ctx, dataP+label+"/"+base+"/")
	if err != nil {
		return nil, err
	}
	from := map[int64][]segment{}
	for _, o := range objs {
		if _, _, seg, ok := parseSegment(o.Key, o.Size); ok && seg.To <= end {
			from[seg.From] = append(from[seg.From], seg)
		}
	}
	for _, l := range from {
		sort.Slice(l, func(i, j int) bool { return l[i].To > l[j].To })
	}
	dead := map[int64]bool{}
	var walk func(at int64) []segment
	walk = func(at int64) []segment {
		if at == end {
			return []segment{}
		}
		if dead[at] {
			return nil
		}
		for _, seg := range from[at] {
			if rest := walk(seg.To); rest != nil {
				return append([]segment{seg}, rest...)
			}
		}
		dead[at] = true
		return nil
	}
	if end == 0 {
		return nil, nil
	}
	c := walk(0)
	if c == nil {
		return nil, fmt.Errorf("%s: the segments of %s base %s do not join into [0, %d): an object is missing", s, label, base, end)
	}
	return c, nil
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Dest receives DEST/<label>/<Data.fs name> and DEST/<label>/<blob dir name>/.
	Dest string
	// Storages give the file names (by storage id); a storage of the point
	// not among them is restored as Data.fs and blobs.
	Storages []StorageSpec
	Force    bool
	// Identities decrypt an archive written with recipients.
	Identities []age.Identity
	Logf       func(format string, args ...any)
	// InPlace, if set, gives each storage's live files (by id) instead of
	// Dest: every storage is restored beside its live file first, and only
	// when all are ready do the restored files take the live ones' place;
	// the replaced Data.fs, .index and blob directory are renamed with the
	// Aside suffix and kept. Every live Data.fs is locked (Data.fs.lock)
	// meanwhile: nothing is written while a ZEO server holds one.
	InPlace func(id string) (dataFS, blobDir string, err error)
	Aside   string
}

// RestoredStorage is what Restore wrote for one storage.
type RestoredStorage struct {
	ID, Label, DataFS, BlobDir string
	KeptTID                    txn.TID
	Size                       int64
	Segments                   int
	Blobs                      int
	MissingBlobs               []string
	Aside                      []string // in place: the replaced files kept
}

// Restore writes every storage of rec under o.Dest: each Data.fs ends
// exactly with the point's transaction (checked by a full scan), with a
// fresh .index and the blob files it references, every object checked
// against its sha256.
func Restore(ctx context.Context, s Store, rec *Record, o RestoreOptions) ([]RestoredStorage, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	specs := map[string]StorageSpec{}
	for _, sp := range o.Storages {
		specs[sp.ID] = sp
	}
	ids := make([]string, 0, len(rec.Storages))
	for id := range rec.Storages {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	// Check the destinations first: nothing is written if one is taken.
	type target struct{ id, dataFS, blobDir, live, liveBlobs string }
	var targets []target
	for _, id := range ids {
		sr := rec.Storages[id]
		var t target
		if o.InPlace != nil {
			live, liveBlobs, err := o.InPlace(id)
			if err != nil {
				return nil, fmt.Errorf("restore %s in place: %w", sr.Label, err)
			}
			if sr.Layout != "" && liveBlobs == "" {
				return nil, fmt.Errorf("restore %s in place: the archive has blobs but no blob_dir is configured", sr.Label)
			}
			lock, err := backup.LockDataFS(live)
			if err != nil {
				return nil, err
			}
			defer lock.Unlock()
			t = target{id: id, dataFS: live + ".archive-restore", live: live, liveBlobs: liveBlobs}
			if liveBlobs != "" {
				t.blobDir = liveBlobs + ".archive-restore"
			}
		} else {
			name, blobName := "Data.fs", "blobs"
			if sp, ok := specs[id]; ok {
				name = filepath.Base(sp.DataFS)
				if sp.BlobDir != "" {
					blobName = filepath.Base(sp.BlobDir)
				}
			}
			dir := filepath.Join(o.Dest, sr.Label)
			t = target{id: id, dataFS: filepath.Join(dir, name), blobDir: filepath.Join(dir, blobName)}
		}
		check := []string{t.dataFS, t.blobDir}
		if t.live != "" {
			check = []string{t.live, t.liveBlobs}
		}
		for _, p := range check {
			if _, err := os.Lstat(p); p != "" && err == nil && !o.Force {
				return nil, fmt.Errorf("%s exists (use --force to replace it)", p)
			}
		}
		targets = append(targets, t)
	}
	var out []RestoredStorage
	for _, t := range targets {
		if t.live != "" {
			// Leftovers of an interrupted in-place restore.
			for _, p := range []string{t.dataFS, t.dataFS + ".index", t.blobDir} {
				if p != "" {
					if err := os.RemoveAll(p); err != nil {
						return nil, err
					}
				}
			}
		}
		r, err := restoreOne(ctx, s, rec, t.id, t.dataFS, t.blobDir, o.Identities, o.Logf)
		if err != nil {
			return out, fmt.Errorf("restore %s: %w", rec.Storages[t.id].Label, err)
		}
		out = append(out, *r)
	}
	if o.InPlace == nil {
		return out, nil
	}
	// Every storage is ready: the restored files take the live ones' place.
	for i, t := range targets {
		aside, err := swapIn(t.live, t.liveBlobs, t.dataFS, t.blobDir, out[i].BlobDir != "", o.Aside)
		out[i].Aside = aside
		out[i].DataFS = t.live
		if out[i].BlobDir != "" {
			out[i].BlobDir = t.liveBlobs
		}
		if err != nil {
			return out, fmt.Errorf("restore %s in place: %w", out[i].Label, err)
		}
	}
	return out, nil
}

// swapIn keeps the live files aside (suffix) and renames the restored ones
// into their place.
func swapIn(live, liveBlobs, restored, restoredBlobs string, blobs bool, suffix string) ([]string, error) {
	var aside []string
	moves := [][2]string{{live, restored}, {live + ".index", restored + ".index"}}
	if blobs {
		moves = append(moves, [2]string{liveBlobs, restoredBlobs})
	}
	for _, m := range moves {
		if _, err := os.Lstat(m[0]); err == nil {
			if err := os.Rename(m[0], m[0]+suffix); err != nil {
				return aside, err
			}
			aside = append(aside, m[0]+suffix)
		}
	}
	for _, m := range moves {
		if _, err := os.Lstat(m[1]); err == nil {
			if err := os.Rename(m[1], m[0]); err != nil {
				return aside, err
			}
		}
	}
	atomicfile.SyncDir(filepath.Dir(live))
	return aside, nil
}

func restoreOne(ctx context.Context, s Store, rec *Record, id, dataFS, blobDir string, ids []age.Identity, logf func(string, ...any)) (*RestoredStorage, error) {
	sr := rec.Storages[id]
	segs, err := chain(ctx, s, sr.Label, sr.Base, sr.Offset)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dataFS), 0o755); err != nil {
		return nil, err
	}
	part := dataFS + ".part"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer func() {
		f.Close()
		os.Remove(part)
	}()
	for _, seg := range segs {
		if err := fetchChecked(ctx, s, seg.Key, seg.SHA256, seg.To-seg.From, false, ids, io.NewOffsetWriter(f, seg.From)); err != nil {
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	kept := sr.keptTID()
	ix := fsdata.NewIndex()
	refs := map[backup.BlobRef]bool{}
	collectIx := ix.Collect(sr.tid())
	collectBlobs := backup.CollectBlobs(sr.tid(), refs)
	cut, err := fsdata.CutReader(f, sr.Offset, sr.tid(), fsdata.ScanOptions{Name: part,
		OnData: func(h *fsdata.TxnHeader, d *fsdata.DataHeader, head []byte) error {
			if err := collectIx(h, d, head); err != nil {
				return err
			}
			return collectBlobs(h, d, head)
		}})
	if err != nil {
		return nil, err
	}
	if cut.Offset != sr.Offset || cut.KeptTID != kept || cut.Tail.Kind != fsdata.TailNone || cut.Magic != sr.Magic {
		return nil, fmt.Errorf("the joined file does not end with the point's transaction: %s (want %d bytes up to tid %s, magic %s)", cut.Summary(), sr.Offset, sr.KeptTID, sr.Magic)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	for _, stale := range []string{dataFS + ".index", dataFS + ".tmp"} {
		if err := os.Remove(stale); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.Rename(part, dataFS); err != nil {
		return nil, err
	}
	atomicfile.SyncDir(filepath.Dir(dataFS))
	if cut.Magic == fsdata.MagicFS30 {
		if err := ix.WriteFile(dataFS+".index", cut.Offset); err != nil {
			return nil, err
		}
	}
	res := &RestoredStorage{ID: id, Label: sr.Label, DataFS: dataFS, KeptTID: kept, Size: cut.Offset, Segments: len(segs)}
	if len(refs) > 0 || sr.Layout != "" {
		res.BlobDir = blobDir
		n, missing, err := restoreBlobs(ctx, s, sr, refs, blobDir, ids)
		if err != nil {
			return nil, err
		}
		res.Blobs, res.MissingBlobs = n, missing
		if len(missing) > 0 {
			logf("warning: %s: %d blob file(s) referenced by the restored transactions are not in the archive (first: %s)", sr.Label, len(missing), missing[0])
		}
	}
	return res, nil
}

func restoreBlobs(ctx context.Context, s Store, sr *StorageRecord, refs map[backup.BlobRef]bool, dir string, ids []age.Identity) (int, []string, error) {
	layout := sr.Layout
	if layout == "" {
		layout = "bushy"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ".layout"), []byte(layout+"\n"), 0o644); err != nil {
		return 0, nil, err
	}
	objs, err := s.List(ctx, blobsP+sr.Label+"/")
	if err != nil {
		return 0, nil, err
	}
	have := map[string]blobObject{}
	for _, o := range objs {
		if b, ok := parseBlob(o.Key, o.Size); ok {
			have[b.Path] = b
		}
	}
	var missing []string
	n := 0
	for ref := range refs {
		p := ref.Path(layout)
		b, ok := have[p]
		if !ok {
			missing = append(missing, p)
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return n, nil, err
		}
		err := atomicfile.Write(dst, 0o444, func(w io.Writer) error {
			return fetchChecked(ctx, s, b.Key, b.SHA256, b.Size, true, ids, w)
		})
		if err != nil {
			return n, nil, err
		}
		n++
	}
	sort.Strings(missing)
	return n, missing, nil
}

// fetchChecked copies an object's content to w (decrypted when it is an age
// file), checking its sha256 and its size: size is the content's length,
// or (stored) the object's length, checked only when it is not encrypted.
func fetchChecked(ctx context.Context, s Store, key, sum string, size int64, stored bool, ids []age.Identity, w io.Writer) error {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	r, encrypted, err := plaintext(rc, ids, key)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), r)
	if err != nil {
		return fmt.Errorf("%s: read %s: %w", s, key, err)
	}
	if (!stored || !encrypted) && n != size {
		return fmt.Errorf("%s: %s is %d bytes, want %d", s, key, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("%s: %s is damaged: sha256 %s, want %s", s, key, got, sum)
	}
	return nil
}

// createTemp makes an unlinked temporary file.
func createTemp() (*os.File, error) {
	f, err := os.CreateTemp("", "tidstorage-archive-verify-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}
