package statusfile

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// flakyFile is a status file on a disk that fills up and frees again: while
// full > 0 a write stores half the line and fails with ENOSPC (as a file
// system that runs out in the middle of a write), while syncFail > 0 a
// write succeeds and its fsync fails.
type flakyFile struct {
	mu       sync.Mutex
	buf      []byte
	full     int
	syncFail int
	noTrunc  bool
	syncs    int
}

func (f *flakyFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full > 0 {
		f.full--
		f.buf = append(f.buf, p[:len(p)/2]...)
		return len(p) / 2, syscall.ENOSPC
	}
	f.buf = append(f.buf, p...)
	return len(p), nil
}

func (f *flakyFile) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncs++
	if f.syncFail > 0 {
		f.syncFail--
		return syscall.EIO
	}
	return nil
}

func (f *flakyFile) Truncate(n int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noTrunc {
		return syscall.EROFS
	}
	f.buf = f.buf[:n]
	return nil
}

func (f *flakyFile) Stat() (os.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fakeInfo{int64(len(f.buf))}, nil
}

func (f *flakyFile) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.buf)
}

func (f *flakyFile) set(fn func(f *flakyFile)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

type fakeInfo struct{ size int64 }

func (i fakeInfo) Name() string       { return "status" }
func (i fakeInfo) Size() int64        { return i.size }
func (i fakeInfo) Mode() os.FileMode  { return 0o644 }
func (i fakeInfo) ModTime() time.Time { return time.Time{} }
func (i fakeInfo) IsDir() bool        { return false }
func (i fakeInfo) Sys() any           { return nil }

func replayString(t *testing.T, s string) *Result {
	t.Helper()
	res, err := Replay(strings.NewReader(s), ReplayOptions{})
	require.NoError(t, err)
	require.Empty(t, res.Warnings)
	return res
}

func TestWriterPeriodsAndRoundTrip(t *testing.T) {
	f := &flakyFile{}
	w := NewWriter(f, Options{BurstPeriod: 30 * time.Second, FullDumpPeriod: 300 * time.Second})
	t0 := time.Unix(1_700_000_000, 0)
	step := func(d time.Duration, kv ...any) {
		for i := 0; i < len(kv); i += 2 {
			w.Published(kv[i].(string), txn.TID(kv[i+1].(int)))
		}
		w.Flush(t0.Add(d))
		w.Wait()
	}
	// Nothing before Start.
	step(0, k1, 9)
	require.Empty(t, f.String())
	w.Published(k1, 10)
	w.Published(k2, 20)
	w.Start(t0)
	w.Wait()
	require.EqualValues(t, 1, w.Stats().Lines)

	// Within the burst period: nothing; after it, one d line.
	step(10*time.Second, k1, 11)
	require.EqualValues(t, 1, w.Stats().Lines)
	step(31 * time.Second)
	require.EqualValues(t, 2, w.Stats().Lines)
	// No change: no line.
	step(100 * time.Second)
	require.EqualValues(t, 2, w.Stats().Lines)
	step(120*time.Second, k2, 21)
	// After the full period, an f line wins.
	step(301*time.Second, k1, 12)
	w.Published(k2, 22)
	w.Stop(t0.Add(302 * time.Second))
	require.NoError(t, w.Close())
	st := w.Stats()
	require.EqualValues(t, 5, st.Lines)
	require.EqualValues(t, len(f.String()), st.Bytes)
	require.Zero(t, st.Errors)
	require.Equal(t, 5, f.syncs, "one fsync per line")

	lines := strings.Split(strings.TrimSuffix(f.String(), "\n"), "\n")
	require.Equal(t, []string{
		`1700000000.00 f {"((('localhost', 8100),), '1')": 10, "((('localhost', 8200),), '2')": 20}`,
		`1700000031.00 d {"((('localhost', 8100),), '1')": 11}`,
		`1700000120.00 d {"((('localhost', 8200),), '2')": 21}`,
		`1700000301.00 f {"((('localhost', 8100),), '1')": 12, "((('localhost', 8200),), '2')": 21}`,
		`1700000302.00 f {"((('localhost', 8100),), '1')": 12, "((('localhost', 8200),), '2')": 22}`,
	}, lines)

	res := replayString(t, f.String())
	require.Equal(t, map[string]txn.TID{k1: 12, k2: 22}, res.Point)
	res, err := Replay(strings.NewReader(f.String()), ReplayOptions{Until: 1700000100})
	require.NoError(t, err)
	require.Equal(t, map[string]txn.TID{k1: 11, k2: 20}, res.Point)
	require.InDelta(t, 1700000031.0, res.Time, 1e-9)
}

// A full disk: the torn half line is cut back, the error counted and
// reported, the values published meanwhile go out with the retry once the
// disk has room again; the file never holds a torn or skipped line.
func TestWriterRecoversFromFullDisk(t *testing.T) {
	f := &flakyFile{}
	w := NewWriter(f, Options{})
	t0 := time.Unix(100, 0)
	w.Published("a", 1)
	w.Published("b", 1)
	w.Start(t0)
	w.Wait()
	require.Equal(t, "100.00 f {'a': 1, 'b': 1}\n", f.String())

	f.set(func(f *flakyFile) { f.full = 2 })
	w.Published("a", 2)
	w.Flush(t0.Add(time.Second))
	w.Wait()
	w.Published("b", 3)
	w.Flush(t0.Add(2 * time.Second))
	w.Wait()
	st := w.Stats()
	require.EqualValues(t, 2, st.Errors)
	require.Contains(t, st.LastError, "no space left on device")
	require.Empty(t, st.Broken)
	require.Equal(t, "100.00 f {'a': 1, 'b': 1}\n", f.String(), "cut back to the last good line")

	// The disk has room again: one d line with both values.
	w.Flush(t0.Add(3 * time.Second))
	w.Wait()
	require.Equal(t, "100.00 f {'a': 1, 'b': 1}\n103.00 d {'a': 2, 'b': 3}\n", f.String())

	// A failed fsync: the line is not trusted and cut back too.
	f.set(func(f *flakyFile) { f.syncFail = 1 })
	w.Published("a", 4)
	w.Flush(t0.Add(4 * time.Second))
	w.Wait()
	require.EqualValues(t, 3, w.Stats().Errors)
	require.Contains(t, w.Stats().LastError, "fsync")
	require.Equal(t, "100.00 f {'a': 1, 'b': 1}\n103.00 d {'a': 2, 'b': 3}\n", f.String())

	w.Stop(t0.Add(5 * time.Second))
	require.NoError(t, w.Close())
	res := replayString(t, f.String())
	require.Equal(t, map[string]txn.TID{"a": 4, "b": 3}, res.Point)
	st = w.Stats()
	require.EqualValues(t, 3, st.Lines)
	require.EqualValues(t, len(f.String()), st.Bytes)
}

// A torn line that cannot be cut back stops appending (the next line would
// glue onto it) until restart, which repairs it; Close says so.
func TestWriterStopsWhenTheTornLineStays(t *testing.T) {
	f := &flakyFile{}
	w := NewWriter(f, Options{})
	w.Published("a", 1)
	w.Start(time.Unix(100, 0))
	w.Wait()
	f.set(func(f *flakyFile) { f.full, f.noTrunc = 1, true })
	w.Published("a", 2)
	w.Flush(time.Unix(101, 0))
	w.Wait()
	require.Contains(t, w.Stats().Broken, "could not be cut back")
	torn := f.String()
	w.Published("a", 3)
	w.Flush(time.Unix(102, 0))
	w.Stop(time.Unix(103, 0))
	require.ErrorContains(t, w.Close(), "appending had stopped")
	require.Equal(t, torn, f.String(), "nothing appended after the torn line")
}

// The real thing: a status file on a tmpfs of two pages that another file
// fills up. Needs root (mount); skipped otherwise.
func TestWriterOnARealFullDisk(t *testing.T) {
	dir := t.TempDir()
	if os.Getuid() != 0 || exec.Command("mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", dir).Run() != nil {
		t.Skip("cannot mount a tiny tmpfs (needs root)")
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	path := filepath.Join(dir, "status")
	w, err := Open(path, Options{})
	require.NoError(t, err)
	key := strings.Repeat("k", 900) // ~1 KiB lines: the page fills after a few
	w.Published(key, 1)
	w.Start(time.Unix(100, 0))
	w.Wait()
	filler, err := os.Create(filepath.Join(dir, "filler"))
	require.NoError(t, err)
	_, err = filler.Write(make([]byte, 16<<10)) // takes what is left
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.NoError(t, filler.Close())
	for i := 2; i <= 8 && w.Stats().Errors == 0; i++ {
		w.Published(key, txn.TID(i))
		w.Flush(time.Unix(int64(100+i), 0))
		w.Wait()
	}
	st := w.Stats()
	require.NotZero(t, st.Errors, "the disk never filled")
	require.Contains(t, st.LastError, "no space left on device")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, bytes.HasSuffix(b, []byte("}\n")), "the file ends at a whole line")
	replayString(t, string(b))

	require.NoError(t, os.Remove(filepath.Join(dir, "filler")))
	w.Published(key, 99)
	w.Flush(time.Unix(200, 0))
	w.Stop(time.Unix(201, 0))
	require.NoError(t, w.Close())
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, txn.TID(99), replayString(t, string(b)).Point[key])
}

func TestWriterFileAppendsAndSyncs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	for i := 0; i < 2; i++ {
		w, err := Open(path, Options{})
		require.NoError(t, err)
		w.Published(k1, txn.TID(10+i))
		w.Start(time.Unix(int64(100+i), 0))
		require.NoError(t, w.Close())
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "100.00 f {\"((('localhost', 8100),), '1')\": 10}\n101.00 f {\"((('localhost', 8100),), '1')\": 11}\n", string(b))
}

// A torn last line is cut off (kept aside) at open, so
// the next line never glues onto it; so is a complete last line that does
// not parse.
func TestOpenRepairsATornLastLine(t *testing.T) {
	for name, tail := range map[string]string{
		"torn":        "3.00 d {'a': 12",
		"unparseable": "3.00 d {'a': 1\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "status")
			good := "1.00 f {'a': 1}\n2.00 d {'a': 2}\n"
			require.NoError(t, os.WriteFile(path, []byte(good+tail), 0o644))
			w, err := Open(path, Options{})
			require.NoError(t, err)
			w.Published("a", 3)
			w.Start(time.Unix(4, 0))
			require.NoError(t, w.Close())
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, good+"4.00 f {'a': 3}\n", string(b))
			replayString(t, string(b))
			aside, err := filepath.Glob(path + ".torn-*")
			require.NoError(t, err)
			require.Len(t, aside, 1)
			kept, err := os.ReadFile(aside[0])
			require.NoError(t, err)
			require.Equal(t, tail, string(kept))
		})
	}
}

// Issues 12, items 1 and 2: when the storages went back (a restore in place,
// a cut), the first line of the run begins a new epoch instead of lowering
// the point; the old file is kept aside, both files replay.
func TestStartBeginsANewEpochWhenStoragesWentBack(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "status")
	old := "1.00 f {'a': 10, 'b': 10}\n2.00 d {'a': 12}\n"
	require.NoError(t, os.WriteFile(path, []byte(old), 0o644))

	// Not below: the same file goes on.
	w, err := Open(path, Options{})
	require.NoError(t, err)
	w.Published("a", 12)
	w.Published("b", 11)
	w.Start(time.Unix(3, 0))
	w.Wait() // posts coalesce: a line carries the time of the latest input
	w.Stop(time.Unix(4, 0))
	require.NoError(t, w.Close())
	require.Zero(t, w.Stats().Epochs)
	require.EqualValues(t, 2, w.Stats().Lines, "written by this run")
	require.EqualValues(t, 4, w.Stats().FileLines, "the file's lines, those before this run included")
	old += "3.00 f {'a': 12, 'b': 11}\n4.00 f {'a': 12, 'b': 11}\n"
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, old, string(b))

	// a went back to 9: a new epoch.
	w, err = Open(path, Options{})
	require.NoError(t, err)
	w.Published("a", 9)
	w.Published("b", 11)
	w.Start(time.Unix(5, 0))
	w.Wait()
	w.Published("b", 13)
	w.Flush(time.Unix(6, 0))
	require.NoError(t, w.Close())
	st := w.Stats()
	require.EqualValues(t, 1, st.Epochs)
	require.EqualValues(t, 2, st.FileLines, "the new epoch's file counts from zero")
	require.True(t, strings.HasPrefix(st.LastAside, path+".epoch-"), st.LastAside)
	b, err = os.ReadFile(st.LastAside)
	require.NoError(t, err)
	require.Equal(t, old, string(b), "the old epoch is kept whole")
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "5.00 f {'a': 9, 'b': 11}\n6.00 d {'b': 13}\n", string(b))
	require.Equal(t, map[string]txn.TID{"a": 9, "b": 13}, replayString(t, string(b)).Point)
}

// A classic-only daemon starts with an empty point: the storage that went
// back shows at its first COMMIT, and that line begins the new epoch.
func TestLaterLineBeginsANewEpoch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	old := "1.00 f {'a': 10, 'b': 10}\n"
	require.NoError(t, os.WriteFile(path, []byte(old), 0o644))
	w, err := Open(path, Options{})
	require.NoError(t, err)
	w.Start(time.Unix(2, 0)) // nothing published yet: no line
	w.Wait()
	w.Published("b", 11)
	w.Flush(time.Unix(3, 0))
	w.Wait()
	require.Zero(t, w.Stats().Epochs)
	w.Published("a", 4)
	w.Flush(time.Unix(4, 0))
	require.NoError(t, w.Close())
	require.EqualValues(t, 1, w.Stats().Epochs)
	b, err := os.ReadFile(w.Stats().LastAside)
	require.NoError(t, err)
	require.Equal(t, old+"3.00 f {'b': 11}\n", string(b))
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "4.00 f {'a': 4, 'b': 11}\n", string(b))
}

// A file that does not replay (broken by an earlier version) is set aside
// too, so that backups work again without a hand edit.
func TestStartBeginsANewEpochAfterAnUnreadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	bad := "1.00 f {'a': 10}\n2.00 d {'a': 1x4.00 f {'a': 11}\n3.00 d {'a': 12}\n"
	require.NoError(t, os.WriteFile(path, []byte(bad), 0o644))
	w, err := Open(path, Options{})
	require.NoError(t, err)
	w.Published("a", 12)
	w.Start(time.Unix(5, 0))
	require.NoError(t, w.Close())
	require.EqualValues(t, 1, w.Stats().Epochs)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "5.00 f {'a': 12}\n", string(b))
}

// Published and the posts never block on the disk, even when it hangs.
func TestWriterDoesNotBlockTheProducer(t *testing.T) {
	f := &blockingFile{release: make(chan struct{})}
	w := NewWriter(f, Options{CloseTimeout: 50 * time.Millisecond})
	w.Published("a", 1)
	w.Start(time.Unix(1, 0))
	done := make(chan struct{})
	go func() {
		for i := 0; i < 10000; i++ {
			w.Published(fmt.Sprint("s", i%10), txn.TID(i))
			w.Flush(time.Unix(int64(2+i), 0))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the producer blocked on a hung disk")
	}
	require.ErrorContains(t, w.Close(), "did not take the last line")
	close(f.release)
}

type blockingFile struct{ release chan struct{} }

func (f *blockingFile) Write(p []byte) (int, error) { <-f.release; return len(p), nil }
func (f *blockingFile) Sync() error                 { return nil }
