package tracker

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// The classic-only daemon (Config.ClassicOnly: no zeo block, no history)
// has its own simulation: the big one (sim_world_test.go) models watched
// storages. Patched Zopes send BEGIN before their two-phase commit and
// COMMIT after it, late and in any order; aborts; COMMITs whose BEGIN went
// to the previous process (transactions begun before the start, all ended
// before the first transaction begun after it: the original's rule cannot
// see one still in flight, docs/classic-protocol.md). The oracle after every
// input: every committed transaction is wholly in or wholly out of the
// published point, which never decreases; nothing is published before the
// rule is met and a later transaction ended (the original's test_02); at
// rest, the point is every storage's last TID. On even seeds some storages
// are configured (Config.Storages) and the others are not: each id no
// configured storage has is warned about once, at its first report
// (CodeUnconfiguredID), and a configured one never.
var simClassicTrace = flag.Bool("sim.classictrace", false, "log every input of TestSimulationClassicOnly")

func TestSimulationClassicOnly(t *testing.T) {
	steps := 200_000
	if testing.Short() {
		steps = 20_000
	}
	for seed := uint64(1); seed <= 8; seed++ {
		runClassicSim(t, seed, steps)
	}
}

type classicSimTxn struct {
	id        string
	sts       []string
	tids      []StorageTID // assigned when it commits on the storages
	committed bool
	fresh     bool // begun after the start (BEGIN sent to this machine)
}

func runClassicSim(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, seed*7919))
	nst := 2 + rng.IntN(4)
	var names []string
	for i := range nst {
		names = append(names, fmt.Sprintf("((('zeo', %d),), '1')", 8100+i))
	}
	cfg := Config{ClassicOnly: true, ClassicTimeout: time.Hour}
	configured := map[string]bool{}
	if seed%2 == 0 {
		cfg.Storages = names[:1+rng.IntN(nst-1)]
		for _, s := range cfg.Storages {
			configured[s] = true
		}
	}
	m := New(cfg)
	now := int64(time.Second)
	tick := func() int64 { now += int64(time.Millisecond); return now }
	m.Bootstrap(tick(), nil, true)

	last := map[string]txn.TID{} // each storage's last committed TID
	tid := txn.TID(1 << 40)
	var open []*classicSimTxn    // begun (fresh), not committed on the storages yet
	var pending []*classicSimTxn // committed on the storages, COMMIT not reported yet
	var done []*classicSimTxn    // committed (reported or not): the oracle's subjects
	published := map[string]txn.TID{}
	endsSinceRule := -1 // transaction ends after the rule was met (-1: not met)
	n := 0
	warned := map[string]bool{} // unconfigured ids warned about
	reported := func(sts ...string) {
		for _, s := range sts {
			if !configured[s] && len(configured) > 0 && !warned[s] {
				t.Fatalf("seed %d, input %d: %s reported without a warning that no configured storage has it", seed, n, s)
			}
		}
	}

	commitOnStorages := func(c *classicSimTxn) {
		for _, s := range c.sts {
			tid++
			c.tids = append(c.tids, StorageTID{Storage: s, TID: tid})
			last[s] = tid
		}
		c.committed = true
		done = append(done, c)
	}
	pick := func() []string {
		k := 1 + rng.IntN(min(3, nst))
		p := rng.Perm(nst)[:k]
		out := make([]string, k)
		for i, j := range p {
			out[i] = names[j]
		}
		return out
	}
	check := func(what string) {
		if *simClassicTrace {
			t.Logf("%d %s -> %v bootstrapped=%v", n, what, m.AppendPublished(nil), m.Bootstrapped())
			for _, r := range m.Records() {
				t.Logf("    %s %s %s", r.Kind, r.Storage, r.Msg)
			}
		}
		for _, r := range m.Records() {
			if r.Code != CodeUnconfiguredID {
				continue
			}
			if configured[r.Storage] || len(configured) == 0 || warned[r.Storage] {
				t.Fatalf("seed %d, input %d (%s): unexpected warning: %s", seed, n, what, r.Msg)
			}
			warned[r.Storage] = true
		}
		m.ClearRecords()
		cur := map[string]txn.TID{}
		for _, v := range m.AppendPublished(nil) {
			cur[v.Storage] = v.TID
			if v.TID < published[v.Storage] {
				t.Fatalf("seed %d, input %d (%s): %s decreased %x -> %x", seed, n, what, v.Storage, published[v.Storage], v.TID)
			}
		}
		published = cur
		if len(cur) > 0 && endsSinceRule < 1 {
			t.Fatalf("seed %d, input %d (%s): published %v before the rule was met and a later transaction ended", seed, n, what, cur)
		}
		// A storage not published yet is no part of the point (DUMP, the
		// status file and the backup commands have no value for it).
		for _, c := range done {
			in, out := 0, 0
			for _, v := range c.tids {
				p, ok := cur[v.Storage]
				switch {
				case !ok:
				case p >= v.TID:
					in++
				default:
					out++
				}
			}
			if in > 0 && out > 0 {
				t.Fatalf("seed %d, input %d (%s): half of transaction %s published: %v, point %v", seed, n, what, c.id, c.tids, cur)
			}
		}
		// A transaction wholly in the point stays in (the point never
		// decreases): the oracle forgets it.
		k := 0
		for _, c := range done {
			whole := true
			for _, v := range c.tids {
				if p, ok := cur[v.Storage]; !ok || p < v.TID {
					whole = false
					break
				}
			}
			if !whole {
				done[k] = c
				k++
			}
		}
		clear(done[k:])
		done = done[:k]
	}
	// ruleMet: every known storage had a fresh commit (classicReady); a
	// configured storage is known from the start.
	freshOn := map[string]bool{}
	known := map[string]bool{}
	for s := range configured {
		known[s] = true
	}
	ruleMet := func() bool {
		if len(freshOn) == 0 {
			return false
		}
		for s := range known {
			if !freshOn[s] {
				return false
			}
		}
		return true
	}
	ended := func(c *classicSimTxn, committed bool) {
		if endsSinceRule >= 0 {
			endsSinceRule++
		}
		if committed && c.fresh {
			for _, v := range c.tids {
				freshOn[v.Storage] = true
			}
		}
		if endsSinceRule < 0 && ruleMet() {
			endsSinceRule = 0
		}
	}

	// Transactions begun before the start: committed on the storages,
	// their COMMIT reported to this process without a BEGIN.
	for i := range rng.IntN(6) {
		c := &classicSimTxn{id: fmt.Sprintf("old%d", i), sts: pick()}
		commitOnStorages(c)
		n++
		m.ClassicCommit(tick(), c.id, c.tids, nil)
		for _, v := range c.tids {
			known[v.Storage] = true
		}
		ended(c, true)
		check("old commit")
		reported(c.sts...)
	}
	for n < steps {
		n++
		switch r := rng.IntN(10); {
		case r < 3 && len(open) < 12:
			c := &classicSimTxn{id: fmt.Sprintf("t%d", n), sts: pick(), fresh: true}
			open = append(open, c)
			for _, s := range c.sts {
				known[s] = true
			}
			m.ClassicBegin(tick(), c.id, c.sts)
			check("begin " + c.id)
			reported(c.sts...)
		case r < 6 && len(open) > 0:
			i := rng.IntN(len(open))
			c := open[i]
			open = slices.Delete(open, i, i+1)
			if rng.IntN(5) == 0 {
				m.ClassicAbort(tick(), c.id)
				ended(c, false)
				check("abort " + c.id)
				continue
			}
			commitOnStorages(c) // the storages have it; the report comes later
			pending = append(pending, c)
			check("commit on storages " + c.id)
		case len(pending) > 0:
			i := rng.IntN(len(pending))
			c := pending[i]
			pending = slices.Delete(pending, i, i+1)
			m.ClassicCommit(tick(), c.id, c.tids, nil)
			ended(c, true)
			check("COMMIT " + c.id)
		default:
			m.Tick(tick())
			check("tick")
		}
	}
	// At rest: every report in, one more transaction end, then the point is
	// every storage's last TID.
	for _, c := range open {
		m.ClassicAbort(tick(), c.id)
		ended(c, false)
		check("abort at rest")
	}
	for _, c := range pending {
		m.ClassicCommit(tick(), c.id, c.tids, nil)
		ended(c, true)
		check("COMMIT at rest")
	}
	for _, s := range names {
		if _, ok := last[s]; !ok {
			continue
		}
		c := &classicSimTxn{id: "final-" + s, sts: []string{s}, fresh: true}
		m.ClassicBegin(tick(), c.id, c.sts)
		commitOnStorages(c)
		m.ClassicCommit(tick(), c.id, c.tids, nil)
		ended(c, true)
		check("final")
	}
	m.ClassicBegin(tick(), "last", names[:1])
	m.ClassicAbort(tick(), "last")
	ended(&classicSimTxn{}, false)
	check("last")
	for _, s := range names {
		if _, ok := last[s]; ok && !configured[s] && len(configured) > 0 && !warned[s] {
			t.Fatalf("seed %d: %s, reported and not configured, was never warned about", seed, s)
		}
	}
	for s, v := range last {
		if published[s] != v {
			t.Fatalf("seed %d: at rest %s is published at %x, its last TID is %x (point %v)", seed, s, published[s], v, published)
		}
	}
}
