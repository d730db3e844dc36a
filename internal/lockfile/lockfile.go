// Package lockfile is the one-owner lock of tidstorage's files: an flock on
// a small file that says who holds it (pid, host, start time, command). The
// kernel releases the flock however the holder ends, so a lock file left by
// a killed process no longer locks anything and is taken over; the file's
// content only names the holder in messages, and tells a file left by
// another machine (whose flock may be invisible through some network
// filesystems) from one of this machine.
//
// The backup repositories (backup/repolock.go) and `tidstorage serve`'s own
// files (status file, journal, send buffer, admin token: cmd/daemon) use it.
package lockfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// ErrHeld means another process (or another open file of this one) holds
// the lock, or a lock file left by another machine is in the way.
var ErrHeld = errors.New("locked")

// Holder is what a lock file says about the process that holds it.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Boot    string    `json:"boot,omitempty"` // the kernel's boot id (Linux), "" when unknown
	Time    time.Time `json:"time"`
	Command string    `json:"command"`
}

func (h Holder) String() string {
	if h.PID == 0 {
		return "a process that did not say who it is"
	}
	return fmt.Sprintf("%s by pid %d on %s since %s", h.Command, h.PID, h.Host, h.Time.Format(time.RFC3339))
}

// HeldError is the refusal: Path is held by Holder. Foreign is set when the
// flock was free but the file was left by a process of another machine,
// which this one cannot tell alive or dead.
type HeldError struct {
	Path    string
	Holder  Holder
	Foreign bool
}

func (e *HeldError) Error() string {
	if e.Foreign {
		return fmt.Sprintf("%s was left by %s, another machine: if no tidstorage runs there on these files any more, remove it", e.Path, e.Holder)
	}
	return fmt.Sprintf("%s is held (%s)", e.Path, e.Holder)
}

func (e *HeldError) Unwrap() error { return ErrHeld }

// Lock is a held lock.
type Lock struct {
	path string
	f    *os.File
	// Unwritten, when not nil, says why this process could not write itself
	// into the lock file (a full disk, a read-only file system): the flock
	// is held all the same, but a refused process may be told a stale
	// holder.
	Unwritten error
}

// Acquire takes the lock of path (the lock file itself, created if missing)
// without waiting, and writes this process's Holder into it. When another
// process holds it, the error is a *HeldError naming that process. A file
// whose flock is free but which names a holder is stale (the holder was
// killed): it is taken over, and takeover (if not nil) is told who left it —
// unless it was left by another machine (neither the same host name nor the
// same running kernel), which is refused, since that machine's flock may not
// be visible here.
func Acquire(path, command string, takeover func(Holder)) (*Lock, error) {
	host, _ := os.Hostname()
	boot := bootID()
	// A holder that unlocks removes the file: if we opened it just before,
	// our flock is on a file nobody else sees; try again on the new one.
	for range 5 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if errors.Is(err, syscall.EROFS) {
			// A read-only file system: an existing lock file still takes an
			// flock through a read-only descriptor.
			if ro, rerr := os.Open(path); rerr == nil {
				f, err = ro, nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			holder := readHolder(f)
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, &HeldError{Path: path, Holder: holder}
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !sameFile(f, path) {
			f.Close()
			continue
		}
		if old := readHolder(f); old.PID != 0 {
			if old.Host != host && (old.Boot == "" || old.Boot != boot) {
				f.Close()
				return nil, &HeldError{Path: path, Holder: old, Foreign: true}
			}
			if takeover != nil {
				takeover(old)
			}
		}
		// The flock is the lock; the content only names the holder, so a
		// file that cannot be written (a full disk) does not undo it.
		b, _ := json.Marshal(Holder{PID: os.Getpid(), Host: host, Boot: boot, Time: time.Now().UTC(), Command: command})
		err = f.Truncate(0)
		if err == nil {
			_, err = f.WriteAt(append(b, '\n'), 0)
		}
		if err == nil {
			err = f.Sync()
		}
		l := &Lock{path: path, f: f}
		if err != nil {
			l.Unwritten = fmt.Errorf("lock %s: naming this process in it: %w", path, err)
		}
		return l, nil
	}
	return nil, fmt.Errorf("lock %s: the lock file keeps changing: %w", path, ErrHeld)
}

// Path is the lock file's path.
func (l *Lock) Path() string { return l.path }

// Release removes the lock file, then releases the flock (in this order, so
// that nobody can take a lock on a file about to disappear without
// noticing). Releasing twice, or a nil Lock, is harmless.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	os.Remove(l.path)
	l.f.Close()
	l.f = nil
}

// AcquireAll takes every lock, in the order given; on failure it releases
// those it took and returns the first error.
func AcquireAll(paths []string, command string, takeover func(path string, old Holder)) ([]*Lock, error) {
	var locks []*Lock
	for _, p := range paths {
		var note func(Holder)
		if takeover != nil {
			note = func(old Holder) { takeover(p, old) }
		}
		l, err := Acquire(p, command, note)
		if err != nil {
			ReleaseAll(locks)
			return nil, err
		}
		locks = append(locks, l)
	}
	return locks, nil
}

// ReleaseAll releases every lock, in reverse order.
func ReleaseAll(locks []*Lock) {
	for i := len(locks) - 1; i >= 0; i-- {
		locks[i].Release()
	}
}

func readHolder(f *os.File) Holder {
	var h Holder
	b := make([]byte, 4096)
	n, _ := f.ReadAt(b, 0)
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(b[:n]))), &h); err != nil {
		return Holder{}
	}
	return h
}

func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// bootID identifies the running kernel: two processes with the same boot id
// see each other's flocks (containers of one host included), whatever their
// host names.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
