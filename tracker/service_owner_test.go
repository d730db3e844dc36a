package tracker_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
)

// lockProbe is a log output that checks, on every write, that the tracker's
// lock is free: it calls into the Service from another goroutine and fails
// if that call does not return quickly (a log written under the lock would
// block it until the write returned, i.e. forever).
type lockProbe struct {
	t       *testing.T
	svc     *tracker.Service
	mu      sync.Mutex
	buf     bytes.Buffer
	blocked int
}

func (p *lockProbe) Write(b []byte) (int, error) {
	if p.svc != nil {
		done := make(chan struct{})
		go func() { p.svc.Bootstrapped(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			p.mu.Lock()
			p.blocked++
			p.mu.Unlock()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *lockProbe) String() string { p.mu.Lock(); defer p.mu.Unlock(); return p.buf.String() }

// Nothing is logged under the tracker's lock.
func TestServiceLogsOutsideTheLock(t *testing.T) {
	probe := &lockProbe{t: t}
	log := hclog.New(&hclog.LoggerOptions{Output: probe, Level: hclog.Trace})
	svc := tracker.NewService(tracker.ServiceConfig{Config: tracker.Config{Storages: []string{sA, sB}}, Logger: log})
	probe.svc = svc
	svc.Bootstrap(map[string]txn.TID{sA: 10, sB: 20}, false) // warning: unclean start; info: bootstrapped; trace: published
	svc.ClassicAbort("nobody")                               // warning
	svc.ClassicBegin("t1", []string{sA, "bogus-storage"})    // warning, once
	svc.ClassicCommit("t1", map[string]txn.TID{sA: 11, "bogus-storage": 3}, nil)
	require.Zero(t, probe.blocked, "a log line was written under the tracker lock:\n%s", probe.String())
	out := probe.String()
	require.Contains(t, out, "bootstrap complete")
	require.Contains(t, out, "previous run ended uncleanly")
	require.Contains(t, out, "published")
	// An id no configured storage has is warned about
	// once, and still tracked and published.
	require.Equal(t, 1, bytes.Count([]byte(out), []byte(`classic client reports storage "bogus-storage"`)), out)
	require.Equal(t, map[string]txn.TID{sA: 11, sB: 20, "bogus-storage": 3}, svc.Dump())
}

// Log lines come out in the order of the inputs, even with several
// goroutines feeding the Service.
func TestServiceLogOrderFollowsInputs(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	log := hclog.New(&hclog.LoggerOptions{Output: writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(b)
	}), Level: hclog.Trace})
	svc := tracker.NewService(tracker.ServiceConfig{Logger: log})
	svc.Bootstrap(map[string]txn.TID{sA: 1}, true)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				svc.LastTID(sA, txn.TID(1)) // no record: exercises the empty path
				svc.ClassicAbort("none")    // a warning each
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 800, bytes.Count(buf.Bytes(), []byte("ABORT")), "every warning logged once")
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// partialService: a partial commit on A and B (A committed 30, the client
// died before B's finish), then a later commit on A (40) held by the pin.
func partialService(t *testing.T) (*tracker.Service, uint64) {
	svc := tracker.NewService(tracker.ServiceConfig{})
	svc.Bootstrap(map[string]txn.TID{sA: 10, sB: 20}, true)
	ev := func(e txn.Event) { svc.Observe(e) }
	ev(txn.Event{Kind: txn.Begin, Part: 1, Storage: sA, Key: "k"})
	ev(txn.Event{Kind: txn.Begin, Part: 2, Storage: sB, Key: "k"})
	ev(txn.Event{Kind: txn.Vote, Part: 1, OK: true})
	ev(txn.Event{Kind: txn.Vote, Part: 2, OK: true})
	ev(txn.Event{Kind: txn.FinishSent, Part: 1})
	ev(txn.Event{Kind: txn.Finished, Part: 1, TID: 30})
	ev(txn.Event{Kind: txn.Lost, Part: 2})
	ev(txn.Event{Kind: txn.Begin, Part: 3, Storage: sA, Key: "x"})
	ev(txn.Event{Kind: txn.Vote, Part: 3, OK: true})
	ev(txn.Event{Kind: txn.FinishSent, Part: 3})
	ev(txn.Event{Kind: txn.Finished, Part: 3, TID: 40})
	st := svc.Status()
	require.Len(t, st.Pins, 1)
	require.Equal(t, tracker.PinPartial, st.Pins[0].Kind)
	require.Equal(t, map[string]txn.TID{sA: 10, sB: 20}, svc.Dump())
	return svc, st.Pins[0].ID
}

// After a cut, A's live last TID (10, the held point) is
// below the 40 the tracker saw committed: accepting would publish 40, a TID
// cut away. The accept is refused, saying why and what to do; nothing
// changes.
func TestAcceptRefusedWhenHistoryWentBack(t *testing.T) {
	svc, pin := partialService(t)
	var asked []string
	err := svc.AcceptPartialLive(pin, func(ids []string) (map[string]txn.TID, error) {
		asked = ids
		return map[string]txn.TID{sA: 10, sB: 20}, nil
	})
	require.ErrorIs(t, err, tracker.ErrHistoryWentBack)
	require.ErrorContains(t, err, "Restart tidstorage serve")
	require.ErrorContains(t, err, sA+": live last TID 000000000000000a")
	require.Equal(t, []string{sA, sB}, asked)
	require.Len(t, svc.Status().Pins, 1, "the pin stays")
	require.Equal(t, map[string]txn.TID{sA: 10, sB: 20}, svc.Dump())

	// The storages could not be read: refused too.
	err = svc.AcceptPartialLive(pin, func([]string) (map[string]txn.TID, error) { return nil, errors.New("connection refused") })
	require.ErrorContains(t, err, "connection refused")
	require.Len(t, svc.Status().Pins, 1)
}

// The live state at or above what is known committed is accepted, and
// published as it is (a commit the proxy did not see included).
func TestAcceptPublishesTheLiveState(t *testing.T) {
	svc, pin := partialService(t)
	require.NoError(t, svc.AcceptPartialLive(pin, func([]string) (map[string]txn.TID, error) {
		return map[string]txn.TID{sA: 41, sB: 20}, nil
	}))
	require.Empty(t, svc.Status().Pins)
	require.Equal(t, map[string]txn.TID{sA: 41, sB: 20}, svc.Dump())
	require.ErrorIs(t, svc.AcceptPartialLive(pin, nil), tracker.ErrNoSuchPin)
}
