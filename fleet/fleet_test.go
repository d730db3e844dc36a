package fleet

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/fleet/fleettest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
)

const sA, sB = "A", "B"

type rig struct {
	t    *testing.T
	svc  *tracker.Service
	srv  *Server
	addr string
	tls  *Certs
	ln   net.Listener
	// clock: the server's (default the time).
	clock func() time.Time
}

func (r *rig) stop() {
	r.srv.Stop()
	_ = r.ln.Close()
}

func newRig(t *testing.T, tlsCfg *Certs) *rig {
	svc := tracker.NewService(tracker.ServiceConfig{Config: tracker.Config{Storages: []string{sA, sB}}})
	_, err := svc.OpenJournal(filepath.Join(t.TempDir(), "journal"), tracker.JournalOptions{})
	require.NoError(t, err)
	svc.Bootstrap(map[string]txn.TID{sA: 10, sB: 20}, true)
	svc.HistoryStart(sA, 10, false)
	svc.HistoryStart(sB, 20, false)
	r := &rig{t: t, svc: svc, tls: tlsCfg}
	r.start("127.0.0.1:0")
	t.Cleanup(func() { r.stop(); _ = svc.Close() })
	return r
}

func (r *rig) start(addr string) {
	ln, err := net.Listen("tcp", addr)
	require.NoError(r.t, err)
	r.addr, r.ln = ln.Addr().String(), ln
	srv := NewServer(ServerConfig{Tracker: r.svc, Storages: []string{sA, sB}, TLS: r.tls, Clock: r.clock})
	r.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

func (r *rig) sidecar(cfg SidecarConfig) (*Sidecar, context.CancelFunc) {
	cfg.Address = r.addr
	if cfg.Name == "" {
		cfg.Name = "s1"
	}
	if cfg.Storages == nil {
		cfg.Storages = []string{sA, sB}
	}
	s, err := OpenSidecar(cfg)
	require.NoError(r.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done; _ = s.Close() }
	r.t.Cleanup(stop)
	return s, func() { cancel(); <-done; _ = s.Close() }
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func commit(s *Sidecar, base uint64, n uint64, key txn.Key, info txn.Info, tids map[string]txn.TID) {
	i := n
	for _, st := range []string{sA, sB} {
		s.Observe(txn.Event{Kind: txn.Begin, Part: txn.PartID(base + i), Storage: st, Key: key, Info: info})
		i++
	}
	for j := n; j < i; j++ {
		s.Observe(txn.Event{Kind: txn.Vote, Part: txn.PartID(base + j), OK: true})
	}
	i = n
	for _, st := range []string{sA, sB} {
		s.Observe(txn.Event{Kind: txn.FinishSent, Part: txn.PartID(base + i)})
		s.Observe(txn.Event{Kind: txn.Finished, Part: txn.PartID(base + i), TID: tids[st]})
		i++
	}
}

func published(svc *tracker.Service) [2]txn.TID {
	a, _ := svc.Published(sA)
	b, _ := svc.Published(sB)
	return [2]txn.TID{a, b}
}

// Reports reach the tracker; a tracker outage buffers them and they are
// resent; a sidecar restart resends its buffer and recovers its previous
// run's participation left in doubt from the history.
func TestSidecarStreamResendRestart(t *testing.T) {
	r := newRig(t, nil)
	buf := filepath.Join(t.TempDir(), "buffer")
	s, stop := r.sidecar(SidecarConfig{BufferFile: buf})
	base := s.PartIDBase()
	require.NotZero(t, base>>32)
	info := txn.Info{Client: "h", User: "u", Description: "T1", Extension: "{}"}
	key := txn.NewKey("h", "u", "T1", "{}")
	commit(s, base, 1, key, info, map[string]txn.TID{sA: 11, sB: 21})
	r.svc.History(txn.Commit{Storage: sA, TID: 11, HasMeta: true, User: "u", Description: "T1", Extension: "{}"})
	r.svc.History(txn.Commit{Storage: sB, TID: 21, HasMeta: true, User: "u", Description: "T1", Extension: "{}"})
	waitFor(t, "publication", func() bool { return published(r.svc) == [2]txn.TID{11, 21} })
	waitFor(t, "acks", func() bool { return s.Stats().Pending == 0 })

	// The tracker's listener goes away: reports are buffered.
	r.stop()
	waitFor(t, "disconnect", func() bool { return !s.Stats().Connected })
	info2 := txn.Info{Client: "h", User: "u", Description: "T2", Extension: "{}"}
	commit(s, base, 3, txn.NewKey("h", "u", "T2", "{}"), info2, map[string]txn.TID{sA: 12, sB: 22})
	require.Equal(t, 8, s.Stats().Pending)
	r.start(r.addr)
	r.svc.History(txn.Commit{Storage: sA, TID: 12, HasMeta: true, User: "u", Description: "T2", Extension: "{}"})
	r.svc.History(txn.Commit{Storage: sB, TID: 22, HasMeta: true, User: "u", Description: "T2", Extension: "{}"})
	waitFor(t, "publication after reconnect", func() bool { return published(r.svc) == [2]txn.TID{12, 22} })
	waitFor(t, "acks after reconnect", func() bool { return s.Stats().Pending == 0 })
	require.EqualValues(t, 2, s.Stats().Connects)

	// A participation in doubt when the sidecar dies, the reports of it
	// unacknowledged (the tracker is away).
	s.Observe(txn.Event{Kind: txn.Begin, Part: txn.PartID(base + 5), Storage: sA, Key: key, Info: info})
	s.Observe(txn.Event{Kind: txn.Vote, Part: txn.PartID(base + 5), OK: true})
	waitFor(t, "acks", func() bool { return s.Stats().Pending == 0 })
	r.stop()
	waitFor(t, "disconnect", func() bool { return !s.Stats().Connected })
	s.Observe(txn.Event{Kind: txn.FinishSent, Part: txn.PartID(base + 5)})
	stop()

	s2, _ := r.sidecar(SidecarConfig{BufferFile: buf})
	require.NotEqual(t, base, s2.PartIDBase())
	require.Equal(t, 1, s2.PreviousRuns())
	s2.Recover(map[string]txn.TID{sA: 12, sB: 22})
	require.GreaterOrEqual(t, s2.Stats().Pending, 2, "at least the unacknowledged FinishSent and the recover")
	r.start(r.addr)
	waitFor(t, "recover applied", func() bool { return s2.Stats().Pending == 0 && r.svc.Quiet() })
	require.Empty(t, r.svc.Status().Pins)
	require.Equal(t, [2]txn.TID{12, 22}, published(r.svc))
	require.Greater(t, r.svc.SourceSeq("s1"), uint64(time.Now().Add(-time.Minute).UnixNano()))
}

func TestSidecarUnknownStorageRefused(t *testing.T) {
	r := newRig(t, nil)
	s, _ := r.sidecar(SidecarConfig{Storages: []string{sA, "Z"}})
	waitFor(t, "refusal", func() bool { return strings.Contains(s.Stats().LastError, "does not know") })
	require.Contains(t, s.Stats().LastError, `"Z"`)
	require.Zero(t, r.svc.SourceSeq("s1"))
}

func TestSidecarOverflowDeclaresGap(t *testing.T) {
	r := newRig(t, nil)
	r.stop()
	s, _ := r.sidecar(SidecarConfig{BufferEvents: 3})
	base := s.PartIDBase()
	for i := range uint64(6) {
		s.Observe(txn.Event{Kind: txn.Lost, Part: txn.PartID(base + 1 + i)})
	}
	st := s.Stats()
	require.EqualValues(t, 4, st.Dropped, "the first-start gap and two reports fill the buffer")
	r.start(r.addr)
	// Declared as soon as the tracker's acknowledgements make room, not at
	// the sidecar's next report (an idle sidecar would hide it).
	waitFor(t, "gap declared", func() bool {
		src := r.srv.Sources()
		return s.Stats().Pending == 0 && len(src) == 1 && src[0].Gaps == 1
	})
	require.EqualValues(t, 2, s.Stats().Gaps, "the first start's and the overflow's")
	s.Observe(txn.Event{Kind: txn.Lost, Part: txn.PartID(base + 10)})
	waitFor(t, "drain", func() bool { return s.Stats().Pending == 0 })
	require.EqualValues(t, 2, s.Stats().Gaps)
	require.EqualValues(t, 1, r.srv.Sources()[0].Gaps)
}

func TestFleetMutualTLS(t *testing.T) {
	c, err := fleettest.Write(t.TempDir())
	require.NoError(t, err)
	stls, err := ServerTLS(c.TrackerCert, c.TrackerKey, c.CA)
	require.NoError(t, err)
	r := newRig(t, stls)
	rogue, err := ClientTLS(c.RogueCert, c.RogueKey, c.CA, "127.0.0.1")
	require.NoError(t, err)
	bad, _ := r.sidecar(SidecarConfig{Name: "rogue", TLS: rogue})
	bad.Observe(txn.Event{Kind: txn.Lost, Part: txn.PartID(bad.PartIDBase() + 1)})
	waitFor(t, "refusal", func() bool { return bad.Stats().LastError != "" })
	require.Contains(t, bad.Stats().LastError, "certificate")
	good, err := ClientTLS(c.SidecarCert, c.SidecarKey, c.CA, "127.0.0.1")
	require.NoError(t, err)
	s, _ := r.sidecar(SidecarConfig{TLS: good})
	s.Observe(txn.Event{Kind: txn.Lost, Part: txn.PartID(s.PartIDBase() + 1)})
	waitFor(t, "acks", func() bool { return s.Stats().Pending == 0 && s.Stats().Connected })
	require.Zero(t, r.svc.SourceSeq("rogue"))
	require.Len(t, r.srv.Sources(), 1)
	require.Contains(t, r.srv.Sources()[0].Identity, "CN=sidecar")
}

// The link's figures on both ends: a first start's gap is acknowledged (an
// idle sidecar is not behind), reports are counted once when acknowledged
// and applied, resends are counted as such, and a restart of the sidecar
// is counted by the tracker.
func TestLinkFigures(t *testing.T) {
	r := newRig(t, nil)
	s, stop := r.sidecar(SidecarConfig{})
	waitFor(t, "the first start's gap acknowledged", func() bool { st := s.Stats(); return st.Connected && st.Pending == 0 })
	st := s.Stats()
	require.Zero(t, st.LagSeconds, "nothing pending: no lag")
	require.EqualValues(t, 1, st.AckedReports)
	require.EqualValues(t, 1, st.Gaps)
	require.False(t, st.Since.IsZero())
	src := r.srv.Sources()
	require.Len(t, src, 1)
	require.EqualValues(t, 1, src[0].AppliedReports)
	require.Zero(t, src[0].Restarts)

	base := s.PartIDBase()
	before := time.Now()
	for i := range uint64(5) {
		s.Observe(txn.Event{Kind: txn.Lost, Part: txn.PartID(base + 1 + i)})
	}
	waitFor(t, "acks", func() bool { return s.Stats().Pending == 0 })
	st = s.Stats()
	require.EqualValues(t, 6, st.AckedReports)
	require.EqualValues(t, 6, st.Sent)
	require.Zero(t, st.Resent)
	src = r.srv.Sources()
	require.EqualValues(t, 6, src[0].AppliedReports)
	require.EqualValues(t, 6, src[0].Reports)
	require.False(t, src[0].LastReport.Before(before.Truncate(time.Millisecond)), "the newest report's time: %v, observed after %v", src[0].LastReport, before)
	require.True(t, src[0].Connected)

	// The tracker goes away: pending reports age, and are sent again to the
	// next stream when it comes back.
	r.stop()
	waitFor(t, "disconnect", func() bool { return !s.Stats().Connected })
	waitFor(t, "the tracker sees the stream end", func() bool { return !r.srv.Sources()[0].Connected })
	require.False(t, r.srv.Sources()[0].Since.IsZero())
	s.Observe(txn.Event{Kind: txn.Lost, Part: txn.PartID(base + 10)})
	time.Sleep(20 * time.Millisecond)
	st = s.Stats()
	require.Equal(t, 1, st.Pending)
	require.GreaterOrEqual(t, st.LagSeconds, 0.02)
	require.NotEmpty(t, st.LastError)
	r.start(r.addr)
	waitFor(t, "acks after reconnect", func() bool { return s.Stats().Pending == 0 })
	st = s.Stats()
	require.EqualValues(t, 7, st.AckedReports)
	require.EqualValues(t, 2, st.Connects)
	src = r.srv.Sources() // a new Server: it counts from its start
	require.EqualValues(t, 1, src[0].AppliedReports)

	// The sidecar restarts under the same name: a new incarnation.
	stop()
	s2, _ := r.sidecar(SidecarConfig{})
	waitFor(t, "second run acknowledged", func() bool { st := s2.Stats(); return st.Connected && st.Pending == 0 })
	src = r.srv.Sources()
	require.EqualValues(t, 1, src[0].Restarts)
	require.EqualValues(t, 2, src[0].Connects)
}

// replaceFile puts src's content at dst the way an operator renews a
// certificate: written aside, then renamed over the old one.
func replaceFile(t *testing.T, dst string, content []byte) {
	t.Helper()
	tmp := dst + ".new"
	require.NoError(t, os.WriteFile(tmp, content, 0o600))
	require.NoError(t, os.Rename(tmp, dst))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// trackerPeerCN is the common name of the certificate the tracker at addr
// presents to a new connection.
func trackerPeerCN(t *testing.T, addr string, c fleettest.Certs) string {
	t.Helper()
	cn, err := c.PeerCN(addr)
	require.NoError(t, err)
	return cn
}

// Certificates are read again on Reload (SIGHUP): a client CA added lets a
// refused sidecar in, a renewed tracker certificate is presented to new
// connections, a renewed sidecar certificate is presented at its next
// connection; a file that does not load is an error naming it, and the
// previous certificates stay in use.
func TestCertReload(t *testing.T) {
	dir := t.TempDir()
	c, err := fleettest.Write(dir)
	require.NoError(t, err)
	clientCA := filepath.Join(dir, "clients-ca.crt")
	replaceFile(t, clientCA, readFile(t, c.CA))
	stls, err := ServerTLS(c.TrackerCert, c.TrackerKey, clientCA)
	require.NoError(t, err)
	r := newRig(t, stls)
	require.Equal(t, "tracker", trackerPeerCN(t, r.addr, c))

	// A sidecar whose certificate another CA signed is refused.
	rogue, err := ClientTLS(c.RogueCert, c.RogueKey, c.CA, "127.0.0.1")
	require.NoError(t, err)
	bad, _ := r.sidecar(SidecarConfig{Name: "rogue", TLS: rogue})
	waitFor(t, "refusal", func() bool { return bad.Stats().LastError != "" })
	require.False(t, bad.Stats().Connected)

	// A broken client CA file: an error naming it, the old pool in use.
	replaceFile(t, clientCA, []byte("not a certificate\n"))
	err = stls.Reload()
	require.Error(t, err)
	require.Contains(t, err.Error(), "client_ca_file")
	require.Contains(t, err.Error(), clientCA)
	require.Equal(t, "tracker", trackerPeerCN(t, r.addr, c), "the sidecars' CA is still the old one")

	// The rogue CA added: the sidecar that was refused gets in.
	replaceFile(t, clientCA, append(readFile(t, c.CA), readFile(t, c.RogueCA)...))
	require.NoError(t, stls.Reload())
	deadline := time.Now().Add(30 * time.Second) // its reconnect backoff reaches 5 s
	for !bad.Stats().Connected {
		require.True(t, time.Now().Before(deadline), "the refused sidecar is not accepted after the reload: %s", bad.Stats().LastError)
		time.Sleep(20 * time.Millisecond)
	}
	require.Len(t, r.srv.Sources(), 1)
	require.Contains(t, r.srv.Sources()[0].Identity, "CN=rogue")

	// The tracker's certificate renewed: new connections see the new one.
	newDir := t.TempDir()
	cert2, key2, err := c.Issue(newDir, "tracker-2", true)
	require.NoError(t, err)
	replaceFile(t, c.TrackerKey, readFile(t, key2))
	require.Equal(t, "tracker", trackerPeerCN(t, r.addr, c), "not reloaded yet")
	err = stls.Reload()
	require.Error(t, err, "the new key with the old certificate")
	require.Contains(t, err.Error(), c.TrackerCert)
	require.Contains(t, err.Error(), c.TrackerKey)
	replaceFile(t, c.TrackerCert, readFile(t, cert2))
	require.NoError(t, stls.Reload())
	require.Equal(t, "tracker-2", trackerPeerCN(t, r.addr, c))
	require.Equal(t, "tracker-2", stls.Leaf().Subject.CommonName)

	// A sidecar's certificate renewed: presented at its next connection.
	good, err := ClientTLS(c.SidecarCert, c.SidecarKey, c.CA, "127.0.0.1")
	require.NoError(t, err)
	s, _ := r.sidecar(SidecarConfig{Name: "s1", TLS: good})
	identity := func() string {
		for _, src := range r.srv.Sources() {
			if src.Source == "s1" && src.Connected {
				return src.Identity
			}
		}
		return ""
	}
	waitFor(t, "s1 connected", func() bool { return identity() != "" })
	require.Equal(t, "CN=sidecar", identity())
	side2, sideKey2, err := c.Issue(newDir, "sidecar-2", false)
	require.NoError(t, err)
	replaceFile(t, c.SidecarKey, []byte("garbage"))
	err = good.Reload()
	require.Error(t, err)
	require.Contains(t, err.Error(), c.SidecarKey)
	replaceFile(t, c.SidecarCert, readFile(t, side2))
	replaceFile(t, c.SidecarKey, readFile(t, sideKey2))
	require.NoError(t, good.Reload())
	require.Equal(t, "CN=sidecar", identity(), "the established stream keeps its certificate")
	r.stop()
	waitFor(t, "s1 disconnected", func() bool { return !s.Stats().Connected })
	r.start(r.addr)
	deadline = time.Now().Add(30 * time.Second)
	for identity() == "" {
		require.True(t, time.Now().Before(deadline), "s1 does not reconnect: %s", s.Stats().LastError)
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, "CN=sidecar-2", identity())
}
