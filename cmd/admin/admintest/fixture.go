// Package admintest builds a real tracker.Service and classic server in a
// known state, for the tests of the admin endpoint and of the CLI commands
// that read it.
package admintest

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/cmd/admin"
	"github.com/tidstorage/tidstorage/internal/tlsfiles"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/tracker/classic"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// Storage ids of the fixture (the classic form).
const (
	A = "((('localhost', 8100),), 'A')"
	B = "((('localhost', 8100),), 'B')"
	C = "((('localhost', 8200),), 'C')"
)

// T0 is the fixture's "now" once the scenario has run.
var T0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Set sets the clock's time.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// TIDAt returns the TID of T0+d.
func TIDAt(t testing.TB, d time.Duration) txn.TID {
	v, err := txn.TIDFromTime(T0.Add(d))
	require.NoError(t, err)
	return v
}

// Fixture is a tracker.Service after the scenario of New.
type Fixture struct {
	Tracker *tracker.Service
	Classic *classic.Server
	Clock   *Clock
	// PartialPin holds A and B; BlindPin holds C.
	PartialPin, BlindPin uint64
	// Expected values.
	BootC, T1A, T1B, T2A txn.TID
	ProxyStats           zeoproxy.MetricsSnapshot
	StatusFileStats      statusfile.Stats
}

// New plays this scenario, the clock ending at T0:
//
//	T0-15m  bootstrap A, B, C (clean start)
//	T0-2m   classic t1 on A and B commits (over a real classic connection)
//	T0-60s  classic t2 begins on C and stays in flight
//	T0-30s  a proxy transaction on A and B: both vote, A commits, B's
//	        connection is lost before tpc_finish: a partial commit
//	T0-10s  a connection to C turns blind
//	T0-5s   a proxy transaction on C votes and stays in flight
func New(t testing.TB) *Fixture {
	f := &Fixture{Clock: &Clock{}}
	f.Clock.Set(T0.Add(-15 * time.Minute))
	f.Tracker = tracker.NewService(tracker.ServiceConfig{
		Config: tracker.Config{Storages: []string{A, B, C}},
		Clock:  f.Clock.Now,
	})
	f.BootC = TIDAt(t, -5*time.Minute)
	f.Tracker.Bootstrap(map[string]txn.TID{A: TIDAt(t, -10*time.Minute), B: TIDAt(t, -9*time.Minute), C: f.BootC}, true)

	f.Classic = classic.NewServer(f.Tracker, classic.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); f.Classic.Serve(ln) }()
	t.Cleanup(func() { f.Classic.Close(); <-done })
	cl, err := classic.Dial(ln.Addr().String(), 5*time.Second)
	require.NoError(t, err)
	// Left open, so that the endpoint's active count is a known 1.
	t.Cleanup(func() { cl.Close() })

	f.Clock.Set(T0.Add(-2 * time.Minute))
	f.T1A, f.T1B = TIDAt(t, -2*time.Minute), TIDAt(t, -2*time.Minute+time.Millisecond)
	require.NoError(t, cl.Begin("t1", []string{A, B}))
	require.NoError(t, cl.Commit("t1", map[string]txn.TID{A: f.T1A, B: f.T1B}))
	_, err = cl.Dump() // replies come in order: t1 is applied
	require.NoError(t, err)
	f.Clock.Set(T0.Add(-60 * time.Second))
	require.NoError(t, cl.Begin("t2", []string{C}))
	_, err = cl.Dump()
	require.NoError(t, err)

	f.Clock.Set(T0.Add(-30 * time.Second))
	info := txn.Info{Client: "127.0.0.1:50000 (pid 4242)", User: "/plone admin", Description: "/plone/edit"}
	key := txn.NewKey(info.Client, info.User, info.Description, "")
	f.Tracker.Observe(txn.Event{Kind: txn.Begin, Part: 1, Storage: A, Key: key, Info: info})
	f.Tracker.Observe(txn.Event{Kind: txn.Begin, Part: 2, Storage: B, Key: key, Info: info})
	f.Tracker.Observe(txn.Event{Kind: txn.Vote, Part: 1, OK: true})
	f.Tracker.Observe(txn.Event{Kind: txn.Vote, Part: 2, OK: true})
	f.Tracker.Observe(txn.Event{Kind: txn.FinishSent, Part: 1})
	f.T2A = TIDAt(t, -30*time.Second)
	f.Tracker.Observe(txn.Event{Kind: txn.Finished, Part: 1, TID: f.T2A})
	f.Tracker.Observe(txn.Event{Kind: txn.Lost, Part: 2}) // before tpc_finish reached B

	f.Clock.Set(T0.Add(-10 * time.Second))
	f.Tracker.Observe(txn.Event{Kind: txn.Blind, Storage: C, Reason: "undecodable frame from 127.0.0.1:50001"})
	f.Clock.Set(T0.Add(-5 * time.Second))
	other := txn.Info{Client: "127.0.0.1:50002 (pid 4343)", User: "/plone editor", Description: "/plone/news/add"}
	f.Tracker.Observe(txn.Event{Kind: txn.Begin, Part: 3, Storage: C, Info: other,
		Key: txn.NewKey(other.Client, other.User, other.Description, "")})
	f.Tracker.Observe(txn.Event{Kind: txn.Vote, Part: 3, OK: true})
	f.Clock.Set(T0)

	for _, p := range f.Tracker.Status().Pins {
		switch p.Kind {
		case tracker.PinPartial:
			f.PartialPin = p.ID
		case tracker.PinBlind:
			f.BlindPin = p.ID
		}
	}
	require.NotZero(t, f.PartialPin, "the scenario must produce a partial commit")
	require.NotZero(t, f.BlindPin, "the scenario must produce a blind pin")

	// The proxy needs ZEO servers; its counters are plain values here.
	f.ProxyStats = zeoproxy.MetricsSnapshot{ConnsOpen: 3, ConnsTotal: 7, Begins: 2, Commits: 1, Aborts: 0,
		VotesFailed: 0, InDoubt: 0, DecodeErrors: 1, BytesC2S: 123456, BytesS2C: 654321, FramesC2S: 100, FramesS2C: 99,
		ConnsRefused: 2, UnregisteredClosed: 3, SkippedPreRegister: 4, SkippedLimit: 5, SkippedBudget: 6, Unregistered: 1,
		TLSHandshakesClient: 7, TLSHandshakesUpstream: 7,
		TLSRefused: []zeoproxy.TLSRefusal{{Side: zeoproxy.SideClient, Reason: zeoproxy.ReasonNoCertificate, Count: 2}}}
	f.StatusFileStats = statusfile.Stats{Path: "/var/lib/tidstorage/status", Lines: 5, FileLines: 12, Errors: 1,
		LastError: "statusfile: write: no space left on device", LastWrite: T0.Add(-10 * time.Second)}
	return f
}

// Sources returns the fixture's sources, every part present.
func (f *Fixture) Sources() admin.Sources {
	return admin.Sources{
		Tracker:    f.Tracker,
		Proxy:      func() zeoproxy.MetricsSnapshot { return f.ProxyStats },
		Classic:    f.Classic.Stats,
		StatusFile: func() statusfile.Stats { return f.StatusFileStats },
		Certificates: func() []tlsfiles.Expiry {
			return []tlsfiles.Expiry{{Block: "zeo.main.tls", Attr: "cert_file", File: "/etc/tidstorage/zeo-proxy.crt",
				Subject: "CN=zeo1.example.com", NotAfter: T0.Add(90 * 24 * time.Hour)}}
		},
		Clock:   f.Clock.Now,
		Version: "v0.0.0-test",
		Token:   Token,
	}
}

// Token is the admin token of the fixtures' sources: tests send it as
// "Authorization: Bearer "+Token (Bearer is the header value).
const Token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// Bearer is the Authorization header value that carries Token.
const Bearer = "Bearer " + Token
