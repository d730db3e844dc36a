// Package zeotest starts real ZEO servers (runzeo from the project's Python
// virtualenv) and runs real ZODB client scripts for tests.
//
// Tests that need Python/ZEO call Venv first: in CI (env CI non-empty) a
// missing venv fails the test loudly; locally it skips with a message saying
// how to create it (scripts/zeo-venv.sh).
package zeotest

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	rootOnce sync.Once
	rootDir  string
)

// RepoRoot returns the directory holding the main module's go.mod, found by
// walking up from the test's working directory (a nested module's go.mod,
// such as monitoring/'s, is passed over).
func RepoRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			return
		}
		for {
			if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module github.com/tidstorage/tidstorage\n") {
				rootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return
			}
			dir = parent
		}
	})
	if rootDir == "" {
		t.Fatal("zeotest: cannot find the repository root (go.mod) above the working directory")
	}
	return rootDir
}

// InCI reports whether the tests run in CI, where every dependency must be present.
func InCI() bool { return os.Getenv("CI") != "" }

// Venv returns the path of the virtualenv holding ZEO and ZODB. It is
// $TIDSTORAGE_VENV, or .venv-zeo at the repository root.
func Venv(t testing.TB) string {
	t.Helper()
	venv := os.Getenv("TIDSTORAGE_VENV")
	if venv == "" {
		venv = filepath.Join(RepoRoot(t), ".venv-zeo")
	}
	if _, err := os.Stat(filepath.Join(venv, "bin", "runzeo")); err != nil {
		msg := "zeotest: no ZEO virtualenv at " + venv + " (" + err.Error() + "); create it with: bash scripts/zeo-venv.sh"
		if InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return venv
}

// ScriptPath resolves a Python helper script name relative to integration/python.
func ScriptPath(t testing.TB, name string) string {
	t.Helper()
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(RepoRoot(t), "integration", "python", name)
}
