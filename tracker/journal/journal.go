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
}

// Journal is an open journal file. Not safe for concurrent use: the
// Service calls it under its lock.
type Journal struct {
	path string
	f    *os.File
	opts Options
	size int64
	buf  []byte
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
func Open(path string, opts Options, replay func(rec []byte) error) (*Journal, *Damage, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{path: path, f: f, opts: opts}
	dmg, err := j.load(replay)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return j, dmg, nil
}

func (j *Journal) load(replay func([]byte) error) (*Damage, error) {
	info, err := j.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", j.path, err)
	}
	total := info.Size()
	if total == 0 {
		if err := j.writeHeader(j.f); err != nil {
			return nil, err
		}
		j.size = int64(headerSize)
		return nil, nil
	}
	r := bufio.NewReaderSize(j.f, 1<<16)
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || hdr != magic {
		// Not a journal of ours (or torn inside the header): refuse rather
		// than overwrite what may be someone's file.
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
	if dmg != nil {
		dmg.Cut = total - dmg.Offset
		if err := j.f.Truncate(dmg.Offset); err != nil {
			return nil, fmt.Errorf("journal %s: cutting the damaged tail: %w", j.path, err)
		}
		if err := j.f.Sync(); err != nil {
			return nil, fmt.Errorf("journal %s: %w", j.path, err)
		}
	}
	if _, err := j.f.Seek(off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("journal %s: %w", j.path, err)
	}
	j.size = off
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
// or the new one, whole.
func (j *Journal) Rotate(first []byte) error {
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("journal: rotate: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := j.writeHeader(f); err != nil {
		return err
	}
	j.buf = frame(j.buf[:0], first)
	if _, err := f.Write(j.buf); err != nil {
		return fmt.Errorf("journal: rotate: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("journal: rotate: %w", err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fmt.Errorf("journal: rotate: %w", err)
	}
	syncDir(filepath.Dir(j.path))
	ok = true
	old := j.f
	j.f = f
	j.size = int64(headerSize + len(j.buf))
	return old.Close()
}

// Sync flushes the file to disk.
func (j *Journal) Sync() error {
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: fsync: %w", j.path, err)
	}
	return nil
}

// Close syncs and closes the file.
func (j *Journal) Close() error {
	serr := j.f.Sync()
	cerr := j.f.Close()
	if serr != nil {
		return fmt.Errorf("journal %s: fsync: %w", j.path, serr)
	}
	return cerr
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
