package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// RepoLockName is the lock file a writer (backup, forget) holds in a
// repository. repozo ignores it.
const RepoLockName = "tidstorage.lock"

// ErrLocked means another process holds a repository's lock.
var ErrLocked = errors.New("repository locked")

// lockInfo is what the lock file says about its holder, for messages and
// for telling a stale lock from a live one.
type lockInfo struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Time    time.Time `json:"time"`
	Command string    `json:"command"`
}

func (i lockInfo) String() string {
	return fmt.Sprintf("%s by pid %d on %s since %s", i.Command, i.PID, i.Host, i.Time.Format(time.RFC3339))
}

// RepoLock is a held repository lock.
type RepoLock struct {
	path string
	f    *os.File
}

// LockRepository takes repo's lock for command: an flock on
// repo/tidstorage.lock, which the kernel releases whatever way the process
// ends, holding the holder's pid, host and start time. A lock file left by
// a process of this host that no longer holds the flock (killed) is stale
// and taken over, with a note to logf; one left by another host is refused,
// since the flock of another host may not be visible here (some network
// filesystems).
func LockRepository(repo, command string, logf func(string, ...any)) (*RepoLock, error) {
	host, _ := os.Hostname()
	path := filepath.Join(repo, RepoLockName)
	// A holder that unlocks removes the file: if we opened it just before,
	// our flock is on a file nobody else sees; try again on the new one.
	for range 5 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", repo, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			info := readLockInfo(f)
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("%s is held (%s): another backup or forget is writing this repository: %w", path, info, ErrLocked)
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !sameFile(f, path) {
			f.Close()
			continue
		}
		if old := readLockInfo(f); old.PID != 0 {
			if old.Host != host {
				f.Close()
				return nil, fmt.Errorf("%s was left by %s: if no tidstorage runs there on this repository, remove the file: %w", path, old, ErrLocked)
			}
			if logf != nil {
				logf("%s: taking over a stale lock (%s): that process is gone", repo, old)
			}
		}
		b, _ := json.Marshal(lockInfo{PID: os.Getpid(), Host: host, Time: time.Now().UTC(), Command: command})
		err = f.Truncate(0)
		if err == nil {
			_, err = f.WriteAt(append(b, '\n'), 0)
		}
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		return &RepoLock{path: path, f: f}, nil
	}
	return nil, fmt.Errorf("lock %s: the lock file keeps changing: %w", path, ErrLocked)
}

// Unlock removes the lock file, then releases the flock (in this order, so
// that nobody can take a lock on a file about to disappear without noticing).
func (l *RepoLock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	os.Remove(l.path)
	l.f.Close()
	l.f = nil
}

func readLockInfo(f *os.File) lockInfo {
	var info lockInfo
	b := make([]byte, 4096)
	n, _ := f.ReadAt(b, 0)
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(b[:n]))), &info); err != nil {
		return lockInfo{}
	}
	return info
}

func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
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
