package tracker

// The simulation's ground truth (the storages' history), clients that
// bypass the proxy, and crashes of the tracker with journal replay
// (docs/design.md, "Ground truth").

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/input"
)

func (w *world) event(e simEvent, ev txn.Event) { w.apply(e, input.Event{Event: ev}) }

func (w *world) lastTIDInput(s int) {
	w.apply(simEvent{kind: "last-tid", st: s, tid: w.lastTID[s]},
		input.LastTID{Storage: w.names[s], TID: w.lastTID[s]})
}

// ---- history ----

// queueHistory adds a real commit to its storage's history, which reports
// it later, in TID order: with metadata when it comes from the iterator
// (a stalled watcher catching up), sometimes at once (ZEO invalidates the
// other connections before it answers the committer).
func (w *world) queueHistory(sp *spart) {
	s := sp.st
	in := sp.tx.info
	c := txn.Commit{Storage: w.names[s], TID: sp.tid, User: in.User, Description: in.Description, Extension: in.Extension}
	stalled := w.hstall[s] > w.steps
	c.HasMeta = stalled || w.rng.IntN(5) == 0
	w.hq[s] = append(w.hq[s], c)
	w.stats.histLagMax = max(w.stats.histLagMax, len(w.hq[s]))
	if !stalled && !w.down && w.rng.IntN(3) == 0 {
		for len(w.hq[s]) > 0 && !w.failed {
			w.deliver(s)
		}
	}
}

func (w *world) deliver(s int) {
	c := w.hq[s][0]
	w.hq[s] = w.hq[s][1:]
	if len(w.hq[s]) == 0 {
		w.hq[s] = nil
	}
	w.stats.histCommits++
	if c.HasMeta {
		w.stats.histMeta++
	}
	if w.blind[s] != 0 {
		// Seen while a blind connection is open: its Unblind accounts for
		// it (rule 5), whoever made it. A commit that nothing else could
		// account for is then published as it is (a bypassing client's
		// half included): the oracle exempts it, and counts it.
		if p := w.commitPart(s, c.TID); p != nil && w.justified(p) && !p.tx.exempt {
			p.tx.exempt = true
			w.stats.blindCovered++
			if p.tx.direct && p.tx.committed < len(p.tx.parts) {
				w.stats.blindCoveredHalves++
			}
		}
	}
	w.apply(simEvent{kind: "history", st: s, tid: c.TID, ok: c.HasMeta}, input.History{Commit: c})
}

// deliverSome reports the next commit of some storage whose watcher is not
// stalled; false if there is none.
func (w *world) deliverSome() bool {
	n := len(w.names)
	k := w.rng.IntN(n)
	for j := 0; j < n; j++ {
		s := (k + j) % n
		if len(w.hq[s]) > 0 && w.hstall[s] <= w.steps {
			w.deliver(s)
			return true
		}
	}
	return false
}

// flushHistory ends every stall and reports every commit.
func (w *world) flushHistory() {
	for s := range w.names {
		w.hstall[s] = 0
		for len(w.hq[s]) > 0 && !w.failed {
			w.deliver(s)
		}
	}
}

// ---- clients that bypass the proxy ----

// directTxn: a client connected to the ZEO servers directly commits on one
// or two storages; on two, it may die between the two finishes.
func (w *world) directTxn() {
	n := min(1+w.rng.IntN(2), len(w.names))
	w.nextTx++
	tx := &stxn{id: w.nextTx, direct: true, voteFail: -1, finishFail: -1, connLoss: -1, voteLoss: -1, noneIdx: -1, extraBegin: -1,
		info: txn.Info{User: "admin", Description: fmt.Sprintf("/maintenance/%d", w.nextTx)}}
	// Its own metadata: one equal to an orphan's would be taken for the
	// orphan's commit (tracker/doc.go, "What is not seen").
	for _, s := range w.pick(0, n) {
		tx.parts = append(tx.parts, &spart{st: s, tx: tx})
	}
	w.stats.directTxns++
	for i, p := range tx.parts {
		if i == 1 && w.rng.IntN(2) == 0 {
			w.stats.directHalves++ // dies between the two finishes
			break
		}
		w.commitTruth(p)
		p.state = spCommitted
		w.needRep = append(w.needRep, p)
	}
	tx.ended = len(tx.parts)
}

// justified: nothing could have accounted for this commit (a bypassing
// client, a blind connection, a classic COMMIT lost or carrying None).
func (w *world) justified(p *spart) bool {
	tx := p.tx
	if tx.direct || tx.unseen || tx.lostReport || tx.misattributed {
		return true
	}
	return tx.classic && (tx.loseEnd || (tx.noneIdx >= 0 && tx.parts[tx.noneIdx] == p))
}

func (w *world) commitPart(s int, tid txn.TID) *spart {
	cs := w.commits[s]
	k := sort.Search(len(cs), func(i int) bool { return cs[i].tid >= tid })
	if k == len(cs) || cs[k].tid != tid {
		return nil
	}
	for _, p := range cs[k].tx.parts {
		if p.st == s && p.tid == tid {
			return p
		}
	}
	return nil
}

func (w *world) onUnaccounted(r *Record) {
	s := slices.Index(w.names, r.Storage)
	p := w.commitPart(s, r.TID)
	if p == nil {
		w.fail("unaccounted commit %d on storage %d that the world does not know", r.TID, s)
		return
	}
	if p.reported {
		w.fail("unaccounted commit %d on storage %d reported twice", r.TID, s)
		return
	}
	p.reported = true
	w.stats.unaccReports++
	if w.justified(p) {
		w.stats.unaccJustified++
	} else if os.Getenv("SIM_SHOW_UNJUSTIFIED") != "" {
		w.t.Logf("input %d: unjustified unaccounted report %d on %d (held since ?): %s", w.steps, r.TID, s, p.tx)
	}
	w.unaccRep[s] = append(w.unaccRep[s], p)
}

func (w *world) onAccounted(r *Record) {
	s := slices.Index(w.names, r.Storage)
	w.unaccRep[s] = slices.DeleteFunc(w.unaccRep[s], func(p *spart) bool { return p.tid == r.TID })
}

func (w *world) onPinned(id uint64) {
	for _, p := range w.m.Pins() {
		if p.ID == id && p.Kind == PinUnaccounted {
			w.stats.unaccPins++
			w.uaccepts = append(w.uaccepts, acceptAt{w.steps + 20 + w.rng.IntN(400), id})
		}
	}
}

// operator looks at an unaccounted pin: it accepts it when a commit it
// holds really had nobody to account for it; otherwise it waits (a late
// report may still account for it). final: at rest, where a pin left that
// nothing justifies is a false pin.
func (w *world) operator(a acceptAt, final bool) {
	var info *PinInfo
	for _, p := range w.m.Pins() {
		if p.ID == a.pin {
			info = &p
			break
		}
	}
	if info == nil {
		return // released: accounted for late
	}
	// Accepting decides on every unaccounted commit of every storage at
	// once (a bypassing transaction may have halves on several): each
	// must be one that nothing could account for.
	s := slices.Index(w.names, info.Storages[0])
	var bad []string
	for _, ps := range w.unaccRep {
		for _, p := range ps {
			if !w.justified(p) {
				bad = append(bad, p.tx.String())
			}
		}
	}
	if len(bad) > 0 {
		if !final {
			w.uaccepts = append(w.uaccepts, acceptAt{w.steps + 1000, a.pin})
			return
		}
		w.stats.falseUnaccPins++
		w.fail("false unaccounted pin %d on storage %d: %s; unjustified reported commits: %v", a.pin, s, info.Reason, bad)
		return
	}
	// The operator accepts the live state: what the held commits belong
	// to is no longer expected to be wholly in or out.
	var marked []*stxn
	for s := range w.unaccRep {
		for _, p := range w.unaccRep[s] {
			if !p.tx.exempt {
				p.tx.exempt = true
				marked = append(marked, p.tx)
			}
		}
	}
	w.apply(simEvent{kind: "accept-unaccounted", st: s, tid: txn.TID(a.pin)}, input.Accept{Pin: a.pin})
	if errors.Is(w.applyErr, ErrUnaccountedPending) {
		// Some held commit is not reported yet: nothing was accepted; the
		// operator tries again.
		for _, tx := range marked {
			tx.exempt = false
		}
		if !final {
			w.uaccepts = append(w.uaccepts, acceptAt{w.steps + 20 + w.rng.IntN(60), a.pin})
		}
		return
	}
	for s := range w.unaccRep {
		w.unaccRep[s] = nil
	}
	w.stats.unaccAccepts++
}

// ---- crashes of the tracker ----

// replay builds a fresh Machine from the journal.
func (w *world) replay() *Machine {
	m := New(w.cfg)
	for k, off := range w.joff {
		end := len(w.jbuf)
		if k+1 < len(w.joff) {
			end = w.joff[k+1]
		}
		now, in, err := input.Decode(w.jbuf[off:end])
		if err != nil {
			w.fail("journal input %d: %v", k, err)
			return nil
		}
		if err := m.Apply(now, in); err != nil && !errors.Is(err, ErrUnaccountedPending) {
			w.fail("replaying journal input %d (%s): %v", k, input.Name(in), err)
			return nil
		}
		m.ClearRecords()
	}
	w.stats.replayed += len(w.joff)
	return m
}

// sameStatus compares the live Machine with a replayed one: after a
// rotation too, the image holds everything (counters included).
func (w *world) sameStatus(live, got Status) {
	if reflect.DeepEqual(live, got) {
		return
	}
	lv, gv := reflect.ValueOf(live), reflect.ValueOf(got)
	var diff []string
	for i := 0; i < lv.NumField(); i++ {
		if !reflect.DeepEqual(lv.Field(i).Interface(), gv.Field(i).Interface()) {
			diff = append(diff, fmt.Sprintf("%s:\n  live   %+v\n  replay %+v", lv.Type().Field(i).Name, lv.Field(i).Interface(), gv.Field(i).Interface()))
		}
	}
	w.fail("replayed journal (%d inputs) does not give the crashed Machine's state:\n%s", len(w.joff), diff)
}

// crashTracker kills the tracker process at a random moment: a fresh
// Machine replays the journal (it must reach exactly the dead one's
// state), every connection of the dead proxy is gone, and Recover gets
// the storages' live last TIDs. Sometimes the journal lost its tail (a
// damaged block, a cut file, appends that had stopped): the replay then
// ends at an earlier state, Recover gets the point the dead process
// published last as a floor and is told of the damage.
func (w *world) crashTracker() {
	w.stats.trackerCrashes++
	live := w.m.Status()
	lo := max(w.jbase, w.pruneJoff)
	damaged := !w.noFaults && w.rng.IntN(w.damageOdds) == 0 && len(w.joff) > lo+1
	if damaged {
		k := lo + w.rng.IntN(len(w.joff)-lo)
		w.jbuf, w.joff = w.jbuf[:w.joff[k]], w.joff[:k]
		w.stats.damagedCrashes++
		w.damaged = true
		if os.Getenv("SIM_DEBUG_CRASH") != "" {
			w.t.Logf("damaged crash at %d: journal cut at record %d of %d", w.steps, k, len(w.joff))
		}
	}
	w.shadow = nil
	m := w.replay()
	if w.failed {
		return
	}
	if !damaged {
		w.sameStatus(live, m.Status())
		if w.failed {
			return
		}
	}
	var floor []StorageTID
	for s, n := range w.names {
		if w.hasP[s] {
			floor = append(floor, StorageTID{Storage: n, TID: w.P[s]}) // the status file's last line
		}
	}
	w.m = m
	w.down = true
	// In-doubt participations: their truth was decided when their
	// connection dropped; nobody will report it now but the history.
	for _, p := range w.resolves {
		if p.tid != 0 {
			w.endPart(p, spCommitted)
		} else {
			w.endPart(p, spAborted)
		}
		if !p.tx.active && p.tx.truePartial() {
			w.stats.truePartials++
			w.partials = append(w.partials, p.tx)
		}
	}
	w.resolves = w.resolves[:0]
	for _, tx := range slices.Clone(w.active) {
		if tx.classic {
			// The patched Zope talks to ZEO itself; its line to the
			// tracker broke, and it may drop its COMMIT or ABORT.
			if w.rng.IntN(2) == 0 {
				tx.loseEnd = true
			}
			continue
		}
		tx.faulty, tx.crashed = true, true
		for _, p := range tx.parts {
			switch p.state {
			case spNew, spBegun, spVoted:
				w.endPart(p, spAborted)
			case spFinSent:
				// The finish may have reached the server before the
				// connection died.
				w.stats.orphans++
				if w.rng.IntN(2) == 0 {
					w.commitTruth(p)
					w.endPart(p, spCommitted)
				} else {
					w.endPart(p, spAborted)
				}
			case spServerDone:
				w.stats.orphans++
				w.endPart(p, spCommitted)
			}
		}
		w.finishTxn(tx)
		if tx.truePartial() {
			w.stats.crashPartials++
		}
	}
	for s := range w.blind {
		w.blind[s] = 0 // blind connections died with the proxy
	}
	// The new process's watchers catch up from the iterator: metadata.
	for s := range w.hq {
		for k := range w.hq[s] {
			w.hq[s][k].HasMeta = true
		}
	}
	w.down = false
	vals := make([]StorageTID, len(w.names))
	for i, n := range w.names {
		vals[i] = StorageTID{Storage: n, TID: w.lastTID[i]}
	}
	w.orphanIDs = w.orphanIDs[:0]
	for _, p := range m.Status().Parts {
		w.orphanIDs = append(w.orphanIDs, p.ID)
		if sp := w.byPID[p.ID]; sp != nil {
			sp.tx.orphaned = true
			if damaged {
				sp.tx.faulty, sp.tx.crashed = true, true
				w.stats.damagedOrphans++
			}
		}
	}
	if damaged {
		w.afterDamage(floor)
	}
	w.settleAt = slices.Clone(w.lastTID)
	in := input.Recover{Live: vals}
	if damaged {
		in.Floor, in.TailLost = floor, true
	}
	w.apply(simEvent{kind: "recover", ok: damaged}, in)
	if damaged {
		// The new watchers resume where the replayed tracker stands (below
		// the held commits it knows without metadata) and read everything
		// since with the iterator.
		for s, n := range w.names {
			pos, _ := w.m.HistoryResume(n)
			w.hq[s] = w.hq[s][:0]
			for _, c := range w.commits[s] {
				if c.tid <= pos {
					continue
				}
				p := w.commitPart(s, c.tid)
				in := c.tx.info
				w.hq[s] = append(w.hq[s], txn.Commit{Storage: n, TID: p.tid, HasMeta: true, User: in.User, Description: in.Description, Extension: in.Extension})
			}
		}
		return
	}
	// The new watchers re-read with the iterator, metadata included, what
	// the history had already reported above the published point.
	for s := range w.names {
		for _, c := range w.commits[s][w.ptr[s]:] {
			if len(w.hq[s]) > 0 && c.tid >= w.hq[s][0].TID {
				break
			}
			p := w.commitPart(s, c.tid)
			in := c.tx.info
			w.stats.rereads++
			w.apply(simEvent{kind: "history-reread", st: s, tid: c.tid, ok: true}, input.History{
				Commit: txn.Commit{Storage: w.names[s], TID: p.tid, HasMeta: true, User: in.User, Description: in.Description, Extension: in.Extension}})
			if w.failed {
				return
			}
		}
	}
}

// afterDamage makes the oracle's bookkeeping match a Machine replayed from a
// journal that lost its tail: what it reported after the cut (unaccounted
// commits, pins) is gone, and the commits after the point the dead process
// published last lost their reports.
func (w *world) afterDamage(floor []StorageTID) {
	fl := make([]txn.TID, len(w.names))
	for _, f := range floor {
		fl[slices.Index(w.names, f.Storage)] = f.TID
	}
	for s := range w.names {
		for _, c := range w.commits[s] {
			p := w.commitPart(s, c.tid)
			if p == nil {
				continue
			}
			if c.tid > fl[s] {
				c.tx.lostReport = true
			}
			p.reported = false
		}
		w.unaccRep[s] = nil
		i := w.m.stIdx[w.names[s]]
		for _, u := range w.m.st[i].unacc {
			if p := w.commitPart(s, u.tid); p != nil && u.reported {
				p.reported = true
				w.unaccRep[s] = append(w.unaccRep[s], p)
			}
		}
	}
	for _, p := range w.needRep {
		if p.tid <= fl[p.st] {
			p.reported = true // the dead process published past it: accepted
		}
	}
	w.accepts, w.uaccepts = w.accepts[:0], w.uaccepts[:0]
	for _, p := range w.m.Pins() {
		switch p.Kind {
		case PinPartial:
			w.accepts = append(w.accepts, acceptAt{w.steps + 20 + w.rng.IntN(400), p.ID})
		case PinUnaccounted:
			w.uaccepts = append(w.uaccepts, acceptAt{w.steps + 20 + w.rng.IntN(400), p.ID})
		}
	}
}

// onResolved checks an orphan's outcome against the truth: "not committed"
// is never said of a participation that committed. One taken for another's
// commit is the documented residue of identical metadata (counted; both
// transactions are then no longer expected wholly in or out).
func (w *world) onResolved(r *Record) {
	sp := w.byPID[r.Part]
	if sp == nil || (r.TID == sp.tid) {
		return
	}
	if r.TID == 0 {
		w.fail("participation %d resolved as not committed, but it committed at %d: %s", r.Part, sp.tid, sp.tx)
		return
	}
	other := w.commitPart(sp.st, r.TID)
	if other == nil || other.tx.info.User != sp.tx.info.User || other.tx.info.Description != sp.tx.info.Description ||
		other.tx.info.Extension != sp.tx.info.Extension {
		w.fail("participation %d resolved as committed at %d, which is not its commit (%d) nor one with its metadata: %s", r.Part, r.TID, sp.tid, sp.tx)
		return
	}
	w.stats.misattributed++
	if sp.tid == 0 {
		w.stats.falseCommitted++ // it did not commit: its transaction may be a partial commit taken as whole
	}
	sp.tx.exempt, other.tx.exempt = true, true
	sp.tx.misattributed, other.tx.misattributed = true, true
}

// settled: every storage's history reached the live TID read at Recover.
func (w *world) settled() bool {
	for s := range w.names {
		if len(w.hq[s]) > 0 && w.hq[s][0].TID <= w.settleAt[s] {
			return false
		}
	}
	return true
}

// checkOrphans: once the history reached the live TIDs, every orphan is
// resolved, committed or not (Recover's promise).
func (w *world) checkOrphans() {
	ids := w.orphanIDs
	w.orphanIDs = w.orphanIDs[:0]
	for _, p := range w.m.Status().Parts {
		if slices.Contains(ids, p.ID) {
			w.fail("orphan %d (%s on %s) still in flight after the history reached the live TIDs", p.ID, p.State, p.Storage)
			return
		}
	}
}

// rotate restarts the journal from an image of the Machine, busy or not
// (what the journal's rotation does), checks that replaying it gives the
// same state, and goes on with the replayed Machine while the one it was
// taken from follows the same inputs for a while (followShadow).
func (w *world) rotate() {
	w.stats.rotations++
	if !w.m.Quiescent() {
		w.stats.busyRotations++
	}
	img := w.m.AppendImage(nil)
	w.jbuf, w.joff = w.jbuf[:0], w.joff[:0]
	w.joff = append(w.joff, 0)
	w.jbuf = input.Append(w.jbuf, w.now, input.Image{Bytes: img})
	w.jbase, w.pruneJoff = 1, 1
	m := w.replay()
	if w.failed {
		return
	}
	w.sameStatus(w.m.Status(), m.Status())
	if again := m.AppendImage(nil); !slices.Equal(img, again) {
		w.fail("the image of a restored Machine differs from the image it was restored from")
		return
	}
	w.shadow, w.shadowLeft = w.m, 500
	w.m = m
}

// followShadow applies in to the shadow Machine too: the same records, the
// same error, and after shadowLeft inputs the same state.
func (w *world) followShadow(in input.Input) {
	err := w.shadow.Apply(w.now, in)
	if !errors.Is(err, w.applyErr) && (err == nil) != (w.applyErr == nil) {
		w.fail("%s: the Machine restored from an image answered %v, the original %v", input.Name(in), w.applyErr, err)
		return
	}
	if a, b := w.m.Records(), w.shadow.Records(); (len(a) > 0 || len(b) > 0) && !reflect.DeepEqual(a, b) {
		w.fail("%s: the Machine restored from an image gave other records than the original:\n  restored %+v\n  original %+v", input.Name(in), a, b)
		return
	}
	w.shadow.ClearRecords()
	w.shadowLeft--
	if w.shadowLeft == 0 {
		w.sameStatus(w.shadow.Status(), w.m.Status())
		w.shadow = nil
	}
}
