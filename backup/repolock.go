package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/tidstorage/tidstorage/internal/lockfile"
)

// A repository has two locks, both ignored by repozo: the writer lock
// (backup, forget), one owner at a time, and the readers' lock (restore,
// verify shared, forget exclusive).

// repoLockName is the lock file a writer (backup, forget) holds in a
// repository. repozo ignores it.
const repoLockName = "tidstorage.lock"

// ErrLocked means another process holds a repository's lock.
var ErrLocked = errors.New("repository locked")

// repoLock is a held repository lock.
type repoLock struct{ l *lockfile.Lock }

// lock takes the repository's writer lock for command: an flock on
// tidstorage.lock, which the kernel releases whatever way the process
// ends, holding the holder's pid, host and start time (internal/lockfile). A
// lock file left by a process of this host that no longer holds the flock
// (killed) is stale and taken over, with a note to logf; one left by another
// host is refused, since the flock of another host may not be visible here
// (some network filesystems).
func (r *repository) lock(command string, logf func(string, ...any)) (*repoLock, error) {
	repo, path := r.dir, r.path(repoLockName)
	l, err := lockfile.Acquire(path, command, func(old lockfile.Holder) {
		if logf != nil {
			logf("%s: taking over a stale lock (%s): that process is gone", repo, old)
		}
	})
	var held *lockfile.HeldError
	switch {
	case errors.As(err, &held) && held.Foreign:
		return nil, fmt.Errorf("%s was left by %s: if no tidstorage runs there on this repository, remove the file: %w", path, held.Holder, ErrLocked)
	case errors.As(err, &held):
		return nil, fmt.Errorf("%s is held (%s): another backup or forget is writing this repository: %w", path, held.Holder, ErrLocked)
	case err != nil:
		return nil, err
	}
	return &repoLock{l: l}, nil
}

// Unlock removes the lock file, then releases the flock.
func (l *repoLock) Unlock() {
	if l != nil {
		l.l.Release()
	}
}

// repoLocks are held writer locks of several repositories.
type repoLocks []*repoLock

// lock takes the writer lock of every repository, in a fixed order; on
// failure it releases those it took.
func (rs repositories) lock(command string, logf func(string, ...any)) (repoLocks, error) {
	var locks repoLocks
	for _, r := range rs.each() {
		l, err := r.lock(command, logf)
		if err != nil {
			locks.unlock()
			return nil, err
		}
		locks = append(locks, l)
	}
	return locks, nil
}

func (locks repoLocks) unlock() {
	for _, l := range locks {
		l.Unlock()
	}
}

// readersLockName is the lock file that orders readers of a repository
// (restore, verify: shared) against forget (exclusive), which removes the
// files a reader may be in the middle of. backup does not take it: it only
// adds files. repozo ignores it.
const readersLockName = "tidstorage.readers.lock"

// readersLock holds the readers' lock of several repositories.
type readersLock []*os.File

// lockReaders takes the readers' lock of every repository, shared or
// exclusive, without waiting: a restore refuses while a forget runs, and a
// forget while a restore or verify reads. A repository where the lock
// file cannot be created (a read-only copy) is read without it: nothing
// can forget sets there.
func (rs repositories) lockReaders(exclusive bool) (readersLock, error) {
	repos := slices.Clone(rs.dirs)
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
		path := filepath.Join(repo, readersLockName)
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
