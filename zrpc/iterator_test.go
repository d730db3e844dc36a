package zrpc_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// Iterate over TID bounds, abandon an iterator with iterator_gc, and keep
// a heartbeat going against a real runzeo in both encodings.
func TestIterateAndHeartbeatRealZEO(t *testing.T) {
	for _, e := range encodings() {
		t.Run(e.name, func(t *testing.T) {
			srv := zeotest.StartServer(t, zeotest.ServerOptions{Msgpack: e.msgpack})
			db := "a=" + srv.Addr + "/1"
			out := zeotest.Python(t, "zodb_client.py", "--db", db, "commit", "--count", "4", "--desc", "it "+e.name, "--user", "bob")
			var commits []txn.TID
			for _, l := range jsonLines(t, out) {
				commits = append(commits, hexTID(t, l["a"].(string)))
			}
			require.Len(t, commits, 4)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := zrpc.Dial(ctx, "tcp", srv.Addr, &zrpc.ClientOptions{Heartbeat: 20 * time.Millisecond, HeartbeatTimeout: 2 * time.Second})
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Register(ctx, "1", true)
			require.NoError(t, err)

			// [commits[1], commits[2]]: exactly those two, then the end
			it, err := c.Iterate(ctx, commits[1], commits[2])
			require.NoError(t, err)
			for _, want := range commits[1:3] {
				ti, err := it.Next(ctx)
				require.NoError(t, err)
				require.NotNil(t, ti)
				require.Equal(t, want, ti.TID)
				require.Equal(t, " ", ti.Status)
				require.Equal(t, "it "+e.name, string(ti.Description))
				require.Contains(t, string(ti.User), "bob")
			}
			ti, err := it.Next(ctx)
			require.NoError(t, err)
			require.Nil(t, ti)
			require.NoError(t, it.Close(ctx), "closing an exhausted iterator sends nothing")

			// NextN: the three of [commits[0], commits[2]] in one round
			// trip; asked for three more than there are, it returns the
			// rest of [commits[2], commits[3]], and the client stays usable
			// (the calls past the end are answered with errors, dropped).
			it, err = c.Iterate(ctx, commits[0], commits[2])
			require.NoError(t, err)
			tis, err := it.NextN(ctx, 3)
			require.NoError(t, err)
			require.Len(t, tis, 3)
			for i, ti := range tis {
				require.Equal(t, commits[i], ti.TID)
				require.Equal(t, "it "+e.name, string(ti.Description))
			}
			require.NoError(t, it.Close(ctx))
			it, err = c.Iterate(ctx, commits[2], commits[3])
			require.NoError(t, err)
			tis, err = it.NextN(ctx, 5)
			require.NoError(t, err)
			require.Len(t, tis, 2)
			require.Equal(t, commits[3], tis[1].TID)
			tis, err = it.NextN(ctx, 2)
			require.NoError(t, err)
			require.Empty(t, tis, "the iterator ended")
			_, err = c.LastTransaction(ctx)
			require.NoError(t, err)

			// open-ended from commits[3], abandoned after one: gc, then the id is unknown
			it, err = c.Iterate(ctx, commits[3], 0)
			require.NoError(t, err)
			ti, err = it.Next(ctx)
			require.NoError(t, err)
			require.Equal(t, commits[3], ti.TID)
			require.NoError(t, it.Close(ctx))
			_, err = c.IteratorNext(ctx, it.ID())
			var er *zrpc.ErrorReply
			require.ErrorAs(t, err, &er, "iterator_gc released the iterator")

			// heartbeats flowed all along without upsetting the server
			time.Sleep(100 * time.Millisecond)
			require.NoError(t, c.Err())
			require.NoError(t, c.Ping(ctx))
		})
	}
}
