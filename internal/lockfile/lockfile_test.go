package lockfile

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHelperProcess is not a test: run by TestKilledHolder as a child
// process, it takes a lock and waits to be killed.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv("TIDSTORAGE_TEST_LOCKFILE")
	if path == "" {
		t.Skip("helper process of TestKilledHolder")
	}
	if _, err := Acquire(path, "helper", nil); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// A live holder in another process refuses the lock and is named; once it
// is SIGKILLed (the kernel drops its flock, its file stays) the lock is
// taken over and the takeover names it; Release removes the file.
func TestKilledHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "TIDSTORAGE_TEST_LOCKFILE="+path)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)

	before, err := os.ReadFile(path)
	require.NoError(t, err)
	_, err = Acquire(path, "second", nil)
	var held *HeldError
	require.ErrorAs(t, err, &held)
	require.ErrorIs(t, err, ErrHeld)
	require.False(t, held.Foreign)
	require.Equal(t, cmd.Process.Pid, held.Holder.PID)
	host, _ := os.Hostname()
	require.ErrorContains(t, err, fmt.Sprintf("helper by pid %d on %s since ", cmd.Process.Pid, host))
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, before, after, "a refused Acquire changes nothing")

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	var old *Holder
	l, err := Acquire(path, "third", func(h Holder) { old = &h })
	require.NoError(t, err)
	require.NotNil(t, old, "the takeover is reported")
	require.Equal(t, cmd.Process.Pid, old.PID)
	var now Holder
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &now))
	require.Equal(t, os.Getpid(), now.PID)
	require.Equal(t, "third", now.Command)
	l.Release()
	l.Release()
	require.NoFileExists(t, path)
}

// Another open file of the same process is refused too; AcquireAll releases
// what it took when one lock fails.
func TestSameProcessAndAcquireAll(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.lock"), filepath.Join(dir, "b.lock")
	lb, err := Acquire(b, "first", nil)
	require.NoError(t, err)
	_, err = AcquireAll([]string{a, b}, "second", nil)
	require.ErrorIs(t, err, ErrHeld)
	require.ErrorContains(t, err, fmt.Sprintf("first by pid %d", os.Getpid()))
	require.NoFileExists(t, a, "the lock taken before the refusal is released")
	lb.Release()
	locks, err := AcquireAll([]string{a, b}, "second", nil)
	require.NoError(t, err)
	ReleaseAll(locks)
	require.NoFileExists(t, a)
	require.NoFileExists(t, b)
}

// A file left by another machine is refused (its flock may be invisible
// here); one left under another host name by the same running kernel (a
// container of this host) is taken over.
func TestForeignHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	write := func(h Holder) {
		b, err := json.Marshal(h)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, b, 0o644))
	}
	write(Holder{PID: 1, Host: "elsewhere.example", Boot: "another-kernel", Command: "serve"})
	_, err := Acquire(path, "me", nil)
	var held *HeldError
	require.ErrorAs(t, err, &held)
	require.True(t, held.Foreign)
	require.ErrorContains(t, err, "was left by serve by pid 1 on elsewhere.example")

	if bootID() == "" {
		return // no boot id on this system: nothing more to check
	}
	write(Holder{PID: 1, Host: "a-container", Boot: bootID(), Command: "serve"})
	took := false
	l, err := Acquire(path, "me", func(Holder) { took = true })
	require.NoError(t, err)
	require.True(t, took)
	l.Release()

	require.NoError(t, os.WriteFile(path, []byte("not json"), 0o644))
	l, err = Acquire(path, "me", nil)
	require.NoError(t, err, "a file that names nobody is not a holder")
	l.Release()
}

// A full or read-only file system does not undo the lock: on a full one the
// flock is taken and the failure to name the holder is reported; on a
// read-only one an existing lock file is still flocked, and a missing one
// is an EROFS error (the daemon then serves unlocked and says so). Needs a
// small tmpfs: root only.
func TestFullAndReadOnlyFileSystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	existing := filepath.Join(dir, "existing.lock")
	require.NoError(t, os.WriteFile(existing, nil, 0o644))
	fill, err := os.Create(filepath.Join(dir, "fill"))
	require.NoError(t, err)
	for {
		if _, err := fill.Write(make([]byte, 4096)); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			break
		}
	}
	fill.Close()

	l, err := Acquire(filepath.Join(dir, "full.lock"), "full", nil)
	require.NoError(t, err, "a full disk does not stop the lock")
	require.ErrorIs(t, l.Unwritten, syscall.ENOSPC)
	_, err = Acquire(filepath.Join(dir, "full.lock"), "second", nil)
	require.ErrorIs(t, err, ErrHeld, "the flock holds all the same")
	l.Release()

	require.NoError(t, exec.Command("mount", "-o", "remount,ro", dir).Run())
	l, err = Acquire(existing, "ro", nil)
	require.NoError(t, err, "an existing lock file is flocked through a read-only descriptor")
	require.Error(t, l.Unwritten, "it cannot say who holds it")
	_, err = Acquire(existing, "second", nil)
	require.ErrorIs(t, err, ErrHeld)
	l.Release()
	_, err = Acquire(filepath.Join(dir, "new.lock"), "ro", nil)
	require.ErrorIs(t, err, syscall.EROFS)
}
