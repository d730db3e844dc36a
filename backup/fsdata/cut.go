package fsdata

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// Cut is where to cut a file to keep every committed transaction with a tid
// up to a target, and what the cut removes.
type Cut struct {
	File   string
	Magic  string
	Size   int64   // file size scanned
	Target txn.TID // the tid asked for

	// Offset is the length to keep: the end of the last committed
	// transaction with tid <= Target (4 when there is none).
	Offset  int64
	KeptTID txn.TID // tid of that transaction, 0 if none
	Kept    int     // committed transactions kept

	// Committed transactions after the cut.
	Removed                   int
	FirstRemoved, LastRemoved txn.TID

	// Committed is the end of all committed data, LastTID the last committed
	// tid in the file (0 if none), Tail what follows the committed data.
	Committed int64
	LastTID   txn.TID
	Tail      Tail

	// LastTxn is the header of the last kept transaction (zero if none):
	// backups record it to check the file is still append-only next time.
	LastTxn TxnHeader
}

// Exact reports whether the file holds a transaction with exactly the target
// tid (the cut keeps it).
func (c *Cut) Exact() bool { return c.KeptTID != 0 && c.KeptTID == c.Target }

// Behind reports whether the file's committed data ends before the target:
// transactions up to the target are missing from it.
func (c *Cut) Behind() bool { return c.LastTID < c.Target }

// RemovedBytes is how many bytes the cut drops (transactions and tail).
func (c *Cut) RemovedBytes() int64 { return c.Size - c.Offset }

// CutOffset scans the file at path and returns where to cut it right after
// the last committed transaction whose tid is <= target.
func CutOffset(path string, target txn.TID) (*Cut, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fsdata: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("fsdata: %w", err)
	}
	return CutReader(f, st.Size(), target, ScanOptions{Name: path})
}

// CutReader is CutOffset on an open file of the given size. The whole
// file is scanned (from opts.Start if set), so that what the cut removes is
// known and every record is checked.
func CutReader(ra io.ReaderAt, size int64, target txn.TID, opts ScanOptions) (*Cut, error) {
	s, err := NewScanner(ra, size, opts)
	if err != nil {
		return nil, err
	}
	c := &Cut{File: opts.Name, Magic: s.Magic(), Size: size, Target: target, Offset: s.Pos(), KeptTID: opts.PrevTID}
	if opts.Start != 0 && opts.PrevTID > target {
		return nil, fmt.Errorf("fsdata: %s: the scan starts at %d, after tid %s, beyond the target %s", s.displayName(), opts.Start, opts.PrevTID.Hex(), target.Hex())
	}
	for {
		h, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.TID <= target {
			c.Offset, c.KeptTID, c.LastTxn = h.End(), h.TID, h
			c.Kept++
			if opts.OnKept != nil {
				opts.OnKept(c.Offset)
			}
			continue
		}
		if c.Removed == 0 {
			c.FirstRemoved = h.TID
		}
		c.LastRemoved = h.TID
		c.Removed++
	}
	c.Committed, c.LastTID, c.Tail = s.Pos(), s.LastTID(), s.Tail()
	return c, nil
}

// Summary describes the cut in one line.
func (c *Cut) Summary() string {
	kept := "no transaction (empty storage)"
	if c.KeptTID != 0 {
		kept = "up to tid " + c.KeptTID.Hex()
		if !c.Exact() {
			kept += fmt.Sprintf(" (target %s not in the file: last one before it)", c.Target.Hex())
		}
	}
	s := fmt.Sprintf("keep %d bytes, %s", c.Offset, kept)
	if c.Removed > 0 {
		s += fmt.Sprintf("; remove %d committed transaction(s) %s..%s", c.Removed, c.FirstRemoved.Hex(), c.LastRemoved.Hex())
	}
	if c.Tail.Kind != TailNone {
		s += fmt.Sprintf("; remove a %d-byte tail (%s: %s)", c.Tail.Size, c.Tail.Kind, c.Tail.Reason)
	}
	return s
}
