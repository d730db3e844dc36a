package fsdata

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// Any bytes: the scan ends with io.EOF or a *FormatError, never a panic or
// a read outside the file; committed data ends on a transaction the scan
// returned; the cut lies within it.
func FuzzScan(f *testing.F) {
	b := buildFS(MagicFS30, sampleTxns()...)
	f.Add(b.data, uint64(0x0300))
	f.Add(b.data[:len(b.data)-7], uint64(0x0500))
	f.Add([]byte("FS21"), uint64(1))
	txns := sampleTxns()
	txns[4].status = StatusCheckpoint
	f.Add(buildFS(MagicFS21, txns...).data, uint64(0x0400))
	f.Fuzz(func(t *testing.T, data []byte, target uint64) {
		s, err := NewScanner(bytes.NewReader(data), int64(len(data)), ScanOptions{OnData: func(*TxnHeader, *DataHeader, []byte) error { return nil }})
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("NewScanner: %v", err)
			}
			return
		}
		end := int64(HeaderSize)
		for {
			h, err := s.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var fe *FormatError
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
		c, err := CutReader(bytes.NewReader(data), int64(len(data)), txn.TID(target), ScanOptions{})
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
	var txns []txnSpec
	pickle := bytes.Repeat([]byte("p"), 1000)
	for i := 0; i < 2000; i++ {
		recs := make([]recSpec, 8)
		for j := range recs {
			recs[j] = recSpec{oid: uint64(i*8 + j), data: pickle}
		}
		txns = append(txns, txnSpec{tid: txn.TID(0x03c0000000000000 + uint64(i)*1000), user: "/ bob", recs: recs})
	}
	data := buildFS(MagicFS30, txns...).data
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := CutReader(bytes.NewReader(data), int64(len(data)), 0x03c0000000000000+1000*1000, ScanOptions{})
		if err != nil || c.Kept != 1001 {
			b.Fatal(err, c.Kept)
		}
	}
}
