package backup

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// datLine is one line of a repozo .dat ledger: a data file holding bytes
// [Start, End) of the Data.fs, and their md5.
type datLine struct {
	Path       string
	Start, End int64
	MD5        string
}

func (l datLine) String() string { return fmt.Sprintf("%s %d %d %s", l.Path, l.Start, l.End, l.MD5) }

// ledger reads the repozo ledger dat (a .dat file of the repository).
func (r *repository) ledger(dat string) ([]datLine, error) {
	path := r.path(dat)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []datLine
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 4 {
			return nil, fmt.Errorf("%s:%d: want 4 fields (path start end md5), got %d", path, n, len(fields))
		}
		start, err1 := strconv.ParseInt(fields[1], 10, 64)
		end, err2 := strconv.ParseInt(fields[2], 10, 64)
		if err1 != nil || err2 != nil || start < 0 || end < start {
			return nil, fmt.Errorf("%s:%d: bad byte range %q %q", path, n, fields[1], fields[2])
		}
		lines = append(lines, datLine{Path: fields[0], Start: start, End: end, MD5: fields[3]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lines, nil
}

// appendLedger appends a line to the ledger dat (creating it for a full
// backup, which must not find one), synced.
func (r *repository) appendLedger(dat string, l datLine, create bool) error {
	flags := os.O_WRONLY | os.O_APPEND
	if create {
		flags |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(r.path(dat), flags, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, l.String())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkLedger checks that the chain's ledger (e.Dat) lists exactly the
// manifest's files with the same ranges and md5, so that repozo -R, which
// trusts the ledger, would join the same bytes.
func (r *repository) checkLedger(e *StorageEntry) error {
	lines, err := r.ledger(e.Dat)
	if err != nil {
		return fmt.Errorf("the chain's ledger: %w", err)
	}
	path := r.path(e.Dat)
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
