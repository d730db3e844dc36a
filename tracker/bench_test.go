package tracker

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
)

type benchEv struct {
	kind uint8
	pid  txn.PartID
	st   string
	key  string
	ok   bool
	sts  []string
}

const (
	bBegin = iota
	bVote
	bFinSent
	bFinished
	bAbort
	bCBegin
	bCCommit
)

// benchSchedule builds a repeatable, realistic mix: 8 proxy clients and 2
// classic ones over 4 storages, 70% single-storage and 30% two-storage
// transactions, 5% vote conflicts, interleaved. Every transaction of the
// schedule ends within it, so it can be replayed in a loop.
func benchSchedule(n int) []benchEv {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"((('zeo', 8100),), '1')", "((('zeo', 8100),), '2')", "((('zeo', 8200),), 'catalog')", "((('zeo', 8300),), 'sessions')"}
	type tx struct {
		evs []benchEv
		i   int
	}
	var out []benchEv
	var active []*tx
	pid := txn.PartID(0)
	mk := func(c int) *tx {
		t := &tx{}
		if c >= 8 {
			sts := []string{names[rng.IntN(4)]}
			if rng.IntN(3) == 0 {
				sts = append(sts, names[rng.IntN(4)])
			}
			id := fmt.Sprintf("10.0.1.%d:8080_7f%02x", c, rng.IntN(4))
			t.evs = append(t.evs, benchEv{kind: bCBegin, key: id, sts: sts}, benchEv{kind: bCCommit, key: id, sts: sts})
			return t
		}
		key := fmt.Sprintf("10.0.0.%d|anonymous|", c)
		k := 1
		if rng.IntN(10) < 3 {
			k = 2
		}
		perm := rng.Perm(4)[:k]
		var ps []txn.PartID
		for _, s := range perm {
			pid++
			ps = append(ps, pid)
			t.evs = append(t.evs, benchEv{kind: bBegin, pid: pid, st: names[s], key: key})
		}
		fail := rng.IntN(20) == 0
		for i, p := range ps {
			if fail && i == len(ps)-1 {
				t.evs = append(t.evs, benchEv{kind: bVote, pid: p, ok: false})
				for _, q := range ps {
					t.evs = append(t.evs, benchEv{kind: bAbort, pid: q})
				}
				return t
			}
			t.evs = append(t.evs, benchEv{kind: bVote, pid: p, ok: true})
		}
		for _, p := range ps {
			t.evs = append(t.evs, benchEv{kind: bFinSent, pid: p}, benchEv{kind: bFinished, pid: p})
		}
		return t
	}
	busy := make([]bool, 10)
	for len(out) < n || len(active) > 0 {
		if len(out) < n && rng.IntN(4) == 0 {
			c := rng.IntN(10)
			if !busy[c] {
				busy[c] = true
				t := mk(c)
				t.i = c
				active = append(active, t)
			}
		}
		if len(active) == 0 {
			continue
		}
		k := rng.IntN(len(active))
		t := active[k]
		out = append(out, t.evs[0])
		t.evs = t.evs[1:]
		if len(t.evs) == 0 {
			busy[t.i] = false
			active = append(active[:k], active[k+1:]...)
		}
	}
	return out
}

func applyBench(m *Machine, e *benchEv, now int64, tid txn.TID, tids []StorageTID) []StorageTID {
	switch e.kind {
	case bBegin:
		m.PartBegin(now, e.pid, e.st, txn.Key(e.key), txn.Info{})
	case bVote:
		m.PartVote(now, e.pid, e.ok)
	case bFinSent:
		m.PartFinishSent(now, e.pid)
	case bFinished:
		m.PartFinished(now, e.pid, tid)
	case bAbort:
		m.PartAborted(now, e.pid)
	case bCBegin:
		m.ClassicBegin(now, e.key, e.sts)
	case bCCommit:
		tids = tids[:0]
		for _, s := range e.sts {
			tids = append(tids, StorageTID{Storage: s, TID: tid})
		}
		m.ClassicCommit(now, e.key, tids, nil)
	}
	return tids
}

// BenchmarkMachineMix: one op = one input event to the pure machine
// (records drained after each, as the daemon does).
func BenchmarkMachineMix(b *testing.B) {
	sched := benchSchedule(1 << 16)
	m := New(Config{})
	vals := []StorageTID{}
	for _, e := range sched {
		if e.st != "" {
			vals = append(vals, StorageTID{Storage: e.st, TID: 1})
		}
	}
	m.Bootstrap(1, vals, true)
	m.ClearRecords()
	var tids []StorageTID
	tid := txn.TID(1 << 50)
	// Warm up: one pass, so maps and pools reach their steady size.
	for i := range sched {
		tid++
		tids = applyBench(m, &sched[i], int64(i), tid, tids)
		m.ClearRecords()
	}
	b.ReportAllocs()
	pubs := m.Counters().Publications
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		tid++
		tids = applyBench(m, &sched[i%len(sched)], int64(i), tid, tids)
		m.ClearRecords()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64(m.Counters().Publications-pubs)/float64(b.N), "publications/event")
	if m.Counters().Warnings != 0 {
		b.Fatalf("schedule produced %d warnings", m.Counters().Warnings)
	}
}

// BenchmarkServiceMix: the same through Service (mutex, clock, logging
// checks, no status file).
func BenchmarkServiceMix(b *testing.B) {
	benchServiceMix(b, NewService(ServiceConfig{}))
}

func benchServiceMix(b *testing.B, s *Service) {
	sched := benchSchedule(1 << 16)
	vals := map[string]txn.TID{}
	for _, e := range sched {
		if e.st != "" {
			vals[e.st] = 1
		}
	}
	s.Bootstrap(vals, true)
	tid := txn.TID(1 << 50)
	tids := map[string]txn.TID{}
	run := func(e *benchEv) {
		tid++
		switch e.kind {
		case bBegin:
			s.Observe(txn.Event{Kind: txn.Begin, Part: e.pid, Storage: e.st, Key: txn.Key(e.key)})
		case bVote:
			s.Observe(txn.Event{Kind: txn.Vote, Part: e.pid, OK: e.ok})
		case bFinSent:
			s.Observe(txn.Event{Kind: txn.FinishSent, Part: e.pid})
		case bFinished:
			s.Observe(txn.Event{Kind: txn.Finished, Part: e.pid, TID: tid})
		case bAbort:
			s.Observe(txn.Event{Kind: txn.Aborted, Part: e.pid})
		case bCBegin:
			s.ClassicBegin(e.key, e.sts)
		case bCCommit:
			clear(tids)
			for _, st := range e.sts {
				tids[st] = tid
			}
			s.ClassicCommit(e.key, tids, nil)
		}
	}
	for i := range sched {
		run(&sched[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		run(&sched[i%len(sched)])
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

func dumpService(n int) *Service {
	s := NewService(ServiceConfig{})
	vals := map[string]txn.TID{}
	for i := 0; i < n; i++ {
		vals[fmt.Sprintf("((('zeo%d.example.com', %d),), 'storage%d')", i/10, 8100+i%10, i)] = txn.TID(1<<50 + i)
	}
	s.Bootstrap(vals, true)
	return s
}

// BenchmarkDump1000: classic DUMP (a fresh map) with 1,000 storages.
func BenchmarkDump1000(b *testing.B) {
	s := dumpService(1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(s.Dump()) != 1000 {
			b.Fatal("bad dump")
		}
	}
}

// BenchmarkAppendPublished1000: the sorted published point into a reused
// slice (what the status file and /status use).
func BenchmarkAppendPublished1000(b *testing.B) {
	s := dumpService(1000)
	var buf []StorageTID
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = s.m.AppendPublished(buf[:0])
	}
}
