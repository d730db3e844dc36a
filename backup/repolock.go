package backup

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/tidstorage/tidstorage/internal/lockfile"
)

// RepoLockName is the lock file a writer (backup, forget) holds in a
// repository. repozo ignores it.
const RepoLockName = "tidstorage.lock"

// ErrLocked means another process holds a repository's lock.
var ErrLocked = errors.New("repository locked")

// RepoLock is a held repository lock.
type RepoLock struct{ l *lockfile.Lock }

// LockRepository takes repo's lock for command: an flock on
// repo/tidstorage.lock, which the kernel releases whatever way the process
// ends, holding the holder's pid, host and start time (internal/lockfile). A
// lock file left by a process of this host that no longer holds the flock
// (killed) is stale and taken over, with a note to logf; one left by another
// host is refused, since the flock of another host may not be visible here
// (some network filesystems).
func LockRepository(repo, command string, logf func(string, ...any)) (*RepoLock, error) {
	path := filepath.Join(repo, RepoLockName)
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
	return &RepoLock{l: l}, nil
}

// Unlock removes the lock file, then releases the flock.
func (l *RepoLock) Unlock() {
	if l != nil {
		l.l.Release()
	}
}

// lockRepositories locks every repository, in a fixed order; on failure it
// releases those it took.
func lockRepositories(repos []string, command string, logf func(string, ...any)) ([]*RepoLock, error) {
	var locks []*RepoLock
	for _, repo := range repos {
		l, err := LockRepository(repo, command, logf)
		if err != nil {
			unlockAll(locks)
			return nil, err
		}
		locks = append(locks, l)
	}
	return locks, nil
}

func unlockAll(locks []*RepoLock) {
	for _, l := range locks {
		l.Unlock()
	}
}
