package zeoproxy_test

import (
	"fmt"
	"sync"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// recorder is a Tracker that keeps the events it is given, for tests of the
// observation itself (the coherency logic is tested in tracker/ and, end to
// end, in integration/).
type recorder struct {
	mu     sync.Mutex
	events []string
	begins map[txn.PartID]txn.Event
	tids   map[txn.PartID]txn.TID
	blind  map[string]int
	// lastUnblind is the TID (hex) given with the last Unblind.
	lastUnblind string
}

func newRecorder() *recorder {
	return &recorder{begins: map[txn.PartID]txn.Event{}, tids: map[txn.PartID]txn.TID{}, blind: map[string]int{}}
}

func (r *recorder) add(format string, a ...any) {
	r.events = append(r.events, fmt.Sprintf(format, a...))
}

// Observe keeps ev, written as a short line per event.
func (r *recorder) Observe(ev txn.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Kind {
	case txn.Begin:
		r.begins[ev.Part] = ev
		r.add("begin %d %s", ev.Part, ev.Storage)
	case txn.Vote:
		r.add("vote %d %v", ev.Part, ev.OK)
	case txn.FinishSent:
		r.add("finishsent %d", ev.Part)
	case txn.Finished:
		r.tids[ev.Part] = ev.TID
		r.add("finished %d %016x", ev.Part, ev.TID)
	case txn.Aborted:
		r.add("aborted %d", ev.Part)
	case txn.Lost:
		r.add("lost %d", ev.Part)
	case txn.Resolved:
		if ev.OK {
			r.tids[ev.Part] = ev.TID
		}
		r.add("resolved %d %v %016x", ev.Part, ev.OK, ev.TID)
	case txn.Blind:
		r.blind[ev.Storage]++
		r.add("blind %s %s", ev.Storage, ev.Reason)
	case txn.Unblind:
		r.blind[ev.Storage]--
		r.lastUnblind = fmt.Sprintf("%016x", ev.TID)
		r.add("unblind %s", ev.Storage)
	}
}

// committed returns storage → TIDs (hex) in commit order.
func (r *recorder) committed() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	var ids []txn.PartID
	for id := range r.tids {
		ids = append(ids, id)
	}
	sortIDs(ids)
	for _, id := range ids {
		s := r.begins[id].Storage
		out[s] = append(out[s], fmt.Sprintf("%016x", r.tids[id]))
	}
	return out
}

func sortIDs(ids []txn.PartID) {
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}
