package tracker

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/input"
)

type acceptAt struct {
	step int
	pin  uint64
}

type world struct {
	t      testing.TB
	seed   uint64
	rng    *rand.Rand
	m      *Machine
	cfg    Config
	now    int64
	steps  int
	target int

	names   []string
	lastTID []txn.TID
	tid     txn.TID
	commits [][]commitRec
	initTID []txn.TID
	pruned  []txn.TID // last TID when history was pruned
	P       []txn.TID
	hasP    []bool
	ptr     []int
	changed []int

	clients   []*sclient
	active    []*stxn
	byPID     map[txn.PartID]*spart
	nextPID   txn.PartID
	nextTx    int
	maxActive int

	resolves []*spart
	accepts  []acceptAt
	blind    []int // step at which each storage unblinds, 0 = not blind

	// The journal since its last rotation: every input, encoded.
	jbuf []byte
	joff []int
	// Ground truth: per storage, the commits its history has not reported
	// yet (in TID order), and the step until which its watcher is stalled.
	hq     [][]txn.Commit
	hstall []int
	// Unaccounted commits reported and not accepted, per storage; and the
	// commits that nothing can account for (direct, unseen, lost classic
	// ends, None), each of which must be reported.
	unaccRep [][]*spart
	needRep  []*spart
	uaccepts []acceptAt // unaccounted pins the operator will look at
	crashAt  int        // step of the next crash of the tracker
	// crashMin + [0, crashSpan) inputs between crashes; one in damageOdds
	// loses the journal's tail.
	crashMin, crashSpan, damageOdds int
	down                            bool // the tracker is dead (no history delivered)
	// After a crash: the orphans, and the live last TIDs given to Recover;
	// once every storage's history reached its live TID, no orphan may be
	// left in flight.
	orphanIDs []txn.PartID
	settleAt  []txn.TID
	applyErr  error
	rotatedAt int
	// jbase: the journal's first records that start it (an image, or a
	// restart's bootstrap and history starts): a damaged journal keeps
	// them. pruneJoff: the journal's length when the oracle last pruned
	// its history (a cut never goes below: the history before is gone).
	jbase, pruneJoff int
	// shadow: after a rotation under load the Machine restored from the
	// image goes on, and the one it was taken from follows the same
	// inputs for shadowLeft more: their records must stay equal.
	shadow     *Machine
	shadowLeft int
	// damaged: the journal lost its tail at a crash since the last
	// restart (a classic BEGIN may have gone with it).
	damaged bool

	draining bool
	noFaults bool
	partials []*stxn // true partial commits, checked at quiescence
	lagHist  [40]int // publication lag in inputs, log2 buckets
	stats    simStats
	ring     [48]simEvent
	ringN    int
	failed   bool
}

func (w *world) fail(format string, args ...any) {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, input %d: ", w.seed, w.steps)
	fmt.Fprintf(&b, format, args...)
	name := "TestSimulation$"
	steps := w.target
	if w.noFaults {
		name = "TestSimulationNoFaults$"
		steps *= 8
	}
	fmt.Fprintf(&b, "\nreplay: go test ./tracker/ -run '%s' -sim.seed=%d -sim.steps=%d -v", name, w.seed, steps)
	b.WriteString("\nlast inputs:")
	for i := max(0, w.ringN-len(w.ring)); i < w.ringN; i++ {
		fmt.Fprintf(&b, "\n  %s", w.ring[i%len(w.ring)])
	}
	w.failed = true
	w.t.Fatal(b.String())
}

func newWorldOpts(t testing.TB, seed uint64, target int, noFaults bool) *world {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := &world{t: t, seed: seed, rng: rng, target: target, byPID: map[txn.PartID]*spart{}, noFaults: noFaults}
	nst := 3 + rng.IntN(4)
	w.tid = 1 << 40
	for i := 0; i < nst; i++ {
		w.names = append(w.names, fmt.Sprintf("((('localhost', %d),), '%d')", 8100+i, i+1))
		w.tid++
		w.lastTID = append(w.lastTID, w.tid)
	}
	w.commits = make([][]commitRec, nst)
	w.initTID = slices.Clone(w.lastTID)
	w.pruned = make([]txn.TID, nst)
	w.P = make([]txn.TID, nst)
	w.hasP = make([]bool, nst)
	w.ptr = make([]int, nst)
	w.blind = make([]int, nst)
	w.hq = make([][]txn.Commit, nst)
	w.hstall = make([]int, nst)
	w.unaccRep = make([][]*spart, nst)
	w.crashMin, w.crashSpan, w.damageOdds = 30_000, 200_000, 3
	w.crashAt = w.crashMin + rng.IntN(w.crashSpan)
	nproxy := 3 + rng.IntN(6)
	for i := 0; i < nproxy; i++ {
		c := &sclient{name: fmt.Sprintf("10.0.0.%d", i+1), threads: make([]bool, 1+rng.IntN(4))}
		c.metas = []string{"", "", "/edit"}
		if rng.IntN(2) == 0 {
			c.metas = []string{""} // everything anonymous: maximal linking
		}
		w.clients = append(w.clients, c)
	}
	for i := 0; i < 1+rng.IntN(2); i++ {
		w.clients = append(w.clients, &sclient{name: fmt.Sprintf("10.0.1.%d:8080", i+1), classic: true, threads: make([]bool, 1+rng.IntN(4))})
	}
	w.maxActive = 4 + rng.IntN(20)
	w.cfg = Config{ClassicTimeout: 4 * time.Second, UnaccountedGrace: time.Second}
	w.restart(true)
	return w
}

// apply journals one tracker input (input.Append, what the Service will
// write ahead), applies it through Machine.Apply and checks the oracle
// after it.
func (w *world) apply(e simEvent, in input.Input) {
	w.now += int64(time.Millisecond)
	w.steps++
	e.step = w.steps
	w.ring[w.ringN%len(w.ring)] = e
	w.ringN++
	if debugPIDs[e.pid] || (testing.Verbose() && w.target <= 5000) {
		w.t.Logf("%s", e)
	}
	w.joff = append(w.joff, len(w.jbuf))
	w.jbuf = input.Append(w.jbuf, w.now, in)
	w.applyErr = w.m.Apply(w.now, in)
	if w.shadow != nil {
		w.followShadow(in)
		if w.failed {
			return
		}
	}
	if w.applyErr != nil && !errors.Is(w.applyErr, ErrUnaccountedPending) {
		w.fail("%s: %v", e, w.applyErr)
		return
	}
	if len(debugPIDs) > 0 {
		for _, r := range w.m.Records() {
			if debugPIDs[e.pid] || (r.Part != 0 && debugPIDs[r.Part]) || debugTIDs[r.TID] || (e.tid != 0 && debugTIDs[e.tid]) {
				w.t.Logf("   %s -> %s %s %d part %d %s", e, r.Kind, r.Storage, r.TID, r.Part, r.Msg)
			}
		}
	}
	w.check()
}

// restart starts a new tracker from the live storages' last TIDs.
func (w *world) restart(clean bool) {
	w.m = New(w.cfg)
	vals := make([]StorageTID, len(w.names))
	for i, n := range w.names {
		vals[i] = StorageTID{Storage: n, TID: w.lastTID[i]}
	}
	w.resolves = w.resolves[:0]
	w.accepts = w.accepts[:0]
	w.uaccepts = w.uaccepts[:0]
	w.orphanIDs = w.orphanIDs[:0]
	for i := range w.blind {
		w.blind[i] = 0
	}
	// Commits not yet reported are at or below the bootstrap TIDs: the new
	// history starts above them (they count as accounted).
	for s := range w.names {
		w.hq[s], w.hstall[s] = nil, 0
		for _, p := range w.unaccRep[s] {
			p.tx.exempt = true
		}
		w.unaccRep[s] = nil
	}
	for _, p := range w.needRep {
		if !p.reported {
			p.tx.exempt = true
		}
	}
	w.needRep = w.needRep[:0]
	w.jbuf, w.joff, w.shadow, w.damaged = w.jbuf[:0], w.joff[:0], nil, false
	w.apply(simEvent{kind: "bootstrap", ok: clean}, input.Bootstrap{Last: vals, Clean: clean})
	if !w.m.Bootstrapped() {
		w.fail("not bootstrapped after Bootstrap")
	}
	for i, n := range w.names {
		w.apply(simEvent{kind: "history-start", st: i, tid: w.lastTID[i]},
			input.HistoryStart{Storage: n, After: w.lastTID[i]})
	}
	w.jbase, w.pruneJoff = len(w.joff), len(w.joff)
	if !clean && w.m.Status().CleanStart {
		w.fail("unclean start not reported")
	}
}

func (w *world) commitTruth(sp *spart) {
	w.tid++
	sp.tid = w.tid
	w.lastTID[sp.st] = w.tid
	w.commits[sp.st] = append(w.commits[sp.st], commitRec{w.tid, sp.tx, w.steps})
	sp.tx.committed++
	w.stats.commits++
	w.queueHistory(sp)
}

// complete: every intended participation committed.
func (tx *stxn) complete() bool { return tx.committed == len(tx.parts) }

// truePartial: everything ended, some committed, some not.
func (tx *stxn) truePartial() bool {
	return tx.ended == len(tx.parts) && tx.committed > 0 && tx.committed < len(tx.parts)
}

// check is the oracle: monotonic, coherent.
func (w *world) check() {
	recs := w.m.Records()
	w.changed = w.changed[:0]
	for i := range recs {
		r := &recs[i]
		switch r.Kind {
		case RecPublished:
			s := slices.Index(w.names, r.Storage)
			if s < 0 {
				w.fail("published unknown storage %q", r.Storage)
				return
			}
			if w.hasP[s] && r.TID < w.P[s] {
				w.fail("storage %d published %d below %d", s, r.TID, w.P[s])
				return
			}
			if !w.realTID(s, r.TID) {
				w.fail("storage %d published %d, which no transaction committed", s, r.TID)
				return
			}
			w.P[s], w.hasP[s] = r.TID, true
			if !slices.Contains(w.changed, s) {
				w.changed = append(w.changed, s)
			}
		case RecCritical:
			w.fail("critical: %s", r.Msg)
			return
		case RecWarning:
			switch r.Code {
			case CodeBeginTwice, CodeCommitStorages, CodeCommitNone, CodeUncleanStart, CodeGroupLag:
			case CodeOutcomeUnknown:
				w.stats.unknownOutcomes++
			case CodeCommitNoBegin, CodeAbortNoBegin:
				if !w.damaged {
					w.fail("unexpected warning %s: %s", r.Code, r.Msg)
					return
				}
				// A classic BEGIN lost with a damaged journal's tail.
			default:
				w.fail("unexpected warning %s: %s", r.Code, r.Msg)
				return
			}
		case RecPartial:
			w.onPartial(r.Pin)
		case RecUnaccounted:
			w.onUnaccounted(r)
		case RecAccounted:
			w.onAccounted(r)
		case RecPinned:
			w.onPinned(r.Pin)
		case RecResolved:
			w.onResolved(r)
		}
		if w.failed {
			return
		}
	}
	w.m.ClearRecords()
	for _, s := range w.changed {
		cs := w.commits[s]
		for w.ptr[s] < len(cs) && cs[w.ptr[s]].tid <= w.P[s] {
			tx := cs[w.ptr[s]].tx
			w.lagHist[bits.Len(uint(w.steps-cs[w.ptr[s]].step))]++
			w.ptr[s]++
			if tx.exempt {
				continue
			}
			if !tx.complete() {
				w.fail("point includes %d on storage %d of transaction %s which committed %d of %d participations",
					cs[w.ptr[s]-1].tid, s, tx, tx.committed, len(tx.parts))
				return
			}
			for _, p := range tx.parts {
				if !w.hasP[p.st] || p.tid > w.P[p.st] {
					w.fail("incoherent: transaction %s is in on storage %d (tid %d) but out on storage %d (tid %d, point %d)",
						tx, s, cs[w.ptr[s]-1].tid, p.st, p.tid, w.P[p.st])
					return
				}
			}
		}
	}
}

func (w *world) onPartial(id uint64) {
	w.stats.partialPins++
	var info *PinInfo
	for _, p := range w.m.Pins() {
		if p.ID == id {
			info = &p
			break
		}
	}
	if info == nil {
		w.fail("partial pin %d not listed", id)
		return
	}
	real, faulty, crashed := false, false, false
	for _, pid := range info.Parts {
		sp := w.byPID[pid]
		if sp == nil {
			continue
		}
		real = real || sp.tx.truePartial()
		faulty = faulty || sp.tx.faulty
		crashed = crashed || sp.tx.crashed
	}
	if crashed && !real {
		w.stats.crashFalsePins++
	}
	switch {
	case real:
		w.stats.truePins++
	case faulty:
		w.stats.falsePinsFault++
	default:
		w.stats.falsePinsConflict++
		w.fail("false partial pin under ordinary conflicts: %s", info.Reason)
		return
	}
	w.accepts = append(w.accepts, acceptAt{w.steps + 20 + w.rng.IntN(400), id})
}

func (w *world) accept(a acceptAt) {
	var info *PinInfo
	for _, p := range w.m.Pins() {
		if p.ID == a.pin {
			info = &p
			break
		}
	}
	if info == nil {
		w.fail("pin %d to accept is gone", a.pin)
		return
	}
	// The operator accepts the live state: the partial transactions in it
	// are no longer expected to be wholly in or out.
	// An orphan whose outcome was ambiguous (recover.go) may be either
	// way: accepting its pin accepts that too.
	ambiguous := strings.Contains(info.Reason, "outcome ambiguous") || strings.Contains(info.Reason, "outcome unknown")
	for _, pid := range info.Parts {
		if sp := w.byPID[pid]; sp != nil && (sp.tx.truePartial() || (ambiguous && sp.tx.orphaned)) {
			sp.tx.exempt = true
		}
	}
	w.apply(simEvent{kind: "accept", tid: txn.TID(a.pin)}, input.Accept{Pin: a.pin})
}

// ---- transactions ----

func (w *world) pick(r int, n int) []int {
	_ = r
	sts := w.rng.Perm(len(w.names))[:n]
	slices.Sort(sts)
	return sts
}

func (w *world) startTxn(probeStorage int) *stxn {
	var cl *sclient
	thread := -1
	if probeStorage < 0 {
		cl = w.clients[w.rng.IntN(len(w.clients))]
		for i, busy := range cl.threads {
			if !busy {
				thread = i
				break
			}
		}
		if thread < 0 {
			return nil
		}
		cl.threads[thread] = true
		cl.active++
	}
	w.nextTx++
	tx := &stxn{id: w.nextTx, cl: cl, thread: thread, voteFail: -1, finishFail: -1, connLoss: -1, voteLoss: -1, noneIdx: -1, extraBegin: -1,
		began: w.now, active: true}
	n := 1
	switch r := w.rng.IntN(100); {
	case r < 35:
		n = 2
	case r < 50:
		n = 3
	}
	n = min(n, len(w.names))
	var sts []int
	if probeStorage >= 0 {
		tx.probe = true
		sts = []int{probeStorage}
		tx.key = "probe"
		tx.info = txn.Info{Description: "probe"}
	} else {
		sts = w.pick(0, n)
	}
	for _, s := range sts {
		tx.parts = append(tx.parts, &spart{st: s, tx: tx})
	}
	w.stats.txns++
	if cl != nil && cl.classic {
		w.stats.classicTxns++
		tx.classic = true
		tx.cid = fmt.Sprintf("%s_%x", cl.name, 0x7f00+thread)
		tx.info = txn.Info{User: "zope", Description: fmt.Sprintf("classic %d", tx.id)}
		tx.phase = phCBegin
		if !w.draining && !w.noFaults {
			switch r := w.rng.IntN(1000); {
			case r < 40:
				tx.abortEarly = true
				tx.loseEnd = w.rng.IntN(10) == 0
			case r < 55:
				tx.loseEnd = true
			case r < 65:
				tx.noneIdx = w.rng.IntN(len(tx.parts))
			case r < 85:
				if len(tx.parts) < len(w.names) {
					for {
						x := w.rng.IntN(len(w.names))
						if !slices.ContainsFunc(tx.parts, func(p *spart) bool { return p.st == x }) {
							tx.extraBegin = x
							break
						}
					}
				}
			}
		}
	} else {
		w.stats.proxyTxns++
		tx.phase = phBegin
		if cl != nil {
			meta := cl.metas[w.rng.IntN(len(cl.metas))]
			tx.key = txn.Key(cl.name + "|" + meta)
			tx.info = txn.Info{Client: cl.name, Description: meta}
		}
		if !tx.probe && !w.draining {
			if w.rng.IntN(100) < 8 {
				tx.voteFail = w.rng.IntN(len(tx.parts))
			}
			switch r := w.rng.IntN(1000); {
			case w.noFaults:
			case r < 5:
				tx.finishFail = w.rng.IntN(len(tx.parts))
			case r < 10:
				tx.connLoss = w.rng.IntN(len(tx.parts))
			case r < 14:
				tx.voteLoss = w.rng.IntN(len(tx.parts))
			}
		}
		for _, p := range tx.parts {
			w.nextPID++
			p.pid = w.nextPID
			w.byPID[p.pid] = p
		}
	}
	w.active = append(w.active, tx)
	return tx
}

func (w *world) finishTxn(tx *stxn) {
	tx.active = false
	tx.phase = phDone
	if tx.cl != nil {
		tx.cl.threads[tx.thread] = false
		tx.cl.active--
	}
	if i := slices.Index(w.active, tx); i >= 0 {
		w.active[i] = w.active[len(w.active)-1]
		w.active = w.active[:len(w.active)-1]
	}
	if tx.truePartial() {
		w.stats.truePartials++
		w.partials = append(w.partials, tx)
	}
}

func (w *world) endPart(p *spart, st simPartState) {
	p.state = st
	p.tx.ended++
}

// advance runs one step of a transaction.
func (w *world) advance(tx *stxn) {
	switch tx.phase {
	case phBegin:
		p := tx.parts[tx.idx]
		p.state = spBegun
		w.event(simEvent{kind: "begin", pid: p.pid, st: p.st, txn: string(tx.key)},
			txn.Event{Kind: txn.Begin, Part: p.pid, Storage: w.names[p.st], Key: tx.key, Info: tx.info})
		tx.idx++
		if tx.idx == len(tx.parts) {
			tx.phase, tx.idx = phVote, 0
		}
	case phVote:
		p := tx.parts[tx.idx]
		ok := tx.idx != tx.voteFail
		w.event(simEvent{kind: "vote", pid: p.pid, st: p.st, ok: ok}, txn.Event{Kind: txn.Vote, Part: p.pid, OK: ok})
		if !ok {
			w.stats.conflicts++
			tx.phase, tx.idx = phAbort, 0
			return
		}
		p.state = spVoted
		tx.idx++
		if tx.idx == len(tx.parts) {
			tx.phase, tx.idx = phFinish, 0
			if tx.voteLoss >= 0 {
				tx.phase = phVoteLoss
			}
		}
	case phVoteLoss:
		// One connection drops while voted, before any tpc_finish; the
		// client does not know yet and finishes the others in order until
		// it reaches the dead one (the server aborted it).
		w.stats.voteLosses++
		tx.faulty = true
		w.lose(tx.parts[tx.voteLoss])
		tx.phase, tx.idx = phFinish, 0
	case phFinish:
		p := tx.parts[tx.idx]
		switch p.state {
		case spAborted:
			tx.phase, tx.idx = phAbort, tx.idx+1
		case spVoted:
			p.state = spFinSent
			w.event(simEvent{kind: "finish-sent", pid: p.pid, st: p.st}, txn.Event{Kind: txn.FinishSent, Part: p.pid})
		case spFinSent:
			if tx.idx == tx.connLoss {
				// The connection drops after tpc_finish went out: the
				// server may or may not have committed.
				w.stats.connLosses++
				tx.faulty = true
				if w.rng.IntN(2) == 0 {
					w.commitTruth(p)
				}
				w.lose(p)
				tx.phase, tx.idx = phAbort, tx.idx+1
				return
			}
			if tx.idx == tx.finishFail {
				w.stats.finishFails++
				tx.faulty = true
				w.endPart(p, spAborted)
				w.event(simEvent{kind: "abort(finish failed)", pid: p.pid, st: p.st}, txn.Event{Kind: txn.Aborted, Part: p.pid})
				tx.phase, tx.idx = phAbort, tx.idx+1
				return
			}
			w.commitTruth(p) // the server commits; the reply is on its way
			p.state = spServerDone
		case spServerDone:
			w.endPart(p, spCommitted)
			w.event(simEvent{kind: "finished", pid: p.pid, st: p.st, tid: p.tid}, txn.Event{Kind: txn.Finished, Part: p.pid, TID: p.tid})
			tx.idx++
			if tx.idx == len(tx.parts) {
				w.finishTxn(tx)
			}
		}
	case phAbort:
		// tpc_abort of every participation still open, in order.
		for tx.idx < len(tx.parts) && tx.parts[tx.idx].state >= spCommitted {
			tx.idx++
		}
		if tx.idx == len(tx.parts) {
			w.finishTxn(tx)
			return
		}
		p := tx.parts[tx.idx]
		if p.state == spNew {
			w.endPart(p, spAborted) // never begun
		} else {
			w.endPart(p, spAborted)
			w.event(simEvent{kind: "abort", pid: p.pid, st: p.st}, txn.Event{Kind: txn.Aborted, Part: p.pid})
		}
		tx.idx++
	case phCBegin:
		var sts []string
		for _, p := range tx.parts {
			sts = append(sts, w.names[p.st])
		}
		if tx.extraBegin >= 0 {
			sts = append(sts, w.names[tx.extraBegin])
			w.stats.classicSubset++
		}
		w.apply(simEvent{kind: "BEGIN", txn: tx.cid}, input.ClassicBegin{ID: tx.cid, Storages: sts})
		tx.phase, tx.idx = phCCommit, 0
		if tx.abortEarly {
			tx.phase = phCEnd
		}
	case phCCommit:
		// Commits on the storages, unseen by the tracker (patched Zopes
		// talk to ZEO directly).
		w.commitTruth(tx.parts[tx.idx])
		tx.parts[tx.idx].state = spCommitted
		tx.ended++
		tx.idx++
		if tx.idx == len(tx.parts) {
			tx.phase = phCEnd
		}
	case phCEnd:
		if tx.abortEarly {
			for _, p := range tx.parts {
				w.endPart(p, spAborted)
			}
		}
		if tx.loseEnd {
			w.stats.classicLostEnds++
			for _, p := range tx.parts {
				if p.tid != 0 {
					w.needRep = append(w.needRep, p) // nothing will account for it
				}
			}
			w.finishTxn(tx)
			return
		}
		if tx.abortEarly {
			w.apply(simEvent{kind: "ABORT", txn: tx.cid}, input.ClassicAbort{ID: tx.cid})
			w.finishTxn(tx)
			return
		}
		var tids []StorageTID
		var none []string
		for i, p := range tx.parts {
			if i == tx.noneIdx {
				none = append(none, w.names[p.st])
				continue
			}
			tids = append(tids, StorageTID{Storage: w.names[p.st], TID: p.tid})
		}
		if tx.noneIdx >= 0 {
			w.stats.classicNone++
			w.needRep = append(w.needRep, tx.parts[tx.noneIdx])
		}
		w.apply(simEvent{kind: "COMMIT", txn: tx.cid}, input.ClassicCommit{ID: tx.cid, TIDs: tids, None: none})
		w.finishTxn(tx)
	}
}

// lose reports a participation's connection as lost.
func (w *world) lose(p *spart) {
	if p.state == spFinSent || p.state == spServerDone {
		p.state = spInDoubt
		p.truthSet = true
		w.stats.inDoubt++
		w.resolves = append(w.resolves, p)
	} else {
		w.endPart(p, spAborted)
	}
	w.event(simEvent{kind: "lost", pid: p.pid, st: p.st}, txn.Event{Kind: txn.Lost, Part: p.pid})
}

// crash kills a proxy client process: every open participation of every
// transaction of it loses its connection.
func (w *world) crash(cl *sclient) {
	w.stats.crashes++
	for _, tx := range slices.Clone(w.active) {
		if tx.cl != cl {
			continue
		}
		tx.faulty = true
		for _, p := range tx.parts {
			switch p.state {
			case spNew:
				w.endPart(p, spAborted)
			case spBegun, spVoted:
				w.lose(p)
			case spFinSent:
				if w.rng.IntN(2) == 0 {
					w.commitTruth(p)
				}
				w.lose(p)
			case spServerDone:
				w.lose(p)
			}
		}
		w.finishTxn(tx)
	}
}

func (w *world) resolve(i int) {
	p := w.resolves[i]
	w.resolves = slices.Delete(w.resolves, i, i+1)
	committed := p.tid != 0
	if committed {
		w.endPart(p, spCommitted)
	} else {
		w.endPart(p, spAborted)
	}
	if p.tx.ended == len(p.tx.parts) && p.tx.truePartial() {
		w.stats.truePartials++
		w.partials = append(w.partials, p.tx)
	}
	w.event(simEvent{kind: "resolve", pid: p.pid, st: p.st, tid: p.tid, ok: committed},
		txn.Event{Kind: txn.Resolved, Part: p.pid, OK: committed, TID: p.tid})
}

// ---- schedule ----

func (w *world) run() {
	nextQuiesce := 20_000 + w.rng.IntN(60_000)
	for w.steps < w.target && !w.failed {
		if w.steps >= nextQuiesce {
			w.quiesce()
			nextQuiesce = w.steps + 20_000 + w.rng.IntN(80_000)
			continue
		}
		w.step()
	}
	if !w.failed {
		w.quiesce()
	}
}

func (w *world) step() {
	// Operator and late events that are due.
	for i := 0; i < len(w.accepts); i++ {
		if w.accepts[i].step <= w.steps {
			a := w.accepts[i]
			w.accepts = slices.Delete(w.accepts, i, i+1)
			w.accept(a)
			return
		}
	}
	for i := 0; i < len(w.uaccepts); i++ {
		if w.uaccepts[i].step <= w.steps {
			a := w.uaccepts[i]
			w.uaccepts = slices.Delete(w.uaccepts, i, i+1)
			w.operator(a, false)
			return
		}
	}
	if len(w.orphanIDs) > 0 && w.settled() {
		w.checkOrphans()
		return
	}
	if w.steps%4096 == 0 && w.steps != w.rotatedAt {
		w.rotatedAt = w.steps
		w.rotate() // the journal's rotation, under load
		return
	}
	if !w.noFaults && w.steps >= w.crashAt {
		w.crashAt = w.steps + w.crashMin + w.rng.IntN(w.crashSpan)
		w.crashTracker()
		return
	}
	if w.rng.IntN(3) == 0 && w.deliverSome() {
		return
	}
	for s, at := range w.blind {
		if at != 0 && at <= w.steps {
			w.blind[s] = 0
			w.event(simEvent{kind: "unblind", st: s, tid: w.lastTID[s]}, txn.Event{Kind: txn.Unblind, Storage: w.names[s], TID: w.lastTID[s]})
			return
		}
	}
	if w.steps%97 == 0 {
		w.apply(simEvent{kind: "tick"}, input.Tick{})
		return
	}
	// An urgent classic transaction (it must end before the timeout,
	// unless it is one whose end is lost on purpose).
	for _, tx := range w.active {
		if tx.classic && w.now-tx.began > int64(w.cfg.ClassicTimeout)/4 {
			w.advance(tx)
			return
		}
	}
	r := w.rng.IntN(10_000)
	switch {
	case r < 20 && len(w.resolves) > 0:
		w.resolve(w.rng.IntN(len(w.resolves)))
	case r < 40 && w.noFaults:
	case r < 23:
		// A client process dies, maybe between two tpc_finish.
		cl := w.clients[w.rng.IntN(len(w.clients))]
		if !cl.classic && cl.active > 0 {
			w.crash(cl)
		}
	case r < 24:
		// A connection that cannot be decoded: unseen single-storage
		// commits may happen on it.
		s := w.rng.IntN(len(w.names))
		if w.blind[s] == 0 {
			w.stats.blinds++
			w.blind[s] = w.steps + 100 + w.rng.IntN(3000)
			w.event(simEvent{kind: "blind", st: s}, txn.Event{Kind: txn.Blind, Storage: w.names[s], Reason: "undecodable frames"})
		}
	case r < 40:
		for s, at := range w.blind {
			if at != 0 {
				w.nextTx++
				tx := &stxn{id: w.nextTx, parts: []*spart{{st: s}}, unseen: true, noneIdx: -1,
					info: txn.Info{Description: "unseen"}}
				tx.parts[0].tx = tx
				w.commitTruth(tx.parts[0])
				tx.ended = 1
				// Accounted for by the Unblind (rule 5) if the history
				// reported it while the connection was open.
				break
			}
		}
	case r < 45:
		// The daemon reads a storage's last TID (releases lost/None pins).
		s := w.rng.IntN(len(w.names))
		w.lastTIDInput(s)
	case r < 46 && !w.noFaults:
		// A client that bypasses the proxy.
		w.directTxn()
	case r < 47:
		// A watcher loses its connection: the history lags by many commits
		// (caught up from the iterator, with metadata).
		s := w.rng.IntN(len(w.names))
		if w.hstall[s] <= w.steps {
			w.hstall[s] = w.steps + 200 + w.rng.IntN(2000)
		}
	case r < 2500 && len(w.active) < w.maxActive:
		if tx := w.startTxn(-1); tx != nil {
			w.advance(tx)
		}
	default:
		if len(w.active) > 0 {
			w.advance(w.active[w.rng.IntN(len(w.active))])
		}
	}
	if w.steps%100_000 == 0 && len(w.active)+len(w.resolves) > 0 {
		// Lag: how far the point trails the live state (in commits).
		lag := 0
		for s := range w.names {
			lag += len(w.commits[s]) - w.ptr[s]
		}
		w.stats.maxLag = max(w.stats.maxLag, lag)
	}
}

// quiesce lets every transaction end, performs the operator's duties
// (resolve, accept, unblind, one commit per storage for lost pins) and
// checks liveness: the point equals the live state. Then maybe restarts.
func (w *world) quiesce() {
	w.stats.quiesces++
	w.draining = true
	defer func() { w.draining = false }()
	unclean := !w.noFaults && w.rng.IntN(8) == 0
	if unclean {
		// The whole site dies mid-flight (proxy and clients): transactions
		// that were half committed stay so in the live files.
		w.stats.unclean++
		for _, p := range w.resolves {
			if p.tid != 0 {
				p.state = spCommitted
			} else {
				p.state = spAborted
			}
			p.tx.ended++
		}
		w.resolves = w.resolves[:0]
		for len(w.active) > 0 {
			tx := w.active[0]
			for _, p := range tx.parts {
				switch p.state {
				case spFinSent:
					if w.rng.IntN(2) == 0 {
						w.commitTruth(p)
						p.state = spCommitted
					} else {
						p.state = spAborted
					}
					tx.ended++
				case spServerDone:
					p.state = spCommitted
					tx.ended++
				case spNew, spBegun, spVoted:
					p.state = spAborted
					tx.ended++
				}
			}
			w.finishTxn(tx)
		}
		for s := range w.names {
			for _, c := range w.commits[s][w.ptr[s]:] {
				if !c.tx.complete() && !c.tx.exempt {
					c.tx.exempt = true
					w.stats.exemptUnclean++
				}
			}
		}
		w.restart(false)
		return
	}
	for guard := 0; len(w.active) > 0; guard++ {
		if guard > 1_000_000 {
			w.fail("transactions do not end while draining")
			return
		}
		w.advance(w.active[w.rng.IntN(len(w.active))])
		if w.failed {
			return
		}
	}
	for len(w.resolves) > 0 && !w.failed {
		w.resolve(0)
	}
	for s, at := range w.blind {
		if at != 0 {
			w.blind[s] = 0
			w.event(simEvent{kind: "unblind", st: s}, txn.Event{Kind: txn.Unblind, Storage: w.names[s], TID: w.lastTID[s]})
		}
	}
	// The history catches up: orphans of a crash settle, every commit is
	// accounted for or held.
	w.flushHistory()
	w.now += 2 * int64(w.cfg.ClassicTimeout)
	w.apply(simEvent{kind: "tick"}, input.Tick{})
	for len(w.accepts) > 0 && !w.failed {
		a := w.accepts[0]
		w.accepts = w.accepts[1:]
		w.accept(a)
	}
	// The operator decides on every unaccounted pin left; each must hold a
	// commit that nothing could account for.
	w.uaccepts = w.uaccepts[:0]
	for _, p := range w.m.Pins() {
		if p.Kind == PinUnaccounted && !w.failed {
			w.operator(acceptAt{pin: p.ID}, true)
		}
	}
	if w.failed {
		return
	}
	for _, p := range w.needRep {
		if !p.reported && !p.tx.exempt {
			w.stats.missedUnacc++
			w.fail("commit %d on storage %d that nothing accounted for was never reported: %s", p.tid, p.st, p.tx)
			return
		}
	}
	w.needRep = w.needRep[:0]
	// One commit on every storage, or reading its last TID, releases lost
	// and None pins.
	for s := range w.names {
		if w.rng.IntN(2) == 0 {
			w.lastTIDInput(s)
			continue
		}
		tx := w.startTxn(s)
		for tx.active && !w.failed {
			w.advance(tx)
		}
	}
	w.flushHistory() // the probes' commits
	if w.failed {
		return
	}
	if pins := w.m.Pins(); len(pins) > 0 {
		w.fail("pins left after quiescence: %+v", pins)
		return
	}
	if p, c := w.m.InFlight(); p+c > 0 {
		w.fail("%d participations and %d classic transactions still in flight after quiescence", p, c)
		return
	}
	for s := range w.names {
		if !w.hasP[s] || w.P[s] != w.lastTID[s] {
			w.fail("liveness: storage %d published %d (set %v), live last TID %d", s, w.P[s], w.hasP[s], w.lastTID[s])
			return
		}
	}
	// Every true partial commit must have been pinned and accepted (or
	// swallowed by an unclean restart, which is reported as such).
	for _, tx := range w.partials {
		if !tx.exempt {
			w.stats.missedPartials++
			w.fail("partial commit never pinned: %s", tx)
			return
		}
	}
	w.partials = w.partials[:0]
	if !w.m.Quiescent() {
		w.fail("not quiescent at rest: %+v", w.m.Status())
		return
	}
	if w.rng.IntN(2) == 0 {
		w.rotate()
		if w.failed {
			return
		}
	}
	w.prune()
	if w.rng.IntN(3) == 0 {
		w.stats.restarts++
		w.restart(true)
	}
}

// prune forgets history the oracle can no longer need: nothing is in
// flight and every commit is in the point.
// realTID: v is a TID some transaction committed on s (or its last TID
// when history was pruned, or its initial TID).
func (w *world) realTID(s int, v txn.TID) bool {
	if v == w.pruned[s] || v == w.initTID[s] {
		return true
	}
	cs := w.commits[s]
	k := sort.Search(len(cs), func(i int) bool { return cs[i].tid >= v })
	return k < len(cs) && cs[k].tid == v
}

func (w *world) prune() {
	w.pruneJoff = len(w.joff)
	clear(w.byPID)
	for s := range w.commits {
		w.pruned[s] = w.lastTID[s]
		w.commits[s] = append(w.commits[s][:0], w.commits[s][w.ptr[s]:]...)
		w.ptr[s] = 0
	}
}

func (tx *stxn) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d{direct=%v unseen=%v crashed=%v classic=%v cid=%q key=%q faulty=%v vf=%d ff=%d cl=%d lose=%v none=%d extra=%d early=%v parts:",
		tx.id, tx.direct, tx.unseen, tx.crashed, tx.classic, tx.cid, tx.key, tx.faulty, tx.voteFail, tx.finishFail, tx.connLoss*100+tx.voteLoss, tx.loseEnd, tx.noneIdx, tx.extraBegin, tx.abortEarly)
	for _, p := range tx.parts {
		fmt.Fprintf(&b, " [pid=%d st=%d state=%d tid=%d]", p.pid, p.st, p.state, p.tid)
	}
	b.WriteString("}")
	return b.String()
}

var debugPIDs = map[txn.PartID]bool{}
var debugTIDs = map[txn.TID]bool{}

func init() {
	for _, f := range strings.Fields(os.Getenv("SIM_DEBUG_PIDS")) {
		n, _ := strconv.Atoi(f)
		debugPIDs[txn.PartID(n)] = true
	}
	for _, f := range strings.Fields(os.Getenv("SIM_DEBUG_TIDS")) {
		n, _ := strconv.ParseUint(f, 10, 64)
		debugTIDs[txn.TID(n)] = true
		debugPIDs[0] = false
	}
}
