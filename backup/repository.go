package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tidstorage/tidstorage/internal/atomicfile"
)

// repository is one storage's repozo repository, the one thing backup,
// restore, verify, forget and sets read and write (docs/backup.md,
// "Repository layout"): its chains of data files (ledger.go, chain.go,
// datafile.go), the manifests of the sets it takes part in (here), its
// blob pool (blobpool.go) and its locks (repolock.go). The commands are
// steps on it; none opens a repository file by itself.
type repository struct {
	dir string
}

func openRepository(dir string) *repository { return &repository{dir: dir} }

// path is the path of a file of the repository.
func (r *repository) path(name string) string { return filepath.Join(r.dir, name) }

// is reports whether dir names this repository.
func (r *repository) is(dir string) bool { return filepath.Clean(dir) == filepath.Clean(r.dir) }

func (r *repository) manifestPath(stamp string) string { return r.path(stamp + manifestSuffix) }

// hasManifest reports whether the repository holds set stamp's manifest.
func (r *repository) hasManifest(stamp string) bool {
	_, err := os.Stat(r.manifestPath(stamp))
	return err == nil
}

// writeManifest writes set m's manifest, atomically.
func (r *repository) writeManifest(m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(r.manifestPath(m.Stamp), append(b, '\n'), 0o644)
}

// manifest reads the manifest of set stamp.
func (r *repository) manifest(stamp string) (*Manifest, error) {
	path := r.manifestPath(stamp)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("%s: unknown format %q (want %q)", path, m.Format, ManifestFormat)
	}
	return &m, nil
}

// sets lists the stamps of the sets whose manifest the repository holds,
// oldest first.
func (r *repository) sets() ([]string, error) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, err
	}
	var stamps []string
	for _, e := range ents {
		if stamp, ok := strings.CutSuffix(e.Name(), manifestSuffix); ok && isStamped.MatchString(e.Name()) {
			stamps = append(stamps, stamp)
		}
	}
	slices.Sort(stamps)
	return stamps, nil
}

// newestManifest is the manifest of the repository's newest set; nil when
// it has none or cannot be read.
func (r *repository) newestManifest() *Manifest {
	stamps, err := r.sets()
	if err != nil || len(stamps) == 0 {
		return nil
	}
	m, err := r.manifest(stamps[len(stamps)-1])
	if err != nil {
		return nil
	}
	return m
}

// carriedSHA256 maps data file names to the sha256 recorded by the newest
// manifest, so that a chain keeps them across sets (the ledger has md5s
// only).
func (r *repository) carriedSHA256() map[string]string {
	sums := map[string]string{}
	m := r.newestManifest()
	if m == nil {
		return sums
	}
	for _, s := range m.Storages {
		if !r.is(s.Repository) {
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

// lastStamp returns the newest stamp of any file a backup run wrote (data
// files, .dat, .index, manifests), "" if none.
func (r *repository) lastStamp() (string, error) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return "", err
	}
	last := ""
	for _, e := range ents {
		if m := isStamped.FindStringSubmatch(e.Name()); m != nil && m[1] > last {
			last = m[1]
		}
	}
	return last, nil
}

// stampedBefore lists the regular files named by a stamp older than stamp
// (data files, ledgers, repozo indexes), manifests excepted.
func (r *repository) stampedBefore(stamp string) ([]string, error) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		m := isStamped.FindStringSubmatch(e.Name())
		if m == nil || m[1] >= stamp || strings.HasSuffix(e.Name(), manifestSuffix) || !e.Type().IsRegular() {
			continue
		}
		names = append(names, e.Name())
	}
	return names, nil
}

// remove removes files of the repository, in order; one already gone is
// not an error.
func (r *repository) remove(names []string) error {
	for _, name := range names {
		if err := os.Remove(r.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// repositories are the repositories of a site: those of the configuration,
// where sets are looked for, and the override that says where a storage's
// repository is now (nil, or "" for an id: the one its manifest records).
type repositories struct {
	dirs []string
	of   func(id string) string
}

func openRepositories(dirs []string, of func(id string) string) repositories {
	return repositories{dirs: dirs, of: of}
}

func (rs repositories) each() []*repository {
	out := make([]*repository, len(rs.dirs))
	for i, d := range rs.dirs {
		out[i] = openRepository(d)
	}
	return out
}

// of is the repository storage e of a set is read from: the override's,
// else the one the manifest records.
func (rs repositories) storage(e *StorageEntry) *repository {
	if rs.of != nil {
		if d := rs.of(e.ID); d != "" {
			return openRepository(d)
		}
	}
	return openRepository(e.Repository)
}

// nextStamp returns a stamp for a run at now that is later than every stamp
// already in the repositories: repozo sorts files by name, and a full and an
// incremental with the same stamp lose the incremental on restore.
func (rs repositories) nextStamp(now time.Time) (string, error) {
	t := now.UTC().Truncate(time.Second)
	for _, r := range rs.each() {
		last, err := r.lastStamp()
		if err != nil {
			return "", err
		}
		if last == "" {
			continue
		}
		lt, err := time.Parse(StampLayout, last)
		if err != nil {
			continue
		}
		if !t.After(lt) {
			t = lt.Add(time.Second)
		}
	}
	return t.Format(StampLayout), nil
}

// stamps lists the stamps of the sets found in any repository, oldest
// first; unreadable repositories are returned as problems.
func (rs repositories) stamps() ([]string, []string) {
	seen := map[string]bool{}
	var stamps, problems []string
	for _, r := range rs.each() {
		ss, err := r.sets()
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		for _, s := range ss {
			if !seen[s] {
				seen[s] = true
				stamps = append(stamps, s)
			}
		}
	}
	slices.Sort(stamps)
	return stamps, problems
}

// findSet reads the manifest of set stamp ("" = the newest) from the first
// repository that has it.
func (rs repositories) findSet(stamp string) (*Manifest, error) {
	if len(rs.dirs) == 0 {
		return nil, errors.New("no repository configured")
	}
	var tried []string
	for _, r := range rs.each() {
		stamps, err := r.sets()
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", r.dir, err))
			continue
		}
		if len(stamps) == 0 {
			tried = append(tried, r.dir+": no backup set")
			continue
		}
		want := stamp
		if want == "" {
			want = stamps[len(stamps)-1]
		}
		m, err := r.manifest(want)
		if errors.Is(err, fs.ErrNotExist) {
			tried = append(tried, fmt.Sprintf("%s: no set %s (sets: %s)", r.dir, want, strings.Join(stamps, ", ")))
			continue
		}
		if err != nil {
			return nil, err
		}
		return m, nil
	}
	return nil, fmt.Errorf("no backup set found:\n  %s", strings.Join(tried, "\n  "))
}

// AllStamps lists the stamps of the sets found in any of repos, oldest
// first; unreadable repositories are returned as problems.
func AllStamps(repos []string) ([]string, []string) {
	return openRepositories(repos, nil).stamps()
}

// FindSet reads the manifest of set stamp ("" = the newest) from the first
// of repos that has it.
func FindSet(repos []string, stamp string) (*Manifest, error) {
	m, err := openRepositories(repos, nil).findSet(stamp)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return m, nil
}
