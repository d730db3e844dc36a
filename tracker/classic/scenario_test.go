package classic

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// backendFactory builds a fresh backend under test whose bootstrap waits for
// a commit on each configured storage. The scenarios below state the DUMP
// results of the original daemon; to check another Backend (the tracker)
// against them, call runScenarios and runBootstrapScenario with its factory.
type backendFactory func(t *testing.T, configured []string) Backend

func refFactory(t *testing.T, configured []string) Backend { return newRefBackend(configured) }

func TestScenariosReference(t *testing.T) { runScenarios(t, refFactory) }

func TestBootstrapReference(t *testing.T) { runBootstrapScenario(t, refFactory, true) }

// step is one command of a scenario and the DUMP expected right after it,
// restricted to the scenario's storages.
type step struct {
	op       string // begin, commit or abort
	id       string
	storages []string
	tids     map[string]txn.TID
	want     map[string]txn.TID
}

func begin(id string, storages ...string) step {
	return step{op: "begin", id: id, storages: storages}
}

func commit(id string, tids map[string]txn.TID) step { return step{op: "commit", id: id, tids: tids} }

func abort(id string) step { return step{op: "abort", id: id} }

func (s step) then(want map[string]txn.TID) step { s.want = want; return s }

type tids = map[string]txn.TID

// nothing is the DUMP of a scenario that published nothing yet.
var nothing = tids{}

// scenarios are those of the original's own test suite (tests/testTIDServer.py),
// plus a published value followed by a lower one.
var scenarios = []struct {
	name  string
	steps []step
}{
	{"single", []step{
		begin("t1", "s1").then(nothing),
		commit("t1", tids{"s1": 1}).then(tids{"s1": 1}),
	}},
	{"aborted", []step{
		begin("t1", "s1").then(nothing),
		abort("t1").then(nothing),
	}},
	{"overlapping, second ends first", []step{
		begin("t1", "s1", "s2").then(nothing),
		begin("t2", "s1", "s3").then(nothing),
		commit("t2", tids{"s1": 2, "s3": 1}).then(nothing),
		commit("t1", tids{"s1": 1, "s2": 1}).then(tids{"s1": 2, "s2": 1, "s3": 1}),
	}},
	{"overlapping, lower TID after a higher one", []step{
		begin("t1", "s1").then(nothing),
		begin("t2", "s1", "s2").then(nothing),
		commit("t1", tids{"s1": 2}).then(nothing),
		commit("t2", tids{"s1": 1, "s2": 1}).then(tids{"s1": 2, "s2": 1}),
	}},
	{"transitive group", []step{
		begin("t1", "s1", "s2").then(nothing),
		begin("t2", "s1", "s3").then(nothing),
		commit("t2", tids{"s1": 2, "s3": 1}).then(nothing),
		// s3 is idle but its value waits for t1: t3 joins the group.
		begin("t3", "s3").then(nothing),
		commit("t3", tids{"s3": 1}).then(nothing),
		commit("t1", tids{"s1": 1, "s2": 2}).then(tids{"s1": 2, "s2": 2, "s3": 1}),
	}},
	{"transitive group, first aborted", []step{
		begin("t1", "s1", "s2").then(nothing),
		begin("t2", "s1", "s3").then(nothing),
		commit("t2", tids{"s1": 2, "s3": 1}).then(nothing),
		begin("t3", "s3").then(nothing),
		commit("t3", tids{"s3": 1}).then(nothing),
		abort("t1").then(tids{"s1": 2, "s3": 1}),
	}},
	{"disjoint groups publish independently", []step{
		begin("t1", "s1").then(nothing),
		begin("t2", "s2").then(nothing),
		commit("t1", tids{"s1": 1}).then(tids{"s1": 1}),
		commit("t2", tids{"s2": 1}).then(tids{"s1": 1, "s2": 1}),
	}},
	{"groups joined by a third transaction", []step{
		begin("t1", "s1").then(nothing),
		begin("t2", "s2").then(nothing),
		begin("t3", "s1", "s2").then(nothing),
		commit("t1", tids{"s1": 1}).then(nothing),
		commit("t2", tids{"s2": 2}).then(nothing),
		commit("t3", tids{"s1": 2, "s2": 2}).then(tids{"s1": 2, "s2": 2}),
	}},
	{"id reuse", []step{
		begin("127.0.0.1:8080_7f3a", "s1").then(nothing),
		commit("127.0.0.1:8080_7f3a", tids{"s1": 1}).then(tids{"s1": 1}),
		begin("127.0.0.1:8080_7f3a", "s1").then(tids{"s1": 1}),
		commit("127.0.0.1:8080_7f3a", tids{"s1": 2}).then(tids{"s1": 2}),
		begin("127.0.0.1:8080_7f3a", "s1", "s2").then(tids{"s1": 2}),
		abort("127.0.0.1:8080_7f3a").then(tids{"s1": 2}),
	}},
	{"lower TID after a published higher one", []step{
		begin("t1", "s1").then(nothing),
		commit("t1", tids{"s1": 5}).then(tids{"s1": 5}),
		begin("t2", "s1").then(tids{"s1": 5}),
		commit("t2", tids{"s1": 3}).then(tids{"s1": 5}), // refused: published values only increase
		begin("t3", "s1").then(tids{"s1": 5}),
		commit("t3", tids{"s1": 6}).then(tids{"s1": 6}),
	}},
}

// bootStorage is the one configured storage of the scenarios' backends; the
// scenarios use fresh storages, as the original's suite did on a server that
// had bootstrapped already.
const bootStorage = "((('localhost', 8100),), '1')"

func runScenarios(t *testing.T, factory backendFactory) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			addr, _, _ := startServer(t, factory(t, []string{bootStorage}), Options{})
			// Two connections, used in turn: transactions are not bound to a
			// connection (BEGIN on one, COMMIT on the other). The DUMP after
			// each step, on the same connection, orders the steps.
			clients := []*Client{dial(t, addr), dial(t, addr)}
			bootstrap(t, clients[0])
			for i, st := range sc.steps {
				c := clients[i%2]
				switch st.op {
				case "begin":
					require.NoError(t, c.Begin(st.id, st.storages))
				case "commit":
					require.NoError(t, c.Commit(st.id, st.tids))
				case "abort":
					require.NoError(t, c.Abort(st.id))
				}
				got, err := c.Dump()
				require.NoError(t, err)
				delete(got, bootStorage)
				require.Equal(t, st.want, got, "DUMP after step %d (%s %s)", i+1, st.op, st.id)
			}
		})
	}
}

// bootstrap commits on the configured storage until bootstrap is done and a
// value is published.
func bootstrap(t *testing.T, c *Client) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for tid := txn.TID(1); ; tid++ {
		require.True(t, time.Now().Before(deadline), "backend did not bootstrap")
		require.NoError(t, c.Begin("boot", []string{bootStorage}))
		require.NoError(t, c.Commit("boot", tids{bootStorage: tid}))
		done, err := c.Bootstraped()
		require.NoError(t, err)
		got, err := c.Dump()
		require.NoError(t, err)
		if done && got[bootStorage] == tid {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// runBootstrapScenario: nothing is published before every configured storage
// had a commit; then everything committed is published.
func runBootstrapScenario(t *testing.T, factory backendFactory, deferred bool) {
	a, b := "((('localhost', 8100),), '1')", "((('localhost', 8200),), '2')"
	addr, _, _ := startServer(t, factory(t, []string{a, b}), Options{})
	c := dial(t, addr)
	requireState := func(wantDone bool, want tids, msg string) {
		t.Helper()
		done, err := c.Bootstraped()
		require.NoError(t, err)
		require.Equal(t, wantDone, done, msg)
		got, err := c.Dump()
		require.NoError(t, err)
		require.Equal(t, want, got, msg)
	}
	requireState(false, nothing, "at start")
	require.NoError(t, c.Begin("t1", []string{a}))
	requireState(false, nothing, "after BEGIN")
	require.NoError(t, c.Commit("t1", tids{a: 1}))
	requireState(false, nothing, "one of two storages committed")

	require.NoError(t, c.Begin("t2", []string{b}))
	require.NoError(t, c.Commit("t2", tids{b: 1}))
	done, err := c.Bootstraped()
	require.NoError(t, err)
	require.True(t, done, "every configured storage committed")
	got, err := c.Dump()
	require.NoError(t, err)
	if deferred {
		// As the original: publication starts at the transaction end
		// after the one that completed bootstrap.
		require.Empty(t, got, "nothing published by the commit that completed bootstrap")
	} else {
		// Storages with ZEO upstreams: their values are known, publishing
		// at once is as coherent.
		require.Equal(t, tids{a: 1, b: 1}, got)
	}

	require.NoError(t, c.Begin("t3", []string{a}))
	require.NoError(t, c.Commit("t3", tids{a: 2}))
	requireState(true, tids{a: 2, b: 1}, "after bootstrap")
}

// The reference backend itself, checked on the original's suite without the
// network: if the oracle were wrong every scenario above would be too.
func TestReferenceBackendDirect(t *testing.T) {
	for _, sc := range scenarios {
		b := newRefBackend(nil)
		b.ClassicBegin("boot", []string{"x"})
		b.ClassicCommit("boot", tids{"x": 1}, nil)
		require.True(t, b.Bootstrapped())
		for i, st := range sc.steps {
			switch st.op {
			case "begin":
				b.ClassicBegin(st.id, st.storages)
			case "commit":
				b.ClassicCommit(st.id, maps.Clone(st.tids), nil)
			case "abort":
				b.ClassicAbort(st.id)
			}
			got := b.Dump()
			delete(got, "x")
			require.Equal(t, st.want, got, fmt.Sprintf("%s: step %d", sc.name, i+1))
		}
	}
	b := newRefBackend(nil)
	b.ClassicBegin("t", []string{"s"})
	b.ClassicCommit("t", tids{"s": 5}, nil) // completes bootstrap, publishes nothing yet
	b.ClassicBegin("t", []string{"s"})
	b.ClassicCommit("t", tids{"s": 3}, nil)
	require.Equal(t, tids{"s": 5}, b.Dump(), "the transient value only increases")
	require.Empty(t, b.refused)
	b.ClassicBegin("t", []string{"s"})
	b.ClassicCommit("t", tids{"s": 4}, nil)
	require.Equal(t, tids{"s": 5}, b.Dump())
	require.Equal(t, []string{"s"}, b.refused, "a decrease is refused (CRITICAL in the original)")
}
