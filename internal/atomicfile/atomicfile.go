// Package atomicfile writes files that a crash leaves either as they were
// or wholly new, never half written: the bytes go to a temporary file in the
// same directory, which is synced, then renamed over the destination, and
// the directory is synced so that the rename itself survives a crash.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Write creates or replaces path with what fill writes; the file gets mode
// perm. On any error the temporary file is removed and path is unchanged.
func Write(path string, perm os.FileMode, fill func(io.Writer) error) error {
	return write(path, perm, fill, os.Rename)
}

// Create is Write for a file that must not exist yet, atomically: the
// temporary file is hard-linked to path, which fails (an error wrapping
// fs.ErrExist) if path exists, whoever created it meanwhile.
func Create(path string, perm os.FileMode, fill func(io.Writer) error) error {
	return write(path, perm, fill, func(tmp, path string) error {
		err := os.Link(tmp, path)
		os.Remove(tmp)
		return err
	})
}

// write fills a synced temporary file beside path, then hands it to put.
func write(path string, perm os.FileMode, fill func(io.Writer) error, put func(tmp, path string) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, perm)
	}
	if err == nil {
		err = put(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	_ = SyncDir(dir) // the data is synced; see SyncDir
	return nil
}

// WriteNew is Write for a file that must not exist yet: it refuses (an
// error wrapping fs.ErrExist) when path is there. The check is not atomic
// with the rename; callers that race with other writers of the directory
// hold a lock.
func WriteNew(path string, perm os.FileMode, fill func(io.Writer) error) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s already exists: refusing to overwrite it: %w", path, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return Write(path, perm, fill)
}

// WriteFile is Write with the bytes given.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// SyncDir makes a create, rename or remove in dir durable. Most callers
// ignore its error: some filesystems cannot sync a directory, and the data
// itself is already synced; those that must know (a status file's new
// epoch) check it.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
