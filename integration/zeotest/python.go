package zeotest

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// PythonTimeout bounds every Python helper run by Python.
var PythonTimeout = 3 * time.Minute

// PythonCommand returns a command running a helper script (relative to
// integration/python) with the venv's interpreter, for tests that run clients
// in the background. The caller starts and waits for it; ctx bounds it.
func PythonCommand(ctx context.Context, t testing.TB, script string, args ...string) *exec.Cmd {
	t.Helper()
	venv := Venv(t)
	cmd := exec.CommandContext(ctx, filepath.Join(venv, "bin", "python"), append([]string{ScriptPath(t, script)}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Python runs a helper script to completion and returns its standard output;
// the test fails with the script's standard error when it exits non-zero or
// runs longer than PythonTimeout.
func Python(t testing.TB, script string, args ...string) []byte {
	t.Helper()
	out, err := PythonErr(t, script, args...)
	if err != nil {
		t.Fatalf("zeotest: %s %v: %v", script, args, err)
	}
	return out
}

// PythonErr is Python that returns the failure instead of failing the test.
func PythonErr(t testing.TB, script string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), PythonTimeout)
	defer cancel()
	cmd := PythonCommand(ctx, t, script, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &ScriptError{Err: err, Stderr: stderr.String()}
	}
	return stdout.Bytes(), nil
}

// ScriptError carries a failed script's standard error.
type ScriptError struct {
	Err    error
	Stderr string
}

func (e *ScriptError) Error() string { return e.Err.Error() + "\n--- stderr ---\n" + e.Stderr }
func (e *ScriptError) Unwrap() error { return e.Err }
