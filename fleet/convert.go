// Package fleet is the report stream between sidecars and their tracker
// (docs/deploy.md): a sidecar's zeoproxy reports to a Sidecar, which numbers
// each txn.Event, appends it to its durable send buffer and streams it over
// gRPC; the tracker's Server applies each report once with
// tracker.Service.ObserveBatchFrom and acknowledges it.
package fleet

import (
	"github.com/tidstorage/tidstorage/fleet/fleetpb"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// The one place where txn.Event and its wire form meet: every field of
// txn.Event has its field in fleetpb.Event (convert_test.go checks the
// round trip, and that no field is forgotten).

// EventToPB converts an event to its wire form.
func EventToPB(e *txn.Event) *fleetpb.Event {
	pe := &fleetpb.Event{
		Kind:    fleetpb.EventKind(e.Kind),
		Part:    uint64(e.Part),
		Storage: bytesOf(e.Storage),
		Tid:     uint64(e.TID),
		Ok:      e.OK,
		Key:     bytesOf(string(e.Key)),
		Reason:  bytesOf(e.Reason),
	}
	if e.Info != (txn.Info{}) {
		pe.Info = &fleetpb.Info{Client: bytesOf(e.Info.Client), User: bytesOf(e.Info.User),
			Description: bytesOf(e.Info.Description), Extension: bytesOf(e.Info.Extension)}
	}
	return pe
}

// EventFromPB converts an event from its wire form.
func EventFromPB(pe *fleetpb.Event) txn.Event {
	e := txn.Event{
		Kind:    txn.EventKind(pe.GetKind()),
		Part:    txn.PartID(pe.GetPart()),
		Storage: string(pe.GetStorage()),
		TID:     txn.TID(pe.GetTid()),
		OK:      pe.GetOk(),
		Key:     txn.Key(pe.GetKey()),
		Reason:  string(pe.GetReason()),
	}
	if in := pe.GetInfo(); in != nil {
		e.Info = txn.Info{Client: string(in.Client), User: string(in.User), Description: string(in.Description),
			Extension: string(in.Extension)}
	}
	return e
}

func bytesOf(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// tidsToPB and tidsFromPB convert a storage → TID map.
func tidsToPB(m map[string]txn.TID) []*fleetpb.StorageTID {
	out := make([]*fleetpb.StorageTID, 0, len(m))
	for s, t := range m {
		out = append(out, &fleetpb.StorageTID{Storage: []byte(s), Tid: uint64(t)})
	}
	return out
}

func tidsFromPB(v []*fleetpb.StorageTID) map[string]txn.TID {
	out := make(map[string]txn.TID, len(v))
	for _, st := range v {
		out[string(st.GetStorage())] = txn.TID(st.GetTid())
	}
	return out
}
