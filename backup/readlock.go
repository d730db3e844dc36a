package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// ReadersLockName is the lock file that orders readers of a repository
// (restore, verify: shared) against forget (exclusive), which removes the
// files a reader may be in the middle of. backup does not take it: it only
// adds files. repozo ignores it.
const ReadersLockName = "tidstorage.readers.lock"

// readersLock holds the readers' lock of several repositories.
type readersLock []*os.File

// lockReaders takes the readers' lock of every repository, shared or
// exclusive, without waiting: a restore refuses while a forget runs, and a
// forget while a restore or verify reads. A repository where the lock
// file cannot be created (a read-only copy) is read without it: nothing
// can forget sets there.
func lockReaders(repos []string, exclusive bool) (readersLock, error) {
	repos = slices.Clone(repos)
	slices.Sort(repos)
	repos = slices.Compact(repos)
	how, holder := syscall.LOCK_SH, "a forget is removing sets from it"
	if exclusive {
		how, holder = syscall.LOCK_EX, "a restore or verify is reading it"
	}
	var l readersLock
	for _, repo := range repos {
		if repo == "" {
			continue
		}
		path := filepath.Join(repo, ReadersLockName)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			if !exclusive && (errors.Is(err, syscall.EROFS) || errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrNotExist)) {
				continue
			}
			l.unlock()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
			f.Close()
			l.unlock()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("%s is held: %s; try again when it is done: %w", path, holder, ErrLocked)
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		l = append(l, f)
	}
	return l, nil
}

// unlock releases every lock (closing the descriptor releases the flock;
// the file stays, it is shared).
func (l readersLock) unlock() {
	for _, f := range l {
		f.Close()
	}
}
