package zeoproxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tidstorage/tidstorage/zrpc"
)

// TLS on both sides of a proxied server (docs/deploy.md, "ZEO over TLS").
// Everything happens at accept and dial: a connection's TLS handshakes end
// before the relay starts, and the relay reads and writes the decrypted
// streams exactly as it does plaintext sockets, so the frames it forwards
// are the same bytes and what it observes is unchanged. The client
// identity is taken from the TCP (or unix) socket under the TLS layer.

// TLS sides and refusal reasons, the labels of the refusal counters.
const (
	SideClient   = "client"   // clients -> tidstorage (ServerConfig.TLS)
	SideUpstream = "upstream" // tidstorage -> ZEO (ServerConfig.UpstreamTLS)
)

// Why a TLS handshake was refused.
const (
	// ReasonNotTLS: the peer spoke something else (a plaintext client
	// that sends first, a ZEO server without <ssl>).
	ReasonNotTLS = "not_tls"
	// ReasonTimeout: no handshake within the handshake timeout; a plaintext ZEO
	// client sends nothing (it waits for the server to speak first) and
	// ends here.
	ReasonTimeout = "timeout"
	// ReasonNoCertificate: the client presented no certificate where one
	// is required.
	ReasonNoCertificate = "no_certificate"
	// ReasonBadCertificate: the peer's certificate does not verify (another
	// CA, expired, not for the server's name).
	ReasonBadCertificate = "bad_certificate"
	// ReasonPeerRefused: the peer refused ours (a TLS alert: it does not
	// trust our certificate, or wanted one and got none).
	ReasonPeerRefused = "peer_refused"
	// ReasonClosed: the peer closed the connection during the handshake.
	ReasonClosed = "closed"
	// ReasonOther: any other handshake failure (no common version or
	// cipher, a malformed message).
	ReasonOther = "other"
)

var tlsSides = [...]string{SideClient, SideUpstream}

var tlsReasons = [...]string{ReasonNotTLS, ReasonTimeout, ReasonNoCertificate, ReasonBadCertificate,
	ReasonPeerRefused, ReasonClosed, ReasonOther}

// tlsCounters count TLS handshakes by side, and refusals by side and reason.
type tlsCounters struct {
	ok      [len(tlsSides)]atomic.Int64
	refused [len(tlsSides)][len(tlsReasons)]atomic.Int64
}

// TLSRefusal is the count of refused handshakes of one side and reason.
type TLSRefusal struct {
	Side, Reason string
	Count        int64
}

func (t *tlsCounters) snapshot(m *MetricsSnapshot) {
	m.TLSHandshakesClient, m.TLSHandshakesUpstream = t.ok[0].Load(), t.ok[1].Load()
	for s, side := range tlsSides {
		for r, reason := range tlsReasons {
			m.TLSRefused = append(m.TLSRefused, TLSRefusal{Side: side, Reason: reason, Count: t.refused[s][r].Load()})
		}
	}
}

func (t *tlsCounters) refuse(side int, reason string) {
	for r, name := range tlsReasons {
		if name == reason {
			t.refused[side][r].Add(1)
			return
		}
	}
}

// refusalReason classifies a failed handshake.
func refusalReason(err error, server bool) string {
	var rh tls.RecordHeaderError
	var ne net.Error
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	var op *net.OpError
	var ra *refusedAfterHandshake
	switch {
	case errors.As(err, &ra):
		return ReasonPeerRefused
	case errors.As(err, &rh):
		return ReasonNotTLS
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonTimeout
	case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &ci), errors.As(err, &he):
		return ReasonBadCertificate
	case server && strings.Contains(err.Error(), "client didn't provide a certificate"):
		return ReasonNoCertificate
	case errors.As(err, &op) && op.Op == "remote error":
		return ReasonPeerRefused
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return ReasonClosed
	}
	return ReasonOther
}

// refusalLog logs each refusal once per peer, side and reason per
// refusalLogWindow: a client that retries every second is one line a
// minute, with the count of the ones not logged.
type refusalLog struct {
	mu   sync.Mutex
	last map[string]*refusalEntry
}

type refusalEntry struct {
	at         time.Time
	suppressed int
}

// refusalLogWindow is how often one peer's refusals of one kind are logged.
var refusalLogWindow = time.Minute

// allow reports whether the refusal is logged now, and how many like it
// were not since the last line.
func (r *refusalLog) allow(key string, now time.Time) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]*refusalEntry{}
	}
	e := r.last[key]
	if e != nil && now.Sub(e.at) < refusalLogWindow {
		e.suppressed++
		return false, 0
	}
	if e == nil {
		if len(r.last) >= 4096 { // many peers: forget the old entries
			for k, old := range r.last {
				if now.Sub(old.at) >= refusalLogWindow {
					delete(r.last, k)
				}
			}
		}
		e = &refusalEntry{}
		r.last[key] = e
	}
	n := e.suppressed
	e.at, e.suppressed = now, 0
	return true, n
}

// refused counts and logs one refused handshake.
func (l *listener) refused(side int, peer string, err error, log hclog.Logger) {
	p := l.p
	reason := refusalReason(err, side == 0)
	p.metrics.tls.refuse(side, reason)
	host := peer
	if h, _, e := net.SplitHostPort(peer); e == nil {
		host = h
	}
	ok, suppressed := p.refusals.allow(tlsSides[side]+"\x00"+host+"\x00"+reason, time.Now())
	if !ok {
		return
	}
	args := []any{"reason", reason, "error", err}
	if suppressed > 0 {
		args = append(args, "not_logged_since_last", suppressed)
	}
	if side == 0 {
		log.Warn("TLS handshake with a client refused; nothing was sent to the ZEO server", args...)
		return
	}
	log.Error("TLS handshake with the ZEO server failed; closing the client connection",
		append([]any{"upstream", l.cfg.Upstream}, args...)...)
}

// terminate runs the server side of a client's TLS handshake, within
// the handshake timeout. The handshake ends before the upstream is dialled, so
// a refused client never reaches the ZEO server.
func (l *listener) terminate(raw net.Conn, log hclog.Logger) (net.Conn, bool) {
	p := l.p
	tc := tls.Server(raw, l.cfg.TLS())
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = raw.Close()
		return nil, false
	}
	l.handshaking[raw] = struct{}{}
	l.mu.Unlock()
	_ = raw.SetDeadline(time.Now().Add(p.cfg.handshakeTimeout))
	err := tc.Handshake()
	_ = raw.SetDeadline(time.Time{})
	l.mu.Lock()
	delete(l.handshaking, raw)
	closed := l.closed
	l.mu.Unlock()
	if err != nil {
		if !closed { // not a refusal: the proxy is closing
			l.refused(0, raw.RemoteAddr().String(), err, log)
		}
		_ = raw.Close()
		return nil, false
	}
	p.metrics.tls.ok[0].Add(1)
	return tc, true
}

// dialUpstream connects to the ZEO server, over TLS with UpstreamTLS. A
// failed TLS handshake is returned as a *handshakeError.
func (l *listener) dialUpstream() (net.Conn, error) {
	p := l.p
	network, addr := splitAddr(l.cfg.Upstream)
	sc, err := net.DialTimeout(network, addr, p.cfg.dialTimeout)
	if err != nil || l.cfg.UpstreamTLS == nil {
		return sc, err
	}
	tc := tls.Client(sc, l.cfg.UpstreamTLS())
	_ = sc.SetDeadline(time.Now().Add(p.cfg.handshakeTimeout))
	err = tc.Handshake()
	// With TLS 1.3 the server judges our certificate after our side of the
	// handshake has ended: its refusal comes as an alert on the first read.
	// A ZEO server speaks first (its protocol announcement), so reading
	// that first byte here tells, before the relay starts.
	var first [1]byte
	n := 0
	if err == nil {
		if n, err = tc.Read(first[:]); err != nil && refusalReason(err, false) == ReasonClosed {
			// Closed right after the handshake: the server did not
			// accept us (Python's ssl may close without an alert).
			err = &refusedAfterHandshake{err}
		}
	}
	_ = sc.SetDeadline(time.Time{})
	if err != nil {
		_ = sc.Close()
		return nil, &handshakeError{err}
	}
	p.metrics.tls.ok[1].Add(1)
	return &prefixConn{Conn: tc, pre: first[:n]}, nil
}

// refusedAfterHandshake: the server closed the connection once the
// handshake was over, before its first byte.
type refusedAfterHandshake struct{ err error }

func (e *refusedAfterHandshake) Error() string {
	return "the server closed the connection after the handshake (it did not accept our certificate?): " + e.err.Error()
}

// handshakeError is a failed TLS handshake with the ZEO server.
type handshakeError struct{ err error }

func (e *handshakeError) Error() string { return "TLS handshake: " + e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// prefixConn returns pre before what Conn reads: the byte dialUpstream
// read to learn the outcome of the handshake.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(b, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// clientOptions are the options of the proxy's own connections to the
// server (bootstrap, witness, resolution): o, with the upstream TLS.
func (l *listener) clientOptions(o zrpc.ClientOptions) *zrpc.ClientOptions {
	if l.cfg.UpstreamTLS != nil {
		o.TLS = l.cfg.UpstreamTLS()
	}
	return &o
}
