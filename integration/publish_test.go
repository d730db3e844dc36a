package integration

import (
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/tracker/statusfile"
)

// Two ZEO servers, one serving two storages; concurrent client processes
// commit single- and multi-database transactions through the proxy. Once they
// are done, the published point equals every storage's lastTransaction, and
// after a graceful stop the status file reads back to the same point.
func TestQuiescentPointEqualsLastTransactions(t *testing.T) {
	for _, msgpack := range []bool{false, true} {
		t.Run(map[bool]string{false: "pickle", true: "msgpack"}[msgpack], func(t *testing.T) {
			s := startSite(t,
				zeoSpec{storages: []string{"1", "2"}, dbNames: []string{"a", "b"}, msgpack: msgpack},
				zeoSpec{storages: []string{"1"}, dbNames: []string{"c"}, msgpack: msgpack})
			s.client("commit", "--count", "1") // roots everywhere
			var wg sync.WaitGroup
			for i, touch := range []string{"a,b,c", "a,b", "b", "c", "a,c"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Each worker writes its own key: no conflicts here
					// (TestPairedCountersAlwaysRestoreEqual has them).
					s.client("commit", "--count", "15", "--touch", touch, "--key", "k"+string(rune('0'+i)), "--desc", "worker-"+string(rune('0'+i)))
				}()
			}
			wg.Wait()
			last := s.last()
			require.Len(t, last, 3)
			s.waitPublished(last)
			require.True(t, s.d.Tracker.Bootstrapped())
			require.Empty(t, s.d.Tracker.Status().Pins, "no pin under ordinary load")

			s.stop()
			f, err := os.Open(s.cfg.StatusFile)
			require.NoError(t, err)
			defer f.Close()
			res, err := statusfile.Replay(f, statusfile.ReplayOptions{})
			require.NoError(t, err)
			require.Equal(t, last, res.Point, "the status file ends with the final point")
		})
	}
}

// A start after an unclean stop (the running marker is still there) says so
// (tracker status, log); a clean stop removes the marker, so the next start is
// clean again.
func TestUncleanStartIsReported(t *testing.T) {
	s := startSite(t, zeoSpec{storages: []string{"1"}, dbNames: []string{"a"}})
	require.True(t, s.d.Tracker.Status().CleanStart)
	s.stop()
	marker := s.cfg.StatusFile + ".running"
	_, err := os.Stat(marker)
	require.True(t, os.IsNotExist(err), "a clean stop removes the running marker")

	require.NoError(t, os.WriteFile(marker, []byte("1\n"), 0o644)) // as a crash leaves it
	s.start()
	require.False(t, s.d.Tracker.Status().CleanStart, "the unclean stop is reported")
	s.stop()
	s.start()
	require.True(t, s.d.Tracker.Status().CleanStart)
}

// A ZEO server that is down when tidstorage starts: the other storages are
// bootstrapped, this one is retried in the background while clients are
// served, and publication starts once it answers.
func TestBootstrapRetriesAnUnreachableServer(t *testing.T) {
	s := startSite(t,
		zeoSpec{storages: []string{"1"}, dbNames: []string{"a"}},
		zeoSpec{storages: []string{"1"}, dbNames: []string{"c"}})
	s.stop()
	s.servers[1].Stop()
	s.start()
	require.False(t, s.d.Tracker.Bootstrapped(), "nothing is published while a storage's last TID is unknown")
	s.servers[1].Restart()
	require.Eventually(t, s.d.Tracker.Bootstrapped, zeotestWait, pollEvery)
	s.client("commit", "--count", "2", "--touch", "a,c")
	s.waitPublished(s.last())
}
