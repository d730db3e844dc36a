package backup_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// TestLockHelperProcess is not a test: run by TestGoRepositoryLock as a
// child process, it takes a repository's lock and waits to be killed.
func TestLockHelperProcess(t *testing.T) {
	repo := os.Getenv("TIDSTORAGE_TEST_LOCK_REPO")
	if repo == "" {
		t.Skip("helper process of TestGoRepositoryLock")
	}
	_, err := backup.LockRepository(repo, "helper", nil)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// One writer per repository: a second backup is refused while a process
// holds the lock, naming it; once that process is killed (the kernel drops
// its flock, its lock file stays) the next backup takes the stale lock over
// and says so; the lock file is gone after a backup.
func TestGoRepositoryLock(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", false)
	point := map[string]txn.TID{"s": 0x0100}

	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), "TIDSTORAGE_TEST_LOCK_REPO="+s.spec.Repository)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)

	_, err = backup.Backup([]backup.Spec{s.spec}, point, backup.Options{Now: t0})
	require.ErrorIs(t, err, backup.ErrLocked)
	require.ErrorContains(t, err, fmt.Sprintf("helper by pid %d on ", cmd.Process.Pid))
	require.NoFileExists(t, filepath.Join(s.spec.Repository, "2026-11-24-12-00-00.fs"))

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	require.FileExists(t, filepath.Join(s.spec.Repository, backup.RepoLockName))
	var log strings.Builder
	_, err = backup.Backup([]backup.Spec{s.spec}, point, backup.Options{Now: t0, Log: &log})
	require.NoError(t, err)
	require.Contains(t, log.String(), fmt.Sprintf("taking over a stale lock (helper by pid %d on ", cmd.Process.Pid))
	require.NoFileExists(t, filepath.Join(s.spec.Repository, backup.RepoLockName))
}

// A lock in this process (another open file) is refused too; a lock file
// left by another host is not taken over.
func TestGoRepositoryLockRefusals(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", false)
	point := map[string]txn.TID{"s": 0x0100}
	l, err := backup.LockRepository(s.spec.Repository, "forget", nil)
	require.NoError(t, err)
	_, err = backup.Backup([]backup.Spec{s.spec}, point, backup.Options{Now: t0})
	require.ErrorContains(t, err, fmt.Sprintf("(forget by pid %d on ", os.Getpid()))
	l.Unlock()
	l.Unlock() // twice is harmless

	p := filepath.Join(s.spec.Repository, backup.RepoLockName)
	require.NoError(t, os.WriteFile(p, []byte(`{"pid":1,"host":"elsewhere.example","time":"2026-01-01T00:00:00Z","command":"backup"}`), 0o644))
	_, err = backup.Backup([]backup.Spec{s.spec}, point, backup.Options{Now: t0})
	require.ErrorIs(t, err, backup.ErrLocked)
	require.ErrorContains(t, err, "was left by backup by pid 1 on elsewhere.example")
	require.NoError(t, os.Remove(p))
	_, err = backup.Backup([]backup.Spec{s.spec}, point, backup.Options{Now: t0})
	require.NoError(t, err)
}

// Repository directories are created on first use.
func TestGoRepositoryCreated(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", false)
	s.spec.Repository = filepath.Join(dir, "new", "nested", "repo")
	m, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x0100}, backup.Options{Now: t0})
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(s.spec.Repository, m.Stamp+".fs"))
}
