package tracker

// The simulation drives the Machine with seeded random schedules of a
// whole site (proxy clients doing ZODB 2PC, classic patched-Zope clients,
// faults, operator actions, restarts) and checks after EVERY input, with an
// oracle computed from the true history, that the published point is
// coherent and monotonic; at each quiescent point, that it caught up
// (liveness). See TestSimulation's flags to run longer or replay a seed.

import (
	"flag"
	"fmt"
	"testing"
	"time"
)

var (
	simSteps = flag.Int("sim.steps", 1_200_000, "tracker inputs per simulation run (split over -sim.seeds seeds)")
	simSeeds = flag.Int("sim.seeds", 4, "number of seeds")
	simSeed  = flag.Uint64("sim.seed", 0, "replay only this seed (with -sim.steps inputs)")
	simRand  = flag.Bool("sim.random", false, "draw seeds from the clock instead of 1..sim.seeds")
)

type simPartState uint8

const (
	spNew simPartState = iota
	spBegun
	spVoted
	spFinSent
	spServerDone // committed on the server, reply not yet seen
	spCommitted
	spAborted
	spInDoubt
)

type spart struct {
	pid      PartID
	st       int
	tx       *stxn
	state    simPartState
	tid      uint64 // truth: committed TID, 0 if not committed
	truthSet bool   // in doubt: truth decided
}

type stxn struct {
	id      int
	cl      *sclient
	classic bool
	probe   bool
	key     string
	cid     string
	thread  int
	parts   []*spart // sorted by storage (ZODB's sorted resource order)
	phase   int
	idx     int
	began   int64

	voteFail   int // index of the failing vote, -1 none
	finishFail int // index of the failing tpc_finish, -1 none
	connLoss   int // index whose connection drops after tpc_finish sent, -1
	// classic faults
	loseEnd    bool
	noneIdx    int // committed storage reported as None, -1
	extraBegin int // storage named in BEGIN but not committed, -1
	abortEarly bool

	committed int
	ended     int
	faulty    bool // crash / connection loss involved
	exempt    bool // accepted partial or unclean restart
	active    bool
}

const (
	phBegin = iota
	phVote
	phFinish
	phAbort
	phCBegin
	phCCommit
	phCEnd
	phDone
)

type sclient struct {
	name    string
	classic bool
	metas   []string
	threads []bool // busy
	active  int
}

type commitRec struct {
	tid uint64
	tx  *stxn
}

type simStats struct {
	txns, proxyTxns, classicTxns   int
	commits                        int
	conflicts, crashes, connLosses int
	finishFails, inDoubt           int
	truePartials                   int
	partialPins, truePins          int
	falsePinsFault                 int
	falsePinsConflict              int
	classicLostEnds, classicNone   int
	classicSubset                  int
	blinds, restarts, unclean      int
	quiesces                       int
	exemptUnclean                  int
	maxLag                         int
}

type simEvent struct {
	step int
	kind string
	pid  PartID
	st   int
	tid  uint64
	ok   bool
	txn  string
}

func (e simEvent) String() string {
	return fmt.Sprintf("%d %s pid=%d st=%d tid=%d ok=%v txn=%q", e.step, e.kind, e.pid, e.st, e.tid, e.ok, e.txn)
}

func TestSimulation(t *testing.T) {
	var seeds []uint64
	switch {
	case *simSeed != 0:
		seeds = []uint64{*simSeed}
	case *simRand:
		base := uint64(time.Now().UnixNano())
		for i := 0; i < *simSeeds; i++ {
			seeds = append(seeds, base+uint64(i))
		}
	default:
		for i := 1; i <= *simSeeds; i++ {
			seeds = append(seeds, uint64(i))
		}
	}
	per := *simSteps
	if *simSeed == 0 {
		per = max(1, *simSteps/len(seeds))
	}
	var total simStats
	steps := 0
	start := time.Now()
	for _, seed := range seeds {
		w := newWorld(t, seed, per)
		w.run()
		if w.failed {
			return
		}
		steps += w.steps
		total.add(w.stats)
		if w.stats.falsePinsConflict > 0 {
			t.Fatalf("seed %d: %d false partial pins under ordinary conflicts", seed, w.stats.falsePinsConflict)
		}
	}
	t.Logf("simulation: %d seeds, %d tracker inputs in %v", len(seeds), steps, time.Since(start).Round(time.Millisecond))
	t.Logf("%+v", total)
	if total.truePartials > total.truePins+total.exemptUnclean {
		// Every true partial commit must have been pinned (or swallowed by
		// an unclean restart, which is reported as such).
		t.Logf("note: %d true partials, %d pinned, %d exempted by unclean restarts", total.truePartials, total.truePins, total.exemptUnclean)
	}
}

func (s *simStats) add(o simStats) {
	s.txns += o.txns
	s.proxyTxns += o.proxyTxns
	s.classicTxns += o.classicTxns
	s.commits += o.commits
	s.conflicts += o.conflicts
	s.crashes += o.crashes
	s.connLosses += o.connLosses
	s.finishFails += o.finishFails
	s.inDoubt += o.inDoubt
	s.truePartials += o.truePartials
	s.partialPins += o.partialPins
	s.truePins += o.truePins
	s.falsePinsFault += o.falsePinsFault
	s.falsePinsConflict += o.falsePinsConflict
	s.classicLostEnds += o.classicLostEnds
	s.classicNone += o.classicNone
	s.classicSubset += o.classicSubset
	s.blinds += o.blinds
	s.restarts += o.restarts
	s.unclean += o.unclean
	s.quiesces += o.quiesces
	s.exemptUnclean += o.exemptUnclean
	s.maxLag = max(s.maxLag, o.maxLag)
}
