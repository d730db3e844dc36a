package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
	rs := openRepositories(repos, repoOf)
	locks, err := rs.lock("forget", logf)
	if err != nil {
		return nil, fmt.Errorf("forget: %w", err)
	}
	defer locks.unlock()
	if apply {
		// Nobody may be restoring or verifying what is about to go.
		rl, err := rs.lockReaders(true)
		if err != nil {
			return nil, fmt.Errorf("forget: %w", err)
		}
		defer rl.unlock()
	}
	p, err := planForget(rs, keep)
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

func planForget(rs repositories, keep int) (*ForgetPlan, error) {
	p := &ForgetPlan{Keep: keep}
	gone := map[string]bool{} // paths of data files removed
	repos := rs.each()
	for _, repo := range repos {
		rf, err := planChains(repo, keep)
		if err != nil {
			return nil, err
		}
		for _, name := range rf.Files {
			gone[repo.path(name)] = true
		}
		p.Repos = append(p.Repos, rf)
	}
	// A set goes when any file it needs goes: sets are all or nothing.
	stamps, problems := rs.stamps()
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	keptSets := map[string]*Manifest{}
	for _, stamp := range stamps {
		m, err := rs.findSet(stamp)
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		if setNeedsAny(m, gone, rs) {
			p.Sets = append(p.Sets, stamp)
		} else {
			keptSets[stamp] = m
		}
	}
	for i, rf := range p.Repos {
		repo := repos[i]
		for _, stamp := range p.Sets {
			if repo.hasManifest(stamp) {
				rf.Files = append(rf.Files, stamp+manifestSuffix)
			}
		}
		slices.Sort(rf.Files)
		rf.Files = slices.Compact(rf.Files)
		for _, name := range rf.Files {
			if st, err := os.Stat(repo.path(name)); err == nil {
				rf.Bytes += st.Size()
			}
		}
		if err := planBlobs(repo, rf, keptSets, rs); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// planChains lists the files of repo older than its newest keep full
// backups: data files, and the ledgers and repozo indexes named by their
// stamps. Manifests are left to the set rule.
func planChains(repo *repository, keep int) (*RepoForget, error) {
	rf := &RepoForget{Repo: repo.dir}
	fulls, err := repo.fulls()
	if err != nil {
		return nil, err
	}
	if len(fulls) <= keep {
		rf.KeptChains = fulls
		return rf, nil
	}
	rf.KeptChains = fulls[len(fulls)-keep:]
	rf.Files, err = repo.stampedBefore(rf.KeptChains[0])
	return rf, err
}

func setNeedsAny(m *Manifest, gone map[string]bool, rs repositories) bool {
	for _, e := range m.Storages {
		repo := rs.storage(e)
		for _, fe := range e.Files {
			if gone[repo.path(fe.Name)] {
				return true
			}
		}
	}
	return false
}

// planBlobs lists the pool files of repo that no kept set lists for a
// storage of this repository. If no kept set names this repository (a
// moved repository and no configuration saying so), the pool is left alone:
// nothing would look needed.
func planBlobs(repo *repository, rf *RepoForget, kept map[string]*Manifest, rs repositories) error {
	pool := repo.blobs()
	if !pool.exists() {
		return nil
	}
	needed := map[string]bool{}
	claimed := false
	for _, m := range kept {
		for _, e := range m.Storages {
			if !repo.is(rs.storage(e).dir) || e.Blobs == nil {
				continue
			}
			claimed = true
			for _, b := range e.Blobs.Files {
				needed[filepath.ToSlash(filepath.Clean(filepath.FromSlash(b.Path)))] = true
			}
		}
	}
	if !claimed {
		rf.Note = "no kept set lists blobs of this repository: blob pool left alone"
		return nil
	}
	var err error
	rf.Blobs, rf.Bytes, err = pool.unlisted(needed)
	return err
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
		repo := openRepository(rf.Repo)
		var manifests, others []string
		for _, name := range rf.Files {
			if strings.HasSuffix(name, manifestSuffix) {
				manifests = append(manifests, name)
			} else {
				others = append(others, name)
			}
		}
		if err := repo.remove(append(manifests, others...)); err != nil {
			return err
		}
		if err := repo.blobs().remove(rf.Blobs); err != nil {
			return err
		}
	}
	return nil
}
