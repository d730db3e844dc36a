package zeotest

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ServerOptions describe one runzeo instance.
type ServerOptions struct {
	// Storages are the FileStorage names served (default ["1"]).
	Storages []string
	// Msgpack makes the server announce M5 instead of Z5.
	Msgpack bool
	// Blobs gives every storage a blob directory.
	Blobs bool
	// Dir holds the Data.fs files (default: a new t.TempDir()). Reusing a
	// directory across servers lets a test restart a server on the same data.
	Dir string
	// Port to bind on 127.0.0.1 (default: a free one).
	Port int
	// StartTimeout bounds the wait for the server to accept connections (default 30s).
	StartTimeout time.Duration
	// TLS makes the server speak TLS only (<ssl> in <zeo>), with TLS.ZEO as
	// its certificate and requiring client certificates signed by TLS.CA
	// (ZEO 6 has no TLS without authenticate). The readiness probe
	// presents TLS.Upstream.
	TLS *TLSCerts
}

// Server is a running runzeo process.
type Server struct {
	t      testing.TB
	opts   ServerOptions
	Addr   string // 127.0.0.1:port
	Dir    string
	conf   string
	mu     sync.Mutex
	cmd    *exec.Cmd
	waited chan struct{}
	log    *SyncBuffer
}

// DataFS returns the path of a storage's Data.fs file.
func (s *Server) DataFS(storage string) string { return filepath.Join(s.Dir, storage+".fs") }

// BlobDir returns the blob directory of a storage ("" without blobs).
func (s *Server) BlobDir(storage string) string {
	if !s.opts.Blobs {
		return ""
	}
	return filepath.Join(s.Dir, storage+".blobs")
}

// StartServer starts runzeo on 127.0.0.1 and waits until it announces its
// protocol. The server is stopped by t.Cleanup.
func StartServer(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	venv := Venv(t)
	if len(opts.Storages) == 0 {
		opts.Storages = []string{"1"}
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	s := &Server{t: t, opts: opts, Dir: opts.Dir}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		port := opts.Port
		if port == 0 {
			port = FreePort(t)
		}
		s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		if err = s.writeConf(); err != nil {
			t.Fatalf("zeotest: %v", err)
		}
		if err = s.start(venv); err == nil {
			t.Cleanup(s.Stop)
			return s
		}
		if opts.Port != 0 {
			break
		}
	}
	t.Fatalf("zeotest: starting runzeo: %v", err)
	return nil
}

func (s *Server) writeConf() error {
	var b strings.Builder
	fmt.Fprintf(&b, "<zeo>\n  address %s\n", s.Addr)
	if s.opts.Msgpack {
		b.WriteString("  msgpack true\n")
	}
	if c := s.opts.TLS; c != nil {
		fmt.Fprintf(&b, "  <ssl>\n    certificate %s\n    key %s\n    authenticate %s\n  </ssl>\n", c.ZEO, c.ZEOKey, c.CA)
	}
	b.WriteString("</zeo>\n")
	for _, name := range s.opts.Storages {
		fmt.Fprintf(&b, "<filestorage %s>\n  path %s\n", name, s.DataFS(name))
		if s.opts.Blobs {
			fmt.Fprintf(&b, "  blob-dir %s\n", s.BlobDir(name))
		}
		b.WriteString("</filestorage>\n")
	}
	b.WriteString("<eventlog>\n  level WARNING\n  <logfile>\n    path STDERR\n  </logfile>\n</eventlog>\n")
	s.conf = filepath.Join(s.Dir, fmt.Sprintf("zeo-%s.conf", strings.ReplaceAll(s.Addr, ":", "_")))
	return os.WriteFile(s.conf, []byte(b.String()), 0o644)
}

func (s *Server) start(venv string) error {
	cmd := exec.Command(filepath.Join(venv, "bin", "runzeo"), "-C", s.conf)
	log := &SyncBuffer{}
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	s.mu.Lock()
	s.cmd, s.waited, s.log = cmd, waited, log
	s.mu.Unlock()
	deadline := time.Now().Add(s.opts.StartTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-waited:
			return fmt.Errorf("runzeo exited early: %s", log.String())
		default:
		}
		if hello, err := readAnnouncement(s.Addr, s.opts.TLS); err == nil {
			want := "Z5"
			if s.opts.Msgpack {
				want = "M5"
			}
			if hello != want {
				s.Stop()
				return fmt.Errorf("runzeo at %s announced %q, want %q", s.Addr, hello, want)
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("runzeo at %s not ready after %v: %s", s.Addr, s.opts.StartTimeout, log.String())
}

// readAnnouncement connects and reads the server's first frame (its
// protocol), over TLS with certs.
func readAnnouncement(addr string, certs *TLSCerts) (string, error) {
	var c net.Conn
	var err error
	if certs != nil {
		var cfg *tls.Config
		if cfg, err = certs.ClientConfig(certs.Upstream, certs.UpstreamKey); err != nil {
			return "", err
		}
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, cfg)
	} else {
		c, err = net.DialTimeout("tcp", addr, time.Second)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return "", err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 64 {
		return "", fmt.Errorf("announcement of %d bytes", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		return "", err
	}
	return string(buf), nil
}

// Stop terminates the server (TERM, then KILL after 10 s) and waits for it.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, waited := s.cmd, s.waited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited
	}
}

// Restart stops the server and starts it again on the same address and data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	deadline := time.Now().Add(s.opts.StartTimeout)
	for time.Now().Before(deadline) {
		if err = s.start(Venv(s.t)); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond) // the port may linger briefly
	}
	s.t.Fatalf("zeotest: restarting runzeo at %s: %v", s.Addr, err)
}

// Log returns what runzeo has written so far (warnings and errors).
func (s *Server) Log() string {
	s.mu.Lock()
	log := s.log
	s.mu.Unlock()
	if log == nil {
		return ""
	}
	return log.String()
}

var (
	portsMu sync.Mutex
	given   = map[int]bool{}
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that this process has not returned before: the kernel may hand a port
// just closed out again, and two FreePort calls of one configuration (an
// admin and a zeo listen address) then collided.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("zeotest: free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !given[port] {
			given[port] = true
			return port
		}
	}
	t.Fatal("zeotest: no free port not given before in 100 tries")
	return 0
}

// SyncBuffer is a bytes.Buffer that a process's output goroutine may write
// while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *SyncBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *SyncBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// SiteHCL is an all-in-one configuration for tests of the whole daemon:
// a status file written at every publication, the backup commands' metrics
// file, the classic endpoint on a free port, the admin endpoint at admin,
// and one zeo block "main" listening at listen in front of s, with each of
// s's storages backed up to repo/<name> (paths relative to the file).
func (s *Server) SiteHCL(admin, listen string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `status_file = "status"
burst_period = "0s"
backup_metrics_file = "backup.prom"
classic { listen = "127.0.0.1:0" }
admin { listen = %q }
zeo "main" {
  listen   = %q
  upstream = %q
`, admin, listen, s.Addr)
	for _, name := range s.opts.Storages {
		fmt.Fprintf(&b, "  storage %q {\n    data_fs    = %q\n    repository = %q\n  }\n", name, s.DataFS(name), "repo/"+name)
	}
	b.WriteString("}\n")
	return b.String()
}
