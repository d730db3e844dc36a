package tracker

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// TestSameHostChains: Zope processes on one remote host share a client
// identity (the proxy cannot tell them apart), and with identical metadata
// (anonymous writes) every transaction links with the overlapping ones. Each
// process runs one transaction per storage at a time (ZEO's client commit
// lock). With several busy processes the linked set never drains while the
// load lasts, so nothing it touched is published (reported by the lag
// warning): the correlation cannot tell the transactions apart. This test
// logs how long sets get, checks that the cost per input stays bounded
// (the run would take minutes otherwise) and that everything is published
// once the load pauses.
func TestSameHostChains(t *testing.T) {
	for _, cfg := range [][2]int{{1, 16}, {4, 16}, {8, 32}, {32, 64}} {
		nproc, nthreads := cfg[0], cfg[1]
		m := New(Config{})
		names := []string{"A", "B", "C"}
		m.Bootstrap(1, []StorageTID{{Storage: "A", TID: 1}, {Storage: "B", TID: 1}, {Storage: "C", TID: 1}}, true)
		m.ClearRecords()
		rng := rand.New(rand.NewPCG(1, 1))
		type th struct {
			parts []txn.PartID
			st    []int
			step  int
		}
		threads := make([]*th, nthreads)
		lock := make([]int, 3*nproc) // per process and storage: holder thread+1
		pid := txn.PartID(0)
		tid := txn.TID(100)
		maxSet, events := 0, 0
		for i := 0; i < 400_000; i++ {
			k := rng.IntN(len(threads))
			x := threads[k]
			if x == nil || x.step >= 4*len(x.parts) {
				x = &th{}
				n := 1 + rng.IntN(2)
				sts := rng.Perm(3)[:n]
				slices.Sort(sts)
				for _, s := range sts {
					pid++
					x.parts = append(x.parts, pid)
					x.st = append(x.st, s)
				}
				threads[k] = x
			}
			j, ph := x.step%len(x.parts), x.step/len(x.parts)
			p := x.parts[j]
			switch ph {
			case 0:
				if lock[(k%nproc)*3+x.st[j]] != 0 {
					continue // tpc_begin blocks on the client's commit lock
				}
				lock[(k%nproc)*3+x.st[j]] = k + 1
				m.PartBegin(int64(i), p, names[x.st[j]], "anon", txn.Info{})
			case 1:
				m.PartVote(int64(i), p, true)
			case 2:
				m.PartFinishSent(int64(i), p)
			case 3:
				tid++
				m.PartFinished(int64(i), p, tid)
				lock[(k%nproc)*3+x.st[j]] = 0
			}
			events++
			x.step++
			m.ClearRecords()
			for _, ls := range m.keyed {
				maxSet = max(maxSet, len(ls.parts))
			}
		}
		// The load pauses: every thread finishes its transaction.
		for progress := true; progress; {
			progress = false
			for k, x := range threads {
				for x != nil && x.step < 4*len(x.parts) {
					j, ph := x.step%len(x.parts), x.step/len(x.parts)
					p := x.parts[j]
					switch ph {
					case 0:
						if lock[(k%nproc)*3+x.st[j]] != 0 {
							goto next
						}
						lock[(k%nproc)*3+x.st[j]] = k + 1
						m.PartBegin(0, p, names[x.st[j]], "anon", txn.Info{})
					case 1:
						m.PartVote(0, p, true)
					case 2:
						m.PartFinishSent(0, p)
					case 3:
						tid++
						m.PartFinished(0, p, tid)
						lock[(k%nproc)*3+x.st[j]] = 0
					}
					x.step++
					progress = true
				}
			next:
			}
		}
		for _, x := range threads {
			require.True(t, x == nil || x.step == 4*len(x.parts), "probe: a thread did not finish")
		}
		m.ClearRecords()
		for i := range m.st {
			require.Equal(t, m.st[i].transient, m.st[i].published, "storage %s after the load paused", m.st[i].name)
		}
		t.Logf("%d processes on one host, %d threads: %d events, max linked set %d participations, %d publications, A published %d of %d",
			nproc, nthreads, events, maxSet, m.Counters().Publications, m.st[0].published, m.st[0].transient)
	}
}
