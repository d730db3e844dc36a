// Package s3test runs a real S3-compatible server for tests: the Versity S3
// gateway (github.com/versity/versitygw) with its POSIX backend in a
// temporary directory. The binary is built once with `go install` from the
// Go module proxy into the user cache directory and reused (about 1.5 to 3
// minutes the first time on a fresh machine).
package s3test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/integration/zeotest"
)

// Version is the versitygw release the tests run.
const Version = "v1.8.0"

// Credentials of the test server (passed to clients through the AWS
// environment variables).
const (
	AccessKey = "tidstorage-test"
	SecretKey = "tidstorage-test-secret"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of the versitygw binary, building it if needed.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir := os.Getenv("TIDSTORAGE_VERSITYGW_DIR")
		if dir == "" {
			cache, err := os.UserCacheDir()
			if err != nil {
				buildErr = err
				return
			}
			dir = filepath.Join(cache, "tidstorage-test", "versitygw-"+Version)
		}
		binPath = filepath.Join(dir, "versitygw")
		if _, err := os.Stat(binPath); err == nil {
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		// Build into a directory of our own, then rename: test binaries of
		// several packages may build at once.
		tmp, err := os.MkdirTemp(dir, "build-")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(tmp)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "install", "github.com/versity/versitygw/cmd/versitygw@"+Version)
		cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=")
		cmd.Dir = os.TempDir()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building versitygw %s: %v\n%s", Version, err, out)
			return
		}
		buildErr = os.Rename(filepath.Join(tmp, "versitygw"), binPath)
	})
	if buildErr != nil {
		t.Fatalf("s3test: %v", buildErr)
	}
	return binPath
}

// Server is a running versitygw.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Dir      string // the POSIX backend's root: one directory per bucket
	addr     string
	cmd      *exec.Cmd
	log      zeotest.SyncBuffer
	t        testing.TB
}

// Start runs a server on a free loopback port, stopped at the end of the
// test, and sets the AWS credential variables for the test's clients.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	s := &Server{Dir: t.TempDir(), t: t}
	s.addr = fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	s.Endpoint = "http://" + s.addr
	if tt, ok := t.(*testing.T); ok {
		tt.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
		tt.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	}
	s.start(bin)
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start(bin string) {
	s.t.Helper()
	s.cmd = exec.Command(bin, "--access", AccessKey, "--secret", SecretKey, "--port", s.addr, "posix", s.Dir)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("s3test: start versitygw: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("s3test: versitygw does not listen on %s: %v\n%s", s.addr, err, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL: an object store that vanishes).
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same address and directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start(Binary(s.t))
}

// Log returns what the server printed.
func (s *Server) Log() string { return s.log.String() }
