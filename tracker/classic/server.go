package classic

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultAddr is where ListenAndServe binds when given no address: the
// original daemon's port, on loopback only (the original bound every
// interface).
const DefaultAddr = "127.0.0.1:9001"

// DefaultMaxConns is the connection limit suggested to configurations.
const DefaultMaxConns = 1024

// DefaultWriteTimeout applies when Options.WriteTimeout is zero.
const DefaultWriteTimeout = 30 * time.Second

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("classic: server closed")

// Options configure a Server. The zero value is usable.
type Options struct {
	// Logger receives connection events and every rejected peer or input;
	// nil discards them.
	Logger hclog.Logger
	// MaxFieldSize bounds one field, in bytes (0: DefaultMaxFieldSize).
	MaxFieldSize int
	// MaxCount bounds the count of a list or dict (0: DefaultMaxCount).
	MaxCount int
	// MaxCommandSize bounds the bytes of one whole command
	// (0: DefaultMaxCommandSize).
	MaxCommandSize int
	// MaxConns bounds simultaneous connections; more are closed as soon as
	// accepted. Zero or negative: no limit (as max_connections = 0 in the
	// configuration, whose default is DefaultMaxConns).
	MaxConns int
	// Allow lists the client networks accepted; other peers are closed as
	// soon as accepted. nil accepts every peer; a non-nil empty list accepts
	// none (as an empty allow list in the configuration means).
	Allow []*net.IPNet
	// WriteTimeout bounds the sending of replies to a peer that does not
	// read them (0: DefaultWriteTimeout).
	WriteTimeout time.Duration
	// IdleTimeout, if positive, closes a connection on which no command
	// arrives for that long, unless it has reported a transaction (BEGIN,
	// COMMIT or ABORT): a patched Zope keeps one connection, silent between
	// commits, and loses the first report it writes after a close. Off by
	// default here; the configuration's default is 10 minutes.
	IdleTimeout time.Duration
}

// evictMinIdle is how long a connection must have waited for a command
// before it may be closed to admit a new one: a connection whose first
// command is on its way is not idle.
const evictMinIdle = 250 * time.Millisecond

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.MaxFieldSize <= 0 {
		o.MaxFieldSize = DefaultMaxFieldSize
	}
	if o.MaxCount <= 0 {
		o.MaxCount = DefaultMaxCount
	}
	if o.MaxCommandSize <= 0 {
		o.MaxCommandSize = DefaultMaxCommandSize
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	return o
}

// Server serves the classic protocol to many concurrent clients, feeding one
// Backend.
type Server struct {
	backend Backend
	opts    Options
	log     hclog.Logger
	stats   counters

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]*conn
	wg        sync.WaitGroup
}

// NewServer returns a server feeding backend.
func NewServer(backend Backend, opts Options) *Server {
	opts = opts.withDefaults()
	return &Server{
		backend:   backend,
		opts:      opts,
		log:       opts.Logger.Named("classic"),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]*conn),
	}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// ListenAndServe listens on the TCP address addr (DefaultAddr if empty) and
// serves it until Close.
func (s *Server) ListenAndServe(addr string) error {
	if addr == "" {
		addr = DefaultAddr
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("classic: listen: %w", err)
	}
	return s.Serve(l)
}

// Serve accepts connections on l until Close, then returns ErrServerClosed.
// It closes l when it returns.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	s.log.Info("listening", "address", l.Addr().String())
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("classic: accept: %w", err)
			}
			// Most likely out of file descriptors: wait a little rather
			// than spin, and keep the connections already served.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error("accept failed; retrying", "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.admit(nc)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// admit applies the allow-list and the connection limit, then serves nc.
func (s *Server) admit(nc net.Conn) {
	peer := nc.RemoteAddr().String()
	if !s.allowed(nc.RemoteAddr()) {
		s.stats.denied.Add(1)
		s.log.Warn("connection denied: peer not in the allow-list", "peer", peer)
		nc.Close()
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if s.opts.MaxConns > 0 && len(s.conns) >= s.opts.MaxConns {
		victim := s.idlest(time.Now())
		if victim == nil {
			s.mu.Unlock()
			s.stats.refused.Add(1)
			s.log.Warn("connection refused: too many connections", "peer", peer, "max_conns", s.opts.MaxConns,
				"why", "every connection is busy, a reporter, or idle for less than "+evictMinIdle.String())
			nc.Close()
			return
		}
		// The reserve: the connection idle longest, which never reported a
		// transaction, makes room. Its goroutine leaves the map.
		victim.evicted.Store(true)
		victim.nc.Close()
		s.stats.evicted.Add(1)
	}
	c := &conn{s: s, nc: nc, peer: peer, log: s.log.With("peer", peer)}
	s.conns[nc] = c
	s.wg.Add(1)
	s.mu.Unlock()

	s.stats.accepted.Add(1)
	s.stats.active.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			nc.Close()
			s.mu.Lock()
			delete(s.conns, nc)
			s.mu.Unlock()
			s.stats.active.Add(-1)
		}()
		c.serve()
	}()
}

// idlest returns the connection that has waited longest for a command,
// at least evictMinIdle, among those that never reported a transaction
// and are not being evicted already; nil if there is none. s.mu is held.
func (s *Server) idlest(now time.Time) *conn {
	var best *conn
	var bestSince int64
	limit := now.Add(-evictMinIdle).UnixNano()
	for _, c := range s.conns {
		since := c.idleSince.Load()
		if since == 0 || since > limit || c.reporter.Load() || c.evicted.Load() {
			continue
		}
		if best == nil || since < bestSince {
			best, bestSince = c, since
		}
	}
	return best
}

func (s *Server) allowed(addr net.Addr) bool {
	if s.opts.Allow == nil {
		return true
	}
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	default:
		host, _, err := net.SplitHostPort(addr.String())
		if err != nil {
			return false
		}
		ip = net.ParseIP(host)
	}
	if ip == nil {
		return false
	}
	for _, n := range s.opts.Allow {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// Close stops the listeners, closes every connection and waits for their
// goroutines. Commands already handed to the backend stay applied; a command
// being read is discarded.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
