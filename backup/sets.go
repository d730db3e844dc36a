package backup

import (
	"fmt"
	"time"
)

// SetInfo describes one backup set for a listing.
type SetInfo struct {
	*Manifest
	// Bytes is the size of the Data.fs files the set restores.
	Bytes int64
	// Problems found by a quick check (no data read): repositories lacking
	// the set's manifest, data files missing or of the wrong size.
	Problems []string
	// Verified is set by a caller that ran Verify on the set and found it
	// sound.
	Verified bool `json:",omitempty"`
}

// ListSets describes every set found in repos, oldest first; unreadable
// repositories or manifests come back as problems.
func ListSets(repos []string, repoOf func(id string) string) ([]*SetInfo, []string) {
	rs := openRepositories(repos, repoOf)
	stamps, problems := rs.stamps()
	var out []*SetInfo
	for _, stamp := range stamps {
		m, err := rs.findSet(stamp)
		if err != nil {
			problems = append(problems, "restore: "+err.Error())
			continue
		}
		si := &SetInfo{Manifest: m}
		for _, e := range m.Storages {
			si.Bytes += e.Size
			repo := rs.storage(e)
			if !repo.hasManifest(stamp) {
				si.Problems = append(si.Problems, fmt.Sprintf("%s: no manifest in %s", e.Label, repo.dir))
			}
			for _, fe := range e.Files {
				if p := repo.quickCheckData(fe); p != "" {
					si.Problems = append(si.Problems, e.Label+": "+p)
				}
			}
		}
		out = append(out, si)
	}
	return out, problems
}

// ParseDate reads a restore date: repozo's -D form YYYY-MM-DD[-HH[-MM[-SS]]]
// (UTC, missing parts zero) or RFC 3339.
func ParseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	layouts := []string{"2006-01-02", "2006-01-02-15", "2006-01-02-15-04", StampLayout}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("date %q: want YYYY-MM-DD[-HH[-MM[-SS]]] (UTC) or RFC 3339", s)
}

// StampAt returns the newest stamp of stamps (sorted) at or before at, as
// repozo -D chooses the state to recover.
func StampAt(stamps []string, at time.Time) (string, error) {
	want := at.UTC().Format(StampLayout)
	best := ""
	for _, s := range stamps {
		if s <= want {
			best = s
		}
	}
	if best == "" {
		first := "none"
		if len(stamps) > 0 {
			first = stamps[0]
		}
		return "", fmt.Errorf("no backup set at or before %s (oldest: %s)", want, first)
	}
	return best, nil
}
