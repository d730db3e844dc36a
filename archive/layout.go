package archive

import (
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// Layout of an archive (docs/backup.md, "Continuous archive"), every key
// relative to the store's root:
//
//	tidstorage-archive.json                     format marker
//	lock.json                                   the archiver's lease (owner, expiry)
//	data/<label>/<base>/base.json               a base: present only while this marker is
//	data/<label>/<base>/<from>-<to>-<sha256>.fs Data.fs bytes [from, to) (16 hex digits each)
//	data/<label>/<base>/<from>-<to>-<sha256>.blobs   blob files those bytes reference
//	blobs/<label>/<path in blob_dir>#<sha256>   blob files (write-once, shared by bases)
//	timeline/<time>-<seq>.json                  one restorable point each, written last
//
// A base is one FileStorage file from its first byte: a pack (the file no
// longer extends what was shipped) starts a new one. A point is restorable
// once its timeline record exists; the record is written after every object
// it needs, so a crash mid-shipment leaves at worst unreferenced objects.
const (
	formatV1   = "tidstorage-archive/1"
	markerKey  = "tidstorage-archive.json"
	lockKey    = "lock.json"
	timelineP  = "timeline/"
	dataP      = "data/"
	blobsP     = "blobs/"
	baseMarker = "base.json"
	timeLayout = "20060102T150405.000000000Z"
)

func baseKey(label, base string) string { return dataP + label + "/" + base + "/" + baseMarker }

func segmentKey(label, base string, from, to int64, sum string) string {
	return fmt.Sprintf("%s%s/%s/%016x-%016x-%s.fs", dataP, label, base, from, to, sum)
}

func blobKey(label, rel, sum string) string { return blobsP + label + "/" + rel + "#" + sum }

func timelineKey(t time.Time, seq uint64) string {
	return fmt.Sprintf("%s%s-%010d.json", timelineP, t.UTC().Format(timeLayout), seq)
}

// segment is a Data.fs byte range of a base, parsed from its key.
type segment struct {
	Key      string
	From, To int64
	SHA256   string
	Size     int64
}

func parseSegment(key string, size int64) (label, base string, s segment, ok bool) {
	rest, found := strings.CutPrefix(key, dataP)
	if !found {
		return "", "", s, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return "", "", s, false
	}
	name, found := strings.CutSuffix(parts[2], ".fs")
	if !found {
		return "", "", s, false
	}
	f := strings.Split(name, "-")
	if len(f) != 3 || len(f[2]) != 64 {
		return "", "", s, false
	}
	from, err1 := strconv.ParseInt(f[0], 16, 64)
	to, err2 := strconv.ParseInt(f[1], 16, 64)
	if _, err3 := hex.DecodeString(f[2]); err1 != nil || err2 != nil || err3 != nil || to <= from {
		return "", "", s, false
	}
	return parts[0], parts[1], segment{Key: key, From: from, To: to, SHA256: f[2], Size: size}, true
}

// timelineEntry is a timeline key parsed: the point's time and sequence.
type timelineEntry struct {
	Key  string
	Time time.Time
	Seq  uint64
}

func parseTimeline(key string) (timelineEntry, bool) {
	name, ok := strings.CutPrefix(key, timelineP)
	if !ok {
		return timelineEntry{}, false
	}
	name, ok = strings.CutSuffix(name, ".json")
	if !ok {
		return timelineEntry{}, false
	}
	ts, seqs, ok := strings.Cut(name, "-")
	if !ok {
		return timelineEntry{}, false
	}
	t, err := time.Parse(timeLayout, ts)
	if err != nil {
		return timelineEntry{}, false
	}
	seq, err := strconv.ParseUint(seqs, 10, 64)
	if err != nil {
		return timelineEntry{}, false
	}
	return timelineEntry{Key: key, Time: t, Seq: seq}, true
}

// blobObject is a blob file's object, parsed from its key.
type blobObject struct {
	Key, Label, Path, SHA256 string
	Size                     int64
}

func parseBlob(key string, size int64) (blobObject, bool) {
	rest, ok := strings.CutPrefix(key, blobsP)
	if !ok {
		return blobObject{}, false
	}
	label, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return blobObject{}, false
	}
	p, sum, ok := strings.Cut(rest, "#")
	if !ok || len(sum) != 64 || path.Clean(p) != p {
		return blobObject{}, false
	}
	return blobObject{Key: key, Label: label, Path: p, SHA256: sum, Size: size}, true
}

// Record is one timeline entry: a published point made restorable.
type Record struct {
	Format   string                    `json:"format"`
	Seq      uint64                    `json:"seq"`
	Time     time.Time                 `json:"time"`    // when the point was published (or taken)
	Shipped  time.Time                 `json:"shipped"` // when this record was written
	Source   string                    `json:"source"`
	Storages map[string]*StorageRecord `json:"storages"` // by storage id
}

// StorageRecord is one storage's state at a point.
type StorageRecord struct {
	Label   string `json:"label"`
	Base    string `json:"base"`
	Magic   string `json:"magic"`
	TID     string `json:"tid"`      // the point's TID (hex)
	KeptTID string `json:"kept_tid"` // the last transaction <= TID in the file (hex; "" when empty)
	// Offset: bytes [0, Offset) of the base restore this point.
	Offset int64 `json:"offset"`
	// NewBase is why a base began with this point ("" when it extends one).
	NewBase string `json:"new_base,omitempty"`
	Layout  string `json:"blob_layout,omitempty"`
	// Check lets the next run (after a restart) tell that the file still
	// extends what was shipped.
	Check Check `json:"check"`
}

// Check is the sha256 of the first and of the last bytes shipped.
type Check struct {
	HeadLen  int64  `json:"head_len"`
	Head     string `json:"head"`
	TailFrom int64  `json:"tail_from"`
	Tail     string `json:"tail"`
}

func (s *StorageRecord) tid() txn.TID     { t, _ := txn.ParseTID(s.TID, txn.FormatHex); return t }
func (s *StorageRecord) keptTID() txn.TID { t, _ := txn.ParseTID(s.KeptTID, txn.FormatHex); return t }
