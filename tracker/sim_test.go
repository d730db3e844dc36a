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

	"github.com/stretchr/testify/require"
	"github.com/tidstorage/tidstorage/internal/txn"
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
	pid      txn.PartID
	st       int
	tx       *stxn
	state    simPartState
	tid      txn.TID // truth: committed TID, 0 if not committed
	truthSet bool    // in doubt: truth decided
	reported bool    // reported unaccounted (RecUnaccounted)
}

type stxn struct {
	id      int
	cl      *sclient
	classic bool
	probe   bool
	key     txn.Key
	cid     string
	thread  int
	parts   []*spart // sorted by storage (ZODB's sorted resource order)
	phase   int
	idx     int
	began   int64

	voteFail   int // index of the failing vote, -1 none
	finishFail int // index of the failing tpc_finish, -1 none
	connLoss   int // index whose connection drops after tpc_finish sent, -1
	voteLoss   int // index whose connection drops while voted, before any finish, -1
	// classic faults
	loseEnd    bool
	noneIdx    int // committed storage reported as None, -1
	extraBegin int // storage named in BEGIN but not committed, -1
	abortEarly bool

	committed int
	ended     int
	faulty    bool // crash / connection loss involved
	info      txn.Info
	direct    bool // a client that bypasses the proxy
	unseen    bool // committed over a blind connection
	crashed   bool // in flight through a tracker that crashed
	orphaned  bool // a participation was an orphan of a crash
	// lostReport: its reports went with a damaged journal's tail: a
	// commit of it held as unaccounted is justified.
	lostReport bool
	// misattributed: an orphan of a crash took another's commit with the
	// same metadata (the documented residue): its own commit is then held
	// as unaccounted, justly.
	misattributed bool
	exempt        bool // accepted partial or unclean restart
	active        bool
}

const (
	phBegin = iota
	phVote
	phFinish
	phAbort
	phVoteLoss
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
	tid  txn.TID
	tx   *stxn
	step int
}

type simStats struct {
	txns, proxyTxns, classicTxns   int
	commits                        int
	conflicts, crashes, connLosses int
	finishFails, inDoubt           int
	voteLosses                     int
	truePartials                   int
	partialPins, truePins          int
	falsePinsFault                 int
	falsePinsConflict              int
	missedPartials                 int
	classicLostEnds, classicNone   int
	classicSubset                  int
	blinds, restarts, unclean      int
	quiesces                       int
	exemptUnclean                  int
	maxLag                         int
	// Ground truth, bypassing clients, tracker crashes.
	histCommits, histMeta, histLagMax      int
	directTxns, directHalves               int
	unaccReports, unaccJustified           int
	unaccPins, unaccAccepts                int
	falseUnaccPins                         int
	missedUnacc                            int
	trackerCrashes, replayed               int
	orphans, rotations                     int
	crashPartials, rereads, crashFalsePins int
	blindCovered, blindCoveredHalves       int
	// Rotations under load, crashes whose journal lost its tail, and
	// what their recovery concluded.
	busyRotations, damagedCrashes   int
	damagedOrphans, unknownOutcomes int
	misattributed, falseCommitted   int
}

type simEvent struct {
	step int
	kind string
	pid  txn.PartID
	st   int
	tid  txn.TID
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
	total, steps, lag := runSim(t, seeds, per, false)
	t.Logf("simulation: %d seeds, %d tracker inputs", len(seeds), steps)
	t.Logf("%+v", total)
	t.Logf("publication lag (inputs from commit to publication): %s", lag)
}

// TestSimulationNoFaults: ordinary load only (conflicts, linking by
// identical metadata, restarts): no pin may appear and the point must keep
// up. Logs the publication lag.
func TestSimulationNoFaults(t *testing.T) {
	seeds := []uint64{101, 102}
	if *simSeed != 0 {
		seeds = []uint64{*simSeed}
	}
	total, steps, lag := runSim(t, seeds, max(1, *simSteps/8), true)
	t.Logf("no-fault simulation: %d inputs, %+v", steps, total)
	t.Logf("publication lag (inputs from commit to publication): %s", lag)
	if total.partialPins != 0 {
		t.Fatalf("%d partial pins without faults", total.partialPins)
	}
}

// TestSimulationDamagedJournal: crashes of the tracker every few thousand
// inputs, most of them with a journal that lost its tail at a random
// record (the tracker's state at an earlier moment): nothing incoherent
// and nothing below the previous run's point is ever published, no
// participation that committed is resolved as not committed, and every
// true partial commit is pinned (docs/admin.md, "Crash recovery").
func TestSimulationDamagedJournal(t *testing.T) {
	seeds := []uint64{201, 202, 203}
	if *simSeed != 0 {
		seeds = []uint64{*simSeed}
	}
	per := max(1, *simSteps/8)
	if testing.Short() && *simSeed == 0 {
		per = max(1, per/32)
	}
	var total simStats
	for _, seed := range seeds {
		w := newWorldOpts(t, seed, per, false)
		w.crashMin, w.crashSpan, w.damageOdds = 2_000, 8_000, 2
		if per < 20_000 {
			w.crashMin, w.crashSpan = 500, 1_500
		}
		w.crashAt = w.crashMin + w.rng.IntN(w.crashSpan)
		w.run()
		if w.failed {
			t.FailNow()
		}
		total.add(w.stats)
	}
	t.Logf("damaged-journal simulation: %+v", total)
	require.NotZero(t, total.damagedCrashes)
	require.NotZero(t, total.damagedOrphans)
	require.NotZero(t, total.busyRotations)
}

func runSim(t *testing.T, seeds []uint64, per int, noFaults bool) (simStats, int, string) {
	var total simStats
	var hist [40]int
	steps := 0
	if testing.Short() && *simSeed == 0 {
		// The race-detector run (scripts/test.sh): the world's checks and
		// journal replays cost more than the Machine under -race.
		per = max(1, per/32)
	}
	for _, seed := range seeds {
		w := newWorldOpts(t, seed, per, noFaults)
		w.run()
		if w.failed {
			t.FailNow()
		}
		steps += w.steps
		total.add(w.stats)
		for i, n := range w.lagHist {
			hist[i] += n
		}
	}
	return total, steps, lagSummary(hist[:])
}

func lagSummary(hist []int) string {
	n := 0
	for _, c := range hist {
		n += c
	}
	if n == 0 {
		return "no publications"
	}
	q := func(f float64) int {
		want, acc := int(f*float64(n)), 0
		for i, c := range hist {
			acc += c
			if acc > want {
				return 1<<i - 1
			}
		}
		return -1
	}
	maxb := 0
	for i, c := range hist {
		if c > 0 {
			maxb = i
		}
	}
	return fmt.Sprintf("%d commits; p50 < %d, p90 < %d, p99 < %d, max < %d inputs", n, q(0.5)+1, q(0.9)+1, q(0.99)+1, 1<<maxb)
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
	s.voteLosses += o.voteLosses
	s.inDoubt += o.inDoubt
	s.truePartials += o.truePartials
	s.partialPins += o.partialPins
	s.truePins += o.truePins
	s.falsePinsFault += o.falsePinsFault
	s.falsePinsConflict += o.falsePinsConflict
	s.missedPartials += o.missedPartials
	s.classicLostEnds += o.classicLostEnds
	s.classicNone += o.classicNone
	s.classicSubset += o.classicSubset
	s.blinds += o.blinds
	s.restarts += o.restarts
	s.unclean += o.unclean
	s.quiesces += o.quiesces
	s.exemptUnclean += o.exemptUnclean
	s.maxLag = max(s.maxLag, o.maxLag)
	s.histCommits += o.histCommits
	s.histMeta += o.histMeta
	s.histLagMax = max(s.histLagMax, o.histLagMax)
	s.directTxns += o.directTxns
	s.directHalves += o.directHalves
	s.unaccReports += o.unaccReports
	s.unaccJustified += o.unaccJustified
	s.unaccPins += o.unaccPins
	s.unaccAccepts += o.unaccAccepts
	s.falseUnaccPins += o.falseUnaccPins
	s.missedUnacc += o.missedUnacc
	s.trackerCrashes += o.trackerCrashes
	s.replayed += o.replayed
	s.orphans += o.orphans
	s.rotations += o.rotations
	s.crashPartials += o.crashPartials
	s.rereads += o.rereads
	s.crashFalsePins += o.crashFalsePins
	s.blindCovered += o.blindCovered
	s.blindCoveredHalves += o.blindCoveredHalves
	s.busyRotations += o.busyRotations
	s.damagedCrashes += o.damagedCrashes
	s.damagedOrphans += o.damagedOrphans
	s.unknownOutcomes += o.unknownOutcomes
	s.misattributed += o.misattributed
	s.falseCommitted += o.falseCommitted
}

// A seed replays exactly: same inputs, same records, same point.
func TestSimulationDeterministic(t *testing.T) {
	run := func() (simStats, []StorageTID, [40]int) {
		w := newWorldOpts(t, 7, 60_000, false)
		w.run()
		require.False(t, w.failed)
		return w.stats, w.m.AppendPublished(nil), w.lagHist
	}
	s1, p1, h1 := run()
	s2, p2, h2 := run()
	require.Equal(t, s1, s2)
	require.Equal(t, p1, p2)
	require.Equal(t, h1, h2)
}
