package backup

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tidstorage/tidstorage/backup/fsdata"
)

// checkChain re-reads every data file of the chain a new incremental would
// extend and checks it against its ledger line (size, md5) and the sha256
// the newest manifest recorded, as repozo's default (non-quick) mode
// checks the whole chain: a damaged file in the middle would make every
// later set of the chain unrestorable.
func checkChain(repo string, prev *previous) error {
	sums := carriedSHA256(repo)
	var pos int64
	for _, l := range prev.lines {
		name := filepath.Base(l.Path)
		if l.Start != pos {
			return fmt.Errorf("ledger %s: %s starts at byte %d, but the files before it end at %d", prev.dat, name, l.Start, pos)
		}
		fe := FileEntry{Name: name, Start: l.Start, End: l.End, MD5: l.MD5, SHA256: sums[name]}
		if err := checkDataFile(filepath.Join(repo, name), fe); err != nil {
			return err
		}
		pos = l.End
	}
	return nil
}

// checkDataFile re-reads a repository data file (gunzipped if named *z) and
// checks its size and checksums against fe.
func checkDataFile(path string, fe FileEntry) error {
	return joinFile(io.Discard, path, fe, newProgress(nil, 0, "", 0), true)
}

// checkLedger checks that the chain's ledger (repo/e.Dat) lists exactly the
// manifest's files with the same ranges and md5, so that repozo -R, which
// trusts the ledger, would join the same bytes.
func checkLedger(repo string, e *StorageEntry) error {
	path := filepath.Join(repo, e.Dat)
	lines, err := readDat(path)
	if err != nil {
		return fmt.Errorf("the chain's ledger: %w", err)
	}
	byName := make(map[string]datLine, len(lines))
	for _, l := range lines {
		byName[filepath.Base(l.Path)] = l
	}
	for _, fe := range e.Files {
		l, ok := byName[fe.Name]
		switch {
		case !ok:
			return fmt.Errorf("the ledger %s has no line for %s", path, fe.Name)
		case l.Start != fe.Start || l.End != fe.End || l.MD5 != fe.MD5:
			return fmt.Errorf("the ledger %s says %s is bytes %d-%d with md5 %s, the manifest says %d-%d with md5 %s",
				path, fe.Name, l.Start, l.End, l.MD5, fe.Start, fe.End, fe.MD5)
		}
	}
	return nil
}

// quickExtendable is the quick check of a chain before an incremental: the
// ledger's files are there with their sizes (uncompressed ones), and the
// last transaction the chain holds, last, has the same bytes in the Data.fs
// and in the repository. It returns why the chain cannot be extended, or "".
func quickExtendable(f *os.File, repo string, prev *previous, last fsdata.TxnHeader) (string, error) {
	files := make([]FileEntry, len(prev.lines))
	for i, l := range prev.lines {
		files[i] = FileEntry{Name: filepath.Base(l.Path), Start: l.Start, End: l.End, MD5: l.MD5}
		if p := quickCheck(filepath.Join(repo, files[i].Name), files[i]); p != "" {
			return "the repository's chain is damaged, not extending it: " + p, nil
		}
	}
	end := last.End()
	if end-last.Pos > maxTailCheck {
		return "", nil // a huge last transaction: its boundary and TID were checked
	}
	saved, err := chainTail(repo, files, last.Pos)
	if err != nil {
		return "the repository's chain is damaged, not extending it: " + err.Error(), nil
	}
	live := make([]byte, end-last.Pos)
	if _, err := f.ReadAt(live, last.Pos); err != nil {
		return "", err
	}
	if !bytes.Equal(saved, live) {
		return fmt.Sprintf("the last backed-up transaction (%s at %d) differs between the Data.fs and the repository: packed or rewritten", last.TID.Hex(), last.Pos), nil
	}
	return "", nil
}
