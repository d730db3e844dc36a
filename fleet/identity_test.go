package fleet

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/fleet/fleettest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

func sourceRow(r *rig, name string) SourceStats {
	for _, s := range r.srv.Sources() {
		if s.Source == name {
			return s
		}
	}
	return SourceStats{}
}

// A second live stream under a name the tracker already has is refused:
// the first keeps its stream, the second is told who holds the name,
// reports nothing and retries; once the first is gone for good, the second
// takes the name. Nothing it buffered meanwhile is lost, and nothing of one
// sidecar is acknowledged to the other.
func TestSecondStreamUnderOneNameRefused(t *testing.T) {
	r := newRig(t, nil)
	first, stopFirst := r.sidecar(SidecarConfig{})
	first.Observe(txn.Event{Kind: txn.Lost, Part: txn.PartID(first.PartIDBase() + 1)})
	waitFor(t, "first connected", func() bool { return first.Stats().Connected && first.Stats().Pending == 0 })

	second, _ := r.sidecar(SidecarConfig{})
	for i := range uint64(3) {
		second.Observe(txn.Event{Kind: txn.Lost, Part: txn.PartID(second.PartIDBase() + 1 + i)})
	}
	waitFor(t, "refusal", func() bool { return second.Stats().Refused != "" })
	st := second.Stats()
	require.False(t, st.Connected)
	require.Contains(t, st.Refused, `the name "s1" is held by a live stream from 127.0.0.1:`)
	require.Zero(t, st.AckedReports, "nothing of the refused sidecar is acknowledged")
	require.Equal(t, 4, st.Pending, "its reports stay buffered: the first start's gap and three events")
	require.True(t, first.Stats().Connected)
	require.EqualValues(t, 1, first.Stats().Connects, "the first keeps its stream")
	row := sourceRow(r, "s1")
	require.True(t, row.Connected)
	require.NotZero(t, row.Refused)
	require.Contains(t, row.LastRefused, "held by a live stream")
	require.Equal(t, []string{sA, sB}, r.srv.Awaited(), "the refused sidecar's storages wait for it")

	// The first is gone: the second takes the name at its next attempt.
	applied := r.svc.SourceSeq("s1")
	stopFirst()
	waitFor(t, "takeover", func() bool { return second.Stats().Connected && second.Stats().Pending == 0 })
	require.Greater(t, r.svc.SourceSeq("s1"), applied)
	require.Empty(t, second.Stats().Refused)
	require.EqualValues(t, 4, second.Stats().AckedReports)
	waitFor(t, "nothing awaited", func() bool { return len(r.srv.Awaited()) == 0 })
}

// A sidecar whose numbering is behind what the tracker applied under its
// name (another sidecar used the name before it) is refused rather than
// have its reports taken for resends.
func TestNameUsedBeforeRefused(t *testing.T) {
	r := newRig(t, nil)
	s, stop := r.sidecar(SidecarConfig{})
	s.Observe(txn.Event{Kind: txn.Lost, Part: txn.PartID(s.PartIDBase() + 1)})
	waitFor(t, "acks", func() bool { return s.Stats().Connected && s.Stats().Pending == 0 })
	stop()
	// Far ahead: as if a sidecar with a later clock had used the name.
	r.svc.GapFrom("s1", r.svc.SourceSeq("s1")+1<<50)
	s2, _ := r.sidecar(SidecarConfig{})
	waitFor(t, "refusal", func() bool { return s2.Stats().Refused != "" })
	require.Contains(t, s2.Stats().Refused, "another sidecar reported under this name")
	require.Contains(t, s2.Stats().Refused, "tidstorage fleet retire s1")

	// Retired, the name is free: the sidecar starts a new numbering.
	require.NoError(t, r.srv.Retire("s1"))
	require.NotContains(t, r.svc.Sources(), "s1")
	waitFor(t, "connected after retire", func() bool { return s2.Stats().Connected && s2.Stats().Pending == 0 })
	require.Error(t, r.srv.Retire("s1"), "a connected sidecar is not retired")
}

// With mutual TLS a sidecar reports only under a name its certificate
// carries: a fleet certificate cannot take another sidecar's name.
func TestNameBoundToCertificate(t *testing.T) {
	c, err := fleettest.Write(t.TempDir())
	require.NoError(t, err)
	stls, err := ServerTLS(c.TrackerCert, c.TrackerKey, c.CA)
	require.NoError(t, err)
	r := newRig(t, stls)
	z1 := c.ZopeCerts["zope1"]
	cert1, err := ClientTLS(z1[0], z1[1], c.CA, "127.0.0.1")
	require.NoError(t, err)
	thief, _ := r.sidecar(SidecarConfig{Name: "zope2", TLS: cert1})
	waitFor(t, "refusal", func() bool { return thief.Stats().Refused != "" })
	require.Contains(t, thief.Stats().Refused, `sidecar name "zope2" is not in its certificate`)
	require.Zero(t, r.svc.SourceSeq("zope2"))
	row := sourceRow(r, "zope2")
	require.False(t, row.Connected)
	require.NotZero(t, row.Refused)

	owner, _ := r.sidecar(SidecarConfig{Name: "zope1", TLS: cert1})
	waitFor(t, "connected", func() bool { return owner.Stats().Connected && owner.Stats().Pending == 0 })
	require.Contains(t, sourceRow(r, "zope1").Identity, "CN=zope1")
}

// After a tracker restart the sidecars it applied reports from are
// expected: their storages are awaited until each is back and has resent
// what it buffered; a retired one is not.
func TestExpectedSidecarsAwaited(t *testing.T) {
	r := newRig(t, nil)
	s, _ := r.sidecar(SidecarConfig{Storages: []string{sA}})
	waitFor(t, "acks", func() bool { return s.Stats().Connected && s.Stats().Pending == 0 })
	require.Empty(t, r.srv.Awaited())
	r.stop()
	waitFor(t, "down", func() bool { return !s.Stats().Connected })
	s.Observe(txn.Event{Kind: txn.Lost, Part: txn.PartID(s.PartIDBase() + 1)})
	// A new listener (as after a restart): it knows nothing of s1 but
	// what the tracker's Machine says.
	r.srv.Stop()
	r.start(r.addr)
	rows := r.srv.Sources()
	require.Len(t, rows, 1)
	require.True(t, rows[0].Expected)
	require.Contains(t, rows[0].LastError, "not reconnected")
	waitFor(t, "back", func() bool { return s.Stats().Connected && s.Stats().Pending == 0 })
	waitFor(t, "nothing awaited once resent", func() bool { return len(r.srv.Awaited()) == 0 })

	// Down again: only its own storage waits.
	r.stop()
	waitFor(t, "down", func() bool { return !sourceRow(r, "s1").Connected })
	require.Equal(t, []string{sA}, r.srv.Awaited())
	require.NoError(t, r.srv.Retire("s1"))
	require.Empty(t, r.srv.Awaited())
	require.False(t, slices.ContainsFunc(r.srv.Sources(), func(s SourceStats) bool { return strings.EqualFold(s.Source, "s1") }))
}

// A stream that brought nothing (not even a heartbeat) for longer than the
// keepalive is taken over at once by a new stream of its name (a restarted
// sidecar whose old connection is not noticed dead yet); the sidecar that
// held it is then refused like any second stream.
func TestQuietStreamTakenOver(t *testing.T) {
	r := newRig(t, nil)
	var mu sync.Mutex
	now := time.Now()
	r.stop()
	r.clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r.start(r.addr)
	old, _ := r.sidecar(SidecarConfig{})
	waitFor(t, "connected", func() bool { return old.Stats().Connected && old.Stats().Pending == 0 })
	mu.Lock()
	now = now.Add(quietAfter + time.Second)
	mu.Unlock()
	restarted, _ := r.sidecar(SidecarConfig{})
	waitFor(t, "takeover", func() bool { return restarted.Stats().Connected && restarted.Stats().Pending == 0 })
	waitFor(t, "the old one refused", func() bool { return strings.Contains(old.Stats().Refused, "held by a live stream") })
	row := sourceRow(r, "s1")
	require.Equal(t, restarted.Stats().Incarnation, row.Incarnation)
}
