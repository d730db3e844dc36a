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
	"github.com/tidstorage/tidstorage/internal/txn"
)

// Applier is what the Server needs of the tracker; *tracker.Service
// satisfies it.
type Applier interface {
	ObserveBatchFrom(source string, seqs []uint64, evs []txn.Event) uint64
	RecoverFrom(source string, seq uint64, base txn.PartID, live map[string]txn.TID) uint64
	SourceSeq(source string) uint64
}

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

	mu    sync.Mutex
	links map[string]*link
}

type link struct {
	st     SourceStats
	cancel context.CancelFunc
	gen    uint64
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
}

// NewServer returns the fleet endpoint; Serve starts it.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	s := &Server{cfg: cfg, log: cfg.Logger, known: map[string]bool{}, links: map[string]*link{}}
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
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SourceStats, 0, len(s.links))
	for _, l := range s.links {
		out = append(out, l.st)
	}
	slices.SortFunc(out, func(a, b SourceStats) int { return strings.Compare(a.Source, b.Source) })
	return out
}

// Report is one sidecar's stream.
func (s *Server) Report(stream fleetpb.Fleet_ReportServer) error {
	ctx := stream.Context()
	peerAddr, identity := "?", ""
	if p, ok := peer.FromContext(ctx); ok {
		peerAddr = p.Addr.String()
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			identity = ti.State.PeerCertificates[0].Subject.String()
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
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l := s.attach(h, peerAddr, identity, cancel, log)
	defer s.detach(h.Source, l)
	applied := s.cfg.Tracker.SourceSeq(h.Source)
	if err := stream.Send(&fleetpb.TrackerMessage{Welcome: &fleetpb.Welcome{AppliedSeq: applied}}); err != nil {
		return err
	}
	log.Info("fleet: sidecar connected", "incarnation", h.Incarnation, "applied_seq", applied, "identity", identity)
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
				// A gap changes nothing in the tracker (the storages'
				// history accounts for those commits): everything before it
				// is applied, so it is acknowledged, lest a sidecar whose
				// last report is a gap (a first start) look behind forever.
				last = max(last, it.Seq)
			}
			if it.TimeUnixNano != 0 {
				lag = float64(s.cfg.Clock().UnixNano()-it.TimeUnixNano) / 1e9
			}
		}
		flush()
		applied = last
		s.mu.Lock()
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

func (s *Server) attach(h *fleetpb.Hello, peerAddr, identity string, cancel context.CancelFunc, log hclog.Logger) *link {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.links[h.Source]
	l := &link{cancel: cancel}
	if old != nil {
		l.st = old.st
		l.gen = old.gen + 1
		if old.st.Incarnation != h.Incarnation {
			l.st.Restarts++
		}
		if old.st.Connected {
			log.Warn("fleet: a second stream of this sidecar name replaces the first (a restart, or two sidecars with one name: names must be unique)",
				"previous_peer", old.st.Peer, "previous_incarnation", old.st.Incarnation)
			old.cancel()
		}
	}
	l.st.Source, l.st.Peer, l.st.Identity = h.Source, peerAddr, identity
	l.st.Incarnation, l.st.Version = h.Incarnation, h.Version
	l.st.Connected, l.st.Since, l.st.LastError = true, s.cfg.Clock(), ""
	l.st.Connects++
	s.links[h.Source] = l
	return l
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
	conn, ai, err := c.TransportCredentials.ServerHandshake(raw)
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
