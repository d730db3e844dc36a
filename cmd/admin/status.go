package admin

import (
	"sort"
	"time"

	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/tracker/classic"
	"github.com/tidstorage/tidstorage/tracker/history"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// BuildStatus assembles the document from the sources.
func BuildStatus(src *Sources) statusdoc.StatusDoc {
	now := src.now().UTC()
	st := src.Tracker.Status()
	doc := statusdoc.StatusDoc{
		Time: now, Version: src.Version, Bootstrapped: st.Bootstrapped, CleanStart: st.CleanStart,
		PreviousRun: src.PreviousRun, TrackerFailure: st.Broken, PublicationHeld: st.Held,
		Storages: []statusdoc.StorageDoc{}, Groups: []statusdoc.GroupDoc{}, Participations: []statusdoc.PartDoc{},
		Classic: []statusdoc.ClassicTxnDoc{}, Pins: []statusdoc.PinDoc{}, Counters: countersDoc(st.Counters),
	}
	age := func(ns int64) (time.Time, float64) {
		t := time.Unix(0, ns).UTC()
		return t, now.Sub(t).Seconds()
	}
	for _, s := range st.Storages {
		sd := storageDoc(&s, now)
		if l := src.Labels[s.ID]; l != s.ID {
			sd.Label = l
		}
		doc.Storages = append(doc.Storages, sd)
	}
	for _, g := range st.Groups {
		doc.Groups = append(doc.Groups, statusdoc.GroupDoc{Storages: g.Storages, InFlight: g.InFlight})
	}
	parts := map[uint64]statusdoc.PartDoc{}
	for _, p := range st.Parts {
		pd := statusdoc.PartDoc{ID: uint64(p.ID), Storage: p.Storage, State: p.State.String(), Key: string(p.Key)}
		pd.Began, pd.AgeSeconds = age(p.Began)
		parts[pd.ID] = pd
		doc.Participations = append(doc.Participations, pd)
	}
	for _, c := range st.Classic {
		cd := statusdoc.ClassicTxnDoc{ID: c.ID, Storages: c.Storages}
		cd.Began, cd.AgeSeconds = age(c.Began)
		doc.Classic = append(doc.Classic, cd)
	}
	for _, p := range st.Pins {
		pd := pinDoc(&doc, &p, parts)
		pd.Since, pd.AgeSeconds = age(p.Since)
		doc.Pins = append(doc.Pins, pd)
	}
	if src.Proxy != nil {
		doc.Proxy = proxyDoc(src.Proxy())
	}
	if src.Classic != nil {
		doc.ClassicEndpoint = classicDoc(src.Classic())
	}
	if src.StatusFile != nil {
		doc.StatusFile = statusFileDoc(src.StatusFile())
	}
	if src.Journal != nil {
		j := src.Journal()
		doc.Journal = &statusdoc.JournalDoc{Path: j.Path, SizeBytes: j.Size, Records: j.Records, Rotations: j.Rotations,
			Errors: j.Errors, Broken: j.Broken, Replayed: j.Replayed, Damage: j.Damage, Reserve: j.Reserve,
			LastRotationSeconds: j.LastRotation.Seconds()}
	}
	if src.Watchers != nil {
		doc.History = historyDocs(src.Watchers())
	}
	if src.Archive != nil {
		doc.Archive = src.Archive()
	}
	return doc
}

func storageDoc(s *tracker.StorageStatus, now time.Time) statusdoc.StorageDoc {
	sd := statusdoc.StorageDoc{ID: s.ID, Busy: s.Busy, Group: s.Group, BlindConnections: s.Blind,
		Watched: s.Watched, WarnOnly: s.WarnOnly, UnaccountedTotal: s.UnaccountedTotal, AwaitingHistory: s.AwaitingHistory}
	if s.HasPublished {
		p := statusdoc.NewTIDDoc(s.Published)
		sd.Published = &p
		if s.Published != 0 { // an empty storage: TID 0 has no time, so no lag
			lag := now.Sub(p.Time).Seconds()
			sd.LagSeconds = &lag
		}
	}
	if s.Known {
		t := statusdoc.NewTIDDoc(s.Transient)
		sd.Transient = &t
	}
	if s.Watched {
		h := statusdoc.NewTIDDoc(s.History)
		sd.HistoryPosition = &h
	}
	for _, u := range s.Unaccounted {
		sd.Unaccounted = append(sd.Unaccounted, statusdoc.NewTIDDoc(u))
	}
	sd.HeldByUnaccounted = s.Watched && !s.WarnOnly && len(s.Unaccounted) > 0
	return sd
}

// pinDoc describes a pin; doc's storages are already filled in.
func pinDoc(doc *statusdoc.StatusDoc, p *tracker.PinInfo, parts map[uint64]statusdoc.PartDoc) statusdoc.PinDoc {
	pd := statusdoc.PinDoc{ID: p.ID, Kind: p.Kind.String(), Reason: p.Reason, Storages: p.Storages,
		Key: string(p.Key), Txn: p.Txn, Waiting: p.Waiting, Acceptable: p.Kind != tracker.PinBlind}
	for _, id := range p.Storages {
		h := statusdoc.HeldDoc{Storage: id}
		for k := range doc.Storages {
			if s := &doc.Storages[k]; s.ID == id {
				h.Published = s.Published
				if p.Kind == tracker.PinUnaccounted {
					for _, u := range s.Unaccounted {
						if u.Int <= p.Upto {
							pd.Unaccounted = append(pd.Unaccounted, u)
						}
					}
				}
			}
		}
		pd.Held = append(pd.Held, h)
	}
	if p.Kind == tracker.PinUnaccounted {
		u := statusdoc.NewTIDDoc(p.Upto)
		pd.Upto = &u
	}
	for _, id := range p.Parts {
		pd.Parts = append(pd.Parts, uint64(id))
		if part, ok := parts[uint64(id)]; ok {
			pd.Participations = append(pd.Participations, part)
		}
	}
	return pd
}

func proxyDoc(m zeoproxy.MetricsSnapshot) *statusdoc.ProxyDoc {
	return &statusdoc.ProxyDoc{
		ConnectionsOpen: m.ConnsOpen, ConnectionsTotal: m.ConnsTotal,
		Begins: m.Begins, Commits: m.Commits, Aborts: m.Aborts, VotesFailed: m.VotesFailed, InDoubt: m.InDoubt,
		ResolvedCommitted: m.ResolvedCommitted, ResolvedAborted: m.ResolvedAborted, DecodeErrors: m.DecodeErrors,
		BytesC2S: m.BytesC2S, BytesS2C: m.BytesS2C, FramesC2S: m.FramesC2S, FramesS2C: m.FramesS2C,
	}
}

func classicDoc(s classic.Stats) *statusdoc.ClassicEndpointDoc {
	return &statusdoc.ClassicEndpointDoc{
		ConnectionsAccepted: s.ConnectionsAccepted, ConnectionsActive: s.ConnectionsActive,
		ConnectionsRefused: s.ConnectionsRefused, ConnectionsDenied: s.ConnectionsDenied,
		ConnectionsIdleClosed: s.ConnectionsIdleClosed, ConnectionsEvicted: s.ConnectionsEvicted,
		Commands: map[string]uint64{
			"begin": s.Commands.Begin, "abort": s.Commands.Abort, "commit": s.Commands.Commit,
			"dump": s.Commands.Dump, "bootstraped": s.Commands.Bootstraped, "quit": s.Commands.Quit,
		},
		ProtocolErrors: s.ProtocolErrors, TornCommands: s.TornCommands,
	}
}

func statusFileDoc(s statusfile.Stats) *statusdoc.StatusFileDoc {
	sd := &statusdoc.StatusFileDoc{Path: s.Path, Lines: s.Lines, FileLines: s.FileLines, Bytes: s.Bytes, Errors: s.Errors, LastError: s.LastError,
		Broken: s.Broken, Epochs: s.Epochs, LastAside: s.LastAside}
	if !s.LastWrite.IsZero() {
		t := s.LastWrite.UTC()
		sd.LastWrite = &t
	}
	return sd
}

// historyDocs lists the watchers by storage id.
func historyDocs(ws map[string]history.Status) []statusdoc.HistoryDoc {
	ids := make([]string, 0, len(ws))
	for id := range ws {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []statusdoc.HistoryDoc
	for _, id := range ids {
		w := ws[id]
		hd := statusdoc.HistoryDoc{Storage: id, Addr: w.Addr, Name: w.Name, Connected: w.Connected,
			LagSeconds: w.Lag.Seconds(), Pending: w.Pending, Connects: w.Connects, Reconnects: w.Reconnects,
			Delivered: w.Delivered, FromIterator: w.FromIterator, Overflows: w.Overflows, Repairs: w.Repairs,
			Anomalies: w.Anomalies, LastError: w.LastError}
		hd.Since = utcPtr(w.Since)
		hd.LastErrorAt = utcPtr(w.LastErrorAt)
		if w.LastTID != 0 {
			t := statusdoc.NewTIDDoc(w.LastTID)
			hd.LastTID = &t
		}
		if w.ServerTID != 0 {
			t := statusdoc.NewTIDDoc(w.ServerTID)
			hd.ServerTID = &t
		}
		out = append(out, hd)
	}
	return out
}

func utcPtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func countersDoc(c tracker.Counters) statusdoc.CountersDoc {
	return statusdoc.CountersDoc{
		Events: c.Events, Publications: c.Publications,
		PartsBegun: c.PartsBegun, PartsCommitted: c.PartsCommitted, PartsAborted: c.PartsAborted,
		InDoubt: c.InDoubt, Resolved: c.Resolved, Partials: c.Partials,
		ClassicBegun: c.ClassicBegun, ClassicCommitted: c.ClassicCommitted, ClassicAborted: c.ClassicAborted,
		ClassicLost: c.ClassicLost, Warnings: c.Warnings, Criticals: c.Criticals,
		PinsCreated: c.PinsCreated, PinsReleased: c.PinsReleased, PinsAccepted: c.PinsAccepted,
		TransactionsEnded: c.TransactionsEnded,
		HistoryCommits:    c.HistoryCommits, Unaccounted: c.Unaccounted, AwaitingHistory: c.AwaitingHistory,
	}
}
