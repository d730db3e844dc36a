package classic

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/tracker"
)

// The original daemon's scenarios again, against the real tracker as the
// daemon runs it for the classic endpoint (configured storages, Bootstrap
// with no proxied values): the same DUMP results as the reference backend
// that copies the original algorithm.
func trackerFactory(t *testing.T, configured []string) Backend {
	s := tracker.NewService(tracker.ServiceConfig{Config: tracker.Config{Storages: configured, ClassicTimeout: time.Hour}})
	s.Bootstrap(nil, true)
	return s
}

func TestScenariosTracker(t *testing.T) { runScenarios(t, trackerFactory) }

func TestBootstrapTracker(t *testing.T) { runBootstrapScenario(t, trackerFactory, false) }

// The same against the tracker as a classic-only daemon runs it (no zeo
// blocks: Config.ClassicOnly, the original's bootstrap rule).
func classicOnlyFactory(t *testing.T, configured []string) Backend {
	s := tracker.NewService(tracker.ServiceConfig{Config: tracker.Config{Storages: configured, ClassicTimeout: time.Hour, ClassicOnly: true}})
	s.Bootstrap(nil, true)
	return s
}

func TestScenariosClassicOnly(t *testing.T) { runScenarios(t, classicOnlyFactory) }

func TestBootstrapClassicOnly(t *testing.T) { runBootstrapScenario(t, classicOnlyFactory, true) }

// A COMMIT whose BEGIN the daemon never saw (sent to the process before a
// restart) neither bootstraps nor publishes.
func TestBootstrapClassicOnlyIgnoresCommitsBegunBefore(t *testing.T) {
	a := "((('localhost', 8100),), '1')"
	addr, _, _ := startServer(t, classicOnlyFactory(t, nil), Options{})
	c := dial(t, addr)
	require.NoError(t, c.Commit("before", tids{a: 5}))
	done, err := c.Bootstraped()
	require.NoError(t, err)
	require.False(t, done)
	got, err := c.Dump()
	require.NoError(t, err)
	require.Empty(t, got)
	require.NoError(t, c.Begin("after", []string{a}))
	require.NoError(t, c.Commit("after", tids{a: 6}))
	done, err = c.Bootstraped()
	require.NoError(t, err)
	require.True(t, done)
	got, err = c.Dump()
	require.NoError(t, err)
	require.Empty(t, got, "as the original: publication starts at the next transaction end")
	require.NoError(t, c.Begin("next", []string{a}))
	require.NoError(t, c.Abort("next"))
	got, err = c.Dump()
	require.NoError(t, err)
	require.Equal(t, tids{a: 6}, got)
}
