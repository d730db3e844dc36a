package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// blockedBetween starts crash-between with --block-until through the proxy
// and returns once the client is between T's tpc_finish on first and on
// then (first committed, then not yet): its resource manager waits for the
// gate file. wait returns the client's exit error.
func (s *procSite) blockedBetween(first, then, desc, waitTimeout string) (gate string, pid int, wait func() error) {
	s.t.Helper()
	gate = filepath.Join(s.dir, "gate-"+desc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := zeotest.PythonCommand(ctx, s.t, "zodb_client.py", append(append([]string{"--wait-timeout", waitTimeout}, s.dbs...),
		"crash-between", "--first", first, "--then", then, "--desc", desc, "--block-until", gate, "--block-seconds", "60")...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(s.t, err)
	stderr := &zeotest.SyncBuffer{}
	cmd.Stderr = stderr
	require.NoError(s.t, cmd.Start())
	between := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"between"`) {
				close(between)
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); cancel() }()
	select {
	case <-between:
	case err := <-done:
		s.t.Fatalf("crash-between exited before reaching the gate: %v\n%s", err, stderr.String())
	case <-time.After(zeotestWait):
		s.t.Fatalf("crash-between never reached the gate: %s", stderr.String())
	}
	return gate, cmd.Process.Pid, func() error {
		select {
		case err := <-done:
			if err != nil {
				s.t.Logf("crash-between: %v\n%s", err, stderr.String())
			}
			return err
		case <-time.After(2 * zeotestWait):
			s.t.Fatal("crash-between did not end")
			return nil
		}
	}
}

// T writes the paired counter in A and B; the process between T's finish
// on A and on B dies: tidstorage (SIGKILL, restarted on the same
// configuration, status file and journal) or the client (SIGKILL). T is
// committed on A only. Proxied commits on A go on: no published point
// holds T's A half (every sampled point restores to equal counters), the
// partial commit is reported (a partial pin in /status and `tidstorage
// status`, an ERROR log naming T), and accept-partial releases it.
func TestKilledBetweenFinishes(t *testing.T) {
	// serve-back-first: serve is back before the client goes on, so the
	// client's finish on B reaches ZEO through the new process, on a new
	// connection that has no transaction: B still does not commit.
	for _, who := range []string{"serve", "serve-back-first", "client"} {
		t.Run(who, func(t *testing.T) {
			s := startProcSite(t, procOptions{}, zeoSpec{storages: []string{"1", "2"}, dbNames: []string{"a", "b"}})
			idA, idB := s.ids["a"], s.ids["b"]
			s.client("commit", "--count", "2", "--touch", "a,b")
			before := s.last()
			s.waitPublished(before)
			s.startSampling()

			desc := "T-" + who + "-killed"
			timeout := "2"
			if who == "serve-back-first" {
				timeout = "30" // waits for the proxy to come back
			}
			gate, pid, wait := s.blockedBetween("a", "b", desc, timeout)
			switch who {
			case "serve":
				s.kill()
				require.NoError(t, os.WriteFile(gate, nil, 0o644))
				require.Error(t, wait(), "T's finish on B fails: the proxy is gone")
			case "serve-back-first":
				s.kill()
				s.start()
				require.NoError(t, os.WriteFile(gate, nil, 0o644))
				require.Error(t, wait(), "T's finish on B fails: its transaction died with the old connection")
			default:
				require.NoError(t, syscall.Kill(-pid, syscall.SIGKILL))
				require.Error(t, wait())
			}
			afterT := s.last()
			require.Greater(t, afterT[idA], before[idA], "T committed on A")
			require.Equal(t, before[idB], afterT[idB], "T never committed on B")
			if who != "client" {
				if who == "serve" {
					s.start()
				}
				s.waitLog("warn", "journal replayed after an unclean stop", nil)
				doc := s.status()
				require.NotNil(t, doc.Journal)
				require.Positive(t, doc.Journal.Replayed, "the journal was replayed")
			}

			// More proxied commits on A (another key: the counters stay paired).
			var later map[string]string
			for _, line := range parseLines(t, s.client("commit", "--count", "3", "--touch", "a", "--key", "other", "--desc", "later")) {
				later = line
			}
			pin := s.waitPin("partial")
			require.Contains(t, pin.Storages, idA)
			require.Contains(t, pin.Reason, desc)
			s.waitLog("error", "partial commit", nil)
			out, _, code := s.cli("status", "-c", s.cfgPath)
			require.Equal(t, 3, code, "status exits 3 while a partial commit is pending")
			require.Contains(t, out, "partial")

			pub := s.published()
			require.Less(t, pub[idA], afterT[idA], "T's A half must not be published")
			require.Less(t, pub[idA], txn.TID(parseTID(t, later["a"])))
			require.Equal(t, before[idA], pub[idA])
			require.Equal(t, before[idB], pub[idB])

			samples := s.stopSampling()
			n := s.checkPaired(samples, "a", "b")
			t.Logf("%d published points restored to equal counters; pin %d: %s", n, pin.ID, pin.Reason)

			s.accept(pin.ID)
			s.client("commit", "--count", "1", "--touch", "a,b", "--key", "other", "--desc", "after-accept")
			s.waitPublished(s.last())
			require.Empty(t, s.pins(""))
		})
	}
}

// A client that bypasses the proxy (its --db names the ZEO servers) commits
// T on A and B and dies between the finishes: T is on A only. Proxied
// commits on A go on. T's A half is never published (A is held below it),
// the unaccounted commit is reported with its description (ERROR log, a pin
// of kind unaccounted), and after `tidstorage accept-partial N --yes`
// publication resumes past it.
func TestDirectClientDiesBetweenFinishes(t *testing.T) {
	s := startProcSite(t, procOptions{}, zeoSpec{storages: []string{"1", "2"}, dbNames: []string{"a", "b"}})
	idA, idB := s.ids["a"], s.ids["b"]
	s.client("commit", "--count", "2", "--touch", "a,b")
	before := s.last()
	s.waitPublished(before)
	s.startSampling()

	_, err := zeotest.PythonErr(t, "zodb_client.py", append(append([]string{}, s.direct...),
		"crash-between", "--first", "a", "--then", "b", "--desc", "T-direct-half")...)
	require.Error(t, err, "the direct client dies inside tpc_finish")
	afterT := s.last()
	require.Greater(t, afterT[idA], before[idA])
	require.Equal(t, before[idB], afterT[idB])

	s.client("commit", "--count", "3", "--touch", "a", "--key", "other", "--desc", "later")
	pin := s.waitPin("unaccounted")
	require.Equal(t, []string{idA}, pin.Storages)
	require.NotNil(t, pin.Upto)
	require.Equal(t, afterT[idA], pin.Upto.Int, "the pin covers T's A half")
	s.waitLog("error", "unaccounted commit", map[string]string{"description": "T-direct-half", "tid": afterT[idA].Hex()})
	for _, st := range s.status().Storages {
		if st.ID == idA {
			require.True(t, st.HeldByUnaccounted)
			require.Equal(t, afterT[idA], st.Unaccounted[0].Int)
		}
	}
	pub := s.published()
	require.Less(t, pub[idA], afterT[idA], "T's A half must not be published")
	require.Equal(t, before[idA], pub[idA])
	out, _, code := s.cli("status", "-c", s.cfgPath)
	t.Logf("tidstorage status (exit %d):\n%s", code, out)
	require.Equal(t, 3, code, "status exits 3 while an unaccounted commit is held")
	require.Contains(t, out, "unaccounted")

	samples := s.stopSampling()
	s.checkPaired(samples, "a", "b")

	s.accept(pin.ID)
	s.client("commit", "--count", "1", "--touch", "a", "--key", "other", "--desc", "after-accept")
	last := s.last()
	s.waitPublished(last)
	require.Greater(t, s.published()[idA], afterT[idA], "publication resumed past T")
	require.Empty(t, s.pins(""))
}

// A direct single-storage commit is reported and held like any other
// unaccounted commit; on a storage configured with unaccounted = "warn" it
// is reported and not held.
func TestDirectSingleStorageCommit(t *testing.T) {
	for _, mode := range []string{"hold", "warn"} {
		t.Run(mode, func(t *testing.T) {
			s := startProcSite(t, procOptions{storageHCL: map[string]string{"a": fmt.Sprintf("    unaccounted = %q", mode)}},
				zeoSpec{storages: []string{"1", "2"}, dbNames: []string{"a", "b"}})
			idA := s.ids["a"]
			s.client("commit", "--count", "1", "--touch", "a,b")
			before := s.last()
			s.waitPublished(before)

			desc := "direct-single-" + mode
			var direct map[string]string
			require.NoError(t, json.Unmarshal(s.directClient("commit", "--count", "1", "--touch", "a", "--key", "other", "--desc", desc), &direct))
			tidD := txn.TID(parseTID(t, direct["a"]))
			s.client("commit", "--count", "2", "--touch", "a", "--key", "other", "--desc", "later")
			s.waitLog("error", "unaccounted commit", map[string]string{"description": desc, "tid": tidD.Hex()})

			if mode == "warn" {
				last := s.last()
				s.waitPublished(last)
				require.Empty(t, s.pins(""))
				for _, st := range s.requireAtRest(last).Storages {
					if st.ID == idA {
						require.True(t, st.WarnOnly)
						require.EqualValues(t, 1, st.UnaccountedTotal)
					}
				}
				return
			}
			pin := s.waitPin("unaccounted")
			require.Equal(t, []string{idA}, pin.Storages)
			require.Less(t, s.published()[idA], tidD, "held below the direct commit")
			require.Equal(t, before[idA], s.published()[idA])
			s.accept(pin.ID)
			s.waitPublished(s.last())
			require.Empty(t, s.pins(""))
		})
	}
}
