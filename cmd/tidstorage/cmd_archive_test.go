package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// The archive commands as an operator runs them, on a file:// archive:
// `tidstorage archive` follows the status file (one point per line), stops
// on TERM releasing its lock; list, restore at a moment or at a TID,
// verify (exit 1 on damage), prune's dry run, usage errors.
func TestArchiveCommands(t *testing.T) {
	s := newGoSite(t)
	archiveDir := filepath.Join(s.dir, "archive")
	cfg, err := os.ReadFile(s.cfg)
	require.NoError(t, err)
	cfg = append([]byte("status_file = \"status\"\n"), cfg...)
	cfg = append(cfg, fmt.Sprintf("archive {\n  url      = \"file://%s\"\n  interval = \"50ms\"\n}\n", archiveDir)...)
	require.NoError(t, os.WriteFile(s.cfg, cfg, 0o644))
	status := filepath.Join(s.dir, "status")
	t1 := time.Now().Add(-10 * time.Second).Truncate(10 * time.Millisecond)
	line := func(at time.Time, tid txn.TID) {
		f, err := os.OpenFile(status, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		require.NoError(t, err)
		_, err = fmt.Fprintf(f, "%.2f f {\"main\": %d}\n", float64(at.UnixNano())/1e9, uint64(tid))
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	r := run(t, "archive", "list", "-c", s.cfg)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "no restorable point yet")

	line(t1, 0x0100)
	cmd := exec.Command(bin, "archive", "-c", s.cfg)
	var out zeotest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	points := func() int {
		r := run(t, "archive", "list", "-c", s.cfg, "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var n int
		_, _ = fmt.Sscanf(r.stdout[strings.Index(r.stdout, `"points":`)+len(`"points":`):], "%d", &n)
		return n
	}
	require.Eventually(t, func() bool { return points() == 1 }, 20*time.Second, 50*time.Millisecond, out.String())
	s.commit(t, 0x0200)
	t2 := t1.Add(5 * time.Second)
	line(t2, 0x0200)
	require.Eventually(t, func() bool { return points() == 2 }, 20*time.Second, 50*time.Millisecond, out.String())
	r = run(t, "archive", "list", "-c", s.cfg)
	require.Contains(t, r.stdout, "locked by", "the running archiver holds the lock")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), out.String())
	r = run(t, "archive", "list", "-c", s.cfg)
	require.Equal(t, 0, r.code, r.stderr)
	require.NotContains(t, r.stdout, "locked by", "released on TERM")
	require.Contains(t, r.stdout, "restorable from "+t1.UTC().Format(time.RFC3339Nano))
	require.Contains(t, r.stdout, "main: tid 0000000000000200")
	require.Contains(t, r.stdout, "the published point (status file "+status+", line 2) is archived")
	s.commit(t, 0x0300)
	line(t2.Add(time.Second), 0x0300)
	r = run(t, "archive", "list", "-c", s.cfg)
	require.Contains(t, r.stdout, "is NOT archived yet: the archive is 1s behind it")

	restore := func(args ...string) (result, []byte) {
		dir := t.TempDir()
		r := run(t, append([]string{"restore", "-c", s.cfg, "--from-archive", "--to", dir}, args...)...)
		b, _ := os.ReadFile(filepath.Join(dir, "main", "Data.fs"))
		return r, b
	}
	r, b := restore("--at", t2.Add(-time.Second).Format(time.RFC3339Nano))
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, s.b.Bytes()[:s.b.End[0]], b, "the point at t1: only the first transaction")
	r, b = restore("--at", t2.UTC().Format("2006-01-02-15-04-05"))
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, s.b.Bytes()[:s.b.End[0]], b, "repozo's form has whole seconds: t2 truncated is before t2")
	r, b = restore("--tid", "main=0x01ff")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, s.b.Bytes()[:s.b.End[0]], b)
	r, b = restore()
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, s.b.Bytes()[:s.b.End[1]], b, "the newest point")
	require.Contains(t, r.stdout, "ends with tid 0000000000000200")
	r, _ = restore("--at", t1.Add(-time.Second).Format(time.RFC3339Nano))
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "no restorable point at or before")

	r = run(t, "archive", "prune", "-c", s.cfg, "--retention", "1s")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "would remove: 1 point(s)")
	r = run(t, "archive", "verify", "-c", s.cfg, "--read-data")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, ": ok (2 point(s), 1 base(s)")
	segs, err := filepath.Glob(filepath.Join(archiveDir, "data", "main", "*", "*.fs"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(segs[0], []byte("damaged"), 0o644))
	r = run(t, "archive", "verify", "-c", s.cfg, "--read-data")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "DAMAGED")

	r = run(t, "restore", "-c", s.cfg, "--tid", "main=1", "--to", t.TempDir())
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "--tid needs --from-archive")
	require.NoError(t, os.WriteFile(s.cfg, []byte("storage \"main\" {\n  data_fs = \"Data.fs\"\n}\n"), 0o644))
	r = run(t, "archive", "list", "-c", s.cfg)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "has no archive block")
}
