package daemon

import (
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/internal/lockfile"
)

// LockSuffix names the lock of each file a role owns: <file>.lock.
const LockSuffix = ".lock"

// StateFiles lists the files the configuration's role owns, each locked by
// one process at a time (docs/admin.md, "One process per state"): the
// status file, the journal, a sidecar's send buffer, the admin token and
// the pid file. The running marker and the epoch and torn files live beside
// the status file and go with its lock.
func StateFiles(cfg *config.Config) []string {
	var files []string
	add := func(p string) {
		if p != "" && !slices.Contains(files, p) {
			files = append(files, p)
		}
	}
	add(cfg.StatusFile)
	add(cfg.JournalFile)
	if t := cfg.Tracker; t != nil {
		add(t.BufferFile)
	}
	if cfg.Admin.Enabled {
		add(cfg.Admin.TokenFile)
	}
	add(cfg.PIDFile)
	return files
}

// StateLock holds the locks of a role's files for the life of the process.
type StateLock struct {
	locks     []*lockfile.Lock
	takeovers []string // stale locks taken over, locks not taken (a full or read-only disk): logged once the log is open
}

// ErrStateLocked means another process runs on the same files.
var ErrStateLocked = errors.New("another tidstorage serve runs on these files")

// LockState locks every file of StateFiles(cfg), before anything of them is
// read or written: a second `tidstorage serve` on the same files (a systemd
// unit and a hand-started copy, a second host on the same network
// directory) is refused at once, naming the holder, and changes nothing. A
// lock left by a killed process is taken over (and logged at start).
func LockState(cfg *config.Config) (*StateLock, error) {
	var paths []string
	for _, f := range StateFiles(cfg) {
		paths = append(paths, f+LockSuffix)
	}
	command := fmt.Sprintf("tidstorage serve (%s)", cfg.Role())
	if cfg.File != "" {
		command = fmt.Sprintf("tidstorage serve -c %s (%s)", cfg.File, cfg.Role())
	}
	sl := &StateLock{}
	for _, path := range paths {
		l, err := lockfile.Acquire(path, command, func(old lockfile.Holder) {
			sl.takeovers = append(sl.takeovers, fmt.Sprintf("%s: taking over the lock of a process that is gone (%s)", path, old))
		})
		var held *lockfile.HeldError
		switch {
		case errors.As(err, &held) && held.Foreign:
			sl.Release()
			return nil, fmt.Errorf("%w: %v; nothing was read or changed", ErrStateLocked, held)
		case errors.As(err, &held):
			sl.Release()
			return nil, fmt.Errorf("%w: %s is held by %s; stop that one first, or give this one other files (nothing was read or changed)",
				ErrStateLocked, held.Path, held.Holder)
		case errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
			errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EACCES):
			// A read-only or full state directory must not stop the relay
			// (docs/admin.md, "One process per state"): serve unlocked, and
			// say so.
			sl.takeovers = append(sl.takeovers, fmt.Sprintf("%v: serving without this lock: a second serve on these files would not be refused", err))
			continue
		case err != nil:
			sl.Release()
			return nil, err
		}
		if l.Unwritten != nil {
			sl.takeovers = append(sl.takeovers, fmt.Sprintf("%v: the lock is held, but a refused process may name a former holder", l.Unwritten))
		}
		sl.locks = append(sl.locks, l)
	}
	return sl, nil
}

// Release drops every lock (and removes the lock files). Harmless twice.
func (sl *StateLock) Release() {
	if sl != nil {
		lockfile.ReleaseAll(sl.locks)
		sl.locks = nil
	}
}

// Paths lists the lock files held.
func (sl *StateLock) Paths() []string {
	var out []string
	for _, l := range sl.locks {
		out = append(out, l.Path())
	}
	return out
}
