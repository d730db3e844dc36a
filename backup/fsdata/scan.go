package fsdata

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// TailKind says what follows the committed data of a file.
type TailKind int

const (
	// TailNone: the file ends right after its last committed transaction.
	TailNone TailKind = iota
	// TailInProgress: a transaction with status 'c' (voted, not finished),
	// possibly followed by more bytes. ZODB treats it as the end of data.
	TailInProgress
	// TailTorn: a record cut short by the end of the file (a crash during a
	// write), or a zero-filled tail left by a crash.
	TailTorn
)

func (k TailKind) String() string {
	switch k {
	case TailNone:
		return "none"
	case TailInProgress:
		return "in-progress transaction"
	case TailTorn:
		return "torn record"
	}
	return fmt.Sprintf("TailKind(%d)", int(k))
}

// Tail describes the bytes after the committed data.
type Tail struct {
	Kind   TailKind
	Offset int64   // where the committed data ends
	Size   int64   // bytes from Offset to the end of the file
	TID    txn.TID // the in-progress transaction's tid (TailInProgress)
	Reason string  // human-readable detail
}

// ScanOptions tune a Scanner.
type ScanOptions struct {
	// Name is the file name used in errors.
	Name string
	// Start resumes a scan at a known transaction boundary (the End of a
	// committed transaction, see Boundary) instead of offset 4; PrevTID is
	// the tid of the transaction ending there.
	Start   int64
	PrevTID txn.TID
	// SkipData skips the data records without checking them (the trailer
	// and lengths are still checked). Faster on files with large pickles
	// only when the reader is slow to discard.
	SkipData bool
	// OnKept, if set, is called by CutReader with the end of each committed
	// transaction it keeps (TID <= the target), in file order: a consumer
	// may copy the bytes up to there while the scan goes on.
	OnKept func(end int64)
	// OnData, if set, is called for each data record of each committed
	// transaction, with up to the first 64 bytes of its pickle.
	OnData func(txn *TxnHeader, rec *DataHeader, pickleHead []byte) error
}

// Scanner walks the transactions of a FileStorage file forward, checking
// each. Next returns io.EOF at the end of the committed data; Tail then says
// what follows.
type Scanner struct {
	ra    io.ReaderAt
	size  int64
	name  string
	magic string
	opts  ScanOptions

	br   *bufio.Reader
	pos  int64 // offset of the next byte br returns
	next int64 // offset of the next transaction
	prev txn.TID
	done bool
	tail Tail

	hdr  [DataHeaderSize]byte
	head [64]byte
}

// NewScanner checks the magic and returns a scanner positioned at the first
// transaction (or at opts.Start). size is the file's size: bytes past it are
// never read, so a file growing during the scan is seen as of size.
func NewScanner(ra io.ReaderAt, size int64, opts ScanOptions) (*Scanner, error) {
	s := &Scanner{ra: ra, size: size, name: opts.Name, opts: opts}
	if size < HeaderSize {
		return nil, s.errorf(0, "file is %d bytes, shorter than the 4-byte magic", size)
	}
	var m [HeaderSize]byte
	if _, err := ra.ReadAt(m[:], 0); err != nil {
		return nil, fmt.Errorf("fsdata: %s: read magic: %w", s.displayName(), err)
	}
	switch string(m[:]) {
	case MagicFS30, MagicFS21:
		s.magic = string(m[:])
	default:
		return nil, s.errorf(0, "bad magic %q: not a FileStorage file (want %q or %q)", m[:], MagicFS30, MagicFS21)
	}
	s.next = HeaderSize
	if opts.Start != 0 {
		if opts.Start < HeaderSize || opts.Start > size {
			return nil, s.errorf(opts.Start, "start offset outside the file (size %d)", size)
		}
		s.next = opts.Start
		s.prev = opts.PrevTID
	}
	s.pos = s.next
	s.br = bufio.NewReaderSize(io.NewSectionReader(ra, s.next, size-s.next), int(min(1<<20, size-s.next+16)))
	return s, nil
}

// Magic returns the file's magic, FS30 or FS21.
func (s *Scanner) Magic() string { return s.magic }

// Size returns the file size the scanner works on.
func (s *Scanner) Size() int64 { return s.size }

// Pos returns the end of the committed data read so far: the End of the last
// transaction Next returned (or the start offset).
func (s *Scanner) Pos() int64 { return s.next }

// LastTID returns the tid of the last transaction Next returned (or
// opts.PrevTID, or 0).
func (s *Scanner) LastTID() txn.TID { return s.prev }

// Tail is valid once Next has returned io.EOF.
func (s *Scanner) Tail() Tail { return s.tail }

func (s *Scanner) displayName() string {
	if s.name == "" {
		return "Data.fs"
	}
	return s.name
}

func (s *Scanner) errorf(off int64, format string, args ...any) error {
	return &FormatError{File: s.name, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func (s *Scanner) readFull(b []byte) error {
	n, err := io.ReadFull(s.br, b)
	s.pos += int64(n)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			// Cannot happen for lengths checked against size, unless the
			// file shrank under us.
			return s.errorf(s.pos, "unexpected end of file (did it shrink during the scan?)")
		}
		return fmt.Errorf("fsdata: %s: read at %d: %w", s.displayName(), s.pos, err)
	}
	return nil
}

func (s *Scanner) skip(n int64) error {
	for n > 0 {
		chunk := n
		if chunk > 1<<30 {
			chunk = 1 << 30
		}
		d, err := s.br.Discard(int(chunk))
		s.pos += int64(d)
		n -= int64(d)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return s.errorf(s.pos, "unexpected end of file (did it shrink during the scan?)")
			}
			return fmt.Errorf("fsdata: %s: read at %d: %w", s.displayName(), s.pos, err)
		}
	}
	return nil
}

func (s *Scanner) end(kind TailKind, t txn.TID, reason string) (TxnHeader, error) {
	s.done = true
	s.tail = Tail{Kind: kind, Offset: s.next, Size: s.size - s.next, TID: t, Reason: reason}
	return TxnHeader{}, io.EOF
}

// Next reads and checks the next committed transaction. It returns io.EOF at
// the end of the committed data, and a *FormatError when a record breaks a
// rule.
func (s *Scanner) Next() (TxnHeader, error) {
	var h TxnHeader
	if s.done {
		return h, io.EOF
	}
	pos := s.next
	left := s.size - pos
	if left == 0 {
		return s.end(TailNone, 0, "")
	}
	if left < TxnHeaderSize {
		return s.end(TailTorn, 0, fmt.Sprintf("%d bytes left, too short for a transaction header", left))
	}
	if s.pos != pos {
		panic("fsdata: scanner out of step")
	}
	if err := s.readFull(s.hdr[:TxnHeaderSize]); err != nil {
		return h, err
	}
	h.decode(pos, s.hdr[:TxnHeaderSize])

	// What ZODB's read_index takes for the end of the data: a record running
	// past the end of the file, or a checkpoint.
	if h.Len > uint64(left) || int64(h.Len) > left-trailerSize {
		if zero, err := s.zeroTail(pos); err != nil {
			return h, err
		} else if zero {
			return s.end(TailTorn, 0, fmt.Sprintf("%d zero bytes", left))
		}
		// A length damaged in the middle of the file looks the same; but
		// then the file still ends with a complete transaction after this
		// one, which a torn last record cannot be followed by.
		if last, err := Boundary(s.ra, s.size, s.size, s.name); err == nil && last.Pos > pos && last.TID > h.TID && h.TID > s.prev {
			return h, s.errorf(pos, "transaction %s: length %d runs past the end of the file, yet the file ends with a complete transaction %s at %d: damaged length", h.TID.Hex(), h.Len, last.TID.Hex(), last.Pos)
		}
		return s.end(TailTorn, h.TID, fmt.Sprintf("transaction record of %d bytes runs past the end of the file (%d bytes left)", h.Len+trailerSize, left))
	}
	if h.Status == StatusCheckpoint {
		reason := "transaction voted but not finished (status 'c')"
		if extra := left - int64(h.Len) - trailerSize; extra > 0 {
			reason += fmt.Sprintf(", followed by %d more bytes", extra)
		}
		return s.end(TailInProgress, h.TID, reason)
	}

	// From here on a broken rule is corruption, except a zero-filled tail
	// (a crash on a filesystem that extended the file before writing it).
	bad := func(off int64, format string, args ...any) (TxnHeader, error) {
		if zero, err := s.zeroTail(pos); err != nil {
			return h, err
		} else if zero {
			return s.end(TailTorn, 0, fmt.Sprintf("%d zero bytes", left))
		}
		return h, s.errorf(off, format, args...)
	}
	switch h.Status {
	case StatusCommitted, StatusPacked, StatusUncertain:
	default:
		return bad(pos, "transaction %s: invalid status byte %s (want ' ', 'p', 'u' or 'c')", h.TID.Hex(), statusName(h.Status))
	}
	if h.TID <= s.prev {
		return bad(pos, "transaction %s: time-stamp reduction: tid not after the previous transaction's %s", h.TID.Hex(), s.prev.Hex())
	}
	if strs := uint64(h.UserLen) + uint64(h.DescLen) + uint64(h.ExtLen); h.Len < TxnHeaderSize+strs {
		return bad(pos, "transaction %s: length %d shorter than its header and strings (%d)", h.TID.Hex(), h.Len, TxnHeaderSize+strs)
	}

	if err := s.skip(h.DataPos() - s.pos); err != nil {
		return h, err
	}
	if err := s.records(&h); err != nil {
		return h, err
	}
	var tr [trailerSize]byte
	if err := s.readFull(tr[:]); err != nil {
		return h, err
	}
	if got := binary.BigEndian.Uint64(tr[:]); got != h.Len {
		return h, s.errorf(h.DataEnd(), "transaction %s at %d: trailer length %d differs from the header's %d", h.TID.Hex(), pos, got, h.Len)
	}
	s.next = h.End()
	s.prev = h.TID
	return h, nil
}

// records checks the data records of h, leaving the reader at h.DataEnd().
func (s *Scanner) records(h *TxnHeader) error {
	end := h.DataEnd()
	if s.opts.SkipData && s.opts.OnData == nil {
		return s.skip(end - s.pos)
	}
	var d DataHeader
	for s.pos < end {
		p := s.pos
		if end-p < DataHeaderSize {
			return s.errorf(p, "transaction %s at %d: %d bytes left before its end, too short for a data record header", h.TID.Hex(), h.Pos, end-p)
		}
		if err := s.readFull(s.hdr[:]); err != nil {
			return err
		}
		d.decode(p, s.hdr[:])
		d.Back = 0
		switch {
		case d.TID != h.TID:
			return s.errorf(p, "data record of oid %016x: tid %s differs from its transaction's %s", d.OID, d.TID.Hex(), h.TID.Hex())
		case d.TLoc != h.Pos:
			return s.errorf(p, "data record of oid %016x: transaction pointer %d, want %d", d.OID, d.TLoc, h.Pos)
		case d.VLen != 0:
			return s.errorf(p, "data record of oid %016x: version length %d (versions are not supported)", d.OID, d.VLen)
		case d.Prev < 0 || d.Prev >= p || (d.Prev != 0 && d.Prev < HeaderSize):
			return s.errorf(p, "data record of oid %016x: previous-revision pointer %d is not before the record", d.OID, d.Prev)
		case d.PLen > uint64(end-p-DataHeaderSize) || (d.PLen == 0 && end-p < DataHeaderSize+8):
			return s.errorf(p, "data record of oid %016x: length %d runs past its transaction's end %d", d.OID, d.PLen, end)
		}
		var head []byte
		if d.PLen == 0 {
			var b [8]byte
			if err := s.readFull(b[:]); err != nil {
				return err
			}
			d.Back = int64(binary.BigEndian.Uint64(b[:]))
			if d.Back < 0 || d.Back >= p || (d.Back != 0 && d.Back < HeaderSize) {
				return s.errorf(p, "data record of oid %016x: back-pointer %d is not before the record", d.OID, d.Back)
			}
		} else if s.opts.OnData != nil {
			n := min(int(d.PLen), len(s.head))
			if err := s.readFull(s.head[:n]); err != nil {
				return err
			}
			head = s.head[:n]
			if err := s.skip(int64(d.PLen) - int64(n)); err != nil {
				return err
			}
		} else if err := s.skip(int64(d.PLen)); err != nil {
			return err
		}
		if s.opts.OnData != nil && h.Status != StatusUncertain {
			if err := s.opts.OnData(h, &d, head); err != nil {
				return err
			}
		}
	}
	return nil
}

// zeroTail reports whether every byte from off to the end of the file is 0.
func (s *Scanner) zeroTail(off int64) (bool, error) {
	buf := make([]byte, min(64<<10, s.size-off))
	for off < s.size {
		n := min(int64(len(buf)), s.size-off)
		if _, err := s.ra.ReadAt(buf[:n], off); err != nil {
			return false, fmt.Errorf("fsdata: %s: read at %d: %w", s.displayName(), off, err)
		}
		for _, c := range buf[:n] {
			if c != 0 {
				return false, nil
			}
		}
		off += n
	}
	return true, nil
}

// Boundary checks that off is the end of a committed transaction (as a
// previous scan or backup recorded it) and returns that transaction's
// header, read backwards through its trailer. A scan can then resume at off
// with ScanOptions{Start: off, PrevTID: h.TID}. Offset 4 (an empty storage)
// is a boundary with a zero header.
func Boundary(ra io.ReaderAt, size int64, off int64, name string) (TxnHeader, error) {
	var h TxnHeader
	e := func(format string, args ...any) error {
		return &FormatError{File: name, Offset: off, Msg: fmt.Sprintf(format, args...)}
	}
	if off == HeaderSize {
		return h, nil
	}
	if off < HeaderSize+TxnHeaderSize+trailerSize || off > size {
		return h, e("not a transaction boundary: outside the file's transactions (size %d)", size)
	}
	var b [TxnHeaderSize]byte
	if _, err := ra.ReadAt(b[:trailerSize], off-trailerSize); err != nil {
		return h, fmt.Errorf("fsdata: %s: read at %d: %w", name, off-trailerSize, err)
	}
	tlen := binary.BigEndian.Uint64(b[:trailerSize])
	if tlen < TxnHeaderSize || tlen > uint64(off-trailerSize-HeaderSize) {
		return h, e("not a transaction boundary: the trailer before it holds length %d, impossible here", tlen)
	}
	start := off - trailerSize - int64(tlen)
	if _, err := ra.ReadAt(b[:], start); err != nil {
		return h, fmt.Errorf("fsdata: %s: read at %d: %w", name, start, err)
	}
	h.decode(start, b[:])
	if h.Len != tlen {
		return h, e("not a transaction boundary: the header at %d holds length %d, the trailer %d", start, h.Len, tlen)
	}
	switch h.Status {
	case StatusCommitted, StatusPacked, StatusUncertain:
	default:
		return h, e("not a committed transaction boundary: the transaction at %d has status %s", start, statusName(h.Status))
	}
	return h, nil
}
