package zeoproxy

import (
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

type nullObserver struct{}

func (nullObserver) Observe(txn.Event) {}

// BenchmarkCommitInspection is the relay's cost of observing one commit on
// one connection, without sockets: the tpc_begin decoded, the vote and
// tpc_finish peeked, their replies decoded, each through the inspectors and
// the connection's two-phase commit, with a tracker that does nothing.
func BenchmarkCommitInspection(b *testing.B) {
	for _, enc := range []zrpc.Encoding{zrpc.Pickle, zrpc.Msgpack} {
		b.Run(enc.String(), func(b *testing.B) {
			frame := func(m *zrpc.Message) []byte {
				p, err := zrpc.EncodeMessage(enc, m)
				if err != nil {
					b.Fatal(err)
				}
				return p
			}
			tid := txn.TID(0x03f0_0000_0000_0001)
			tidb := tid.Bytes()
			begin := frame(zrpc.AsyncMessage(&zrpc.TPCBegin{TxnID: 1, User: []byte("u"), Description: []byte("d"), Status: " "}))
			vote := frame(zrpc.NewCall(5, "vote", zrpc.Tuple{zrpc.Uint64Value(1)}))
			voted := frame(zrpc.NewReply(int64(5), zrpc.List{}))
			finish := frame(zrpc.NewCall(6, "tpc_finish", zrpc.Tuple{zrpc.Uint64Value(1)}))
			finished := frame(zrpc.NewReply(int64(6), tidb[:]))
			p := New(Config{}, nullObserver{})
			l := &listener{p: p, log: hclog.NewNullLogger(), conns: map[*conn]struct{}{}}
			c := &conn{l: l, log: hclog.NewNullLogger(), idDone: make(chan struct{}), registered: true, storageID: "S",
				zeoName: "1", c2sFrames: 1, s2cFrames: 1, enc: enc, encKnown: true, scEnc: enc}
			c.setIdentity("host")
			cs, sc := c2sInspector{c}, s2cInspector{c}
			b.ReportAllocs()
			for n := 0; n < b.N; n++ {
				if !cs.head(begin, len(begin)) {
					b.Fatal("tpc_begin not wanted")
				}
				cs.whole(begin)
				cs.head(vote, len(vote))
				if !sc.head(voted, len(voted)) {
					b.Fatal("vote reply not wanted")
				}
				sc.whole(voted)
				cs.head(finish, len(finish))
				if !sc.head(finished, len(finished)) {
					b.Fatal("finish reply not wanted")
				}
				sc.whole(finished)
			}
			if p.metrics.commits.Load() != int64(b.N) {
				b.Fatalf("%d commits seen, want %d", p.metrics.commits.Load(), b.N)
			}
		})
	}
}
