package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func open(t *testing.T, path string) (*Journal, *Damage, []string) {
	t.Helper()
	var got []string
	j, dmg, err := Open(path, Options{}, func(rec []byte) error {
		got = append(got, string(rec))
		return nil
	})
	require.NoError(t, err)
	return j, dmg, got
}

func TestAppendReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, dmg, got := open(t, path)
	require.Nil(t, dmg)
	require.Empty(t, got)
	for i := range 100 {
		require.NoError(t, j.Append([]byte(fmt.Sprintf("record %d", i))))
	}
	require.NoError(t, j.Close())
	j, dmg, got = open(t, path)
	require.Nil(t, dmg)
	require.Len(t, got, 100)
	require.Equal(t, "record 99", got[99])
	require.NoError(t, j.Append([]byte("after reopen")))
	require.NoError(t, j.Close())
	_, _, got = open(t, path)
	require.Len(t, got, 101)
	require.Equal(t, "after reopen", got[100])
}

// A crash inside a write leaves a torn frame: it is cut, reported, and the
// next records append after the last good one.
func TestTornTailIsCut(t *testing.T) {
	for _, cut := range []int{1, 4, 9, 12} {
		path := filepath.Join(t.TempDir(), "j")
		j, _, _ := open(t, path)
		require.NoError(t, j.Append([]byte("one")))
		require.NoError(t, j.Append([]byte("two-two")))
		require.NoError(t, j.Close())
		info, err := os.Stat(path)
		require.NoError(t, err)
		require.NoError(t, os.Truncate(path, info.Size()-int64(cut)))
		j, dmg, got := open(t, path)
		require.NotNil(t, dmg, "cut %d", cut)
		require.Equal(t, []string{"one"}, got)
		require.Equal(t, int64(headerSize+frameSize+3), dmg.Offset)
		require.NoError(t, j.Append([]byte("three")))
		require.NoError(t, j.Close())
		_, dmg, got = open(t, path)
		require.Nil(t, dmg)
		require.Equal(t, []string{"one", "three"}, got)
	}
}

func TestCorruptRecordIsCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, _, _ := open(t, path)
	for _, r := range []string{"a", "bb", "ccc"} {
		require.NoError(t, j.Append([]byte(r)))
	}
	require.NoError(t, j.Close())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[headerSize+frameSize+1+frameSize] ^= 0xff // a byte of "bb"
	require.NoError(t, os.WriteFile(path, b, 0o600))
	_, dmg, got := open(t, path)
	require.Equal(t, []string{"a"}, got)
	require.Equal(t, "checksum mismatch", dmg.Reason)
	require.Equal(t, int64(frameSize+2+frameSize+3), dmg.Cut)
}

func TestHugeLengthIsCorruption(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, _, _ := open(t, path)
	require.NoError(t, j.Append([]byte("ok")))
	require.NoError(t, j.Close())
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 1, 2, 3})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, dmg, got := open(t, path)
	require.Equal(t, []string{"ok"}, got)
	require.Contains(t, dmg.Reason, "record length")
}

func TestForeignFileIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	require.NoError(t, os.WriteFile(path, []byte("not a journal at all"), 0o600))
	_, _, err := Open(path, Options{}, func([]byte) error { return nil })
	require.ErrorContains(t, err, "not a tidstorage journal")
	b, _ := os.ReadFile(path)
	require.Equal(t, "not a journal at all", string(b), "left untouched")
}

func TestRotateKeepsOnlyTheSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, _, _ := open(t, path)
	for range 10 {
		require.NoError(t, j.Append([]byte("old")))
	}
	require.NoError(t, j.Rotate([]byte("snapshot")))
	require.Equal(t, int64(headerSize+frameSize+8), j.Size())
	require.NoError(t, j.Append([]byte("new")))
	require.NoError(t, j.Close())
	_, dmg, got := open(t, path)
	require.Nil(t, dmg)
	require.Equal(t, []string{"snapshot", "new"}, got)
	_, err := os.Stat(path + ".tmp")
	require.True(t, os.IsNotExist(err))
}

func TestReplayErrorStopsOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, _, _ := open(t, path)
	require.NoError(t, j.Append([]byte("x")))
	require.NoError(t, j.Close())
	_, _, err := Open(path, Options{}, func([]byte) error { return fmt.Errorf("bad input") })
	require.ErrorContains(t, err, "bad input")
}

func BenchmarkAppend(b *testing.B) {
	j, _, err := Open(filepath.Join(b.TempDir(), "j"), Options{}, func([]byte) error { return nil })
	require.NoError(b, err)
	rec := make([]byte, 120)
	b.ReportAllocs()
	for b.Loop() {
		if err := j.Append(rec); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, j.Close())
}
