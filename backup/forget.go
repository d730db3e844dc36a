package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// ForgetPlan is what Forget removes (or would remove): per repository, the
// chains older than the newest Keep full backups, the manifests of the sets
// that needed them, and the pooled blob files no remaining set lists.
type ForgetPlan struct {
	Keep  int
	Repos []*RepoForget
	// Sets are the stamps of the sets no longer restorable once the files
	// go: their manifests are removed from every repository.
	Sets []string
}

// RepoForget is the plan for one repository.
type RepoForget struct {
	Repo       string
	KeptChains []string // full backups kept, oldest first
	Files      []string // data files, ledgers, indexes and manifests to remove
	Blobs      []string // blob pool files to remove, relative to the pool
	Bytes      int64    // total size of what is removed
	Note       string   // why the blob pool is left alone, if it is
}

// Forget keeps the newest keep full chains of every repository and removes
// the rest, with the sets that needed it and the blob revisions that no
// remaining set lists. It holds every repository's lock throughout. With
// apply false it only plans (a dry run).
func Forget(repos []string, keep int, apply bool, repoOf func(id string) string, logf func(string, ...any)) (*ForgetPlan, error) {
	if keep < 1 {
		return nil, fmt.Errorf("forget: keep %d: at least the newest full chain must be kept", keep)
	}
	locks, err := lockRepositories(repos, "forget", logf)
	if err != nil {
		return nil, fmt.Errorf("forget: %w", err)
	}
	defer unlockAll(locks)
	if apply {
		// Nobody may be restoring or verifying what is about to go.
		rl, err := lockReaders(repos, true)
		if err != nil {
			return nil, fmt.Errorf("forget: %w", err)
		}
		defer rl.unlock()
	}
	p, err := planForget(repos, keep, repoOf)
	if err != nil {
		return nil, fmt.Errorf("forget: %w", err)
	}
	if apply {
		if err := p.apply(); err != nil {
			return p, fmt.Errorf("forget: %w", err)
		}
	}
	return p, nil
}

func planForget(repos []string, keep int, repoOf func(id string) string) (*ForgetPlan, error) {
	p := &ForgetPlan{Keep: keep}
	gone := map[string]bool{} // absolute paths of data files removed
	for _, repo := range repos {
		rf, err := planChains(repo, keep)
		if err != nil {
			return nil, err
		}
		for _, name := range rf.Files {
			gone[filepath.Join(repo, name)] = true
		}
		p.Repos = append(p.Repos, rf)
	}
	// A set goes when any file it needs goes: sets are all or nothing.
	stamps, problems := AllStamps(repos)
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	keptSets := map[string]*Manifest{}
	for _, stamp := range stamps {
		m, err := FindSet(repos, stamp)
		if err != nil {
			return nil, err
		}
		if setNeedsAny(m, gone, repoOf) {
			p.Sets = append(p.Sets, stamp)
		} else {
			keptSets[stamp] = m
		}
	}
	for _, rf := range p.Repos {
		for _, stamp := range p.Sets {
			name := stamp + manifestSuffix
			if _, err := os.Stat(filepath.Join(rf.Repo, name)); err == nil {
				rf.Files = append(rf.Files, name)
			}
		}
		slices.Sort(rf.Files)
		rf.Files = slices.Compact(rf.Files)
		for _, name := range rf.Files {
			if st, err := os.Stat(filepath.Join(rf.Repo, name)); err == nil {
				rf.Bytes += st.Size()
			}
		}
		if err := planBlobs(rf, keptSets, repoOf); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// planChains lists the files of repo older than its newest keep full
// backups: data files, and the ledgers and repozo indexes named by their
// stamps. Manifests are left to the set rule.
func planChains(repo string, keep int) (*RepoForget, error) {
	rf := &RepoForget{Repo: repo}
	ents, err := os.ReadDir(repo)
	if err != nil {
		return nil, err
	}
	var fulls []string
	for _, e := range ents {
		if isDataFile.MatchString(e.Name()) {
			if root, ext := splitExt(e.Name()); ext == ".fs" || ext == ".fsz" {
				fulls = append(fulls, root)
			}
		}
	}
	slices.Sort(fulls)
	if len(fulls) <= keep {
		rf.KeptChains = fulls
		return rf, nil
	}
	rf.KeptChains = fulls[len(fulls)-keep:]
	oldest := rf.KeptChains[0]
	for _, e := range ents {
		m := isStamped.FindStringSubmatch(e.Name())
		if m == nil || m[1] >= oldest || strings.HasSuffix(e.Name(), manifestSuffix) || !e.Type().IsRegular() {
			continue
		}
		rf.Files = append(rf.Files, e.Name())
	}
	return rf, nil
}

func setNeedsAny(m *Manifest, gone map[string]bool, repoOf func(string) string) bool {
	for _, e := range m.Storages {
		repo := storageRepo(e, repoOf)
		for _, fe := range e.Files {
			if gone[filepath.Join(repo, fe.Name)] {
				return true
			}
		}
	}
	return false
}

func storageRepo(e *StorageEntry, repoOf func(string) string) string {
	if repoOf != nil {
		if r := repoOf(e.ID); r != "" {
			return r
		}
	}
	return e.Repository
}

// planBlobs lists the pool files of rf.Repo that no kept set lists for a
// storage of this repository. If no kept set names this repository (a
// moved repository and no configuration saying so), the pool is left alone:
// nothing would look needed.
func planBlobs(rf *RepoForget, kept map[string]*Manifest, repoOf func(string) string) error {
	pool := filepath.Join(rf.Repo, blobPool)
	if _, err := os.Stat(pool); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	needed := map[string]bool{}
	claimed := false
	for _, m := range kept {
		for _, e := range m.Storages {
			if filepath.Clean(storageRepo(e, repoOf)) != filepath.Clean(rf.Repo) || e.Blobs == nil {
				continue
			}
			claimed = true
			for _, b := range e.Blobs.Files {
				needed[filepath.FromSlash(b.Path)] = true
			}
		}
	}
	if !claimed {
		rf.Note = "no kept set lists blobs of this repository: blob pool left alone"
		return nil
	}
	return filepath.WalkDir(pool, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if _, ok := blobTID(d.Name()); !ok {
			return nil
		}
		rel, err := filepath.Rel(pool, path)
		if err != nil {
			return err
		}
		if !needed[rel] {
			info, err := d.Info()
			if err != nil {
				return err
			}
			rf.Blobs = append(rf.Blobs, filepath.ToSlash(rel))
			rf.Bytes += info.Size()
		}
		return nil
	})
}

// Bytes is the size of everything the plan removes, over its repositories.
func (p *ForgetPlan) Bytes() int64 {
	var n int64
	for _, r := range p.Repos {
		n += r.Bytes
	}
	return n
}

// apply removes the manifests first (a set without its manifest is
// invisible to restore), then data files, ledgers and blobs, then the blob
// directories left empty.
func (p *ForgetPlan) apply() error {
	for _, rf := range p.Repos {
		var manifests, others []string
		for _, name := range rf.Files {
			if strings.HasSuffix(name, manifestSuffix) {
				manifests = append(manifests, name)
			} else {
				others = append(others, name)
			}
		}
		for _, name := range append(manifests, others...) {
			if err := os.Remove(filepath.Join(rf.Repo, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		pool := filepath.Join(rf.Repo, blobPool)
		dirs := map[string]bool{}
		for _, rel := range rf.Blobs {
			path := filepath.Join(pool, filepath.FromSlash(rel))
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			for d := filepath.Dir(path); d != pool && strings.HasPrefix(d, pool); d = filepath.Dir(d) {
				dirs[d] = true
			}
		}
		// Deepest first; a directory still holding files stays.
		sorted := make([]string, 0, len(dirs))
		for d := range dirs {
			sorted = append(sorted, d)
		}
		sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
		for _, d := range sorted {
			os.Remove(d)
		}
	}
	return nil
}
