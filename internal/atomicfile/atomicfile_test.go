package atomicfile_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/atomicfile"
)

func TestWriteReplacesWholly(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	require.NoError(t, atomicfile.WriteFile(p, []byte("one"), 0o644))
	require.NoError(t, atomicfile.WriteFile(p, []byte("two"), 0o444))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "two", string(b))
	st, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o444), st.Mode().Perm())
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 1, "no temporary file left")
}

// A failing writer leaves the old file and no temporary file.
func TestWriteFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	require.NoError(t, atomicfile.WriteFile(p, []byte("old"), 0o644))
	boom := errors.New("boom")
	err := atomicfile.Write(p, 0o644, func(w io.Writer) error {
		_, _ = w.Write([]byte("half"))
		return boom
	})
	require.ErrorIs(t, err, boom)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "old", string(b))
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 1)
}

func TestWriteNewRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	require.NoError(t, atomicfile.WriteNew(p, 0o644, func(w io.Writer) error { _, err := w.Write([]byte("a")); return err }))
	err := atomicfile.WriteNew(p, 0o644, func(io.Writer) error { t.Fatal("must not write"); return nil })
	require.ErrorIs(t, err, fs.ErrExist)
	err = atomicfile.WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o644)
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestCreateNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	require.NoError(t, atomicfile.Create(p, 0o600, func(w io.Writer) error { _, err := w.Write([]byte("first")); return err }))
	err := atomicfile.Create(p, 0o600, func(w io.Writer) error { _, err := w.Write([]byte("second")); return err })
	require.ErrorIs(t, err, fs.ErrExist)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "first", string(b))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 1, "no temporary file left")
}
