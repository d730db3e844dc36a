package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
)

// metric returns the text lines of the admin endpoint's /metrics that
// start with name.
func metric(t *testing.T, adminAddr, name string) []string {
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name) {
			out = append(out, l)
		}
	}
	return out
}

// noAlarm requires that the tracker raised no unaccounted alarm: no ERROR
// line, no pin, no counter above zero.
func (s *fleetSite) noAlarm(when string) {
	t := s.t
	log, _ := os.ReadFile(filepath.Join(s.dir, "tracker.log"))
	var bad []string
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, "unaccounted commit") || strings.Contains(l, "nothing accounted for") {
			bad = append(bad, l)
		}
	}
	require.Empty(t, bad, "%s: the tracker logged unaccounted commits", when)
	for _, p := range s.status().Pins {
		require.NotEqual(t, "unaccounted", p.Kind, "%s: pin %+v", when, p)
	}
	for _, l := range metric(t, s.trackerAdm, "tidstorage_unaccounted_commits_total{") {
		require.True(t, strings.HasSuffix(l, " 0"), "%s: %s", when, l)
	}
}

// A routine restart of the tracker while healthy sidecars carry paired
// writers: the sidecars cannot reach it for longer than unaccounted_grace
// after it is back (a slow network, their reconnect backoff), while its
// history watchers already read the commits made meanwhile. The tracker
// waits for their resend: no ERROR line, no pin, no counter increase, and
// every sampled point is coherent. Then it is SIGKILLed and restarted: it
// says "unclean" in the log, /status, the metrics and tidstorage status,
// and still raises no alarm.
func TestFleetRoutineRestartRaisesNoAlarm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, cutter, sm, w1, w2 := startCutFleetUnderLoad(t, ctx, 40)

	// A routine restart (TERM), the sidecars kept away for some 10 s after
	// it: longer than unaccounted_grace (5 s).
	s.tracker.stopClean(t)
	cutter.cut(12 * time.Second)
	time.Sleep(time.Second)
	s.tracker = startServe(t, s.trackerCfg, s.trackerAdm, "/healthz")
	st := s.status()
	require.True(t, st.CleanStart, "after TERM: %+v", st)
	require.Equal(t, "clean", st.PreviousRun)
	require.Contains(t, run(t, "status", "-c", s.trackerCfg).stdout, "the previous run stopped cleanly")
	b1, b2 := w1.commits.Load(), w2.commits.Load()
	require.Eventually(t, func() bool { return w1.commits.Load() > b1+5 && w2.commits.Load() > b2+5 }, 30*time.Second,
		20*time.Millisecond, "the writers commit while the tracker cannot hear the sidecars")
	rows := func() (up int, out string) {
		var f struct{ Sidecars []struct{ Connected bool } }
		getJSON(t, "http://"+s.trackerAdm+"/fleet", &f)
		for _, r := range f.Sidecars {
			if r.Connected {
				up++
			}
		}
		return up, run(t, "status", "-c", s.trackerCfg).stdout
	}
	up, text := rows()
	require.Zero(t, up)
	require.Contains(t, text, "expected, not back since the tracker started", "status names the sidecars it waits for")
	require.Eventually(t, func() bool { up, _ := rows(); return up == 2 }, 30*time.Second, 100*time.Millisecond)
	time.Sleep(3 * time.Second)
	s.noAlarm("after a routine restart")

	// SIGKILL: an unclean start, said the same way everywhere.
	kill(t, s.tracker)
	s.tracker = startServe(t, s.trackerCfg, s.trackerAdm, "/healthz")
	st = s.status()
	require.False(t, st.CleanStart, "after SIGKILL: %+v", st)
	require.Equal(t, "unclean", st.PreviousRun)
	require.Equal(t, []string{"tidstorage_clean_start 0"}, metric(t, s.trackerAdm, "tidstorage_clean_start "))
	out := run(t, "status", "-c", s.trackerCfg).stdout
	require.Contains(t, out, "UNCLEAN")
	require.NotContains(t, out, "stopped cleanly")
	require.Contains(t, tail(filepath.Join(s.dir, "tracker.log"), 100000), "did not stop cleanly")

	s.waitWriters(w1, w2)
	s.waitPublished(s.last(), 60*time.Second)
	samples := append(sm.end(), s.dump())
	checked := s.checkCoherent(samples, 10)
	t.Logf("%d + %d commits, %d distinct published points, %d restored to equal counters",
		w1.commits.Load(), w2.commits.Load(), len(samples), checked)
	s.noAlarm("at the end")
}

// sidecarNamed makes a sidecar (its own ports, buffer and log under file)
// that reports under name.
func (s *fleetSite) sidecarNamed(file, name string) *sidecarProc {
	sc := s.newSidecar(file, s.certs.SidecarCert, s.certs.SidecarKey)
	s.rename(sc, name)
	return sc
}

var nameLine = regexp.MustCompile(`(?m)^  name = ".*"$`)

func (s *fleetSite) rename(sc *sidecarProc, name string) {
	b, err := os.ReadFile(sc.cfg)
	require.NoError(s.t, err)
	require.Regexp(s.t, nameLine, string(b))
	writeFile(s.t, sc.cfg, nameLine.ReplaceAllString(string(b), `  name = "`+name+`"`))
}

type linkDoc struct {
	Link struct {
		Source         string
		Connected      bool
		Refused        string
		AckedReports   uint64
		Observed, Sent uint64
		Pending        int
	}
}

// Three sidecars started from one configuration, one name: the first to
// connect holds the name, the two others are refused (each told who holds
// it), and nothing of theirs is mixed into its stream; ZEO traffic goes on
// through all three. Renamed and restarted, the refused ones resend what
// they buffered: nothing is unaccounted, and every point is coherent.
func TestFleetThreeSidecarsOneName(t *testing.T) {
	s := startFleet(t, 0)
	for _, f := range []string{"host1", "host2", "host3"} {
		s.sidecars = append(s.sidecars, s.sidecarNamed(f, "zope1"))
	}
	for _, sc := range s.sidecars {
		sc.sv = startServe(t, sc.cfg, sc.admin, "/readyz")
	}
	link := func(sc *sidecarProc) linkDoc {
		var l linkDoc
		getJSON(t, "http://"+sc.admin+"/fleet", &l)
		return l
	}
	var holder *sidecarProc
	var refused []*sidecarProc
	require.Eventually(t, func() bool {
		holder, refused = nil, nil
		for _, sc := range s.sidecars {
			l := link(sc)
			switch {
			case l.Link.Connected:
				holder = sc
			case strings.Contains(l.Link.Refused, `the name "zope1" is held by a live stream from 127.0.0.1:`):
				refused = append(refused, sc)
			}
		}
		return holder != nil && len(refused) == 2
	}, 30*time.Second, 100*time.Millisecond, "one holder, two refused")

	// The databases' roots, made once (three writers creating them at once
	// conflict).
	zeotest.Python(t, "zodb_client.py", append(s.dbs(holder), "commit", "--count", "1", "--touch", "a,b,c")...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sm := s.sample()
	var ws []*writer
	for _, sc := range s.sidecars {
		ws = append(ws, s.startWriter(ctx, sc, 15))
	}
	// Every writer commits (Python starts slowly on a loaded machine).
	require.Eventually(t, func() bool {
		for _, w := range ws {
			if w.commits.Load() == 0 {
				return false
			}
		}
		return true
	}, 60*time.Second, 50*time.Millisecond, "a writer commits through each sidecar, refused or not")
	s.waitWriters(ws...)
	for i, w := range ws {
		require.NotZero(t, w.commits.Load(), "writer %d commits through its sidecar, refused or not", i+1)
	}
	// Never mixed: the tracker applied exactly what the holder sent.
	var tf struct {
		Sidecars []struct {
			Source         string
			Connected      bool
			AppliedReports uint64
			Refused        uint64
			LastRefused    string
		}
	}
	getJSON(t, "http://"+s.trackerAdm+"/fleet", &tf)
	require.Len(t, tf.Sidecars, 1)
	row := tf.Sidecars[0]
	require.Equal(t, "zope1", row.Source)
	require.Equal(t, link(holder).Link.AckedReports, row.AppliedReports)
	require.NotZero(t, row.Refused)
	for _, sc := range refused {
		l := link(sc)
		require.Zero(t, l.Link.AckedReports)
		require.NotZero(t, l.Link.Pending)
		require.Contains(t, run(t, "status", "-c", sc.cfg).stdout, "the tracker refuses this sidecar")
	}
	require.Contains(t, run(t, "status", "-c", s.trackerCfg).stdout, "refused under this name")
	require.Contains(t, tail(filepath.Join(s.dir, "tracker.log"), 100000), "holder_peer=")

	// Named apart, the refused sidecars resend their buffers.
	for i, sc := range refused {
		sc.sv.stopClean(t)
		s.rename(sc, []string{"zope2", "zope3"}[i])
		sc.sv = startServe(t, sc.cfg, sc.admin, "/readyz")
	}
	for _, sc := range refused {
		require.Eventually(t, func() bool { l := link(sc); return l.Link.Connected && l.Link.Pending == 0 }, 30*time.Second,
			100*time.Millisecond)
	}
	s.waitPublished(s.last(), 60*time.Second)
	samples := append(sm.end(), s.dump())
	if !assert.NotEmpty(t, samples) {
		return
	}
	checked := s.checkCoherent(samples, 8)
	t.Logf("%d distinct published points, %d restored to equal counters", len(samples), checked)
	s.noAlarm("after renaming")
}
