package backup

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// StampLayout is repozo's file name stamp: the backup's UTC wall-clock time.
const StampLayout = "2006-01-02-15-04-05"

// isDataFile matches repozo's data file names (repozo.py is_data_file).
var isDataFile = regexp.MustCompile(`^\d{4}(?:-\d\d){5}\.(?:delta)?fsz?$`)

// isStamped matches every file a backup run names by its stamp.
var isStamped = regexp.MustCompile(`^(\d{4}(?:-\d\d){5})\.`)

// datLine is one line of a repozo .dat ledger: a data file holding bytes
// [Start, End) of the Data.fs, and their md5.
type datLine struct {
	Path       string
	Start, End int64
	MD5        string
}

func (l datLine) String() string { return fmt.Sprintf("%s %d %d %s", l.Path, l.Start, l.End, l.MD5) }

func readDat(path string) ([]datLine, error) {
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

// chain returns the data files repozo -R would join to restore the state as
// of stamp when (all if ""): the newest full backup not after it and the
// incrementals after that full, oldest first (repozo.py find_files). The
// comparison is on strings, as repozo's.
func chain(repo, when string) ([]string, error) {
	ents, err := os.ReadDir(repo)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if isDataFile.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	slices.Reverse(names)
	var needed []string
	for _, name := range names {
		root, ext := splitExt(name)
		if when != "" && root > when {
			continue
		}
		needed = append(needed, name)
		if ext == ".fs" || ext == ".fsz" {
			break
		}
	}
	if len(needed) > 0 {
		if _, ext := splitExt(needed[len(needed)-1]); ext != ".fs" && ext != ".fsz" {
			return nil, fmt.Errorf("%s: incremental backups without a full backup before them", repo)
		}
	}
	slices.Reverse(needed)
	return needed, nil
}

func splitExt(name string) (root, ext string) {
	ext = filepath.Ext(name)
	return strings.TrimSuffix(name, ext), ext
}

// lastStamp returns the newest stamp of any file a backup run wrote in repo
// (data files, .dat, .index, manifests), "" if none.
func lastStamp(repo string) (string, error) {
	ents, err := os.ReadDir(repo)
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

// nextStamp returns a stamp for a run at now that is later than every stamp
// already in the repositories: repozo sorts files by name, and a full and an
// incremental with the same stamp lose the incremental on restore.
func nextStamp(now time.Time, repos []string) (string, error) {
	t := now.UTC().Truncate(time.Second)
	for _, repo := range repos {
		last, err := lastStamp(repo)
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
