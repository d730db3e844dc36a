package statusfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tidstorage/tidstorage/internal/atomicfile"
)

// maxTail bounds how much of the file's end repairTail reads to find the
// last line (a full line of thousands of storages is well below it).
const maxTail = 4 << 20

// repairTail cuts a torn last line off the file at path before anything is
// appended: a crash or a full disk in the middle of a
// write leaves half a line, which readers tolerate as the last line but
// which would glue onto the next line appended and break the file for good.
// A last line that ends in a newline but does not parse is cut as well (a
// line glued onto a fragment by an earlier version). What is cut is kept
// aside in <path>.torn-<time> and logged with its offset.
func repairTail(path string, log hclog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("statusfile: repair: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("statusfile: repair: %w", err)
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	n := min(size, maxTail)
	tail := make([]byte, n)
	if _, err := f.ReadAt(tail, size-n); err != nil && err != io.EOF {
		return fmt.Errorf("statusfile: repair: read the last line: %w", err)
	}
	body := tail
	if tail[len(tail)-1] == '\n' {
		body = tail[:len(tail)-1]
	}
	nl := bytes.LastIndexByte(body, '\n')
	if nl < 0 && n < size {
		return fmt.Errorf("statusfile: repair: the last line of %s is longer than %d bytes", path, maxTail)
	}
	last := body[nl+1:]
	if len(bytes.TrimSpace(last)) == 0 {
		return nil
	}
	if len(body) < len(tail) { // the last line is complete: keep it if it parses
		if _, perr := ParseLine(string(bytes.TrimSuffix(last, []byte("\r")))); perr == nil {
			return nil
		}
	}
	off := size - n + int64(nl+1)
	cut := tail[nl+1:]
	aside, err := keepAside(path, ".torn-", cut)
	if err != nil {
		return fmt.Errorf("statusfile: repair: keep the torn line aside: %w", err)
	}
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("statusfile: repair: cut the torn line at offset %d: %w", off, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("statusfile: repair: fsync: %w", err)
	}
	log.Warn("status file: cut off a torn last line (a crash or a full disk during a write); the file now ends at its last good line",
		"path", path, "offset", off, "bytes", len(cut), "kept_as", aside, "fragment", quoteShort(cut))
	return nil
}

// keepAside writes b to a new file <path><infix><UTC time>[-N] and returns
// its name.
func keepAside(path, infix string, b []byte) (string, error) {
	name, f, err := createAside(path, infix)
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	return name, atomicfile.SyncDir(filepath.Dir(path))
}

// createAside creates a file named for the time that does not exist yet.
func createAside(path, infix string) (string, *os.File, error) {
	base := path + infix + time.Now().UTC().Format("20060102T150405Z")
	name := base
	for i := 2; i < 1000; i++ {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return name, f, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", nil, err
		}
		name = base + "-" + strconv.Itoa(i)
	}
	return "", nil, fmt.Errorf("too many files named %s*", base)
}

func quoteShort(b []byte) string {
	if len(b) > 200 {
		return strconv.Quote(string(b[:200])) + "..."
	}
	return strconv.Quote(string(b))
}

// replayFile replays the file at path (nil, nil if it does not exist).
func replayFile(path string) (*Result, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Replay(f, ReplayOptions{})
}
