package fsdata_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/backup/fsdata/fsdatatest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// Any bytes: the scan ends with io.EOF or a *FormatError, never a panic or
// a read outside the file; committed data ends on a transaction the scan
// returned; the cut lies within it.
func FuzzScan(f *testing.F) {
	b := fsdatatest.Build(fsdata.MagicFS30, fsdatatest.Sample()...)
	f.Add(b.Bytes(), uint64(0x0300))
	f.Add(b.Bytes()[:len(b.Bytes())-7], uint64(0x0500))
	f.Add([]byte("FS21"), uint64(1))
	txns := fsdatatest.Sample()
	txns[4].Status = fsdata.StatusCheckpoint
	f.Add(fsdatatest.Build(fsdata.MagicFS21, txns...).Bytes(), uint64(0x0400))
	f.Fuzz(func(t *testing.T, data []byte, target uint64) {
		s, err := fsdata.NewScanner(bytes.NewReader(data), int64(len(data)), fsdata.ScanOptions{OnData: func(*fsdata.TxnHeader, *fsdata.DataHeader, []byte) error { return nil }})
		if err != nil {
			var fe *fsdata.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("NewScanner: %v", err)
			}
			return
		}
		end := int64(fsdata.HeaderSize)
		for {
			h, err := s.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var fe *fsdata.FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("Next: %v", err)
				}
				return
			}
			if h.Pos != end || h.End() > int64(len(data)) {
				t.Fatalf("transaction at %d..%d, previous end %d, size %d", h.Pos, h.End(), end, len(data))
			}
			end = h.End()
		}
		if s.Pos() != end || s.Tail().Offset != end || s.Tail().Size != int64(len(data))-end {
			t.Fatalf("end %d, scanner at %d, tail %+v", end, s.Pos(), s.Tail())
		}
		c, err := fsdata.CutReader(bytes.NewReader(data), int64(len(data)), txn.TID(target), fsdata.ScanOptions{})
		if err != nil {
			t.Fatalf("CutReader after a clean scan: %v", err)
		}
		if c.Offset > end || c.Committed != end {
			t.Fatalf("cut %d, committed %d, scan end %d", c.Offset, c.Committed, end)
		}
	})
}

// BenchmarkScan measures the forward scan with data record checks.
func BenchmarkScan(b *testing.B) {
	var txns []fsdatatest.Txn
	pickle := bytes.Repeat([]byte("p"), 1000)
	for i := 0; i < 2000; i++ {
		recs := make([]fsdatatest.Rec, 8)
		for j := range recs {
			recs[j] = fsdatatest.Rec{OID: uint64(i*8 + j), Data: pickle}
		}
		txns = append(txns, fsdatatest.Txn{TID: txn.TID(0x03c0000000000000 + uint64(i)*1000), User: "/ bob", Recs: recs})
	}
	data := fsdatatest.Build(fsdata.MagicFS30, txns...).Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := fsdata.CutReader(bytes.NewReader(data), int64(len(data)), 0x03c0000000000000+1000*1000, fsdata.ScanOptions{})
		if err != nil || c.Kept != 1001 {
			b.Fatal(err, c.Kept)
		}
	}
}
