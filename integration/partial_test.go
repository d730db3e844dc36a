package integration

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/tracker"
)

// The seed's scenario: T1 writes A and B, the client dies between T1's
// tpc_finish on A and on B; then T2 writes A. The published point never
// includes T1's A half, nor T2; the partial commit is reported with its
// details; once the operator accepts it, publication resumes.
func TestSeedScenarioPartialCommit(t *testing.T) {
	s := startSite(t, zeoSpec{storages: []string{"1", "2"}, dbNames: []string{"a", "b"}})
	s.client("commit", "--count", "2")
	before := s.last()
	s.waitPublished(before)
	idA, idB := s.ids["a"], s.ids["b"]

	_, err := zeotest.PythonErr(t, "zodb_client.py", append(append([]string{}, s.dbs...), "crash-between", "--first", "a", "--then", "b", "--desc", "T1")...)
	require.Error(t, err, "the client dies inside tpc_finish")
	afterT1 := s.last()
	require.Greater(t, afterT1[idA], before[idA], "T1 committed on A")
	require.Equal(t, before[idB], afterT1[idB], "T1 never committed on B")

	// T2 writes A only, from another client.
	var t2 map[string]string
	require.NoError(t, json.Unmarshal(s.client("commit", "--count", "1", "--touch", "a", "--desc", "T2"), &t2))
	tidT2 := parseTID(t, t2["a"])

	// The partial commit is reported and pins A and B.
	var pin tracker.PinInfo
	require.Eventually(t, func() bool {
		for _, p := range s.d.Tracker.Status().Pins {
			if p.Kind == tracker.PinPartial {
				pin = p
				return true
			}
		}
		return false
	}, zeotestWait, pollEvery)
	require.ElementsMatch(t, []string{idA, idB}, pin.Storages)
	require.Contains(t, pin.Reason, "T1")

	pub := s.published()
	require.Less(t, pub[idA], afterT1[idA], "T1's A half must not be published")
	require.Less(t, pub[idA], tidT2, "T2 must not be published: it sits after half of T1")
	require.Equal(t, before[idA], pub[idA])

	// More traffic does not move A or B past the partial commit.
	s.client("commit", "--count", "3", "--touch", "a,b", "--desc", "later")
	pub = s.published()
	require.Equal(t, before[idA], pub[idA])
	require.Equal(t, before[idB], pub[idB])

	// The operator accepts the live state as the new baseline.
	require.NoError(t, s.d.Tracker.AcceptPartial(pin.ID))
	s.client("commit", "--count", "1", "--touch", "a,b", "--desc", "after-accept")
	s.waitPublished(s.last())
}

// The proxy loses B's server connection around tpc_finish (cut between the
// proxy and ZEO). Before the frame went out (right after B's vote reply): B aborts while A committed: a partial commit, pinned. Right after
// it went out: B committed but the reply is lost: in doubt, resolved through
// the storage's iterator as committed, and publication goes on.
func TestServerConnectionLostAroundFinish(t *testing.T) {
	t.Run("before", func(t *testing.T) {
		s := startSite(t, zeoSpec{storages: []string{"1", "2"}, dbNames: []string{"a", "b"}})
		s.client("commit", "--count", "1")
		s.waitPublished(s.last())
		before := s.published()
		s.cutters[0].Arm("2", zeotest.CutBeforeFinish)
		_, _ = zeotest.PythonErr(t, "zodb_client.py", append(append([]string{}, s.dbs...), "commit", "--count", "1", "--desc", "cut-before")...)
		require.Eventually(t, func() bool {
			for _, p := range s.d.Tracker.Status().Pins {
				if p.Kind == tracker.PinPartial {
					return true
				}
			}
			return false
		}, zeotestWait, pollEvery, "pins: %+v", s.d.Tracker.Status().Pins)
		require.Equal(t, before, s.published())
	})
	t.Run("after", func(t *testing.T) {
		s := startSite(t, zeoSpec{storages: []string{"1", "2"}, dbNames: []string{"a", "b"}})
		s.client("commit", "--count", "1")
		s.waitPublished(s.last())
		s.cutters[0].Arm("2", zeotest.CutAfterFinish)
		_, _ = zeotest.PythonErr(t, "zodb_client.py", append(append([]string{}, s.dbs...), "commit", "--count", "1", "--desc", "cut-after")...)
		last := s.last()
		s.waitPublished(last)
		require.Empty(t, s.d.Tracker.Status().Pins)
		require.EqualValues(t, 1, s.d.Proxy.Metrics().ResolvedCommitted)
	})
}

// The proxy loses B's server connection in the middle of the tpc_finish
// frame (cut between the proxy and ZEO): the server aborts B while A committed, but the proxy cannot know it.
// The client retries the whole transaction with the same metadata (as Zope
// does after ClientDisconnected), and the retry commits on B. The in-doubt
// participation must be resolved as not committed — taking the retry's TID
// for it would hide the partial commit — so the partial commit is reported,
// and nothing published includes T's A half.
func TestTornFinishWithARetryIsAPartialCommit(t *testing.T) {
	s := startSite(t, zeoSpec{storages: []string{"1", "2"}, dbNames: []string{"a", "b"}})
	s.client("commit", "--count", "1")
	s.waitPublished(s.last())
	before := s.published()
	s.cutters[0].Arm("2", zeotest.CutInsideFinish)
	// paired retries after ClientDisconnected with the same description.
	out := s.client("paired", "--count", "1", "--seconds", "60", "--touch", "a,b", "--desc", "torn")
	require.Len(t, parseLines(t, out), 1, "the retry committed")
	require.Eventually(t, func() bool {
		m := s.d.Proxy.Metrics()
		return m.ResolvedAborted == 1
	}, zeotestWait, pollEvery, "metrics %+v", s.d.Proxy.Metrics())
	require.EqualValues(t, 0, s.d.Proxy.Metrics().ResolvedCommitted, "the retry's TID must not be taken for the torn one")
	require.Eventually(t, func() bool {
		for _, p := range s.d.Tracker.Status().Pins {
			if p.Kind == tracker.PinPartial {
				return true
			}
		}
		return false
	}, zeotestWait, pollEvery, "pins: %+v", s.d.Tracker.Status().Pins)
	require.Equal(t, before, s.published(), "nothing past the partial commit is published")
}
