package backup

import (
	"errors"
	"fmt"
	"maps"
	"os"

	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// ReadData also scans every chain with every format check of the
	// Data.fs format and reads every blob file through (restic's check
	// --read-data); without it, data files are checksummed, the end of each
	// chain is checked, and blob files are checked by size.
	ReadData bool
	// RepoOf overrides a storage's repository by id, as for Restore.
	RepoOf func(id string) string
}

// SetReport is what Verify found about one set.
type SetReport struct {
	Stamp    string
	Storages int
	Files    int // distinct data files checked for this set
	Blobs    int
	Problems []string
	Notes    []string // checks that could not run, not failures
}

// OK reports whether the set passed.
func (r *SetReport) OK() bool { return len(r.Problems) == 0 }

// verifier remembers the data files already checked in one run: sets of
// one chain share most of their files.
type verifier struct {
	opts    VerifyOptions
	repos   repositories
	checked map[string]error
}

// Verify checks the sets stamps of repos without restoring anything: each
// repository of a set holds the same manifest; each storage's ledger agrees
// with the manifest; every data file has its size and checksums; each chain
// ends with the set's kept transaction; every blob file is in the pool with
// its size. It returns one report per set.
func Verify(repos []string, stamps []string, opts VerifyOptions) []*SetReport {
	v := &verifier{opts: opts, repos: openRepositories(repos, opts.RepoOf), checked: map[string]error{}}
	var reports []*SetReport
	rl, err := v.repos.lockReaders(false)
	if err != nil {
		for _, stamp := range stamps {
			reports = append(reports, &SetReport{Stamp: stamp, Problems: []string{"verify: " + err.Error()}})
		}
		return reports
	}
	defer rl.unlock()
	for _, stamp := range stamps {
		reports = append(reports, v.set(stamp))
	}
	return reports
}

func (v *verifier) set(stamp string) *SetReport {
	r := &SetReport{Stamp: stamp}
	m, err := v.repos.findSet(stamp)
	if err != nil {
		r.Problems = append(r.Problems, "restore: "+err.Error())
		return r
	}
	r.Storages = len(m.Storages)
	for _, e := range m.Storages {
		repo := v.repos.storage(e)
		fail := func(format string, args ...any) {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: ", e.Label)+fmt.Sprintf(format, args...))
		}
		// Coherence: every repository of the set has the same point.
		other, err := repo.manifest(stamp)
		switch {
		case err != nil:
			fail("the set's manifest: %v", err)
		case !maps.Equal(other.Point, m.Point):
			fail("the manifest in %s has another point than the set's", repo.dir)
		}
		if tid, ok := m.Point[e.ID]; !ok || tid != e.TID {
			fail("its TID %s is not the point's (%q)", e.TID, tid)
		}
		if err := repo.checkLedger(e); err != nil {
			fail("%v", err)
		}
		var pos int64
		for _, fe := range e.Files {
			if fe.Start != pos {
				fail("%s starts at byte %d, but the files before it end at %d", fe.Name, fe.Start, pos)
			}
			pos = fe.End
			path := repo.path(fe.Name)
			if _, done := v.checked[path]; !done {
				v.checked[path] = repo.checkData(fe)
				r.Files++
			}
			if err := v.checked[path]; err != nil {
				fail("%v", err)
			}
		}
		if pos != e.Size {
			fail("the data files end at byte %d, the manifest says %d", pos, e.Size)
		}
		if len(r.Problems) == 0 {
			note, err := v.chainEnd(repo, e)
			if err != nil {
				fail("%v", err)
			}
			if note != "" {
				r.Notes = append(r.Notes, e.Label+": "+note)
			}
		}
		if e.Blobs != nil {
			r.Blobs += len(e.Blobs.Files)
			if err := repo.blobs().check(e.Blobs, v.opts.ReadData); err != nil {
				fail("%v", err)
			}
		}
	}
	return r
}

// chainEnd checks that the chain, read as one file, ends exactly with the
// set's kept transaction: the last transaction's header and trailer, or,
// with ReadData, a full scan.
func (v *verifier) chainEnd(repo *repository, e *StorageEntry) (string, error) {
	kept, err := e.keptTID()
	if err != nil {
		return "", err
	}
	name := repo.path(e.Files[len(e.Files)-1].Name)
	cr, err := repo.openChain(e.Files)
	if errors.Is(err, errCompressed) {
		return v.compressedChainEnd(repo, e, name, kept)
	}
	if err != nil {
		return "", err
	}
	defer cr.Close()
	if v.opts.ReadData {
		if _, _, err := checkRebuilt(cr, name, e, kept); err != nil {
			return "", fmt.Errorf("the chain read as one file: %w", err)
		}
		return "", nil
	}
	if e.Size == fsdata.HeaderSize && kept == 0 {
		return "", nil // an empty storage
	}
	h, err := fsdata.Boundary(cr, e.Size, e.Size, name)
	if err != nil {
		return "", fmt.Errorf("the chain does not end on a transaction: %w", err)
	}
	if h.TID != kept {
		return "", fmt.Errorf("the chain ends with tid %s, the manifest says %s", h.TID.Hex(), kept.Hex())
	}
	return "", nil
}

// compressedChainEnd is chainEnd for a chain with gzipped files, which
// cannot be read at random offsets: with ReadData the chain is joined into
// a temporary file and scanned; otherwise the last transaction the manifest
// records is read from the stream and checked.
func (v *verifier) compressedChainEnd(repo *repository, e *StorageEntry, name string, kept txn.TID) (string, error) {
	if v.opts.ReadData {
		tmp, err := os.CreateTemp("", "tidstorage-verify-*.fs")
		if err != nil {
			return "", err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		if err := repo.join(tmp, e, nil); err != nil {
			return "", err
		}
		if _, _, err := checkRebuilt(tmp, name, e, kept); err != nil {
			return "", fmt.Errorf("the chain read as one file: %w", err)
		}
		return "", nil
	}
	from := e.LastTxn.Pos
	if e.Size-from > maxTailCheck || from <= 0 || from > e.Size {
		return "compressed chain: its last transaction is checked by --read-data or restore", nil
	}
	tail, err := repo.chainTail(e.Files, from)
	if err != nil {
		return "", err
	}
	h, err := fsdata.Boundary(offsetReader{tail, from}, e.Size, e.Size, name)
	if err != nil {
		return "", fmt.Errorf("the chain does not end on a transaction: %w", err)
	}
	if h.TID != kept || h.Pos != from {
		return "", fmt.Errorf("the chain ends with tid %s at %d, the manifest says %s at %d", h.TID.Hex(), h.Pos, kept.Hex(), from)
	}
	return "", nil
}
