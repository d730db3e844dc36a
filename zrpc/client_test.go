package zrpc_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// fakeServer is a hand-made ZEO peer for the client's unit tests (the real
// server is exercised in realzeo_test.go): it announces a protocol, then
// hands every decoded call to handle, which writes what it wants.
func fakeServer(t *testing.T, announce string, handle func(w func(*zrpc.Message), conn net.Conn, m *zrpc.Message)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				if zrpc.WriteFrame(conn, []byte(announce)) != nil {
					return
				}
				fr := zrpc.NewFrameReader(conn)
				hello, err := fr.ReadFrame()
				if err != nil {
					return
				}
				hs, err := zrpc.ParseClientHandshake(hello)
				if err != nil {
					return
				}
				enc := hs.Protocol.Encoding
				var wmu sync.Mutex
				w := func(m *zrpc.Message) {
					p, err := zrpc.EncodeMessage(enc, m)
					if err != nil {
						panic(err)
					}
					wmu.Lock()
					defer wmu.Unlock()
					zrpc.WriteFrame(conn, p)
				}
				for {
					p, err := fr.ReadFrame()
					if err != nil {
						return
					}
					m, err := zrpc.DecodeMessage(enc, p)
					if err != nil {
						return
					}
					handle(w, conn, m)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestClientOutOfOrderRepliesAndAsync(t *testing.T) {
	var mu sync.Mutex
	var held []*zrpc.Message
	addr := fakeServer(t, "M5", func(w func(*zrpc.Message), _ net.Conn, m *zrpc.Message) {
		// hold lastTransaction calls until three arrived, then answer in
		// reverse order with an async frame in between
		mu.Lock()
		defer mu.Unlock()
		held = append(held, m)
		if len(held) < 3 {
			return
		}
		for i := len(held) - 1; i >= 0; i-- {
			id, _ := held[i].IntMsgID()
			w(zrpc.NewReply(id, tidBytes(txn.TID(id))))
			if i == 1 {
				w(zrpc.AsyncMessage(&zrpc.Info{Info: zrpc.Dict{{Key: "length", Value: int64(5)}}}))
			}
		}
		held = nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	asyncs := make(chan *zrpc.Message, 10)
	c, err := zrpc.Dial(ctx, "tcp", addr, &zrpc.ClientOptions{OnAsync: func(m *zrpc.Message) { asyncs <- m }})
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, "M5", c.Protocol().String())

	var wg sync.WaitGroup
	got := make([]txn.TID, 3)
	errs := make([]error, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = c.LastTransaction(ctx)
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for i := range 3 {
		require.NoError(t, errs[i])
		seen[uint64(got[i])] = true
	}
	require.Equal(t, map[uint64]bool{1: true, 2: true, 3: true}, seen, "each call got the reply to its own msgid")
	m := <-asyncs
	require.Equal(t, "info", m.Name)
}

func TestClientTimeoutAndServerClose(t *testing.T) {
	addr := fakeServer(t, "Z5", func(w func(*zrpc.Message), conn net.Conn, m *zrpc.Message) {
		switch m.Name {
		case "ping": // never answered
		case "get_info":
			w(zrpc.NewErrorReply(m.MsgID, "builtins.ValueError", zrpc.Tuple{"boom"}))
		case "lastTransaction":
			conn.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := zrpc.Dial(ctx, "tcp", addr, &zrpc.ClientOptions{CallTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()

	// the per-call default timeout applies when the context has none
	start := time.Now()
	err = c.Ping(context.Background())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "call ping (msgid 1)")
	require.Less(t, time.Since(start), 5*time.Second)

	_, err = c.GetInfo(ctx)
	var er *zrpc.ErrorReply
	require.ErrorAs(t, err, &er)
	require.Equal(t, "builtins.ValueError", er.Class)
	require.Equal(t, "boom", er.Message())

	// the server drops the connection: the pending call fails, later ones too
	_, err = c.LastTransaction(ctx)
	require.ErrorIs(t, err, zrpc.ErrClientClosed)
	<-c.Done()
	require.ErrorIs(t, c.Ping(ctx), zrpc.ErrClientClosed)
}

func TestClientHandshakeErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// a ZEO 4 server: this client speaks protocol 5 only
	addr := fakeServer(t, "Z4", func(func(*zrpc.Message), net.Conn, *zrpc.Message) {})
	_, err := zrpc.Dial(ctx, "tcp", addr, nil)
	require.ErrorIs(t, err, zrpc.ErrBadHandshake)
	// garbage instead of an announcement
	addr = fakeServer(t, "HTTP/1.1 400", func(func(*zrpc.Message), net.Conn, *zrpc.Message) {})
	_, err = zrpc.Dial(ctx, "tcp", addr, nil)
	require.ErrorIs(t, err, zrpc.ErrBadHandshake)
	// a server that accepts and says nothing: the dial context bounds the wait
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	quiet := make(chan struct{})
	defer close(quiet)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			<-quiet
		}
	}()
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	_, err = zrpc.Dial(short, "tcp", ln.Addr().String(), nil)
	require.Error(t, err)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded), "%v", err)
}

// OnInvalidate gets every invalidateTransaction's TID, read without
// decoding the frame; other one-way calls, and an invalidation whose TID
// is not 8 bytes, still go to OnAsync, decoded.
func TestClientOnInvalidate(t *testing.T) {
	for _, enc := range []string{"Z5", "M5"} {
		t.Run(enc, func(t *testing.T) {
			addr := fakeServer(t, enc, func(w func(*zrpc.Message), _ net.Conn, m *zrpc.Message) {
				id, _ := m.IntMsgID()
				w(zrpc.AsyncMessage(&zrpc.UnknownCall{Name: "invalidateTransaction", Arguments: zrpc.Tuple{tidBytes(7), zrpc.List{tidBytes(1)}}}))
				w(zrpc.AsyncMessage(&zrpc.Info{Info: zrpc.Dict{{Key: "length", Value: int64(5)}}}))
				w(zrpc.AsyncMessage(&zrpc.UnknownCall{Name: "invalidateTransaction", Arguments: zrpc.Tuple{[]byte("short"), zrpc.List{}}}))
				w(zrpc.AsyncMessage(&zrpc.UnknownCall{Name: "invalidateTransaction", Arguments: zrpc.Tuple{tidBytes(9), zrpc.List{}}}))
				w(zrpc.NewReply(id, tidBytes(9)))
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var mu sync.Mutex
			var tids []txn.TID
			var asyncs []string
			c, err := zrpc.Dial(ctx, "tcp", addr, &zrpc.ClientOptions{
				OnInvalidate: func(t txn.TID) { mu.Lock(); tids = append(tids, t); mu.Unlock() },
				OnAsync:      func(m *zrpc.Message) { mu.Lock(); asyncs = append(asyncs, m.Name); mu.Unlock() },
			})
			require.NoError(t, err)
			defer c.Close()
			_, err = c.LastTransaction(ctx) // its reply comes after the one-way calls
			require.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, []txn.TID{7, 9}, tids)
			require.Equal(t, []string{"info", "invalidateTransaction"}, asyncs)
		})
	}
}
