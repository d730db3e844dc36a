package zeoproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// ServerConfig is one proxied ZEO server.
type ServerConfig struct {
	Name     string // for logs
	Listen   string // where clients connect: "host:port" or "unix:/path"
	Upstream string // the real ZEO server, same forms
	// ClientAddress is the address clients dial to reach this listener, as
	// written in their zope.conf (same forms; default Listen, with the port
	// actually bound). A storage not listed in Storages is named from it by
	// the classic rule (txn.ClassicStorageID), as the config names the
	// listed ones: behind 0.0.0.0 the listen address is not what clients use.
	ClientAddress string
	// Storages maps ZEO storage names to storage ids; they are bootstrapped
	// and held back (blind) on undecodable traffic.
	Storages map[string]string
	// BlindTimeout closes a connection that has been blind that long (0:
	// never): a blind connection holds its storage's publication back, and
	// its ZODB client reconnects (docs/zeo-protocol.md §1, "Blind
	// connections").
	BlindTimeout time.Duration
	// TLS, if set, terminates TLS on Listen: it is called for each accepted
	// connection and returns the server configuration (certificate, client
	// CAs); the handshake ends, within the handshake timeout (10 s), before the
	// upstream is dialled. Nil: plaintext clients.
	TLS func() *tls.Config
	// UpstreamTLS, if set, re-originates TLS to Upstream, for the relayed
	// connections and the proxy's own (bootstrap, witness, in-doubt
	// resolution); called for each dial. Nil: plaintext.
	UpstreamTLS func() *tls.Config
}

// Config of the proxy: what the daemon sets (cmd/daemon/proxyconfig.go).
// Each limit bears the name of its configuration attribute and, when zero,
// takes the same default (docs/config.md, "limits" and "zeo").
type Config struct {
	Servers []ServerConfig
	// MaxFrameSize (max_frame_size): largest frame decoded whole
	// (register, tpc_begin, replies); default 64 MiB.
	MaxFrameSize int
	// MaxPreRegisterFrame (max_pre_register_frame): largest frame decoded
	// whole from a client before it has proven to be ZEO (a register the
	// server answered without error); default 64 KiB, what real ZEO
	// clients send is a few hundred bytes. At most MaxFrameSize.
	MaxPreRegisterFrame int
	// DecodeBudget (decode_budget) bounds the bytes held for decoding over
	// all connections (frames decoded whole that do not fit in a
	// connection's read buffer); default twice MaxFrameSize.
	DecodeBudget int
	// RegisterTimeout (register_timeout) closes a connection that has
	// neither proven to be ZEO nor gone blind that long after it was
	// accepted; default 60 s.
	RegisterTimeout time.Duration
	// MaxZEOConnections (max_zeo_connections) bounds client connections
	// over all listeners (0: no limit; the configuration's default is
	// 4096); past it a new connection is closed at once, and logged.
	MaxZEOConnections int
	// ClientLabelIdentity (client_label_identity) adds the ZEO client-label
	// (zope.conf <zeoclient> client-label, sent by ClientStorage as
	// set_client_label) to the client identity, so that processes on one
	// remote host are told apart. Only safe when every ZEO storage of a
	// client process carries the same label and labels differ between
	// processes: otherwise the connections of one transaction get
	// different identities, are not linked, and a partial commit can go
	// unnoticed.
	ClientLabelIdentity bool
	// PartIDBase is added to every participation id this proxy allocates:
	// proxies that report to one tracker (sidecars) take distinct bases so
	// that their ids never meet.
	PartIDBase uint64
	Logger     hclog.Logger

	// What no configuration sets: fixed, changed by tests only
	// (export_test.go).

	// maxParsedFrame: frames declaring more are relayed raw and the
	// connection's storage is reported blind (ZEO itself has no limit;
	// default 256 MiB, whatever MaxFrameSize).
	maxParsedFrame int
	// decodeWait is how long a frame waits for its bytes from the decode
	// budget before it is relayed undecoded.
	decodeWait time.Duration
	// finishWait bounds how long the server side is kept after the client
	// left with a tpc_finish pending.
	finishWait time.Duration
	// dialTimeout bounds upstream connections.
	dialTimeout time.Duration
	// handshakeTimeout bounds each TLS handshake, with a client or with the
	// server.
	handshakeTimeout time.Duration
}

// The defaults of the limits the configuration sets: config/defaults.go
// has the same values (a test of this package keeps them equal).
const (
	defaultMaxFrameSize        = 64 << 20
	defaultMaxPreRegisterFrame = 64 << 10
	defaultRegisterTimeout     = 60 * time.Second
)

func (c *Config) setDefaults() {
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = defaultMaxFrameSize
	}
	if c.MaxPreRegisterFrame == 0 {
		c.MaxPreRegisterFrame = defaultMaxPreRegisterFrame
	}
	c.MaxPreRegisterFrame = min(c.MaxPreRegisterFrame, c.MaxFrameSize)
	if c.DecodeBudget == 0 {
		c.DecodeBudget = 2 * c.MaxFrameSize
	}
	if c.RegisterTimeout == 0 {
		c.RegisterTimeout = defaultRegisterTimeout
	}
	if c.maxParsedFrame == 0 {
		c.maxParsedFrame = 256 << 20
	}
	if c.decodeWait == 0 {
		c.decodeWait = 2 * time.Second
	}
	if c.finishWait == 0 {
		c.finishWait = 60 * time.Second
	}
	if c.dialTimeout == 0 {
		c.dialTimeout = 10 * time.Second
	}
	if c.handshakeTimeout == 0 {
		c.handshakeTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
}

// Proxy relays ZEO traffic and reports two-phase commits to a Tracker.
type Proxy struct {
	cfg      Config
	tracker  Tracker
	log      hclog.Logger
	metrics  Metrics
	refusals refusalLog // TLS refusals, logged once per peer and kind a minute
	budget   *decodeBudget
	owners   *owners // loopback clients' processes

	partSeq atomic.Uint64
	connSeq atomic.Uint64

	mu        sync.Mutex
	listeners []*listener
	lastTID   map[string]txn.TID // highest TID seen committed per storage id
	seenTIDs  map[string]*tidRing
	orders    map[string]*storageOrder // commit-lock tenures per storage id
	witnesses map[string]*witness      // own read-only connections, per upstream and storage name
	closed    bool
	wg        sync.WaitGroup
	resolveWG sync.WaitGroup
	stop      stopState
	ctx       context.Context
	cancel    context.CancelFunc
}

// New returns a proxy; Listen starts it.
func New(cfg Config, t Tracker) *Proxy {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Proxy{cfg: cfg, tracker: t, log: cfg.Logger, lastTID: map[string]txn.TID{}, seenTIDs: map[string]*tidRing{}, orders: map[string]*storageOrder{}, witnesses: map[string]*witness{}, ctx: ctx, cancel: cancel,
		budget: newDecodeBudget(ctx, cfg.DecodeBudget, cfg.decodeWait), owners: newOwners(), stop: stopState{released: make(chan struct{})}}
}

// Metrics are the proxy's counters (read them with Load).
type Metrics struct {
	connsOpen, connsTotal, connsRefused              atomic.Int64
	begins, commits, aborts, votesFailed, inDoubt    atomic.Int64
	resolvedCommitted, resolvedAborted, decodeErrors atomic.Int64
	bytesC2S, bytesS2C, framesC2S, framesS2C         atomic.Int64
	blindClosed, unregisteredClosed                  atomic.Int64
	tls                                              tlsCounters
	// Frames relayed undecoded for want of a limit (each makes its
	// connection's storage blind), and connections not yet registered.
	skippedPreRegister, skippedLimit, skippedBudget atomic.Int64
	unregistered                                    atomic.Int64
}

// countSkipped counts a frame the relay wanted whole and relayed undecoded:
// over the decode budget, over MaxPreRegisterFrame (before the client
// registered), or over MaxFrameSize.
func (m *Metrics) countSkipped(overBudget, preRegister bool) {
	switch {
	case overBudget:
		m.skippedBudget.Add(1)
	case preRegister:
		m.skippedPreRegister.Add(1)
	default:
		m.skippedLimit.Add(1)
	}
}

// MetricsSnapshot is a copy of the counters.
type MetricsSnapshot struct {
	ConnsOpen, ConnsTotal, ConnsRefused              int64
	Begins, Commits, Aborts, VotesFailed, InDoubt    int64
	ResolvedCommitted, ResolvedAborted, DecodeErrors int64
	BytesC2S, BytesS2C, FramesC2S, FramesS2C         int64
	// BlindClosed counts blind connections closed after BlindTimeout;
	// UnregisteredClosed those closed after RegisterTimeout.
	BlindClosed, UnregisteredClosed int64
	// TLSHandshakesClient and TLSHandshakesUpstream count the TLS
	// handshakes that succeeded with clients and with ZEO servers;
	// TLSRefused the ones refused, by side and reason (every pair, zeros
	// included).
	TLSHandshakesClient, TLSHandshakesUpstream int64
	TLSRefused                                 []TLSRefusal
	// SkippedPreRegister, SkippedLimit and SkippedBudget count frames
	// relayed undecoded because they exceeded MaxPreRegisterFrame (before register),
	// MaxFrameSize, or the decode budget.
	SkippedPreRegister, SkippedLimit, SkippedBudget int64
	// Unregistered is the count of open client connections whose register
	// the server has not accepted yet.
	Unregistered int64
}

// Metrics returns a snapshot of the proxy's counters.
func (p *Proxy) Metrics() MetricsSnapshot {
	m := &p.metrics
	s := MetricsSnapshot{
		ConnsOpen: m.connsOpen.Load(), ConnsTotal: m.connsTotal.Load(), ConnsRefused: m.connsRefused.Load(),
		Begins: m.begins.Load(), Commits: m.commits.Load(), Aborts: m.aborts.Load(),
		VotesFailed: m.votesFailed.Load(), InDoubt: m.inDoubt.Load(),
		ResolvedCommitted: m.resolvedCommitted.Load(), ResolvedAborted: m.resolvedAborted.Load(),
		DecodeErrors: m.decodeErrors.Load(),
		BytesC2S:     m.bytesC2S.Load(), BytesS2C: m.bytesS2C.Load(),
		FramesC2S: m.framesC2S.Load(), FramesS2C: m.framesS2C.Load(),
		BlindClosed: m.blindClosed.Load(), UnregisteredClosed: m.unregisteredClosed.Load(),
		SkippedPreRegister: m.skippedPreRegister.Load(), SkippedLimit: m.skippedLimit.Load(),
		SkippedBudget: m.skippedBudget.Load(), Unregistered: m.unregistered.Load(),
	}
	m.tls.snapshot(&s)
	return s
}

// Listen opens every configured listener; Serve accepts on them.
func (p *Proxy) Listen() error {
	for _, sc := range p.cfg.Servers {
		network, addr := splitAddr(sc.Listen)
		ln, err := net.Listen(network, addr)
		if err != nil {
			p.Close()
			return fmt.Errorf("zeoproxy: server %q: listen on %s: %w", sc.Name, sc.Listen, err)
		}
		if network == "tcp" {
			// With port 0 the storage ids must name the port really bound.
			if _, port, _ := net.SplitHostPort(addr); port == "0" {
				host, _, _ := net.SplitHostPort(addr)
				sc.Listen = net.JoinHostPort(host, fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
			}
		}
		if sc.ClientAddress == "" {
			sc.ClientAddress = sc.Listen
		}
		l := &listener{p: p, cfg: sc, ln: ln, conns: map[*conn]struct{}{}, handshaking: map[net.Conn]struct{}{},
			setup: make(chan struct{}, setupSlots),
			log:   p.log.Named("zeo").With("server", sc.Name)}
		p.mu.Lock()
		p.listeners = append(p.listeners, l)
		p.mu.Unlock()
	}
	return nil
}

// Addrs returns the listeners' addresses (useful with port 0).
func (p *Proxy) Addrs() []net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]net.Addr, len(p.listeners))
	for i, l := range p.listeners {
		out[i] = l.ln.Addr()
	}
	return out
}

// listenersNow is a copy of the listeners, taken under p.mu.
func (p *Proxy) listenersNow() []*listener {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*listener(nil), p.listeners...)
}

// Serve accepts connections on every listener until Close.
func (p *Proxy) Serve() {
	ls := p.listenersNow()
	for _, l := range ls {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); l.accept() }()
	}
}

// StopAccepting closes the listeners; established connections go on.
func (p *Proxy) StopAccepting() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.listeners {
		_ = l.ln.Close()
	}
}

// Close stops accepting, closes every connection and waits for them.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	ls := p.listeners
	p.mu.Unlock()
	for _, l := range ls {
		_ = l.ln.Close()
	}
	p.closeConns()
	p.wg.Wait()
	p.owners.close()
	p.cancel()
	p.resolveWG.Wait()
	p.closeWitnesses()
}

func (p *Proxy) newPartID() txn.PartID { return txn.PartID(p.cfg.PartIDBase + p.partSeq.Add(1)) }

// noteTID records a TID committed through the proxy (or read at bootstrap).
func (p *Proxy) noteTID(storageID string, tid txn.TID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if tid > p.lastTID[storageID] {
		p.lastTID[storageID] = tid
	}
	r := p.seenTIDs[storageID]
	if r == nil {
		r = &tidRing{}
		p.seenTIDs[storageID] = r
	}
	r.add(tid)
}

// floorTID is the highest TID known committed on the storage. Read when a
// vote reply is seen, it is a commit made before that vote
// (docs/design.md, "In-doubt resolution").
func (p *Proxy) floorTID(storageID string) txn.TID {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastTID[storageID]
}

// claimed reports a TID whose commit the proxy saw a reply for: it belongs
// to a known participation, so it cannot be an in-doubt one's.
func (p *Proxy) claimed(storageID string, tid txn.TID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.seenTIDs[storageID]
	return r != nil && r.has(tid)
}

// tidRing remembers the last TIDs committed on a storage.
type tidRing struct {
	tids [4096]txn.TID
	n    int
}

func (r *tidRing) add(t txn.TID) { r.tids[r.n%len(r.tids)] = t; r.n++ }

func (r *tidRing) has(t txn.TID) bool {
	for i := 0; i < min(r.n, len(r.tids)); i++ {
		if r.tids[i] == t {
			return true
		}
	}
	return false
}

func splitAddr(a string) (network, addr string) {
	if path, ok := strings.CutPrefix(a, "unix:"); ok {
		return "unix", path
	}
	return "tcp", a
}

// listener is one proxied ZEO server.
type listener struct {
	p      *Proxy
	cfg    ServerConfig
	ln     net.Listener
	log    hclog.Logger
	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool // closeAll was called: a connection dialled meanwhile is closed at once
	// handshaking are the accepted sockets in their TLS handshake (closed
	// by closeAll too).
	handshaking map[net.Conn]struct{}
	setup       chan struct{} // setupSlots tokens
}

// setupSlots bounds the connections of one listener being set up at once.
const setupSlots = 8

func (l *listener) storageID(name string) string {
	if id, ok := l.cfg.Storages[name]; ok && id != "" {
		return id
	}
	return txn.ClassicStorageIDOf(l.cfg.ClientAddress, name)
}

func (l *listener) accept() {
	var delay time.Duration
	for {
		cc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.log.Error("accept failed", "error", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		l.p.wg.Add(1)
		go func() { defer l.p.wg.Done(); l.handle(cc) }()
	}
}

func (l *listener) handle(raw net.Conn) {
	p := l.p
	id := p.connSeq.Add(1)
	log := l.log.With("conn", id, "client", raw.RemoteAddr().String())
	if p.cfg.MaxZEOConnections > 0 && p.metrics.connsOpen.Load() >= int64(p.cfg.MaxZEOConnections) {
		log.Error("connection limit reached; closing the new connection", "max_zeo_connections", p.cfg.MaxZEOConnections)
		p.metrics.connsRefused.Add(1)
		_ = raw.Close()
		return
	}
	cc := raw
	if l.cfg.TLS != nil {
		var ok bool
		if cc, ok = l.terminate(raw, log); !ok {
			return
		}
	}
	// At most setupSlots connections of a listener are set up at once: a
	// burst of new connections then waits, parked, instead of filling the
	// scheduler's run queues ahead of the relays of committing clients
	// (each setup is a dial, four buffers, goroutines, an identity). The
	// slot is taken after the client's TLS handshake: a slow or hostile
	// client never holds one.
	l.setup <- struct{}{}
	sc, err := l.dialUpstream()
	if err != nil {
		<-l.setup
		// The client sees a closed connection, as if the server were down,
		// and retries as ZEO clients do.
		var he *handshakeError
		if errors.As(err, &he) {
			l.refused(1, l.cfg.Upstream, he.err, log)
		} else {
			log.Warn("upstream unreachable; closing client connection", "upstream", l.cfg.Upstream, "error", err)
		}
		_ = cc.Close()
		return
	}
	c := &conn{l: l, id: id, client: cc, server: sc, log: log, idDone: make(chan struct{})}
	// The identity comes from the socket itself, under TLS if any.
	host, client, us, known := quickIdentity(raw)
	c.host = host
	if known {
		c.setIdentity(host)
	} else {
		p.owners.resolve(c, client, us, host)
	}
	log.Debug("connected", "upstream", l.cfg.Upstream)
	l.mu.Lock()
	if l.closed { // the proxy closed its connections while this one was dialled
		l.mu.Unlock()
		<-l.setup
		c.closeBoth()
		return
	}
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	p.metrics.connsOpen.Add(1)
	p.metrics.connsTotal.Add(1)
	p.metrics.unregistered.Add(1) // until prove, or the end of the connection
	<-l.setup
	c.serve()
}

func (l *listener) connDone(c *conn) {
	p := l.p
	p.metrics.connsOpen.Add(-1)
	c.leaveUnregistered()
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	c.mu.Lock()
	storageID := c.storageID
	c.mu.Unlock()
	if storageID != "" {
		c.log.Info("client disconnected", "storage", storageID, "frames_c2s", c.cs.frames, "frames_s2c", c.sc.frames)
	} else {
		c.log.Debug("disconnected before register", "frames_c2s", c.cs.frames, "frames_s2c", c.sc.frames)
	}
}

func (l *listener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for c := range l.conns {
		_ = c.client.Close()
		_ = c.server.Close()
	}
	for raw := range l.handshaking {
		_ = raw.Close()
	}
}
