package fleet

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/tidstorage/tidstorage/fleet/fleetpb"
	"github.com/tidstorage/tidstorage/internal/rawconn"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/journal"
)

// SidecarConfig configures a Sidecar.
type SidecarConfig struct {
	Name    string // the source name at the tracker (stable across restarts)
	Address string // the tracker's fleet listener, host:port
	// TLS: nil = plaintext (the tracker is on loopback). Each connection
	// uses the files read last (Certs.Reload).
	TLS *Certs
	// BufferFile is the durable send buffer; "" = memory only.
	BufferFile string
	// BufferEvents bounds the reports held unacknowledged (default 1e6).
	BufferEvents int
	// RotateSize: the buffer file restarts from its pending reports when it
	// grew past this and few are pending (default 16 MiB).
	RotateSize int64
	// Storages are the storage ids the sidecar proxies (the tracker must
	// know them all).
	Storages []string
	Version  string
	Logger   hclog.Logger
	Clock    func() time.Time
}

// Sidecar is the sidecar's end of the report stream: a txn.Observer for its
// zeoproxy that never touches the network (docs/design.md, "Accounting
// rule": the tracker accounts every commit against the storages' history,
// so a late report only delays publication), and a sender goroutine (Run).
type Sidecar struct {
	cfg SidecarConfig
	log hclog.Logger

	mu      sync.Mutex
	j       *journal.Journal // nil: memory only (or after a failed append)
	jerr    string
	rec     []byte
	seq     uint64 // last seq given
	q       []item // unacknowledged, in seq order
	sentSeq uint64 // last seq sent on the current stream
	acked   uint64
	gapFrom uint64 // first seq dropped by the overflow in progress (0: none)
	run     uint32
	runs    []uint32 // runs still to recover at the tracker, and this one
	prev    []uint32 // previous runs to recover (Recover)
	wake    chan struct{}
	st      LinkStats
}

// LinkStats describe a sidecar's link to its tracker (admin, logs).
type LinkStats struct {
	Source       string
	Tracker      string
	Connected    bool
	Since        time.Time // when the link came up, or (not Connected) went down; zero before the first attempt ends
	Incarnation  uint32
	LastError    string
	Connects     uint64
	Observed     uint64 // reports numbered
	Sent         uint64 // reports sent (resends included)
	Resent       uint64 // reports sent again after a reconnect
	Acked        uint64 // last seq acknowledged
	AckedReports uint64 // reports acknowledged (each counted once)
	LastSeq      uint64
	Pending      int // reports held unacknowledged (the buffer fill)
	Capacity     int
	Dropped      uint64 // reports dropped by an overflow (declared gaps)
	Gaps         uint64
	LagSeconds   float64 // age of the oldest unacknowledged report
	BufferFile   string
	BufferSize   int64
	BufferError  string
	// Refused: why the tracker refused this sidecar's last attempt ("" once
	// connected): a name another live sidecar holds, a name its
	// certificate does not carry, storages it does not know.
	Refused string `json:",omitempty"`
}

// OpenSidecar opens (or creates) the send buffer, reads what a previous
// run left in it, and starts a new run: PartIDBase is where this run's
// participation ids start.
func OpenSidecar(cfg SidecarConfig) (*Sidecar, error) {
	if cfg.BufferEvents <= 0 {
		cfg.BufferEvents = 1000000
	}
	if cfg.RotateSize <= 0 {
		cfg.RotateSize = 16 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	s := &Sidecar{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1)}
	s.st = LinkStats{Source: cfg.Name, Tracker: cfg.Address, Capacity: cfg.BufferEvents, BufferFile: cfg.BufferFile}
	rp := replayed{recovered: map[uint64]bool{}}
	fresh := true
	damaged := ""
	if cfg.BufferFile != "" {
		j, dmg, err := journal.Open(cfg.BufferFile, journal.Options{}, rp.add)
		if err != nil {
			return nil, fmt.Errorf("sidecar buffer: %w", err)
		}
		s.j = j
		fresh = rp.records == 0
		if dmg != nil {
			damaged = fmt.Sprintf("%d bytes cut at offset %d: %s", dmg.Cut, dmg.Offset, dmg.Reason)
			s.log.Error("sidecar buffer: a damaged tail was cut; the reports it held are a declared gap", "file", cfg.BufferFile, "damage", damaged)
		}
	}
	now := cfg.Clock()
	s.seq = max(rp.lastSeq, uint64(now.UnixNano()))
	seen := map[uint32]bool{}
	for _, r := range rp.runs {
		if !seen[r] {
			seen[r] = true
			if !rp.recovered[uint64(r)<<32] {
				s.prev = append(s.prev, r)
			}
		}
	}
	for s.run == 0 || seen[s.run] {
		var b [4]byte
		_, _ = rand.Read(b[:])
		s.run = binary.LittleEndian.Uint32(b[:])
	}
	s.runs = append(append([]uint32(nil), s.prev...), s.run)
	s.q = rp.items
	for _, it := range s.q {
		if it.kind == recRecover {
			s.runs = append(s.runs, uint32(it.run>>32))
		}
	}
	s.st.Incarnation = s.run
	if rp.old > 0 && damaged == "" {
		damaged = fmt.Sprintf("%d reports in the buffer's first format were not read", rp.old)
		s.log.Error("sidecar buffer: reports written by an earlier version are not read; they are a declared gap", "file", cfg.BufferFile, "reports", rp.old)
	}
	if fresh || damaged != "" {
		reason := "no send buffer from a previous run (first start, buffer_file lost, or none configured)"
		if damaged != "" {
			reason = "the send buffer's tail was damaged: " + damaged
		}
		s.seq++
		s.pushLocked(item{seq: s.seq, time: now.UnixNano(), kind: recGap, gapFrom: 0, reason: reason})
	}
	if s.j != nil {
		var b [5]byte
		b[0] = recRun
		binary.LittleEndian.PutUint32(b[1:], s.run)
		if err := s.j.Append(b[:]); err != nil {
			s.j.Close()
			return nil, fmt.Errorf("sidecar buffer: %w", err)
		}
	}
	if len(rp.items) > 0 {
		s.log.Info("sidecar buffer: reports of the previous run not yet acknowledged will be resent", "reports", len(rp.items))
	}
	return s, nil
}

// PartIDBase is the first participation id of this run (zeoproxy.Config.PartIDBase):
// a random incarnation << 32, new at each start, so that ids never meet
// across sidecars nor across restarts of one.
func (s *Sidecar) PartIDBase() uint64 { return uint64(s.run) << 32 }

// PreviousRuns reports whether runs of earlier starts may have
// participations in flight at the tracker (Recover must be called).
func (s *Sidecar) PreviousRuns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.prev)
}

// Recover reports that the previous runs are gone, with each storage's last
// TID read now: the tracker ends their participations still in flight,
// resolving the ones that sent tpc_finish from the storages' history.
func (s *Sidecar) Recover(live map[string]txn.TID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock().UnixNano()
	for _, r := range s.prev {
		s.seq++
		it := item{seq: s.seq, time: now, kind: recRecover, run: uint64(r) << 32, live: live}
		s.journalLocked(&it)
		s.pushLocked(it)
	}
	s.prev = nil
}

// Observe numbers the event, appends it to the send buffer (one write) and
// queues it for the sender. It never waits for the network.
func (s *Sidecar) Observe(ev txn.Event) {
	now := s.cfg.Clock().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.st.Observed++
	if len(s.q) >= s.cfg.BufferEvents {
		if s.gapFrom == 0 {
			s.gapFrom = s.seq
			s.log.Error("sidecar buffer full: reports are dropped until the tracker acknowledges; their commits will be held at the tracker as unaccounted",
				"capacity", s.cfg.BufferEvents, "tracker", s.cfg.Address)
		}
		s.st.Dropped++
		return
	}
	s.declareGapLocked(s.seq-1, now)
	it := item{seq: s.seq, time: now, kind: recEvent, ev: ev}
	s.journalLocked(&it)
	s.pushLocked(it)
}

// declareGapLocked ends the overflow in progress, if any, at seq (the last
// report dropped): the gap is queued at once, so that the tracker hears of
// it as soon as the buffer has room again (Observe, or ack), not at the
// next report, which an idle sidecar may not make for long.
func (s *Sidecar) declareGapLocked(seq uint64, now int64) {
	if s.gapFrom == 0 || len(s.q) >= s.cfg.BufferEvents {
		return
	}
	g := item{seq: seq, time: now, kind: recGap, gapFrom: s.gapFrom,
		reason: fmt.Sprintf("sidecar buffer overflow (%d reports)", seq+1-s.gapFrom)}
	s.gapFrom = 0
	s.journalLocked(&g)
	s.pushLocked(g)
	s.log.Warn("sidecar buffer has room again: the reports dropped are declared a gap to the tracker",
		"from_seq", g.gapFrom, "to_seq", g.seq)
}

func (s *Sidecar) journalLocked(it *item) {
	if s.j == nil {
		return
	}
	s.rec = it.appendRecord(s.rec[:0])
	if err := s.j.Append(s.rec); err != nil {
		s.jerr = err.Error()
		s.log.Error("sidecar buffer: append failed; reports are kept in memory only from now on (a restart of the sidecar is then a gap)",
			"error", err)
		_ = s.j.Close()
		s.j = nil
	}
}

func (s *Sidecar) pushLocked(it item) {
	if it.kind == recGap {
		s.st.Gaps++
	}
	s.q = append(s.q, it)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// ack trims what the tracker acknowledged; the buffer file restarts from
// the pending reports when it grew large and few are pending.
func (s *Sidecar) ack(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq <= s.acked {
		return
	}
	s.acked = seq
	n := sort.Search(len(s.q), func(i int) bool { return s.q[i].seq > seq })
	for _, it := range s.q[:n] {
		if it.kind == recRecover {
			s.forgetRun(uint32(it.run >> 32))
		}
	}
	s.st.AckedReports += uint64(n)
	if n > 0 {
		if n == len(s.q) {
			s.q = s.q[:0]
		} else if n > len(s.q)/2 {
			s.q = append(s.q[:0], s.q[n:]...)
		} else {
			s.q = s.q[n:]
		}
	}
	s.declareGapLocked(s.seq, s.cfg.Clock().UnixNano())
	if s.j != nil && s.j.Size() > s.cfg.RotateSize && len(s.q) <= 4096 && s.gapFrom == 0 {
		s.rec = appendState(s.rec[:0], s.seq, s.runs, s.q)
		if err := s.j.Rotate(s.rec); err != nil {
			s.log.Warn("sidecar buffer: rotation failed; it keeps growing", "error", err)
		}
	}
}

func (s *Sidecar) forgetRun(r uint32) {
	for i, v := range s.runs {
		if v == r && r != s.run {
			s.runs = append(s.runs[:i], s.runs[i+1:]...)
			return
		}
	}
}

// next returns up to max reports after the last one sent.
func (s *Sidecar) next(buf []item, maxItems int) []item {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.q), func(i int) bool { return s.q[i].seq > s.sentSeq })
	end := min(len(s.q), i+maxItems)
	buf = append(buf[:0], s.q[i:end]...)
	if len(buf) > 0 {
		s.sentSeq = buf[len(buf)-1].seq
	}
	return buf
}

// Stats returns the link's figures.
func (s *Sidecar) Stats() LinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Acked, st.LastSeq, st.Pending = s.acked, s.seq, len(s.q)
	if len(s.q) > 0 {
		st.LagSeconds = float64(s.cfg.Clock().UnixNano()-s.q[0].time) / 1e9
	}
	if s.j != nil {
		st.BufferSize = s.j.Size()
	}
	st.BufferError = s.jerr
	return st
}

// maxBatch is the most reports in one message; sendLinger how long the
// sender waits after a quiet spell before sending, so that reports
// arriving together travel (and are acknowledged and journaled at the
// tracker) together: one message per transaction cost the sidecar 1.6×
// the all-in-one proxy's CPU, 10 ms brings it to 0.9× for 8 ms of
// publication lag (docs/deploy.md, "How far one tracker goes").
const (
	maxBatch   = 512
	sendLinger = 10 * time.Millisecond
)

// Run streams the reports to the tracker until ctx is done, reconnecting
// with backoff; after each reconnect it resends from the tracker's last
// applied seq.
func (s *Sidecar) Run(ctx context.Context) {
	creds := insecure.NewCredentials()
	if s.cfg.TLS != nil {
		creds = s.cfg.TLS.clientCreds()
	}
	// Reconnect within 5 s of the tracker's return (gRPC's default backoff
	// grows to 2 minutes).
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return rawconn.Wrap(c), nil // raw socket I/O (package rawconn)
	}
	conn, err := grpc.NewClient(s.cfg.Address, grpc.WithTransportCredentials(creds), grpc.WithContextDialer(dial),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: 5 * time.Second,
			Backoff: backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second}}))
	if err != nil {
		s.log.Error("fleet: bad tracker address", "address", s.cfg.Address, "error", err)
		return
	}
	defer conn.Close()
	client := fleetpb.NewFleetClient(conn)
	backoff := 100 * time.Millisecond
	lastErr := ""
	for ctx.Err() == nil {
		began := time.Now()
		s.mu.Lock()
		connects := s.st.Connects
		s.mu.Unlock()
		err := s.session(ctx, client)
		s.mu.Lock()
		if s.st.Connected || s.st.Since.IsZero() {
			s.st.Since = s.cfg.Clock()
		}
		s.st.Connected = false
		welcomed := s.st.Connects != connects
		s.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		msg := describe(err)
		maxBackoff := 5 * time.Second
		refused := ""
		switch status.Code(err) {
		case codes.AlreadyExists, codes.FailedPrecondition, codes.PermissionDenied:
			// Refused by the tracker (a name another sidecar holds, a
			// name its certificate does not carry, unknown storages):
			// retried, less often; the reports stay buffered meanwhile.
			refused = status.Convert(err).Message()
			maxBackoff = 30 * time.Second
		}
		if s.cfg.TLS != nil && !welcomed && status.Code(err) == codes.Unavailable && !strings.Contains(msg, "certificate") {
			// TLS 1.3 reports a refused client certificate after the
			// handshake: as a reset, a broken pipe or EOF on first use.
			msg += " (with TLS this is also how a refused certificate shows: check that the tracker's client_ca_file signed this cert_file; the tracker's log names the peer it refused)"
		}
		switch {
		case refused != "" && (msg != lastErr || backoff >= maxBackoff):
			s.log.Error("fleet: the tracker refuses this sidecar; reports are buffered, and it retries (ZEO traffic is not affected): "+refused,
				"tracker", s.cfg.Address, "source", s.cfg.Name, "retry_in", backoff)
		case refused == "" && (msg != lastErr || backoff >= maxBackoff):
			s.log.Error("fleet: link to the tracker down; reports are buffered and resent when it is back (ZEO traffic is not affected)",
				"tracker", s.cfg.Address, "error", msg, "retry_in", backoff)
		}
		lastErr = msg
		s.mu.Lock()
		s.st.LastError, s.st.Refused = msg, refused
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func describe(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Code().String() + ": " + st.Message()
	}
	if err == nil {
		return "stream ended"
	}
	return err.Error()
}

func (s *Sidecar) session(ctx context.Context, client fleetpb.FleetClient) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Report(sctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	lastSeq := s.seq
	s.mu.Unlock()
	hello := &fleetpb.Hello{Source: s.cfg.Name, Incarnation: s.run, Version: s.cfg.Version, LastSeq: lastSeq}
	for _, id := range s.cfg.Storages {
		hello.Storages = append(hello.Storages, []byte(id))
	}
	if err := stream.Send(&fleetpb.SidecarMessage{Hello: hello}); err != nil {
		return recvErr(stream, err)
	}
	m, err := stream.Recv()
	if err != nil {
		return err
	}
	if m.Welcome == nil {
		return errors.New("the tracker did not answer hello with welcome")
	}
	applied := m.Welcome.AppliedSeq
	s.ack(applied)
	s.mu.Lock()
	resend := s.sentSeq
	s.sentSeq = applied
	s.st.Connected, s.st.Since = true, s.cfg.Clock()
	s.st.Connects++
	s.st.LastError, s.st.Refused = "", ""
	pending := len(s.q)
	s.mu.Unlock()
	s.log.Info("fleet: connected to the tracker", "tracker", s.cfg.Address, "source", s.cfg.Name,
		"tracker_applied_seq", applied, "pending", pending)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			s.ack(m.AckSeq)
		}
	}()
	var batch []item
	linger := time.NewTimer(0)
	defer linger.Stop()
	heartbeat := time.NewTimer(heartbeatEvery)
	defer heartbeat.Stop()
	for {
		batch = s.next(batch, maxBatch)
		if len(batch) == 0 {
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
				return ctx.Err()
			case <-heartbeat.C:
				// An idle sidecar still says it is alive: the tracker
				// refuses a second stream under its name while it does.
				heartbeat.Reset(heartbeatEvery)
				if err := stream.Send(&fleetpb.SidecarMessage{}); err != nil {
					return sendErr(errc, err)
				}
				continue
			case <-s.wake:
			}
			// Let a few more reports join this message: one gRPC message
			// (and one ack) per transaction's 4 events cost the sidecar
			// more CPU than its relay; a report may wait sendLinger.
			linger.Reset(sendLinger)
			select {
			case <-linger.C:
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		msg := &fleetpb.SidecarMessage{Items: make([]*fleetpb.Item, len(batch))}
		resent := 0
		for i := range batch {
			it := &batch[i]
			pi := &fleetpb.Item{Seq: it.seq, TimeUnixNano: it.time}
			switch it.kind {
			case recEvent:
				pi.Body = &fleetpb.Item_Event{Event: EventToPB(&it.ev)}
			case recRecover:
				pi.Body = &fleetpb.Item_Recover{Recover: &fleetpb.Recover{PartBase: it.run, Live: tidsToPB(it.live)}}
			default:
				pi.Body = &fleetpb.Item_Gap{Gap: &fleetpb.Gap{FromSeq: it.gapFrom, ToSeq: it.seq, Reason: it.reason}}
			}
			if it.seq <= resend {
				resent++
			}
			msg.Items[i] = pi
		}
		if err := stream.Send(msg); err != nil {
			return sendErr(errc, err)
		}
		heartbeat.Reset(heartbeatEvery)
		s.mu.Lock()
		s.st.Sent += uint64(len(batch))
		s.st.Resent += uint64(resent)
		s.mu.Unlock()
		if len(batch) < maxBatch {
			linger.Reset(sendLinger)
			select {
			case <-linger.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// sendErr: after a failed Send, the status is in what the ack reader's
// Recv returns: only one goroutine may Recv on a stream (a second Recv
// waited forever once the first had taken the error).
func sendErr(errc <-chan error, err error) error {
	select {
	case rerr := <-errc:
		return rerr
	case <-time.After(5 * time.Second):
		return err
	}
}

// recvErr: a failed Send hides the status; Recv tells it (only while no
// other goroutine receives on the stream).
func recvErr(stream fleetpb.Fleet_ReportClient, err error) error {
	if _, rerr := stream.Recv(); rerr != nil {
		return rerr
	}
	return err
}

// Flush waits until every report is acknowledged, or ctx is done.
func (s *Sidecar) Flush(ctx context.Context) bool {
	for {
		s.mu.Lock()
		n := len(s.q)
		s.mu.Unlock()
		if n == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close closes the send buffer (after Run returned).
func (s *Sidecar) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.j == nil {
		return nil
	}
	err := s.j.Close()
	s.j = nil
	return err
}

var _ txn.Observer = (*Sidecar)(nil)
