package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/tidstorage/tidstorage/backup/fsdata"
)

// Summary describes an archive: its window, bases and sizes.
type Summary struct {
	Store  string               `json:"store"`
	Points int                  `json:"points"`
	First  time.Time            `json:"first"` // first restorable moment (zero: none)
	Last   time.Time            `json:"last"`
	Newest *Record              `json:"newest,omitempty"`
	Bases  []BaseSummary        `json:"bases"`
	Blobs  map[string]SizeCount `json:"blobs"` // by label
	Lock   string               `json:"lock,omitempty"`
}

// BaseSummary is one base of one storage.
type BaseSummary struct {
	Label    string `json:"label"`
	Base     string `json:"base"`
	Present  bool   `json:"present"` // its marker is there
	Segments int    `json:"segments"`
	Bytes    int64  `json:"bytes"`
}

// SizeCount is a count of objects and their bytes.
type SizeCount struct {
	Count int   `json:"count"`
	Bytes int64 `json:"bytes"`
}

// listPoints lists the timeline and the present bases.
func listPoints(ctx context.Context, s Store) ([]timelineEntry, map[string]map[string]bool, error) {
	tl, err := listTimeline(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	bases, err := listBases(ctx, s)
	return tl, bases, err
}

// Summarize lists an archive.
func Summarize(ctx context.Context, s Store) (*Summary, error) {
	sum := &Summary{Store: s.String(), Blobs: map[string]SizeCount{}}
	tl, bases, err := listPoints(ctx, s)
	if err != nil {
		return nil, err
	}
	sum.Points = len(tl)
	if len(tl) > 0 {
		if sum.Newest, err = readRecord(ctx, s, tl[len(tl)-1].Key); err != nil {
			return nil, err
		}
		sum.Last = tl[len(tl)-1].Time
		// The first restorable point: the oldest whose bases are present
		// (retention removes the bases before nothing else needs them).
		first := sort.Search(len(tl), func(i int) bool {
			r, err := readRecord(ctx, s, tl[i].Key)
			return err == nil && recordBasesPresent(r, bases)
		})
		if first < len(tl) {
			sum.First = tl[first].Time
		}
	}
	objs, err := s.List(ctx, dataP)
	if err != nil {
		return nil, err
	}
	idx := map[string]*BaseSummary{}
	for _, o := range objs {
		parts := strings.Split(strings.TrimPrefix(o.Key, dataP), "/")
		if len(parts) != 3 {
			continue
		}
		id := parts[0] + "/" + parts[1]
		b := idx[id]
		if b == nil {
			b = &BaseSummary{Label: parts[0], Base: parts[1], Present: bases[parts[0]][parts[1]]}
			idx[id] = b
		}
		if _, _, seg, ok := parseSegment(o.Key, o.Size); ok {
			b.Segments++
			b.Bytes += seg.Size
		}
	}
	for _, b := range idx {
		sum.Bases = append(sum.Bases, *b)
	}
	sort.Slice(sum.Bases, func(i, j int) bool {
		if sum.Bases[i].Label != sum.Bases[j].Label {
			return sum.Bases[i].Label < sum.Bases[j].Label
		}
		return sum.Bases[i].Base < sum.Bases[j].Base
	})
	blobs, err := s.List(ctx, blobsP)
	if err != nil {
		return nil, err
	}
	for _, o := range blobs {
		if b, ok := parseBlob(o.Key, o.Size); ok {
			c := sum.Blobs[b.Label]
			c.Count++
			c.Bytes += o.Size
			sum.Blobs[b.Label] = c
		}
	}
	if l, err := readLease(ctx, s); err == nil {
		sum.Lock = l.String()
	} else if !errors.Is(err, ErrNotExist) {
		return nil, err
	}
	return sum, nil
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	Points   int      // restorable points checked
	Bases    int      // bases whose chain was checked
	Objects  int      // objects read through (--read-data)
	Bytes    int64    // bytes read through
	Problems []string // empty when sound
}

// Verify checks an archive without restoring it: every restorable point's
// bases are present and their segments join up to the point's offset; with
// readData every segment and blob object is read and checked against its
// sha256, and each base is scanned with every format check up to its
// newest point, which must end with that point's transaction.
func Verify(ctx context.Context, s Store, readData bool, ids []age.Identity) (*VerifyResult, error) {
	res := &VerifyResult{}
	tl, bases, err := listPoints(ctx, s)
	if err != nil {
		return nil, err
	}
	// The newest point of each base is the longest chain: checking it
	// checks every older point's prefix of that base, except orphaned
	// overlaps, which each point's offset must still land on.
	type baseEnd struct {
		label, base string
		rec         *Record
		sr          *StorageRecord
		offsets     map[int64]bool
	}
	ends := map[string]*baseEnd{}
	for i := len(tl) - 1; i >= 0; i-- {
		rec, err := readRecord(ctx, s, tl[i].Key)
		if err != nil {
			res.Problems = append(res.Problems, err.Error())
			continue
		}
		if !recordBasesPresent(rec, bases) {
			break // before the window: retention removed their bases
		}
		res.Points++
		for _, sr := range rec.Storages {
			id := sr.Label + "/" + sr.Base
			e := ends[id]
			if e == nil {
				e = &baseEnd{label: sr.Label, base: sr.Base, rec: rec, sr: sr, offsets: map[int64]bool{}}
				ends[id] = e
			}
			e.offsets[sr.Offset] = true
		}
	}
	keys := make([]string, 0, len(ends))
	for id := range ends {
		keys = append(keys, id)
	}
	sort.Strings(keys)
	for _, id := range keys {
		e := ends[id]
		res.Bases++
		segs, err := chain(ctx, s, e.label, e.base, e.sr.Offset)
		if err != nil {
			res.Problems = append(res.Problems, err.Error())
			continue
		}
		bounds := map[int64]bool{}
		for _, sg := range segs {
			bounds[sg.To] = true
		}
		for off := range e.offsets {
			if !bounds[off] {
				// An older point ends inside a longer segment: its own chain.
				if _, err := chain(ctx, s, e.label, e.base, off); err != nil {
					res.Problems = append(res.Problems, err.Error())
				}
			}
		}
		if readData {
			if err := verifyBase(ctx, s, e.sr, segs, ids, res); err != nil {
				res.Problems = append(res.Problems, fmt.Sprintf("%s: %v", id, err))
			}
		}
	}
	if readData {
		blobs, err := s.List(ctx, blobsP)
		if err != nil {
			return nil, err
		}
		for _, o := range blobs {
			b, ok := parseBlob(o.Key, o.Size)
			if !ok {
				continue
			}
			if err := fetchChecked(ctx, s, b.Key, b.SHA256, o.Size, true, ids, io.Discard); err != nil {
				res.Problems = append(res.Problems, err.Error())
			}
			res.Objects++
			res.Bytes += o.Size
		}
	}
	return res, nil
}

// verifyBase reads a base's chain through a temporary file and scans it.
func verifyBase(ctx context.Context, s Store, sr *StorageRecord, segs []segment, ids []age.Identity, res *VerifyResult) error {
	f, err := createTemp()
	if err != nil {
		return err
	}
	defer f.Close()
	for _, sg := range segs {
		if err := fetchChecked(ctx, s, sg.Key, sg.SHA256, sg.To-sg.From, false, ids, io.NewOffsetWriter(f, sg.From)); err != nil {
			return err
		}
		res.Objects++
		res.Bytes += sg.To - sg.From
	}
	cut, err := fsdata.CutReader(f, sr.Offset, sr.tid(), fsdata.ScanOptions{Name: sr.Label + "/" + sr.Base})
	if err != nil {
		return err
	}
	if cut.Offset != sr.Offset || cut.KeptTID != sr.keptTID() || cut.Tail.Kind != fsdata.TailNone {
		return fmt.Errorf("the chain does not end with its newest point's transaction: %s", cut.Summary())
	}
	return nil
}
