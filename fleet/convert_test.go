package fleet

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/tidstorage/tidstorage/fleet/fleetpb"
	"github.com/tidstorage/tidstorage/internal/txn"
)

func TestEventRoundTrip(t *testing.T) {
	events := []txn.Event{
		{Kind: txn.Begin, Part: 1<<32 + 5, Storage: "((('127.0.0.1', 8100),), '1')", Key: txn.NewKey("h", "u", "d\xff", "{}"),
			Info: txn.Info{Client: "10.0.0.1:5555 pid 7", User: "/ admin", Description: "d\xff\x00", Extension: "{'a': 1}"}},
		{Kind: txn.Vote, Part: 2, OK: true},
		{Kind: txn.Vote, Part: 2},
		{Kind: txn.FinishSent, Part: 3},
		{Kind: txn.Finished, Part: 3, TID: 0x03ff_0000_0000_0001},
		{Kind: txn.Aborted, Part: 4},
		{Kind: txn.Lost, Part: 5},
		{Kind: txn.Resolved, Part: 6, OK: true, TID: 99},
		{Kind: txn.Blind, Storage: "A", Reason: "ZEO 4 handshake"},
		{Kind: txn.Unblind, Storage: "A", TID: 1<<63 + 1},
	}
	for _, e := range events {
		b, err := proto.Marshal(EventToPB(&e))
		require.NoError(t, err, "non-UTF-8 text must go through")
		var pe fleetpb.Event
		require.NoError(t, proto.Unmarshal(b, &pe))
		require.Equal(t, e, EventFromPB(&pe))
	}
	// Every field of txn.Event and txn.Info is set in the first event, so a
	// field added to either without its wire field fails the round trip.
	v := reflect.ValueOf(events[0])
	for i := range v.NumField() {
		switch v.Type().Field(i).Name {
		case "TID", "OK", "Reason": // set in other events
			continue
		}
		require.False(t, v.Field(i).IsZero(), "field %s", v.Type().Field(i).Name)
	}
	require.Equal(t, 8, v.NumField(), "txn.Event gained a field: add it to fleet.proto and convert.go")
	require.Equal(t, 4, reflect.TypeFor[txn.Info]().NumField(), "txn.Info gained a field: add it to fleet.proto and convert.go")
	// Kinds match value for value.
	for k := txn.Begin; k <= txn.Unblind; k++ {
		name := fleetpb.EventKind(k).String()
		require.NotEqual(t, "EVENT_KIND_UNSPECIFIED", name)
	}
	require.Equal(t, "EVENT_KIND_UNBLIND", fleetpb.EventKind(txn.Unblind).String())
	require.Equal(t, "EVENT_KIND_BEGIN", fleetpb.EventKind(txn.Begin).String())
}
