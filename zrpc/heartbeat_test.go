package zrpc_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// A server that answers pings for a while, then goes silent: the heartbeat
// notices within interval + timeout, and every pending call fails with it.
func TestClientHeartbeatDetectsStall(t *testing.T) {
	var stalled atomic.Bool
	var pings atomic.Int32
	addr := fakeServer(t, "Z5", func(w func(*zrpc.Message), _ net.Conn, m *zrpc.Message) {
		switch m.Name {
		case "register":
			w(zrpc.NewReply(m.MsgID, tidBytes(7)))
		case "ping":
			pings.Add(1)
			if !stalled.Load() {
				w(zrpc.NewReply(m.MsgID, nil))
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := zrpc.Dial(ctx, "tcp", addr, &zrpc.ClientOptions{Heartbeat: 50 * time.Millisecond, HeartbeatTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()

	// no ping before register (ZEO would close the connection)
	time.Sleep(150 * time.Millisecond)
	require.Zero(t, pings.Load())
	_, err = c.Register(ctx, "1", true)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return pings.Load() >= 3 }, 5*time.Second, 10*time.Millisecond)
	select {
	case <-c.Done():
		t.Fatalf("closed while the server answers: %v", c.Err())
	default:
	}

	stalled.Store(true)
	start := time.Now()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a silent server was not detected")
	}
	took := time.Since(start)
	require.Less(t, took, time.Second, "bounded by interval + timeout (150 ms) plus scheduling")
	require.ErrorIs(t, c.Err(), zrpc.ErrHeartbeat)
	require.ErrorIs(t, c.Err(), zrpc.ErrClientClosed)
	t.Logf("stall detected after %v: %v", took, c.Err())
}

// A full Asyncs channel closes the connection after AsyncWait instead of
// blocking the reader forever or dropping a call.
func TestClientAsyncChannel(t *testing.T) {
	addr := fakeServer(t, "M5", func(w func(*zrpc.Message), _ net.Conn, m *zrpc.Message) {
		if m.Name == "lastTransaction" {
			for i := range 3 {
				w(zrpc.AsyncMessage(&zrpc.InvalidateTransaction{TID: tidBytes(txn.TID(i + 1)), OIDs: [][]byte{make([]byte, 8)}}))
			}
			w(zrpc.NewReply(m.MsgID, tidBytes(3)))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// room for everything: delivered in order, and the reply still arrives
	ch := make(chan *zrpc.Message, 3)
	c, err := zrpc.Dial(ctx, "tcp", addr, &zrpc.ClientOptions{Asyncs: ch})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.LastTransaction(ctx)
	require.NoError(t, err)
	for i := range 3 {
		call, err := zrpc.DecodeCall(<-ch)
		require.NoError(t, err)
		require.Equal(t, tidBytes(txn.TID(i+1)), call.(*zrpc.InvalidateTransaction).TID)
	}

	// room for one: the reader waits AsyncWait, then gives up on the connection
	small := make(chan *zrpc.Message, 1)
	c2, err := zrpc.Dial(ctx, "tcp", addr, &zrpc.ClientOptions{Asyncs: small, AsyncWait: 50 * time.Millisecond})
	require.NoError(t, err)
	defer c2.Close()
	_, err = c2.LastTransaction(ctx)
	require.ErrorIs(t, err, zrpc.ErrClientClosed)
	require.ErrorIs(t, c2.Err(), zrpc.ErrAsyncOverflow)
}
