package backup_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/backup/fsdata/fsdatatest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// goStore is a storage whose Data.fs (and blob directory) the test writes
// in Go, for tests of the backup logic that need no Python. The real ZODB
// and repozo tests (fixture) cover interoperability.
type goStore struct {
	spec backup.Spec
	b    *fsdatatest.Builder
	oid  uint64 // next oid for commit
	lawn bool   // blob files in ZODB's lawn layout instead of bushy
}

func newGoStore(t *testing.T, dir, id string, blobs bool) *goStore {
	t.Helper()
	base := filepath.Join(dir, id)
	require.NoError(t, os.MkdirAll(base, 0o755))
	s := &goStore{
		spec: backup.Spec{ID: id, Label: id, DataFS: filepath.Join(base, "Data.fs"), Repository: filepath.Join(dir, "repo-"+id)},
		b:    fsdatatest.New(fsdata.MagicFS30),
	}
	require.NoError(t, os.MkdirAll(s.spec.Repository, 0o755))
	if blobs {
		s.spec.BlobDir = filepath.Join(base, "blobs")
		require.NoError(t, os.MkdirAll(s.spec.BlobDir, 0o755))
	}
	s.commit(t, 0x0100, "root")
	return s
}

// commit appends one committed transaction writing a new object (a blob
// with its file when the store has a blob directory) and rewrites the
// Data.fs with the bytes so far: earlier bytes never change, as with a live
// FileStorage.
func (s *goStore) commit(t *testing.T, tid txn.TID, data string) {
	t.Helper()
	oid := s.oid
	s.oid++
	rec := fsdatatest.Rec{OID: oid, Data: []byte(data)}
	if s.spec.BlobDir != "" && oid > 0 {
		rec.Data = append(fsdatatest.BlobPickle(), data...)
		rel := bushyBlobPath(oid, tid)
		if s.lawn {
			rel = lawnBlobPath(oid, tid)
		}
		p := filepath.Join(s.spec.BlobDir, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("blob "+data), 0o444))
	}
	s.b.Add(fsdatatest.Txn{TID: tid, User: "/ test", Recs: []fsdatatest.Rec{rec}})
	require.NoError(t, os.WriteFile(s.spec.DataFS, s.b.Bytes(), 0o644))
}

// end returns the offset after the transaction tid.
func (s *goStore) end(t *testing.T, tid txn.TID) int64 {
	t.Helper()
	c, err := fsdata.CutReader(bytesReader(s.b.Bytes()), int64(len(s.b.Bytes())), tid, fsdata.ScanOptions{})
	require.NoError(t, err)
	require.True(t, c.Exact(), "tid %s not in the file", tid.Hex())
	return c.Offset
}

// bushyBlobPath is ZODB's bushy layout written out by hand: one directory
// per oid byte, then the tid's repr and .blob.
func bushyBlobPath(oid uint64, tid txn.TID) string {
	p := ""
	for i := 7; i >= 0; i-- {
		p += fmt.Sprintf("0x%02x/", byte(oid>>(8*i)))
	}
	return p + repr(uint64(tid)) + ".blob"
}

// lawnBlobPath is ZODB's lawn layout: one directory per oid repr.
func lawnBlobPath(oid uint64, tid txn.TID) string {
	return repr(oid) + "/" + repr(uint64(tid)) + ".blob"
}

// repr is ZODB's oid_repr/tid_repr: 0x and the hex digits without leading
// zero bytes.
func repr(v uint64) string {
	s := fmt.Sprintf("%x", v)
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return "0x" + s
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
