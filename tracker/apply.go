package tracker

import (
	"github.com/tidstorage/tidstorage/tracker/input"
)

// Apply applies one input (tracker/input: one type per input) at now (unix
// ns). It is the Machine's one entry point for the Service, its journal's
// replay and the simulations; the methods it calls are the inputs' own.
// Only input.Accept and input.AcceptUnaccounted can fail (no such pin),
// and input.Image (an image that does not decode leaves the Machine as it
// was).
//
// A remote observer's numbered input (input.Event with a Source,
// input.RecoverRun, input.Gap) whose Seq is not above the last one applied
// from its Source is a resend and is ignored (input.Numbered).
func (m *Machine) Apply(now int64, in input.Input) error {
	switch in := in.(type) {
	case input.Event:
		if !m.numbered(in.Source, in.Seq) {
			return nil
		}
		m.remote, m.src = in.Source != "", in.Source
		m.Step(now, in.Event)
		m.remote, m.src = false, ""
	case input.RecoverRun:
		if m.numbered(in.Source, in.Seq) {
			m.RecoverRun(now, in.Run, in.Live)
		}
	case input.Gap:
		if m.numbered(in.Source, in.Seq) {
			m.Gap(now, in.Source)
		}
	case input.Retire:
		m.Retire(now, in.Source)
	case input.ClassicBegin:
		m.ClassicBegin(now, in.ID, in.Storages)
	case input.ClassicCommit:
		m.ClassicCommit(now, in.ID, in.TIDs, in.None)
	case input.ClassicAbort:
		m.ClassicAbort(now, in.ID)
	case input.Bootstrap:
		m.Bootstrap(now, in.Last, in.Clean)
	case input.LastTID:
		m.LastTID(now, in.Storage, in.TID)
	case input.HistoryStart:
		m.HistoryStart(now, in.Storage, in.After, in.WarnOnly)
	case input.History:
		m.History(now, in.Commit)
	case input.Tick:
		m.Tick(now, in.Awaited...)
	case input.Accept:
		return m.AcceptPartial(now, in.Pin)
	case input.AcceptUnaccounted:
		return m.AcceptUnaccounted(now, in.Pin, in.Live)
	case input.Recover:
		m.Recover(now, in.Live, in.Floor, in.TailLost)
	case input.Floor:
		m.Floor(now, in.Live, in.Floor)
	case input.SettleAt:
		m.SettleAt(now, in.Storage, in.TID)
	case input.Suspect:
		m.Suspect(now, in.Storage, in.TID)
	case input.Restore:
		m.Restore(now, in.Snapshot)
	case input.Image:
		return m.restoreImage(in.Bytes)
	default:
		m.step(now)
		m.warn(CodeBadOrder, "unknown input kind %v (ignored)", input.KindOf(in))
	}
	return nil
}

// numbered records seq as the last applied from source unless it is a
// resend (false). A local input (empty source) is never one.
func (m *Machine) numbered(source string, seq uint64) bool {
	if source == "" {
		return true
	}
	if seq <= m.sources[source] {
		return false
	}
	m.sources[source] = seq
	return true
}
