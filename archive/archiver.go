package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// StorageSpec is one archived storage (a configured storage with data_fs).
type StorageSpec struct {
	ID      string
	Label   string
	DataFS  string
	BlobDir string // "" = no blobs
}

// Point is a published point to archive: its time and a TID per storage.
type Point struct {
	Time   time.Time
	TIDs   map[string]txn.TID
	Source string
}

// Options configure an Archiver.
type Options struct {
	Store    Store
	Storages []StorageSpec
	// Command names the archiver in the lease ("serve", "archive").
	Command string
	// LeaseTTL is how long the lease lasts without renewal (default 30 s).
	LeaseTTL time.Duration
	// Logf receives what an operator wants to know (new bases, takeovers,
	// missing blobs). Nil: nothing.
	Logf func(level, msg string, args ...any)
	Now  func() time.Time
	// Recipients, when set, encrypt the segments, blob files and blob
	// lists before they leave the host (age).
	Recipients []age.Recipient
}

// Archiver ships published points to a Store (docs/backup.md, "Continuous
// archive"). One goroutine calls Ship/Run; Status may be called from any.
type Archiver struct {
	o       Options
	enc     *encrypter // nil: objects are stored as they are
	lease   lease
	renewed time.Time // when the lease was last renewed
	seq     uint64
	last    *Record
	state   map[string]*StorageRecord  // by storage id: what the last record says
	blobs   map[string]map[string]bool // label → blob paths already in the store

	failLocal bool // the current failure streak is on this host, not the store's

	mu       sync.Mutex
	st       Status
	lagSince time.Time // while the published point waits: the loss window starts here
}

// errPack is returned while a pack runs on a storage: nothing is shipped.
var errPack = errors.New("a pack is in progress")

// localError is a failure on this host (a Data.fs that cannot be read or
// does not hold the point, a storage missing from the point), as opposed
// to one of the object store: Run logs the two differently.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

func local(err error) error {
	if err == nil || errors.Is(err, errPack) {
		return err
	}
	return &localError{err}
}

// Open takes the archive's lease and reads where the last run stopped.
func Open(ctx context.Context, o Options) (*Archiver, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 30 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, string, ...any) {}
	}
	a := &Archiver{o: o, state: map[string]*StorageRecord{}, blobs: map[string]map[string]bool{}}
	var err error
	if a.enc, err = newEncrypter(o.Recipients); err != nil {
		return nil, err
	}
	a.st.Store = o.Store.String()
	a.lease = newLease(o.Command, o.Now(), o.LeaseTTL)
	if err := ensureMarker(ctx, o.Store, o.Now()); err != nil {
		return nil, err
	}
	a.renewed = a.lease.Started
	if err := acquire(ctx, o.Store, a.lease, func(old string) {
		o.Logf("warn", "archive: taking over a stale lock", "store", o.Store.String(), "previous", old)
	}); err != nil {
		return nil, err
	}
	if err := a.resume(ctx); err != nil {
		_ = release(context.Background(), o.Store, &a.lease)
		return nil, err
	}
	return a, nil
}

// ensureMarker writes the format marker of a new archive, and refuses a
// store that holds something else.
func ensureMarker(ctx context.Context, s Store, now time.Time) error {
	b, err := getBytes(ctx, s, markerKey)
	if errors.Is(err, ErrNotExist) {
		m, _ := json.Marshal(map[string]any{"format": formatV1, "created": now.UTC()})
		if err := s.PutIfAbsent(ctx, markerKey, m); err != nil && !errors.Is(err, ErrPrecondition) {
			return err
		}
		return nil
	}
	if err != nil {
		return err
	}
	var m struct{ Format string }
	if json.Unmarshal(b, &m) != nil || m.Format != formatV1 {
		return fmt.Errorf("%s: %s does not name format %s: not a tidstorage archive of this version", s, markerKey, formatV1)
	}
	return nil
}

// resume reads the newest timeline record and the blobs in the store.
func (a *Archiver) resume(ctx context.Context) error {
	tl, err := listTimeline(ctx, a.o.Store)
	if err != nil {
		return err
	}
	if len(tl) > 0 {
		rec, err := readRecord(ctx, a.o.Store, tl[len(tl)-1].Key)
		if err != nil {
			return err
		}
		a.last, a.seq = rec, rec.Seq
		for id, sr := range rec.Storages {
			a.state[id] = sr
		}
		a.st.LastPoint, a.st.LastTIDs = rec.Time, recordTIDs(rec)
	}
	for _, s := range a.o.Storages {
		objs, err := a.o.Store.List(ctx, blobsP+s.Label+"/")
		if err != nil {
			return err
		}
		set := map[string]bool{}
		for _, o := range objs {
			if b, ok := parseBlob(o.Key, o.Size); ok {
				set[b.Path] = true
			}
		}
		a.blobs[s.Label] = set
	}
	return nil
}

func recordTIDs(r *Record) map[string]txn.TID {
	m := make(map[string]txn.TID, len(r.Storages))
	for id, s := range r.Storages {
		m[id] = s.tid()
	}
	return m
}

func listTimeline(ctx context.Context, s Store) ([]timelineEntry, error) {
	objs, err := s.List(ctx, timelineP)
	if err != nil {
		return nil, err
	}
	var out []timelineEntry
	for _, o := range objs {
		if e, ok := parseTimeline(o.Key); ok {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func readRecord(ctx context.Context, s Store, key string) (*Record, error) {
	b, err := getBytes(ctx, s, key)
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", s, key, err)
	}
	if r.Format != formatV1 {
		return nil, fmt.Errorf("%s: %s: format %q, want %q", s, key, r.Format, formatV1)
	}
	return &r, nil
}

// renew renews the lease once a third of its time has passed (two
// requests), so that an idle archive costs few requests.
func (a *Archiver) renew(ctx context.Context) error {
	now := a.o.Now()
	if !a.renewed.IsZero() && now.Sub(a.renewed) < a.o.LeaseTTL/3 {
		return nil
	}
	if err := renew(ctx, a.o.Store, &a.lease, now, a.o.LeaseTTL); err != nil {
		return err
	}
	a.renewed = now
	return nil
}

// Close releases the lease.
func (a *Archiver) Close(ctx context.Context) error { return release(ctx, a.o.Store, &a.lease) }

// Shipped reports whether p is the point last shipped (same TIDs).
func (a *Archiver) Shipped(p Point) bool {
	if a.last == nil {
		return false
	}
	for _, s := range a.o.Storages {
		sr := a.last.Storages[s.ID]
		if sr == nil || sr.tid() != p.TIDs[s.ID] {
			return false
		}
	}
	return true
}

// shipment is one storage's part of a Ship in progress.
type shipment struct {
	spec  StorageSpec
	f     *os.File
	size  int64
	rec   *StorageRecord
	start int64
	prev  txn.TID
}

// Ship makes p restorable: for every storage the new bytes of its Data.fs
// up to p (a new base after a pack), then the blob files they reference,
// then the timeline record. A failure leaves no record, hence nothing half
// restorable; the next Ship starts again from the last record.
func (a *Archiver) Ship(ctx context.Context, p Point) (*Record, error) {
	if err := a.renew(ctx); err != nil {
		return nil, err
	}
	seq := a.seq + 1
	t := p.Time.UTC()
	if a.last != nil && !t.After(a.last.Time) {
		t = a.last.Time.Add(time.Nanosecond)
	}
	rec := &Record{Format: formatV1, Seq: seq, Time: t, Source: p.Source, Storages: map[string]*StorageRecord{}}
	var parts []*shipment
	defer func() {
		for _, sh := range parts {
			sh.f.Close()
		}
	}()
	for _, s := range a.o.Storages {
		target, ok := p.TIDs[s.ID]
		if !ok {
			return nil, local(fmt.Errorf("storage %s (%s) is not in the point (%s)", s.Label, s.ID, p.Source))
		}
		sh, err := a.prepare(s, target, seq)
		if sh != nil {
			parts = append(parts, sh)
		}
		if err != nil {
			return nil, local(err)
		}
	}
	var shippedBytes int64
	for _, sh := range parts {
		n, err := a.shipStorage(ctx, sh, p.TIDs[sh.spec.ID])
		if err != nil {
			return nil, fmt.Errorf("storage %s: %w", sh.spec.Label, err)
		}
		shippedBytes += n
		rec.Storages[sh.spec.ID] = sh.rec
	}
	rec.Shipped = a.o.Now().UTC()
	b, err := json.MarshalIndent(rec, "", " ")
	if err != nil {
		return nil, err
	}
	if err := a.o.Store.Put(ctx, timelineKey(rec.Time, rec.Seq), bytes.NewReader(b), int64(len(b))); err != nil {
		return nil, err
	}
	a.seq, a.last = seq, rec
	for id, sr := range rec.Storages {
		a.state[id] = sr
	}
	a.mu.Lock()
	a.st.Shipments++
	a.st.BytesShipped += shippedBytes
	a.st.LastShipment, a.st.LastPoint, a.st.LastTIDs = rec.Shipped, rec.Time, recordTIDs(rec)
	a.mu.Unlock()
	return rec, nil
}

// prepare opens a storage's Data.fs and decides where its shipment starts:
// the end of what was shipped when the file still extends it, else 0 (a
// new base, logged).
func (a *Archiver) prepare(s StorageSpec, target txn.TID, seq uint64) (*shipment, error) {
	if _, err := os.Stat(s.DataFS + ".pack"); err == nil {
		return nil, fmt.Errorf("%s: %w (%s.pack exists)", s.Label, errPack, s.DataFS)
	}
	f, err := os.Open(s.DataFS)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	sh := &shipment{spec: s, f: f, size: st.Size()}
	prev := a.state[s.ID]
	why := ""
	switch {
	case prev == nil:
		why = "first shipment of this storage"
	case prev.keptTID() > target:
		why = fmt.Sprintf("the point went back (from %s to %s): the storage was restored or cut", prev.KeptTID, target.Hex())
	default:
		why = extends(f, sh.size, prev)
	}
	if why == "" {
		sh.start, sh.prev = prev.Offset, prev.keptTID()
		sh.rec = &StorageRecord{Label: s.Label, Base: prev.Base, Magic: prev.Magic, Layout: prev.Layout}
		return sh, nil
	}
	// Named by the shipment that starts it (bases sort in shipment order)
	// and the time: a retried shipment after a crash never adds to the
	// objects of an attempt that read another file.
	base := fmt.Sprintf("%010d-%x", seq, a.o.Now().UnixNano())
	if prev != nil {
		a.o.Logf("warn", "archive: a new base begins: "+why, "storage", s.Label, "base", base, "previous_base", prev.Base)
	} else {
		a.o.Logf("info", "archive: a new base begins: "+why, "storage", s.Label, "base", base)
	}
	sh.start = 0
	sh.rec = &StorageRecord{Label: s.Label, Base: base, NewBase: why}
	return sh, nil
}

// extends says why f no longer extends what prev shipped ("" when it does).
func extends(f *os.File, size int64, prev *StorageRecord) string {
	if size < prev.Offset {
		return fmt.Sprintf("the file is %d bytes, shorter than the %d shipped (a pack?)", size, prev.Offset)
	}
	h, err := fsdata.Boundary(f, size, prev.Offset, f.Name())
	if err != nil {
		return fmt.Sprintf("the end of what was shipped is no longer a transaction boundary (a pack?): %v", err)
	}
	if prev.Offset > fsdata.HeaderSize && h.TID != prev.keptTID() {
		return fmt.Sprintf("the transaction ending at %d is %s, not %s (a pack?)", prev.Offset, h.TID.Hex(), prev.KeptTID)
	}
	c, err := check(f, prev.Offset)
	if err != nil {
		return err.Error()
	}
	if c != prev.Check {
		return "the first or last bytes shipped changed (a pack?)"
	}
	return ""
}

const checkLen = 64 << 10

// check hashes the first and the last bytes of [0, end).
func check(f io.ReaderAt, end int64) (Check, error) {
	c := Check{HeadLen: min(end, checkLen), TailFrom: max(0, end-checkLen)}
	var err error
	if c.Head, err = hashRange(f, 0, c.HeadLen); err == nil {
		c.Tail, err = hashRange(f, c.TailFrom, end)
	}
	return c, err
}

// shipStorage scans from sh.start to the point, uploads the new bytes and
// the blob files they reference, and fills sh.rec. It returns the bytes
// uploaded.
func (a *Archiver) shipStorage(ctx context.Context, sh *shipment, target txn.TID) (int64, error) {
	refs := map[backup.BlobRef]bool{}
	opts := fsdata.ScanOptions{Name: sh.spec.DataFS, Start: sh.start, PrevTID: sh.prev}
	if sh.start == 0 {
		opts.Start = 0
	}
	if sh.spec.BlobDir != "" {
		opts.OnData = backup.CollectBlobs(target, refs)
	}
	cut, err := fsdata.CutReader(sh.f, sh.size, target, opts)
	if err != nil {
		return 0, local(err)
	}
	if cut.Behind() {
		return 0, local(fmt.Errorf("%s ends at tid %s, before the point's %s: it lacks transactions of the point", sh.spec.DataFS, cut.LastTID.Hex(), target.Hex()))
	}
	r := sh.rec
	r.Magic, r.TID, r.Offset = cut.Magic, target.Hex(), cut.Offset
	if cut.KeptTID != 0 {
		r.KeptTID = cut.KeptTID.Hex()
	}
	var n int64
	if r.NewBase != "" {
		m, _ := json.Marshal(map[string]any{"format": formatV1, "storage": sh.spec.ID, "label": sh.spec.Label,
			"base": r.Base, "started": a.o.Now().UTC(), "reason": r.NewBase, "data_fs": sh.spec.DataFS})
		if err := a.o.Store.Put(ctx, baseKey(sh.spec.Label, r.Base), bytes.NewReader(m), int64(len(m))); err != nil {
			return 0, err
		}
	}
	var paths []string
	if sh.spec.BlobDir != "" {
		layout, err := backup.BlobLayout(sh.spec.BlobDir)
		if err != nil {
			return 0, local(err)
		}
		r.Layout = layout
		for ref := range refs {
			paths = append(paths, ref.Path(layout))
		}
		sort.Strings(paths)
	}
	if cut.Offset > sh.start {
		sum, err := hashRange(sh.f, sh.start, cut.Offset)
		if err != nil {
			return 0, local(err)
		}
		key := segmentKey(sh.spec.Label, r.Base, sh.start, cut.Offset, sum)
		if len(paths) > 0 {
			// The blob files these bytes reference, for retention.
			lb := []byte(strings.Join(paths, "\n") + "\n")
			if err := a.o.Store.Put(ctx, strings.TrimSuffix(key, ".fs")+".blobs", bytes.NewReader(lb), int64(len(lb))); err != nil {
				return 0, err
			}
		}
		bn, err := a.uploadBlobs(ctx, sh.spec, paths)
		if err != nil {
			return 0, err
		}
		// The bytes cannot change under us: [start, cut) is committed data
		// read through the one descriptor opened for this shipment (a pack
		// renames a new file over the path, which this descriptor does not
		// see). Restores check the sha256 of the key.
		if err := a.put(ctx, key, io.NewSectionReader(sh.f, sh.start, cut.Offset-sh.start), cut.Offset-sh.start); err != nil {
			return 0, err
		}
		n = cut.Offset - sh.start + bn
	}
	if r.Check, err = check(sh.f, cut.Offset); err != nil {
		return 0, local(err)
	}
	return n, nil
}

// uploadBlobs uploads the blob files of paths the store lacks.
func (a *Archiver) uploadBlobs(ctx context.Context, s StorageSpec, paths []string) (int64, error) {
	have := a.blobs[s.Label]
	if have == nil {
		have = map[string]bool{}
		a.blobs[s.Label] = have
	}
	var n int64
	var missing []string
	for _, p := range paths {
		if have[p] {
			continue
		}
		src := filepath.Join(s.BlobDir, filepath.FromSlash(p))
		f, err := os.Open(src)
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, p)
			continue
		}
		if err != nil {
			return n, err
		}
		st, err := f.Stat()
		if err == nil {
			var sum string
			if sum, err = hashRange(f, 0, st.Size()); err == nil {
				err = a.put(ctx, blobKey(s.Label, p, sum), io.NewSectionReader(f, 0, st.Size()), st.Size())
			}
		}
		f.Close()
		if err != nil {
			return n, err
		}
		have[p] = true
		n += st.Size()
		a.mu.Lock()
		a.st.BlobsShipped++
		a.mu.Unlock()
	}
	if len(missing) > 0 {
		a.o.Logf("warn", "archive: blob files referenced by archived transactions are missing from blob_dir (removed by a pack?); they will be missing after a restore",
			"storage", s.Label, "count", len(missing), "first", missing[0])
	}
	return n, nil
}

// put stores an object of the archive's content (encrypted with
// recipients).
func (a *Archiver) put(ctx context.Context, key string, r io.Reader, size int64) error {
	er, n, err := a.enc.wrap(r, size)
	if err != nil {
		return err
	}
	return a.o.Store.Put(ctx, key, er, n)
}

func hashRange(f io.ReaderAt, from, to int64) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, from, to-from)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
