package zeoproxy_test

import (
	"fmt"
	"sync"

	"github.com/tidstorage/tidstorage/zeoproxy"
)

// recorder is a Tracker that keeps the events it is given, for tests of the
// observation itself (the coherency logic is tested in tracker/ and, end to
// end, in integration/).
type recorder struct {
	mu     sync.Mutex
	events []string
	begins map[zeoproxy.PartID]zeoproxy.Begin
	tids   map[zeoproxy.PartID]uint64
	blind  map[string]int
	// lastUnblind is the TID (hex) given with the last Unblind.
	lastUnblind string
}

func newRecorder() *recorder {
	return &recorder{begins: map[zeoproxy.PartID]zeoproxy.Begin{}, tids: map[zeoproxy.PartID]uint64{}, blind: map[string]int{}}
}

func (r *recorder) add(format string, a ...any) {
	r.events = append(r.events, fmt.Sprintf(format, a...))
}

func (r *recorder) Begin(b zeoproxy.Begin) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.begins[b.ID] = b
	r.add("begin %d %s", b.ID, b.Storage)
}
func (r *recorder) Vote(id zeoproxy.PartID, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add("vote %d %v", id, ok)
}
func (r *recorder) FinishSent(id zeoproxy.PartID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add("finishsent %d", id)
}
func (r *recorder) Finished(id zeoproxy.PartID, tid uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tids[id] = tid
	r.add("finished %d %016x", id, tid)
}
func (r *recorder) Aborted(id zeoproxy.PartID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add("aborted %d", id)
}
func (r *recorder) ConnectionLost(id zeoproxy.PartID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.add("lost %d", id)
}
func (r *recorder) Resolved(id zeoproxy.PartID, committed bool, tid uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if committed {
		r.tids[id] = tid
	}
	r.add("resolved %d %v %016x", id, committed, tid)
}
func (r *recorder) Blind(storage, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blind[storage]++
	r.add("blind %s %s", storage, reason)
}
func (r *recorder) Unblind(storage string, lastTID uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blind[storage]--
	r.lastUnblind = fmt.Sprintf("%016x", lastTID)
	r.add("unblind %s", storage)
}

// committed returns storage → TIDs (hex) in commit order.
func (r *recorder) committed() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	var ids []zeoproxy.PartID
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

func sortIDs(ids []zeoproxy.PartID) {
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
