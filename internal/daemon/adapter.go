package daemon

import (
	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// proxyTracker feeds the proxy's participation events to the tracker
// Service, synchronously (design rule 1).
type proxyTracker struct{ s *tracker.Service }

var _ zeoproxy.Tracker = proxyTracker{}

func (a proxyTracker) Begin(b zeoproxy.Begin) {
	a.s.BeginPart(tracker.PartBegin{ID: tracker.PartID(b.ID), Storage: b.Storage, Key: b.Key,
		Info: tracker.PartInfo{Client: b.Client, User: b.User, Description: b.Desc, Extension: b.Ext}})
}
func (a proxyTracker) Vote(id zeoproxy.PartID, ok bool)      { a.s.Vote(tracker.PartID(id), ok) }
func (a proxyTracker) FinishSent(id zeoproxy.PartID)         { a.s.FinishSent(tracker.PartID(id)) }
func (a proxyTracker) Finished(id zeoproxy.PartID, t uint64) { a.s.Finished(tracker.PartID(id), t) }
func (a proxyTracker) Aborted(id zeoproxy.PartID)            { a.s.Aborted(tracker.PartID(id)) }
func (a proxyTracker) ConnectionLost(id zeoproxy.PartID)     { a.s.ConnectionLost(tracker.PartID(id)) }
func (a proxyTracker) Resolved(id zeoproxy.PartID, committed bool, tid uint64) {
	a.s.Resolved(tracker.PartID(id), committed, tid)
}
func (a proxyTracker) Blind(storage, reason string)           { a.s.Blind(storage, reason) }
func (a proxyTracker) Unblind(storage string, lastTID uint64) { a.s.Unblind(storage, lastTID) }
