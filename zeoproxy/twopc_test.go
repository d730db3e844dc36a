package zeoproxy

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// The connection's two-phase commit against the table of
// docs/zeo-protocol.md §10 and the event mapping under it, without sockets:
// each case drives a twoPC from IDLE to a phase with real encoded replies
// (both encodings), gives it one input, and checks the transition, the
// events and the phase.

const (
	tVoteID   = 7
	tFinishID = 9
	tPart     = txn.PartID(41)
	tTID      = txn.TID(0x03f0_0000_0000_0042)
)

// tInput is one input of a case.
type tInput struct {
	name string
	feed func(m *twoPC, enc zrpc.Encoding, t *testing.T) step
}

func tReply(t *testing.T, enc zrpc.Encoding, msg *zrpc.Message) *reply {
	b, err := zrpc.EncodeMessage(enc, msg)
	require.NoError(t, err)
	r, err := decodeReply(enc, b)
	require.NoError(t, err)
	return r
}

var (
	tInfo  = txn.Info{Client: "host:1", User: "u", Description: "d", Extension: "{}"}
	tKey   = txn.NewKey(tInfo.Client, tInfo.User, tInfo.Description, tInfo.Extension)
	inBegn = tInput{"tpc_begin", func(m *twoPC, _ zrpc.Encoding, _ *testing.T) step {
		return m.tpcBegin(tPart, "S", tInfo, tKey)
	}}
	inBeginUnreg = tInput{"tpc_begin before register", func(m *twoPC, _ zrpc.Encoding, _ *testing.T) step {
		return m.tpcBegin(tPart, "", tInfo, tKey)
	}}
	inVote   = tInput{"vote", func(m *twoPC, _ zrpc.Encoding, _ *testing.T) step { return m.call(zrpc.MethodVote, tVoteID) }}
	inFinish = tInput{"tpc_finish", func(m *twoPC, _ zrpc.Encoding, _ *testing.T) step {
		return m.call(zrpc.MethodTPCFinish, tFinishID)
	}}
	inAbort  = tInput{"tpc_abort", func(m *twoPC, _ zrpc.Encoding, _ *testing.T) step { return m.call(zrpc.MethodTPCAbort, 11) }}
	inStorea = tInput{"storea (never a 2PC input)", func(m *twoPC, _ zrpc.Encoding, _ *testing.T) step {
		return m.call(zrpc.MethodStorea, 0)
	}}
	inLost     = tInput{"connection lost", func(m *twoPC, _ zrpc.Encoding, _ *testing.T) step { return m.lost() }}
	inVoteOids = tInput{"reply v: list of oids", func(m *twoPC, enc zrpc.Encoding, t *testing.T) step {
		return m.reply(tReply(t, enc, zrpc.NewReply(int64(tVoteID), zrpc.List{[]byte("\x00\x00\x00\x00\x00\x00\x00\x01")})))
	}}
	inVoteConflicts = tInput{"reply v: conflict dicts", func(m *twoPC, enc zrpc.Encoding, t *testing.T) step {
		conflict := zrpc.Dict{{Key: "oid", Value: []byte("\x00\x00\x00\x00\x00\x00\x00\x01")},
			{Key: "serials", Value: zrpc.Tuple{[]byte("\x03\xf0\x00\x00\x00\x00\x00\x01"), []byte("\x03\xf0\x00\x00\x00\x00\x00\x02")}},
			{Key: "data", Value: []byte("x")}}
		return m.reply(tReply(t, enc, zrpc.NewReply(int64(tVoteID), zrpc.List{conflict})))
	}}
	inVoteError = tInput{"reply v: error", func(m *twoPC, enc zrpc.Encoding, t *testing.T) step {
		return m.reply(tReply(t, enc, zrpc.NewErrorReply(int64(tVoteID), "ZODB.POSException.ConflictError", zrpc.Tuple{"conflict"})))
	}}
	inFinishTID = tInput{"reply f: tid", func(m *twoPC, enc zrpc.Encoding, t *testing.T) step {
		b := tTID.Bytes()
		return m.reply(tReply(t, enc, zrpc.NewReply(int64(tFinishID), b[:])))
	}}
	inFinishNone = tInput{"reply f: None", func(m *twoPC, enc zrpc.Encoding, t *testing.T) step {
		return m.reply(tReply(t, enc, zrpc.NewReply(int64(tFinishID), nil)))
	}}
	inFinishError = tInput{"reply f: error", func(m *twoPC, enc zrpc.Encoding, t *testing.T) step {
		return m.reply(tReply(t, enc, zrpc.NewErrorReply(int64(tFinishID), "builtins.OSError", zrpc.Tuple{"disk full"})))
	}}
	inOtherReply = tInput{"reply to another call", func(m *twoPC, enc zrpc.Encoding, t *testing.T) step {
		return m.reply(tReply(t, enc, zrpc.NewReply(int64(99), nil)))
	}}
)

// reach drives a fresh machine to a phase of the table.
var reach = map[txn.Phase][]tInput{
	txn.PhaseIdle:       nil,
	txn.PhaseBegun:      {inBegn},
	txn.PhaseVoting:     {inBegn, inVote},
	txn.PhaseVoted:      {inBegn, inVote, inVoteOids},
	txn.PhaseVoteFailed: {inBegn, inVote, inVoteError},
	txn.PhaseFinishing:  {inBegn, inVote, inVoteOids, inFinish},
}

func TestTwoPCTable(t *testing.T) {
	ev := func(k txn.EventKind, ok bool, tid txn.TID) txn.Event {
		return txn.Event{Kind: k, Part: tPart, OK: ok, TID: tid}
	}
	begin := txn.Event{Kind: txn.Begin, Part: tPart, Storage: "S", Key: tKey, Info: tInfo}
	cases := []struct {
		from   txn.Phase
		in     tInput
		kind   stepKind
		to     txn.Phase
		events []txn.Event
	}{
		// The table's rows.
		{txn.PhaseIdle, inBegn, stepBegun, txn.PhaseBegun, []txn.Event{begin}},
		{txn.PhaseBegun, inStorea, stepNone, txn.PhaseBegun, nil},
		{txn.PhaseBegun, inVote, stepVoting, txn.PhaseVoting, nil},
		{txn.PhaseVoting, inVoteOids, stepVoted, txn.PhaseVoted, []txn.Event{ev(txn.Vote, true, 0)}},
		{txn.PhaseVoting, inVoteConflicts, stepConflicts, txn.PhaseBegun, nil},
		{txn.PhaseVoting, inVoteError, stepVoteFailed, txn.PhaseVoteFailed, []txn.Event{ev(txn.Vote, false, 0)}},
		{txn.PhaseVoted, inFinish, stepFinishing, txn.PhaseFinishing, []txn.Event{ev(txn.FinishSent, false, 0)}},
		{txn.PhaseFinishing, inFinishTID, stepCommitted, txn.PhaseIdle, []txn.Event{ev(txn.Finished, false, tTID)}},
		{txn.PhaseFinishing, inFinishNone, stepNotCommitted, txn.PhaseIdle, []txn.Event{ev(txn.Resolved, false, 0)}},
		{txn.PhaseBegun, inAbort, stepAborted, txn.PhaseIdle, []txn.Event{ev(txn.Aborted, false, 0)}},
		{txn.PhaseVoted, inAbort, stepAborted, txn.PhaseIdle, []txn.Event{ev(txn.Aborted, false, 0)}},
		{txn.PhaseVoteFailed, inAbort, stepAborted, txn.PhaseIdle, []txn.Event{ev(txn.Aborted, false, 0)}},
		{txn.PhaseIdle, inAbort, stepNone, txn.PhaseIdle, nil},
		// "any --server side lost": Lost; in doubt once FINISHING.
		{txn.PhaseIdle, inLost, stepNone, txn.PhaseIdle, nil},
		{txn.PhaseBegun, inLost, stepLost, txn.PhaseIdle, []txn.Event{ev(txn.Lost, false, 0)}},
		{txn.PhaseVoting, inLost, stepLost, txn.PhaseIdle, []txn.Event{ev(txn.Lost, false, 0)}},
		{txn.PhaseVoted, inLost, stepLost, txn.PhaseIdle, []txn.Event{ev(txn.Lost, false, 0)}},
		{txn.PhaseVoteFailed, inLost, stepLost, txn.PhaseIdle, []txn.Event{ev(txn.Lost, false, 0)}},
		{txn.PhaseFinishing, inLost, stepLostFinishing, txn.PhaseIdle, []txn.Event{ev(txn.Lost, false, 0)}},
		// The mapping under the table.
		{txn.PhaseFinishing, inFinishError, stepFinishFailed, txn.PhaseIdle, []txn.Event{ev(txn.Lost, false, 0)}},
		{txn.PhaseFinishing, inAbort, stepNone, txn.PhaseFinishing, nil}, // the transaction package's no-op cleanup
		{txn.PhaseVoted, inBegn, stepBegun, txn.PhaseBegun, []txn.Event{ev(txn.Lost, false, 0), begin}},
		{txn.PhaseIdle, inBeginUnreg, stepBeginUnregister, txn.PhaseIdle, nil},
		{txn.PhaseIdle, inVote, stepNone, txn.PhaseIdle, nil},
		{txn.PhaseIdle, inFinish, stepNone, txn.PhaseIdle, nil},
		{txn.PhaseVoting, inOtherReply, stepNone, txn.PhaseVoting, nil},
		{txn.PhaseFinishing, inOtherReply, stepNone, txn.PhaseFinishing, nil},
		{txn.PhaseFinishing, inVoteOids, stepNone, txn.PhaseFinishing, nil}, // a vote's msgid is not awaited then
		{txn.PhaseBegun, inFinishTID, stepNone, txn.PhaseBegun, nil},
	}
	for _, enc := range []zrpc.Encoding{zrpc.Pickle, zrpc.Msgpack} {
		for _, tc := range cases {
			name := enc.String() + "/" + tc.from.String() + "/" + tc.in.name
			t.Run(name, func(t *testing.T) {
				var m twoPC
				for _, in := range reach[tc.from] {
					in.feed(&m, enc, t)
				}
				require.Equal(t, tc.from, m.ph, "setup")
				steps := m.steps
				s := tc.in.feed(&m, enc, t)
				require.Equal(t, tc.kind, s.kind)
				require.Equal(t, tc.from, s.from)
				require.Equal(t, tc.to, m.ph)
				if len(tc.events) == 0 {
					require.Empty(t, s.events())
				} else {
					require.Equal(t, tc.events, s.events())
				}
				if tc.kind == stepNone || tc.kind == stepBeginUnregister {
					require.Equal(t, steps, m.steps, "no transition counts no step")
				} else {
					require.Equal(t, steps+1, m.steps, "every transition counts one step")
				}
				if tc.to == txn.PhaseIdle {
					require.Zero(t, m.part)
				}
			})
		}
	}
}

// What the relay and the stop ask the machine in each phase.
func TestTwoPCQueries(t *testing.T) {
	for _, tc := range []struct {
		ph                   txn.Phase
		committing, linkable bool
		awaits               int64 // the msgid awaited, 0 if none
	}{
		{txn.PhaseIdle, false, false, 0},
		{txn.PhaseBegun, false, true, 0},
		{txn.PhaseVoting, true, true, tVoteID},
		{txn.PhaseVoted, true, true, 0},
		{txn.PhaseVoteFailed, false, true, 0},
		{txn.PhaseFinishing, true, false, tFinishID},
	} {
		t.Run(tc.ph.String(), func(t *testing.T) {
			var m twoPC
			for _, in := range reach[tc.ph] {
				in.feed(&m, zrpc.Pickle, t)
			}
			require.Equal(t, tc.committing, m.committing())
			k, ok := m.linkable()
			require.Equal(t, tc.linkable, ok)
			if ok {
				require.Equal(t, tKey, k)
			}
			for _, id := range []int64{tVoteID, tFinishID, 99} {
				require.Equal(t, id == tc.awaits, m.awaits(id), "msgid %d", id)
			}
			require.Equal(t, tc.awaits != 0, m.awaiting() == 1)
		})
	}
}

// A conflict reply returns to OPEN; the client votes again and the second
// reply is the one that counts.
func TestTwoPCVotesAgainAfterConflicts(t *testing.T) {
	var m twoPC
	for _, in := range []tInput{inBegn, inVote, inVoteConflicts, inVote} {
		in.feed(&m, zrpc.Msgpack, t)
	}
	require.Equal(t, txn.PhaseVoting, m.ph)
	s := inVoteOids.feed(&m, zrpc.Msgpack, t)
	require.Equal(t, stepVoted, s.kind)
	require.Equal(t, []txn.Event{{Kind: txn.Vote, Part: tPart, OK: true}}, s.events())
	require.Equal(t, tInfo, m.begin.Info, "the Begin is kept for the relay's logs and resolution")
}
