package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/tidstorage/tidstorage/fleet/fleetpb"
	"github.com/tidstorage/tidstorage/internal/rawconn"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// Applier is what the Server needs of the tracker; *tracker.Service
// satisfies it.
type Applier interface {
	ObserveBatchFrom(source string, seqs []uint64, evs []txn.Event) uint64
	RecoverFrom(source string, seq uint64, run txn.PartID, live map[string]txn.TID) uint64
	GapFrom(source string, seq uint64) uint64
	SourceSeq(source string) uint64
	// Sources are the sidecars the tracker applied reports from and did
	// not retire: those it expects back after its own restart.
	Sources() []string
	Retire(source string)
}

// quietAfter: a stream that brought nothing for this long (not even the
// sidecar's heartbeat, sent every heartbeatEvery while idle) is taken over
// by a new stream of the same name: the sidecar restarted and the old
// connection has not been noticed dead yet (the keepalives notice it within
// 15 s). A live stream is never taken over: a second sidecar under the same
// name is refused.
const (
	quietAfter     = 15 * time.Second
	heartbeatEvery = 5 * time.Second
	// refusedAwaited: how long after its last refused attempt a refused
	// sidecar's storages count as awaited (it retries at least this often).
	refusedAwaited = 90 * time.Second
)

// ServerConfig configures the tracker's fleet listener.
type ServerConfig struct {
	Tracker Applier
	// Storages are the storage ids the tracker knows: a sidecar proxying
	// another one is refused.
	Storages []string
	// TLS: nil = plaintext, loopback peers only. Each handshake uses the
	// files read last (Certs.Reload).
	TLS    *Certs
	Logger hclog.Logger
	Clock  func() time.Time
}

// Server is the tracker's end of the report streams.
type Server struct {
	fleetpb.UnimplementedFleetServer
	cfg   ServerConfig
	log   hclog.Logger
	known map[string]bool
	grpc  *grpc.Server

	mu      sync.Mutex
	links   map[string]*link
	started time.Time
}

type link struct {
	st       SourceStats
	cancel   context.CancelFunc
	gen      uint64
	target   uint64    // the hello's last seq: resent once applied
	lastRecv time.Time // last message on the stream (heartbeats included)
	// refusedStorages: the storages of the refused sidecar (awaited while
	// it retries).
	refusedStorages []string
	refusedRun      uint32 // its incarnation: once it holds the name, nothing waits for it
	lastRefusalLog  time.Time
}

// SourceStats describe one sidecar as the tracker sees it.
type SourceStats struct {
	Source      string
	Peer        string
	Identity    string // the TLS certificate's subject, if any
	Incarnation uint32
	Version     string
	Connected   bool
	Since       time.Time // when the stream came up, or (not Connected) went down
	Connects    uint64
	Restarts    uint64 // streams that came with a new incarnation (the sidecar restarted) since the tracker started
	Applied     uint64 // last seq applied
	Reports     uint64 // reports received (resends included)
	// AppliedReports counts the reports applied (resends of reports
	// already applied are not).
	AppliedReports uint64
	// LastReport is when the newest applied report was observed, by the
	// sidecar's clock (zero before the first).
	LastReport time.Time
	Gaps       uint64
	LagSeconds float64 // observed → applied, of the last report
	LastError  string
	// Storages are the storage ids it proxies (its hello).
	Storages []string `json:",omitempty"`
	// Resending: connected, and what it buffered while it was away is not
	// all applied yet; its storages' unaccounted commits wait for it.
	Resending bool `json:",omitempty"`
	// Expected: a sidecar the tracker applied reports from before its own
	// start and that has not reconnected yet.
	Expected bool `json:",omitempty"`
	// Refused counts the streams refused under this name (a second live
	// sidecar with the same name, a name its certificate does not carry, a
	// numbering behind the tracker's); LastRefused says the last one's
	// peer and why, at LastRefusedAt.
	Refused       uint64    `json:",omitempty"`
	LastRefused   string    `json:",omitempty"`
	LastRefusedAt time.Time `json:",omitempty"`
}

// NewServer returns the fleet endpoint; Serve starts it.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	s := &Server{cfg: cfg, log: cfg.Logger, known: map[string]bool{}, links: map[string]*link{}, started: cfg.Clock()}
	for _, id := range cfg.Storages {
		s.known[id] = true
	}
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS.serverConfig())
	}
	s.grpc = grpc.NewServer(grpc.Creds(&checkedCreds{TransportCredentials: creds, log: s.log, loopbackOnly: cfg.TLS == nil}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 10 * time.Second, Timeout: 5 * time.Second}))
	fleetpb.RegisterFleetServer(s.grpc, s)
	return s
}

// Serve accepts sidecars on ln until Stop.
func (s *Server) Serve(ln net.Listener) error { return s.grpc.Serve(ln) }

// Stop closes every stream (the sidecars buffer and resend).
func (s *Server) Stop() { s.grpc.Stop() }

// Sources returns every sidecar seen since start, by name.
func (s *Server) Sources() []SourceStats {
	expected := s.cfg.Tracker.Sources()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SourceStats, 0, len(s.links))
	for _, l := range s.links {
		st := l.st
		st.Resending = st.Connected && st.Applied < l.target
		out = append(out, st)
	}
	for _, name := range expected {
		if s.links[name] == nil {
			out = append(out, SourceStats{Source: name, Expected: true, Since: s.started,
				LastError: "not reconnected since the tracker started", Applied: s.cfg.Tracker.SourceSeq(name)})
		}
	}
	slices.SortFunc(out, func(a, b SourceStats) int { return strings.Compare(a.Source, b.Source) })
	return out
}

// Awaited returns the storages whose unaccounted commits a sidecar's resend
// may still account for (tracker.Machine.Tick): those of every sidecar the
// tracker expects that is down or has not resent all it buffered, and of a
// refused sidecar still retrying. A sidecar whose storages are not known
// (not reconnected since the tracker started) holds them all.
func (s *Server) Awaited() []string {
	expected := s.cfg.Tracker.Sources()
	now := s.cfg.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	set := map[string]bool{}
	add := func(sts []string) {
		if len(sts) == 0 {
			for id := range s.known {
				set[id] = true
			}
		}
		for _, id := range sts {
			set[id] = true
		}
	}
	for _, name := range expected {
		if l := s.links[name]; l == nil {
			add(nil)
		} else if !l.st.Connected {
			add(l.st.Storages)
		}
	}
	for _, l := range s.links {
		if l.st.Connected && l.st.Applied < l.target {
			add(l.st.Storages)
		}
		if len(l.refusedStorages) > 0 && now.Sub(l.st.LastRefusedAt) < refusedAwaited {
			add(l.refusedStorages)
		}
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// ErrSidecarsBehind: an operator's accept waits while a sidecar the
// tracker expects is down, resending or refused (Server.Behind).
var ErrSidecarsBehind = errors.New("fleet: a sidecar is behind: its resend may account for what the accept would take " +
	"as the new baseline; retry once it is back and caught up (tidstorage status), or retire it if it is gone for good")

// Behind says, per sidecar the tracker waits for (the Awaited storages'
// reason), its name and why: down, resending, or refused.
func (s *Server) Behind() []string {
	expected := s.cfg.Tracker.Sources()
	now := s.cfg.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, name := range expected {
		if l := s.links[name]; l == nil {
			out = append(out, name+" has not reconnected since the tracker started")
		} else if !l.st.Connected {
			out = append(out, name+" is down")
		}
	}
	for name, l := range s.links {
		if l.st.Connected && l.st.Applied < l.target {
			out = append(out, name+" is resending")
		}
		if len(l.refusedStorages) > 0 && now.Sub(l.st.LastRefusedAt) < refusedAwaited {
			out = append(out, "a sidecar named "+name+" is refused")
		}
	}
	slices.Sort(out)
	return out
}

// ErrConnected: a connected sidecar cannot be retired.
var ErrConnected = errors.New("fleet: the sidecar is connected: stop it first, then retire it")

// Retire forgets a sidecar gone for good (tidstorage fleet retire): its
// row is dropped, and the tracker no longer expects it back.
func (s *Server) Retire(name string) error {
	s.mu.Lock()
	l := s.links[name]
	if l != nil && l.st.Connected {
		s.mu.Unlock()
		return fmt.Errorf("%w (%s from %s)", ErrConnected, name, l.st.Peer)
	}
	delete(s.links, name)
	s.mu.Unlock()
	if l == nil && !slices.Contains(s.cfg.Tracker.Sources(), name) {
		return fmt.Errorf("fleet: no sidecar %q is known", name)
	}
	s.cfg.Tracker.Retire(name)
	s.log.Warn("fleet: sidecar retired: the tracker no longer expects it", "source", name)
	return nil
}

// Report is one sidecar's stream.
func (s *Server) Report(stream fleetpb.Fleet_ReportServer) error {
	ctx := stream.Context()
	peerAddr, identity := "?", ""
	var certNames []string
	if p, ok := peer.FromContext(ctx); ok {
		peerAddr = p.Addr.String()
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			c := ti.State.PeerCertificates[0]
			identity = c.Subject.String()
			certNames = append([]string{c.Subject.CommonName}, c.DNSNames...)
		}
	}
	m, err := stream.Recv()
	if err != nil {
		return err
	}
	h := m.GetHello()
	if h == nil || h.Source == "" {
		s.log.Error("fleet: a peer did not introduce itself as a sidecar; closed", "peer", peerAddr)
		return status.Error(codes.InvalidArgument, "the first message must be a hello naming the sidecar")
	}
	log := s.log.With("source", h.Source, "peer", peerAddr)
	var unknown []string
	for _, b := range h.Storages {
		if !s.known[string(b)] {
			unknown = append(unknown, string(b))
		}
	}
	if len(unknown) > 0 {
		known := make([]string, 0, len(s.known))
		for k := range s.known {
			known = append(known, k)
		}
		slices.Sort(known)
		msg := fmt.Sprintf("sidecar %q proxies storage(s) %s that this tracker does not know (it knows %s): "+
			"give them the same ids in both configurations, or add them to the tracker's zeo blocks",
			h.Source, strings.Join(quoteAll(unknown), ", "), strings.Join(quoteAll(known), ", "))
		log.Error("fleet: sidecar refused: " + msg)
		return status.Error(codes.FailedPrecondition, msg)
	}
	storages := make([]string, len(h.Storages))
	for k, b := range h.Storages {
		storages[k] = string(b)
	}
	slices.Sort(storages)
	// With mutual TLS a sidecar's name is derived from its certificate:
	// it must be the subject's common name or one of its DNS names, so
	// that a fleet certificate cannot report under another sidecar's name.
	if identity != "" && !slices.Contains(certNames, h.Source) {
		msg := fmt.Sprintf("sidecar name %q is not in its certificate (subject %q, names %s): with mutual TLS a sidecar "+
			"reports under a name its certificate carries (its common name or a DNS name): issue it a certificate for "+
			"that name, or leave tracker.name unset to use the certificate's common name", h.Source, identity,
			strings.Join(quoteAll(certNames), ", "))
		return s.refuse(h, peerAddr, storages, codes.PermissionDenied, msg, log)
	}
	applied := s.cfg.Tracker.SourceSeq(h.Source)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l, err := s.attach(h, storages, applied, peerAddr, identity, cancel, log)
	if err != nil {
		return err
	}
	defer s.detach(h.Source, l)
	if err := stream.Send(&fleetpb.TrackerMessage{Welcome: &fleetpb.Welcome{AppliedSeq: applied}}); err != nil {
		return err
	}
	log.Info("fleet: sidecar connected", "incarnation", h.Incarnation, "applied_seq", applied, "last_seq", h.LastSeq,
		"resend", h.LastSeq > applied, "identity", identity)
	// What this stream may acknowledge: never a seq it did not bring.
	maxSeq := applied
	recv := make(chan *fleetpb.SidecarMessage)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case recv <- m:
			case <-lctx.Done():
				return
			}
		}
	}()
	var seqs []uint64
	var evs []txn.Event
	for {
		var m *fleetpb.SidecarMessage
		select {
		case <-lctx.Done():
			if ctx.Err() == nil {
				return status.Error(codes.Aborted, "another stream of the same sidecar name replaced this one")
			}
			return ctx.Err()
		case err := <-errc:
			s.setErr(l, err)
			return err
		case m = <-recv:
		}
		if n := len(m.Items); n > 0 {
			maxSeq = max(maxSeq, m.Items[n-1].Seq)
		}
		last := applied
		var lag float64
		var newest int64
		fresh := uint64(0)
		// Consecutive events are applied in one batch (one lock, one
		// journal write); recovers and gaps in order between them.
		seqs, evs = seqs[:0], evs[:0]
		flush := func() {
			if len(evs) > 0 {
				last = max(last, s.cfg.Tracker.ObserveBatchFrom(h.Source, seqs, evs))
				clear(evs)
				seqs, evs = seqs[:0], evs[:0]
			}
		}
		for _, it := range m.Items {
			if it.Seq > applied {
				fresh++
				newest = max(newest, it.TimeUnixNano)
			}
			switch b := it.Body.(type) {
			case *fleetpb.Item_Event:
				seqs = append(seqs, it.Seq)
				evs = append(evs, EventFromPB(b.Event))
			case *fleetpb.Item_Recover:
				flush()
				last = max(last, s.cfg.Tracker.RecoverFrom(h.Source, it.Seq, txn.PartID(b.Recover.PartBase), tidsFromPB(b.Recover.Live)))
				log.Warn("fleet: sidecar restarted; its previous run's participations in flight are resolved from the storages' history",
					"part_base", b.Recover.PartBase)
			case *fleetpb.Item_Gap:
				flush()
				if it.Seq > last && (b.Gap.FromSeq != 0 || last != 0) {
					s.mu.Lock()
					l.st.Gaps++
					s.mu.Unlock()
					log.Error("fleet: the sidecar declares a gap in its reports: the commits of that period are held as unaccounted until accepted",
						"from_seq", b.Gap.FromSeq, "to_seq", b.Gap.ToSeq, "reason", b.Gap.Reason)
				}
				// The tracker applies a gap as an input of its own: its
				// participations in flight lost their later reports
				// (tracker.Machine.Gap).
				last = max(last, s.cfg.Tracker.GapFrom(h.Source, it.Seq))
			}
			if it.TimeUnixNano != 0 {
				lag = float64(s.cfg.Clock().UnixNano()-it.TimeUnixNano) / 1e9
			}
		}
		flush()
		last = min(last, maxSeq)
		applied = last
		s.mu.Lock()
		l.lastRecv = s.cfg.Clock()
		if last >= l.target && l.st.Applied < l.target {
			log.Info("fleet: the sidecar's resend is applied: it is caught up", "applied_seq", last)
		}
		l.st.Applied, l.st.LagSeconds = last, lag
		l.st.Reports += uint64(len(m.Items))
		l.st.AppliedReports += fresh
		if newest != 0 && (l.st.LastReport.IsZero() || newest > l.st.LastReport.UnixNano()) {
			l.st.LastReport = time.Unix(0, newest)
		}
		s.mu.Unlock()
		if err := stream.Send(&fleetpb.TrackerMessage{AckSeq: last}); err != nil {
			return err
		}
	}
}

func quoteAll(v []string) []string {
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// attach makes this stream the holder of its name, unless another live
// stream holds it: a second sidecar under one name is refused (the first
// keeps its stream), and only a stream gone quiet past quietAfter (a
// restarted sidecar's old connection not yet noticed dead) is taken over.
//
// A sidecar whose numbering is behind what the tracker applied under its
// name (applied) is refused too: another sidecar used the name, and its
// reports would be taken for resends.
func (s *Server) attach(h *fleetpb.Hello, storages []string, applied uint64, peerAddr, identity string, cancel context.CancelFunc,
	log hclog.Logger) (*link, error) {
	now := s.cfg.Clock()
	s.mu.Lock()
	old := s.links[h.Source]
	if old != nil && old.st.Connected && now.Sub(old.lastRecv) < quietAfter {
		s.mu.Unlock()
		msg := fmt.Sprintf("the name %q is held by a live stream from %s (incarnation %d, connected since %s): "+
			"two sidecars report under one name; give each its own name (tracker.name, or with TLS its certificate's)",
			h.Source, old.st.Peer, old.st.Incarnation, old.st.Since.UTC().Format(time.RFC3339))
		return nil, s.refuse(h, peerAddr, storages, codes.AlreadyExists, msg, log.With("holder_peer", old.st.Peer))
	}
	if h.LastSeq != 0 && h.LastSeq < applied {
		s.mu.Unlock()
		msg := fmt.Sprintf("the tracker applied reports numbered up to %d under the name %q, beyond the last this sidecar "+
			"numbered (%d): another sidecar reported under this name. Give every sidecar its own name (tracker.name, or "+
			"with TLS its certificate's); if the other one is gone for good, `tidstorage fleet retire %s` on the tracker "+
			"frees the name", applied, h.Source, h.LastSeq, h.Source)
		return nil, s.refuse(h, peerAddr, storages, codes.FailedPrecondition, msg, log)
	}
	if old != nil && old.st.Connected {
		log.Warn("fleet: the stream holding this name was quiet; a new stream takes it over (a restarted sidecar)",
			"previous_peer", old.st.Peer, "previous_incarnation", old.st.Incarnation, "quiet", now.Sub(old.lastRecv).Round(time.Second))
		old.cancel()
	}
	defer s.mu.Unlock()
	l := &link{cancel: cancel, target: h.LastSeq, lastRecv: now}
	if old != nil {
		l.st = old.st
		l.gen = old.gen + 1
		l.refusedStorages, l.refusedRun, l.lastRefusalLog = old.refusedStorages, old.refusedRun, old.lastRefusalLog
		if l.refusedRun == h.Incarnation {
			l.refusedStorages = nil // the refused sidecar is this one, now connected
		}
		if old.st.Incarnation != h.Incarnation {
			l.st.Restarts++
		}
	}
	l.st.Source, l.st.Peer, l.st.Identity = h.Source, peerAddr, identity
	l.st.Incarnation, l.st.Version, l.st.Storages = h.Incarnation, h.Version, storages
	l.st.Connected, l.st.Since, l.st.LastError = true, now, ""
	l.st.Applied = s.cfg.Tracker.SourceSeq(h.Source)
	l.st.Connects++
	s.links[h.Source] = l
	return l, nil
}

// refuse records and logs a refused stream under name (rate-limited per
// name) and returns the status the sidecar gets: it logs it, shows it in
// tidstorage status, and retries with backoff.
func (s *Server) refuse(h *fleetpb.Hello, peerAddr string, storages []string, code codes.Code, msg string, log hclog.Logger) error {
	name := h.Source
	now := s.cfg.Clock()
	s.mu.Lock()
	l := s.links[name]
	if l == nil {
		l = &link{st: SourceStats{Source: name, Peer: peerAddr, Storages: storages, Since: now}}
		s.links[name] = l
	}
	logIt := now.Sub(l.lastRefusalLog) >= time.Minute || !strings.HasPrefix(l.st.LastRefused, peerAddr+": ")
	l.st.Refused++
	l.st.LastRefused = fmt.Sprintf("%s: %s", peerAddr, msg)
	l.st.LastRefusedAt = now
	l.refusedStorages, l.refusedRun = storages, h.Incarnation
	if logIt {
		l.lastRefusalLog = now
	}
	n := l.st.Refused
	s.mu.Unlock()
	if logIt {
		log.Error("fleet: sidecar refused: "+msg, "refused", n)
	}
	return status.Error(code, msg)
}

func (s *Server) detach(source string, l *link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.links[source] == l {
		l.st.Connected, l.st.Since = false, s.cfg.Clock()
	}
}

func (s *Server) setErr(l *link, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil && !errors.Is(err, context.Canceled) {
		l.st.LastError = err.Error()
	}
}

// checkedCreds refuses non-loopback peers when there is no TLS, and logs
// failed TLS handshakes (a wrong certificate) in the tracker's log.
type checkedCreds struct {
	credentials.TransportCredentials
	log          hclog.Logger
	loopbackOnly bool
}

func (c *checkedCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if c.loopbackOnly && !isLoopback(raw.RemoteAddr()) {
		c.log.Error("fleet: refused a peer that is not on this host: the fleet listener has no tls block, so only loopback sidecars are accepted",
			"peer", raw.RemoteAddr().String())
		raw.Close()
		return nil, nil, errors.New("fleet: only loopback peers are accepted without TLS")
	}
	// Raw socket I/O (package rawconn): a report stream wakes the tracker
	// for every batch of reports.
	conn, ai, err := c.TransportCredentials.ServerHandshake(rawconn.Wrap(raw))
	if err != nil {
		c.log.Error("fleet: TLS handshake failed: the peer is not a sidecar with a certificate signed by client_ca_file; refused",
			"peer", raw.RemoteAddr().String(), "error", err)
	}
	return conn, ai, err
}

func (c *checkedCreds) Clone() credentials.TransportCredentials {
	return &checkedCreds{TransportCredentials: c.TransportCredentials.Clone(), log: c.log, loopbackOnly: c.loopbackOnly}
}

func isLoopback(a net.Addr) bool {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
