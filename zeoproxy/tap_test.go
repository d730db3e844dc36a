package zeoproxy_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// tap is a recording TCP pass-through: it relays each connection to target
// and keeps every byte of both directions.
type tap struct {
	ln     net.Listener
	target string
	// srvTLS and cliTLS, when set, make the tap a TLS one: it terminates
	// the client's TLS and dials the target over TLS, and records the
	// plaintext.
	srvTLS, cliTLS *tls.Config
	mu             sync.Mutex
	conns          []*tapConn
	wg             sync.WaitGroup
}

type tapConn struct {
	mu       sync.Mutex
	c2s, s2c []byte
}

func startTap(t *testing.T, target string) *tap { return startTLSTap(t, target, nil, nil) }

func startTLSTap(t *testing.T, target string, srvTLS, cliTLS *tls.Config) *tap {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tp := &tap{ln: ln, target: target, srvTLS: srvTLS, cliTLS: cliTLS}
	go tp.accept()
	t.Cleanup(func() { ln.Close() })
	return tp
}

func (tp *tap) Addr() string { return tp.ln.Addr().String() }

func (tp *tap) accept() {
	for {
		c, err := tp.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", tp.target)
		if err != nil {
			c.Close()
			continue
		}
		if tp.srvTLS != nil {
			c = tls.Server(c, tp.srvTLS)
		}
		if tp.cliTLS != nil {
			s = tls.Client(s, tp.cliTLS)
		}
		tc := &tapConn{}
		tp.mu.Lock()
		tp.conns = append(tp.conns, tc)
		tp.mu.Unlock()
		tp.wg.Add(2)
		go tp.copy(s, c, tc, true)
		go tp.copy(c, s, tc, false)
	}
}

func (tp *tap) copy(dst, src net.Conn, tc *tapConn, c2s bool) {
	defer tp.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			tc.mu.Lock()
			if c2s {
				tc.c2s = append(tc.c2s, buf[:n]...)
			} else {
				tc.s2c = append(tc.s2c, buf[:n]...)
			}
			tc.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	// Propagate the close both ways, as a process exit would.
	_ = dst.Close()
	_ = src.Close()
}

// digests returns, per connection, hash(c2s)+hash(s2c), sorted.
func (tp *tap) digests() []string {
	tp.wg.Wait()
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var out []string
	for _, c := range tp.conns {
		h1, h2 := sha256.Sum256(c.c2s), sha256.Sum256(c.s2c)
		out = append(out, hex.EncodeToString(h1[:8])+"/"+hex.EncodeToString(h2[:8])+"/"+itoa(len(c.c2s))+"+"+itoa(len(c.s2c)))
	}
	sort.Strings(out)
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }
