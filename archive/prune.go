package archive

import (
	"bufio"
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// PrunePlan is what retention removes (or would remove).
type PrunePlan struct {
	Cutoff time.Time
	// Points are the timeline records removed: every point older than the
	// window but the newest of them (the state at the window's start).
	Points []string
	// Bases are "label/base" removed: older than the base of the oldest
	// kept point (so a newer base is complete), with their objects.
	Bases   []string
	Objects []string // every key removed, in removal order
	Bytes   int64
	// Kept is the first restorable moment after pruning.
	Kept time.Time
}

// Summary describes the plan in lines.
func (p *PrunePlan) Summary() []string {
	var out []string
	if len(p.Points) > 0 {
		out = append(out, fmt.Sprintf("%d point(s) older than %s", len(p.Points), p.Cutoff.Format(time.RFC3339)))
	}
	for _, b := range p.Bases {
		out = append(out, "base "+b)
	}
	if len(out) == 0 {
		return []string{"nothing to remove: every point is in the window (or needed for its start)"}
	}
	out = append(out, fmt.Sprintf("%d object(s), %d bytes; the first restorable moment is then %s", len(p.Objects), p.Bytes, p.Kept.Format(time.RFC3339Nano)))
	return out
}

// Prune removes what no point of the retention window needs; with apply
// false it only plans.
func (a *Archiver) Prune(ctx context.Context, retention time.Duration, apply bool) (*PrunePlan, error) {
	p, err := PlanPrune(ctx, a.o.Store, a.o.Now().Add(-retention))
	if err != nil || !apply {
		return p, err
	}
	if err := p.Apply(ctx, a.o.Store); err != nil {
		return p, err
	}
	for _, k := range p.Objects {
		if b, ok := parseBlob(k, 0); ok {
			delete(a.blobs[b.Label], b.Path)
		}
	}
	if len(p.Objects) > 0 {
		a.o.Logf("info", "archive: retention removed old points", "summary", strings.Join(p.Summary(), "; "))
	}
	a.mu.Lock()
	a.st.Removed += uint64(len(p.Objects))
	a.mu.Unlock()
	return p, nil
}

// PlanPrune plans retention with the window starting at cutoff. Call it
// under the archive's lease (Archiver.Prune) when applying.
func PlanPrune(ctx context.Context, s Store, cutoff time.Time) (*PrunePlan, error) {
	p := &PrunePlan{Cutoff: cutoff}
	tl, err := listTimeline(ctx, s)
	if err != nil || len(tl) == 0 {
		return p, err
	}
	// Keep every point at or after the cutoff and the newest before it.
	keep := sort.Search(len(tl), func(i int) bool { return !tl[i].Time.Before(cutoff) })
	keep = max(0, min(keep-1, len(tl)-1))
	for _, e := range tl[:keep] {
		p.Points = append(p.Points, e.Key)
		p.Objects = append(p.Objects, e.Key)
	}
	oldest, err := readRecord(ctx, s, tl[keep].Key)
	if err != nil {
		return nil, err
	}
	p.Kept = oldest.Time
	objs, err := s.List(ctx, dataP)
	if err != nil {
		return nil, err
	}
	needBase := map[string]string{} // label → oldest needed base
	for _, sr := range oldest.Storages {
		needBase[sr.Label] = sr.Base
	}
	// Bases to remove: marker first (a base without it is not restorable,
	// never half), then the rest.
	type baseObjs struct {
		marker string
		rest   []string
		bytes  int64
	}
	remove := map[string]*baseObjs{}
	neededBlobLists := map[string][]string{} // label → .blobs keys of kept bases
	for _, o := range objs {
		parts := strings.Split(strings.TrimPrefix(o.Key, dataP), "/")
		if len(parts) != 3 {
			continue
		}
		label, base := parts[0], parts[1]
		oldestBase, known := needBase[label]
		if !known || base >= oldestBase {
			if strings.HasSuffix(o.Key, ".blobs") {
				neededBlobLists[label] = append(neededBlobLists[label], o.Key)
			}
			continue
		}
		id := label + "/" + base
		b := remove[id]
		if b == nil {
			b = &baseObjs{}
			remove[id] = b
		}
		if parts[2] == baseMarker {
			b.marker = o.Key
		} else {
			b.rest = append(b.rest, o.Key)
		}
		b.bytes += o.Size
	}
	ids := make([]string, 0, len(remove))
	for id := range remove {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	gcLabels := map[string]bool{}
	for _, id := range ids {
		b := remove[id]
		p.Bases = append(p.Bases, id)
		if b.marker != "" {
			p.Objects = append(p.Objects, b.marker)
		}
		p.Objects = append(p.Objects, b.rest...)
		p.Bytes += b.bytes
		gcLabels[strings.SplitN(id, "/", 2)[0]] = true
	}
	// Blob files no kept base references, for the storages that lost a base.
	for label := range gcLabels {
		needed := map[string]bool{}
		for _, key := range neededBlobLists[label] {
			b, err := getBytes(ctx, s, key)
			if err != nil {
				return nil, err
			}
			sc := bufio.NewScanner(strings.NewReader(string(b)))
			for sc.Scan() {
				needed[sc.Text()] = true
			}
		}
		blobs, err := s.List(ctx, blobsP+label+"/")
		if err != nil {
			return nil, err
		}
		for _, o := range blobs {
			if bo, ok := parseBlob(o.Key, o.Size); ok && !needed[bo.Path] {
				p.Objects = append(p.Objects, o.Key)
				p.Bytes += o.Size
			}
		}
	}
	return p, nil
}

// Apply removes the plan's objects in order.
func (p *PrunePlan) Apply(ctx context.Context, s Store) error {
	for _, k := range p.Objects {
		if err := s.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}
