// Package journal is the tracker's write-ahead log: an append-only file of
// records, each framed with its length and a CRC-32C, that the Service
// writes before it applies an input and replays at start (etcd raft's WAL
// is the model; docs/design.md, "Ground truth" and docs/admin.md, "Crash
// recovery").
//
// Durability: Append is one write(2) of the whole frame, so a record
// survives a crash of the process (SIGKILL, OOM) as soon as Append returns:
// it is in the page cache. Sync (fsync) is called on rotation and on close;
// a crash of the host may lose the records since the last Sync, which the
// storages' history then reports as unaccounted commits (held, never
// silently published). Set SyncEveryAppend for the stronger, slower policy.
//
// A torn or corrupt tail (a crash inside a write, a damaged disk block) is
// cut at the last good record and reported, never fatal.
package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/tidstorage/tidstorage/internal/atomicfile"
	"github.com/tidstorage/tidstorage/internal/rawconn"
)

// magic starts every journal file; the byte after it is the format version.
var magic = [8]byte{'T', 'I', 'D', 'S', 'J', 'R', 'N', '1'}

const (
	headerSize = len(magic)
	frameSize  = 8 // uint32 length + uint32 CRC-32C, little endian
	// MaxRecord bounds one record: a length beyond it is corruption.
	MaxRecord = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options tune a Journal.
type Options struct {
	// SyncEveryAppend makes every Append fsync (survives a host crash; costs
	// a disk flush per record).
	SyncEveryAppend bool
	// Degraded: a journal that cannot be written (a full or read-only
	// disk) is still opened and replayed; WriteErr says why it cannot be
	// written, appends fail, and the next Rotate that succeeds makes it
	// writable again. It also keeps a sentinel file (path + ".broken")
	// while appending has stopped (MarkBroken), which the next Open
	// reports as Damage: the records after the end were never written.
	// Without it such failures fail Open.
	Degraded bool
	// Reserve, when positive, keeps a file of that many bytes beside the
	// journal (path + ".reserve"), removed when a rotation finds the disk
	// full, so that the rotation that frees the old journal's space does
	// not need free space itself; it is made again after a rotation.
	Reserve int64
}

// Journal is an open journal file. Not safe for concurrent use: the
// Service calls it under its lock.
type Journal struct {
	path string
	f    *os.File // nil while it cannot be written (Options.Degraded)
	opts Options
	size int64
	buf  []byte
	// werr: why the journal cannot be written (Options.Degraded).
	werr error
	// reserveErr: why the reserve file is missing ("" when it is there or
	// not wanted).
	reserveErr error
}

// ErrCut, returned (wrapped) by Open's replay function, cuts the journal at
// the record it was given: that record and everything after it are dropped
// as damage instead of failing Open.
var ErrCut = errors.New("journal: cut here")

// Damage describes a tail cut at open.
type Damage struct {
	Offset int64  // where the good records end (the file was cut there)
	Cut    int64  // bytes cut
	Reason string // what was wrong at Offset
}

// Open opens (creating if needed) the journal at path, calls replay for
// each good record in order, cuts a torn or corrupt tail (returned as
// Damage, nil if none) and leaves the file ready for Append. An error from
// replay stops Open and is returned.
//
// With Options.Degraded, a journal that cannot be opened for writing, or
// whose header or damaged tail cannot be written, is read (when it exists)
// and returned anyway, with WriteErr set.
func Open(path string, opts Options, replay func(rec []byte) error) (*Journal, *Damage, error) {
	j := &Journal{path: path, opts: opts}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if !opts.Degraded {
			return nil, nil, fmt.Errorf("journal: %w", err)
		}
		j.werr = fmt.Errorf("journal %s: %w", path, err)
		f, err = os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			return j, nil, nil // nothing to replay; a rotation creates it
		}
		if err != nil {
			return nil, nil, fmt.Errorf("journal: %w", err)
		}
	}
	dmg, err := j.load(f, replay)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if j.werr != nil {
		f.Close()
	} else {
		j.f = f
		j.makeReserve()
	}
	if opts.Degraded {
		if _, err := os.Stat(j.brokenPath()); err == nil && dmg == nil {
			dmg = &Damage{Offset: j.size, Reason: "appending had stopped before the previous run ended (" + j.brokenPath() +
				" was left): what it observed after this offset was never written"}
		}
	}
	return j, dmg, nil
}

// WriteErr says why the journal cannot be written (nil when it can).
func (j *Journal) WriteErr() error { return j.werr }

// ReserveErr says why the reserve file (Options.Reserve) is missing.
func (j *Journal) ReserveErr() error { return j.reserveErr }

func (j *Journal) load(f *os.File, replay func([]byte) error) (*Damage, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", j.path, err)
	}
	total := info.Size()
	r := bufio.NewReaderSize(f, 1<<16)
	var hdr [headerSize]byte
	n, rerr := io.ReadFull(r, hdr[:])
	if total == 0 || (n < headerSize && string(hdr[:n]) == string(magic[:n])) {
		// New, or torn inside its header (a full disk at creation):
		// nothing was ever appended.
		if j.werr == nil {
			err := f.Truncate(0)
			if err == nil {
				_, err = f.Seek(0, io.SeekStart)
			}
			if err == nil {
				err = j.writeHeader(f)
			}
			if err != nil {
				if !j.opts.Degraded {
					return nil, err
				}
				j.werr = err
			}
		}
		j.size = int64(headerSize)
		return nil, nil
	}
	if rerr != nil || hdr != magic {
		// Not a journal of ours: refuse rather than overwrite what may be
		// someone's file.
		return nil, fmt.Errorf("journal %s: not a tidstorage journal (bad header); move it aside to start a new one", j.path)
	}
	off := int64(headerSize)
	var dmg *Damage
	var frame [frameSize]byte
	for off < total {
		if _, err := io.ReadFull(r, frame[:]); err != nil {
			dmg = &Damage{Offset: off, Reason: "torn record header"}
			break
		}
		n := binary.LittleEndian.Uint32(frame[0:4])
		sum := binary.LittleEndian.Uint32(frame[4:8])
		if n > MaxRecord || int64(n) > total-off-frameSize {
			reason := fmt.Sprintf("record length %d runs past the end of the file", n)
			if n > MaxRecord {
				reason = fmt.Sprintf("record length %d is beyond the limit", n)
			}
			dmg = &Damage{Offset: off, Reason: reason}
			break
		}
		if cap(j.buf) < int(n) {
			j.buf = make([]byte, n)
		}
		rec := j.buf[:n]
		if _, err := io.ReadFull(r, rec); err != nil {
			dmg = &Damage{Offset: off, Reason: "torn record"}
			break
		}
		if crc32.Checksum(rec, castagnoli) != sum {
			dmg = &Damage{Offset: off, Reason: "checksum mismatch"}
			break
		}
		if err := replay(rec); err != nil {
			if errors.Is(err, ErrCut) {
				dmg = &Damage{Offset: off, Reason: err.Error()}
				break
			}
			return nil, fmt.Errorf("journal %s: record at offset %d: %w", j.path, off, err)
		}
		off += frameSize + int64(n)
	}
	j.size = off
	if dmg != nil {
		dmg.Cut = total - dmg.Offset
		if j.werr == nil {
			err := f.Truncate(dmg.Offset)
			if err == nil {
				err = f.Sync()
			}
			if err != nil {
				err = fmt.Errorf("journal %s: cutting the damaged tail: %w", j.path, err)
				if !j.opts.Degraded {
					return nil, err
				}
				j.werr = err
			}
		}
	}
	if j.werr == nil {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return nil, fmt.Errorf("journal %s: %w", j.path, err)
		}
	}
	return dmg, nil
}

func (j *Journal) writeHeader(f *os.File) error {
	if _, err := f.Write(magic[:]); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

// frame appends rec's frame and bytes to dst.
func frame(dst, rec []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(rec)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(rec, castagnoli))
	return append(dst, rec...)
}

// ErrTooLarge is returned by Append for a record beyond MaxRecord.
var ErrTooLarge = errors.New("journal: record too large")

// Append writes one record with a single write call.
func (j *Journal) Append(rec []byte) error { return j.AppendBatch(rec) }

// AppendBatch writes records with a single write call: a crash keeps a
// prefix of them at worst (the torn one is cut at the next Open).
func (j *Journal) AppendBatch(recs ...[]byte) error {
	if j.f == nil {
		return j.werr
	}
	j.buf = j.buf[:0]
	for _, rec := range recs {
		if len(rec) > MaxRecord {
			return ErrTooLarge
		}
		j.buf = frame(j.buf, rec)
	}
	n, err := rawconn.WriteFile(j.f, j.buf) // no sysmon wake-up per append (package rawconn)
	j.size += int64(n)
	if err != nil {
		// A partial frame would be cut at the next open; cut it now so
		// that later appends stay readable.
		if terr := j.f.Truncate(j.size - int64(n)); terr == nil {
			j.size -= int64(n)
			_, _ = j.f.Seek(j.size, io.SeekStart)
		}
		return fmt.Errorf("journal %s: append: %w", j.path, err)
	}
	if j.opts.SyncEveryAppend {
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("journal %s: fsync: %w", j.path, err)
		}
	}
	return nil
}

// Size is the file's length in bytes.
func (j *Journal) Size() int64 { return j.size }

// Rotate replaces the journal by a new one holding only first (a snapshot
// record): written to a temporary file, fsynced, renamed over the journal,
// and the directory fsynced, so that a crash leaves either the old journal
// or the new one, whole. When the disk is full, the reserve file
// (Options.Reserve) is given up for it and made again afterwards. A
// journal that could not be written (WriteErr) is writable again after a
// Rotate that succeeds.
func (j *Journal) Rotate(first []byte) error {
	j.buf = frame(j.buf[:0], first)
	f, err := j.writeTmp()
	if err != nil && isFull(err) && j.opts.Reserve > 0 {
		if rerr := os.Remove(j.reservePath()); rerr == nil {
			j.reserveErr = errors.New("given up for a rotation on a full disk")
			f, err = j.writeTmp()
		}
	}
	if err != nil {
		return err
	}
	old := j.f
	j.f, j.werr = f, nil
	j.size = int64(headerSize + len(j.buf))
	if j.opts.Degraded {
		_ = os.Remove(j.brokenPath())
	}
	j.makeReserve()
	if old != nil {
		_ = old.Close() // replaced: its fate no longer matters
	}
	return nil
}

func (j *Journal) writeTmp() (*os.File, error) {
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: rotate: %w", err)
	}
	fail := func(err error) (*os.File, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("journal: rotate: %w", err)
	}
	if _, err := f.Write(magic[:]); err != nil {
		return fail(err)
	}
	if _, err := f.Write(j.buf); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fail(err)
	}
	_ = atomicfile.SyncDir(filepath.Dir(j.path))
	return f, nil
}

// MarkBroken leaves the sentinel that tells the next Open that appending
// stopped (Options.Degraded): an empty file, which a full disk still takes.
func (j *Journal) MarkBroken() {
	if !j.opts.Degraded {
		return
	}
	if f, err := os.OpenFile(j.brokenPath(), os.O_WRONLY|os.O_CREATE, 0o600); err == nil {
		_ = f.Sync()
		f.Close()
		_ = atomicfile.SyncDir(filepath.Dir(j.path))
	}
}

func (j *Journal) brokenPath() string  { return j.path + ".broken" }
func (j *Journal) reservePath() string { return j.path + ".reserve" }

// makeReserve makes the reserve file when it is missing (Options.Reserve).
func (j *Journal) makeReserve() {
	if j.opts.Reserve <= 0 {
		return
	}
	p := j.reservePath()
	if st, err := os.Stat(p); err == nil && st.Size() >= j.opts.Reserve {
		j.reserveErr = nil
		return
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		zero := make([]byte, 64<<10)
		for left := j.opts.Reserve; left > 0 && err == nil; left -= int64(len(zero)) {
			_, err = f.Write(zero[:min(left, int64(len(zero)))])
		}
		if err == nil {
			err = f.Sync()
		}
		f.Close()
	}
	if err != nil {
		os.Remove(p)
		j.reserveErr = fmt.Errorf("journal reserve %s: %w", p, err)
		return
	}
	j.reserveErr = nil
}

// isFull says whether err is a full disk or quota.
func isFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Sync flushes the file to disk.
func (j *Journal) Sync() error {
	if j.f == nil {
		return j.werr
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: fsync: %w", j.path, err)
	}
	return nil
}

// Close syncs and closes the file.
func (j *Journal) Close() error {
	if j.f == nil {
		return nil
	}
	serr := j.f.Sync()
	cerr := j.f.Close()
	if serr != nil {
		return fmt.Errorf("journal %s: fsync: %w", j.path, serr)
	}
	return cerr
}
