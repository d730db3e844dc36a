package tracker

// A simulation of a fleet's report streams (docs/deploy.md): sidecars whose
// links go down for a while (a tracker restart, a cut) and resend what they
// buffered, whose buffers overflow (a declared gap), and an operator who
// accepts what a gap left unaccounted. The Machine is driven by journaled
// inputs only (input.Event with Source/Seq, History, Tick with the awaited
// storages, Gap, AcceptUnaccounted); after every input the published
// point is checked against the truth. The oracle:
//
//   - every published point holds each transaction wholly or not at all;
//   - a commit whose reports were only late (resent within ResendWait) is
//     never reported unaccounted: no false alarm on a routine outage;
//   - a commit whose reports a gap lost is reported (a true alarm), and
//     after the operator's accept nothing stays in flight or held;
//   - a replay of the journal ends in the same state.

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/input"
)

type fleetSimSource struct {
	name    string
	base    txn.PartID
	nextID  txn.PartID
	seq     uint64
	pending []input.Input // numbered, not yet applied
	down    bool
	upAt    int64
	sts     map[string]bool // storages it proxied
	dropTo  int64           // overflow: reports numbered before this time are dropped
	dropped bool            // some were: a gap is due when the link is back
}

type fleetSimTxn struct {
	src     *fleetSimSource
	tids    map[string]txn.TID
	lost    bool // a report of it was dropped in a gap
	alarmed bool
}

type fleetSim struct {
	t       *testing.T
	rng     *rand.Rand
	cfg     Config
	m       *Machine
	now     int64
	names   []string
	last    map[string]txn.TID
	srcs    []*fleetSimSource
	byTID   map[string]map[txn.TID]*fleetSimTxn
	txns    []*fleetSimTxn
	open    []*fleetSimTxn // not yet wholly published
	journal [][]byte
	pub     map[string]txn.TID
	alarms  int
	falses  int
	gaps    int
	accepts int
	// noAwaited: the ticks do not say which storages a sidecar is behind
	// on (the mutation the oracle must catch).
	noAwaited bool
	recent    []simRecent // the last inputs and records, for a failure's report
}

func (w *fleetSim) apply(in input.Input) error {
	w.journal = append(w.journal, input.Append(nil, w.now, in))
	err := w.m.Apply(w.now, in)
	w.recent = append(w.recent, simRecent{now: w.now, in: in, err: err, recs: slices.Clone(w.m.Records())})
	if len(w.recent) > 400 {
		w.recent = append(w.recent[:0], w.recent[len(w.recent)-40:]...)
	}
	for _, r := range w.m.Records() {
		switch r.Kind {
		case RecPublished:
			w.pub[r.Storage] = r.TID
		case RecUnaccounted:
			tx := w.byTID[r.Storage][r.TID]
			require.NotNil(w.t, tx, "unaccounted %s on %s: not a commit of the world", r.TID.Hex(), r.Storage)
			if !tx.lost {
				w.falses++
			}
			if !tx.lost && !w.noAwaited {
				w.t.Errorf("false alarm at %v: %s (its reports were only late)", time.Duration(w.now), r.Msg)
			}
			tx.alarmed = true
			w.alarms++
		case RecPartial, RecCritical:
			w.t.Errorf("at %v: %v %s", time.Duration(w.now), r.Kind, r.Msg)
		}
	}
	w.m.ClearRecords()
	w.check()
	return err
}

// check: every transaction wholly in the published point or wholly out.
func (w *fleetSim) check() {
	keep := w.open[:0]
	for _, tx := range w.open {
		in, out := 0, 0
		for st, tid := range tx.tids {
			if w.pub[st] >= tid {
				in++
			} else {
				out++
			}
		}
		if in > 0 && out > 0 {
			w.t.Fatalf("at %v: a transaction is half published: %s, published %s; the last inputs:\n%s", time.Duration(w.now),
				hexTIDs(tx.tids), hexTIDs(w.pub), w.recentText())
		}
		if out > 0 {
			keep = append(keep, tx)
		}
	}
	clear(w.open[len(keep):])
	w.open = keep
}

// commit: a transaction through source src, on one or two storages, wholly
// committed at once (its history delivered at once, as ZEO invalidates);
// its reports wait in the source's buffer.
func (w *fleetSim) commit(src *fleetSimSource) {
	n := 1 + w.rng.IntN(2)
	sts := slices.Clone(w.names)
	w.rng.Shuffle(len(sts), func(i, j int) { sts[i], sts[j] = sts[j], sts[i] })
	sts = sts[:n]
	slices.Sort(sts)
	tx := &fleetSimTxn{src: src, tids: map[string]txn.TID{}}
	info := txn.Info{Client: src.name, User: "u", Description: fmt.Sprintf("t%d", len(w.txns))}
	key := txn.NewKey(info.Client, info.User, info.Description, "")
	var evs []txn.Event
	var ids []txn.PartID
	for _, st := range sts {
		src.nextID++
		ids = append(ids, src.nextID)
		src.sts[st] = true
		evs = append(evs, txn.Event{Kind: txn.Begin, Part: src.nextID, Storage: st, Key: key, Info: info})
	}
	for _, id := range ids {
		evs = append(evs, txn.Event{Kind: txn.Vote, Part: id, OK: true})
	}
	for k, st := range sts {
		w.last[st] += txn.TID(1 + w.rng.IntN(3))
		tx.tids[st] = w.last[st]
		if w.byTID[st] == nil {
			w.byTID[st] = map[txn.TID]*fleetSimTxn{}
		}
		w.byTID[st][w.last[st]] = tx
		evs = append(evs, txn.Event{Kind: txn.FinishSent, Part: ids[k]}, txn.Event{Kind: txn.Finished, Part: ids[k], TID: w.last[st]})
	}
	w.txns = append(w.txns, tx)
	w.open = append(w.open, tx)
	// An overflow may begin in the middle of a transaction's reports: its
	// participations begun before it are left in flight by the gap.
	from := 0
	if w.now < src.dropTo && w.rng.IntN(2) == 0 {
		from = w.rng.IntN(len(evs))
	}
	for k, ev := range evs {
		src.seq++
		if w.now < src.dropTo && k >= from {
			src.dropped, tx.lost = true, true
			continue
		}
		src.pending = append(src.pending, input.Event{Event: ev, Source: src.name, Seq: src.seq})
	}
	for _, st := range sts {
		_ = w.apply(input.History{Commit: txn.Commit{Storage: st, TID: tx.tids[st], HasMeta: true,
			User: info.User, Description: info.Description}})
	}
}

// awaited: the storages of the sources that are down or still resending,
// as fleet.Server computes them.
func (w *fleetSim) awaited() []string {
	var out []string
	if w.noAwaited {
		return nil
	}
	for _, src := range w.srcs {
		if src.down || len(src.pending) > 0 {
			for st := range src.sts {
				if !slices.Contains(out, st) {
					out = append(out, st)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func (w *fleetSim) deliver(src *fleetSimSource, n int) {
	if src.dropped && w.now >= src.dropTo {
		// The buffer has room again: the gap is declared first.
		src.dropped = false
		src.seq++
		src.pending = append([]input.Input{input.Gap{Source: src.name, Seq: src.seq}}, src.pending...)
		slices.SortFunc(src.pending, func(a, b input.Input) int {
			_, sa := input.Numbered(a)
			_, sb := input.Numbered(b)
			return int(sa) - int(sb)
		})
		w.gaps++
	}
	for ; n > 0 && len(src.pending) > 0; n-- {
		in := src.pending[0]
		src.pending = src.pending[1:]
		_ = w.apply(in)
	}
}

// operator accepts an unaccounted pin with every storage's live last TID,
// when no sidecar is behind (the daemon refuses an accept meanwhile: the
// resend may account for what it would accept).
func (w *fleetSim) operator() {
	for _, src := range w.srcs {
		if src.down || len(src.pending) > 0 {
			return
		}
	}
	for _, p := range w.m.Pins() {
		if p.Kind != PinUnaccounted {
			continue
		}
		var live []StorageTID
		for _, st := range w.names {
			live = append(live, StorageTID{Storage: st, TID: w.last[st]})
		}
		require.NoError(w.t, w.apply(input.AcceptUnaccounted{Pin: p.ID, Live: live}))
		w.accepts++
		return
	}
}

func runFleetSim(t *testing.T, seed uint64, steps int, noAwaited bool) *fleetSim {
	w := &fleetSim{t: t, noAwaited: noAwaited, rng: rand.New(rand.NewPCG(seed, 7)), names: []string{"A", "B", "C"},
		last: map[string]txn.TID{}, byTID: map[string]map[txn.TID]*fleetSimTxn{}, pub: map[string]txn.TID{},
		cfg: Config{UnaccountedGrace: time.Second, ResendWait: 10 * time.Second, Storages: []string{"A", "B", "C"}}}
	w.m = New(w.cfg)
	w.now = int64(time.Hour)
	var boot []StorageTID
	for _, st := range w.names {
		w.last[st] = 100
		boot = append(boot, StorageTID{Storage: st, TID: 100})
		_ = w.apply(input.HistoryStart{Storage: st, After: 100})
	}
	_ = w.apply(input.Bootstrap{Last: boot, Clean: true})
	for i := range 3 {
		w.srcs = append(w.srcs, &fleetSimSource{name: fmt.Sprintf("zope%d", i+1), base: txn.PartID(i+1) << 32,
			nextID: txn.PartID(i+1) << 32, seq: uint64(i) << 40, sts: map[string]bool{}})
	}
	nextTick := w.now + int64(time.Second)
	for range steps {
		w.now += int64(time.Duration(1+w.rng.IntN(20)) * time.Millisecond)
		for _, src := range w.srcs {
			switch {
			case src.down && w.now >= src.upAt:
				src.down = false
			case !src.down && w.rng.IntN(3000) == 0:
				// An outage well within ResendWait: a tracker restart, a
				// cut link, a refused stream.
				src.down = true
				src.upAt = w.now + int64(time.Duration(500+w.rng.IntN(4000))*time.Millisecond)
				if w.rng.IntN(4) == 0 {
					src.dropTo = w.now + int64(time.Duration(200+w.rng.IntN(1000))*time.Millisecond)
				}
			}
		}
		src := w.srcs[w.rng.IntN(len(w.srcs))]
		switch r := w.rng.IntN(10); {
		case r < 3:
			w.commit(src)
		case !src.down:
			w.deliver(src, 1+w.rng.IntN(20))
		}
		if w.now >= nextTick {
			nextTick += int64(time.Second)
			_ = w.apply(input.Tick{Awaited: w.awaited()})
			if w.rng.IntN(5) == 0 {
				w.operator()
			}
		}
	}
	// At rest: every link back, everything resent, the operator accepts.
	for _, src := range w.srcs {
		src.down = false
		src.dropTo = 0
		w.deliver(src, 1<<30)
	}
	for range 30 {
		w.now += int64(time.Second)
		_ = w.apply(input.Tick{})
		w.operator()
	}
	require.True(t, w.m.Quiescent(), "at rest after the accepts nothing is in flight or held: %+v", w.m.Status())
	for _, st := range w.names {
		require.Equal(t, w.last[st], w.pub[st], "storage %s published at rest", st)
	}
	// A sidecar gone for good is retired: no longer expected.
	require.Contains(t, w.m.Sources(), "zope3")
	_ = w.apply(input.Retire{Source: "zope3"})
	require.Equal(t, []string{"zope1", "zope2"}, w.m.Sources())
	// The journal replays to the same state.
	r := New(w.cfg)
	for _, b := range w.journal {
		now, in, err := input.Decode(b)
		require.NoError(t, err)
		_ = r.Apply(now, in)
		r.ClearRecords()
	}
	require.Equal(t, w.m.Status().Storages, r.Status().Storages)
	require.Equal(t, w.m.Counters(), r.Counters())
	require.Equal(t, w.m.Sources(), r.Sources())
	return w
}

func TestSimulationFleetStreams(t *testing.T) {
	alarms, gaps, accepts := 0, 0, 0
	seeds, steps := uint64(4), 25_000
	if testing.Short() {
		seeds = 2
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		w := runFleetSim(t, seed, steps, false)
		t.Logf("seed %d: %d transactions, %d gaps, %d unaccounted reported (every one lost in a gap), %d accepts",
			seed, len(w.txns), w.gaps, w.alarms, w.accepts)
		alarms += w.alarms
		gaps += w.gaps
		accepts += w.accepts
		require.Zero(t, w.falses)
	}
	require.NotZero(t, gaps, "the schedules declare gaps")
	require.NotZero(t, alarms, "and the commits they lost are reported")
	require.NotZero(t, accepts)
}

// Without the awaited storages (the tracker not told which sidecars are
// behind), the same schedules raise false alarms: the oracle sees the
// difference.
func TestSimulationFleetStreamsNeedAwaited(t *testing.T) {
	if testing.Short() {
		t.Skip("a check of the oracle (the run without -short makes it)")
	}
	w := runFleetSim(t, 1, 25_000, true)
	require.NotZero(t, w.falses, "late resends reported unaccounted when the tracker does not wait for them")
}

func hexTIDs(m map[string]txn.TID) string {
	var out []string
	for _, st := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s=%d", st, uint64(m[st])))
	}
	return strings.Join(out, " ")
}

type simRecent struct {
	now  int64
	in   input.Input
	err  error
	recs []Record
}

func (w *fleetSim) recentText() string {
	var b strings.Builder
	for _, r := range w.recent[max(0, len(w.recent)-40):] {
		fmt.Fprintf(&b, "%v %s %+v err=%v\n", time.Duration(r.now), input.Name(r.in), r.in, r.err)
		for _, rec := range r.recs {
			fmt.Fprintf(&b, "   -> %v %s %s %d %s\n", rec.Kind, rec.Storage, rec.Code, uint64(rec.TID), rec.Msg)
		}
	}
	return b.String()
}
