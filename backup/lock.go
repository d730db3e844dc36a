package backup

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// ErrInUse means a process holds the storage's lock file: a ZEO server or
// another ZODB program has the Data.fs open read-write.
var ErrInUse = errors.New("in use")

// Lock is a held Data.fs.lock.
type Lock struct{ f *os.File }

// LockDataFS takes ZODB's lock on a Data.fs (zc.lockfile: flock LOCK_EX|
// LOCK_NB on <path>.lock) so that no ZODB opens the file read-write while
// tidstorage changes it. It fails with ErrInUse, naming the holder's pid,
// when the lock is held, and refuses while a pack is in progress
// (<path>.pack exists). The lock file is created if missing and left in
// place, as ZODB does.
func LockDataFS(path string) (*Lock, error) {
	if _, err := os.Stat(path + ".pack"); err == nil {
		return nil, fmt.Errorf("%s: a pack seems to be in progress (%s.pack exists): %w", path, path, ErrInUse)
	}
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path + ".lock"); rerr == nil {
			if pid := strings.TrimSpace(string(b)); pid != "" {
				holder = " by pid " + pid
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %s.lock is held%s (is a ZEO server or ZODB program using it? stop it first): %w", path, path, holder, ErrInUse)
		}
		return nil, fmt.Errorf("lock %s.lock: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor releases the flock
	l.f = nil
	return err
}
