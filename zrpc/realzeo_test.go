package zrpc_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

func encodings() []struct {
	name    string
	msgpack bool
	enc     zrpc.Encoding
} {
	return []struct {
		name    string
		msgpack bool
		enc     zrpc.Encoding
	}{{"pickle", false, zrpc.Pickle}, {"msgpack", true, zrpc.Msgpack}}
}

func jsonLines(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), "line %q", l)
		lines = append(lines, m)
	}
	return lines
}

func hexTID(t *testing.T, s string) txn.TID {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	require.Len(t, b, 8)
	return txn.TIDFromBytes([8]byte(b))
}

// The Go client against a real runzeo: register and lastTransaction agree
// with a Python client, iteration returns the committed transactions.
func TestClientRealZEO(t *testing.T) {
	for _, e := range encodings() {
		t.Run(e.name, func(t *testing.T) {
			srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}, Msgpack: e.msgpack})
			db := "a=" + srv.Addr + "/1"
			out := zeotest.Python(t, "zodb_client.py", "--db", db, "commit", "--count", "3", "--desc", "go client "+e.name, "--user", "alice")
			var commits []txn.TID
			for _, l := range jsonLines(t, out) {
				commits = append(commits, hexTID(t, l["a"].(string)))
			}
			require.Len(t, commits, 3)
			var last map[string]string
			require.NoError(t, json.Unmarshal(zeotest.Python(t, "zodb_client.py", "--db", db, "last"), &last))
			require.Equal(t, commits[2], hexTID(t, last["a"]))

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// The bootstrap read: dial, register read-only, lastTransaction.
			boot, err := zrpc.LastTID(ctx, "tcp", srv.Addr, "1", nil)
			require.NoError(t, err)
			require.Equal(t, commits[2], boot)
			_, err = zrpc.LastTID(ctx, "tcp", srv.Addr, "nosuch", nil)
			require.ErrorContains(t, err, `storage "nosuch": register:`)
			var asyncs []*zrpc.Message
			var amu sync.Mutex
			c, err := zrpc.Dial(ctx, "tcp", srv.Addr, &zrpc.ClientOptions{OnAsync: func(m *zrpc.Message) {
				amu.Lock()
				asyncs = append(asyncs, m)
				amu.Unlock()
			}})
			require.NoError(t, err)
			defer c.Close()
			require.Equal(t, e.enc, c.Protocol().Encoding, "the client echoes the server's letter")

			tid, err := c.Register(ctx, "1", true)
			require.NoError(t, err)
			require.Equal(t, commits[2], tid)
			lt, err := c.LastTransaction(ctx)
			require.NoError(t, err)
			require.Equal(t, tid, lt)
			info, err := c.GetInfo(ctx)
			require.NoError(t, err)
			n, ok := info.Get("length")
			require.True(t, ok)
			require.GreaterOrEqual(t, n, int64(1))
			require.NoError(t, c.Ping(ctx))

			// concurrent calls are matched by msgid
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			for i := 0; i < 20; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := c.LastTransaction(ctx)
					if err == nil && got != tid {
						err = errors.New("wrong tid " + got.String())
					}
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}

			// all transactions: the root creation, then our three
			txns, more, err := c.Transactions(ctx, nil, nil, 100)
			require.NoError(t, err)
			require.False(t, more)
			require.Len(t, txns, 4)
			for i, ti := range txns[1:] {
				require.Equal(t, commits[i], ti.TID)
				require.Equal(t, "go client "+e.name, string(ti.Description))
				require.Contains(t, string(ti.User), "alice")
			}
			// from a start tid, bounded
			txns, more, err = c.Transactions(ctx, tidBytes(commits[1]), nil, 1)
			require.NoError(t, err)
			require.True(t, more)
			require.Equal(t, commits[1], txns[0].TID)
			require.NoError(t, c.Ping(ctx), "iterator_gc left the connection usable")

			// error replies come back typed
			c2, err := zrpc.Dial(ctx, "tcp", srv.Addr, nil)
			require.NoError(t, err)
			defer c2.Close()
			_, err = c2.Register(ctx, "nosuchstorage", false)
			var er *zrpc.ErrorReply
			require.ErrorAs(t, err, &er)
			require.Contains(t, er.Class, "Error")
			t.Logf("unknown storage: %v", err)

			// a commit by Python reaches the registered client as invalidateTransaction
			out = zeotest.Python(t, "zodb_client.py", "--db", db, "commit", "--count", "1")
			newTID := hexTID(t, jsonLines(t, out)[0]["a"].(string))
			require.Eventually(t, func() bool {
				amu.Lock()
				defer amu.Unlock()
				for _, m := range asyncs {
					if m.Name == "invalidateTransaction" {
						c, err := zrpc.DecodeCall(m)
						if err == nil && bytes.Equal(c.(*zrpc.InvalidateTransaction).TID, tidBytes(newTID)) {
							return true
						}
					}
				}
				return false
			}, 10*time.Second, 20*time.Millisecond)

			// ruok
			js, err := zrpc.Ruok(ctx, "tcp", srv.Addr)
			require.NoError(t, err)
			var status map[string]map[string]any
			require.NoError(t, json.Unmarshal(js, &status))
			require.Equal(t, newTID.Hex(), status["1"]["last-transaction"])

			// timeouts: a call on a context already past its deadline fails fast
			short, cancel2 := context.WithTimeout(ctx, time.Nanosecond)
			defer cancel2()
			<-short.Done()
			_, err = c.LastTransaction(short)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.NoError(t, c.Ping(ctx))

			require.NoError(t, c.Close())
			_, err = c.LastTransaction(ctx)
			require.ErrorIs(t, err, zrpc.ErrClientClosed)
		})
	}
}

// A client may answer Z5 to an M5 server; the server then speaks pickle.
func TestClientForcedEncoding(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Msgpack: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := zrpc.Dial(ctx, "tcp", srv.Addr, &zrpc.ClientOptions{Encoding: zrpc.Pickle})
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, "Z5", c.Protocol().String())
	_, err = c.Register(ctx, "1", false)
	require.NoError(t, err)
}

// recorder is a pass-through that keeps a copy of both directions of every
// connection.
type recorder struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []*recordedConn
	wg    sync.WaitGroup
}

type recordedConn struct {
	mu       sync.Mutex
	c2s, s2c bytes.Buffer
}

type lockedTee struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedTee) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func startRecorder(t *testing.T, upstream string) *recorder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &recorder{ln: ln}
	go func() {
		for {
			cc, err := ln.Accept()
			if err != nil {
				return
			}
			sc, err := net.Dial("tcp", upstream)
			if err != nil {
				cc.Close()
				continue
			}
			rc := &recordedConn{}
			r.mu.Lock()
			r.conns = append(r.conns, rc)
			r.mu.Unlock()
			r.wg.Add(2)
			pipe := func(dst, src net.Conn, rec *bytes.Buffer) {
				defer r.wg.Done()
				io.Copy(dst, io.TeeReader(src, lockedTee{&rc.mu, rec}))
				dst.(*net.TCPConn).CloseWrite()
			}
			go pipe(sc, cc, &rc.c2s)
			go pipe(cc, sc, &rc.s2c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return r
}

func (r *recorder) Addr() string { return r.ln.Addr().String() }

// Stop waits (bounded) for every relayed connection to end.
func (r *recorder) Stop(t *testing.T) []*recordedConn {
	r.ln.Close()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("recorded connections did not end")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns
}

// captureStats is what a decoded conversation showed.
type captureStats struct {
	saved        map[string]int // captured frames written to testdata/captured, by name
	finishTIDs   []txn.TID
	methods      map[string]int // calls seen, by name (both directions)
	errorClasses map[string]int
	heartbeats   int
	votes        int // successful vote replies
	failedVotes  int // vote error replies
	tupleMsgIDs  int
	frames       int
}

// decodeConversation decodes every frame of one recorded connection with
// the handshake's encoding, checks the peek path against the full decode,
// and pairs tpc_finish calls with their replies.
func decodeConversation(t *testing.T, rc *recordedConn, st *captureStats) {
	t.Helper()
	sfr := zrpc.NewFrameReader(bufio.NewReader(bytes.NewReader(rc.s2c.Bytes())))
	cfr := zrpc.NewFrameReader(bufio.NewReader(bytes.NewReader(rc.c2s.Bytes())))
	hello, err := sfr.ReadFrame()
	require.NoError(t, err)
	sp, err := zrpc.ParseServerHandshake(hello)
	require.NoError(t, err)
	answer, err := cfr.ReadFrame()
	require.NoError(t, err)
	ch, err := zrpc.ParseClientHandshake(answer)
	require.NoError(t, err)
	require.False(t, ch.Ruok)
	require.Equal(t, sp, ch.Protocol, "a ZEO 6 client echoes the server")
	enc := ch.Protocol.Encoding

	finishIDs := map[int64]bool{}
	voteIDs := map[int64]bool{}
	tupleCalls := map[string]bool{} // raw msgid bytes of loadBefore calls
	decodeAll := func(fr *zrpc.FrameReader, dir string, each func(m *zrpc.Message)) {
		for {
			p, err := fr.ReadFrame()
			if err == io.EOF {
				return
			}
			require.NoError(t, err, dir)
			st.frames++
			m, err := zrpc.DecodeMessage(enc, p)
			require.NoError(t, err, "%s frame %d", dir, fr.Frames())
			head := p
			if len(head) > 256 {
				head = head[:256]
			}
			pk, err := zrpc.PeekMessage(enc, head)
			require.NoError(t, err, "%s frame %d peek", dir, fr.Frames())
			require.Equal(t, m.Name, string(pk.Name))
			require.Equal(t, m.Flags, pk.Flags)
			if id, ok := m.IntMsgID(); ok {
				require.Equal(t, id, pk.MsgID)
			} else {
				require.Equal(t, zrpc.MsgIDTuple, pk.MsgIDKind)
				st.tupleMsgIDs++
				// a proxy can pair a loadBefore reply with its call by the
				// raw msgid bytes: the server re-encodes the same bytes
				if m.IsReply() {
					require.True(t, tupleCalls[string(pk.MsgIDRaw)], "reply msgid %x matches no call", pk.MsgIDRaw)
				} else {
					tupleCalls[string(pk.MsgIDRaw)] = true
				}
			}
			if st.saved != nil {
				saveCaptured(t, st, enc, dir, m, p)
			}
			if !m.IsReply() {
				st.methods[m.Name]++
				_, err := zrpc.DecodeCall(m)
				require.NoError(t, err, "%s: typed decode of %s", dir, m.Name)
			}
			each(m)
		}
	}
	decodeAll(cfr, "client→server", func(m *zrpc.Message) {
		if m.IsHeartbeat() {
			st.heartbeats++
		}
		if m.Name == "tpc_finish" {
			id, _ := m.IntMsgID()
			finishIDs[id] = true
		}
		if m.Name == "vote" {
			id, _ := m.IntMsgID()
			voteIDs[id] = true
		}
	})
	decodeAll(sfr, "server→client", func(m *zrpc.Message) {
		if m.IsError() {
			e, err := zrpc.ParseErrorReply(m)
			require.NoError(t, err)
			st.errorClasses[e.Class]++
		}
		if id, ok := m.IntMsgID(); ok && m.IsReply() && voteIDs[id] {
			r, err := zrpc.ParseVoteResult(m)
			var er *zrpc.ErrorReply
			if errors.As(err, &er) {
				st.failedVotes++
			} else {
				require.NoError(t, err)
				require.True(t, r.Voted(), "server-side conflict resolution: no conflict dicts")
				st.votes++
			}
		}
		if id, ok := m.IntMsgID(); ok && m.IsReply() && finishIDs[id] {
			tid, err := zrpc.ReplyTID(m)
			require.NoError(t, err)
			st.finishTIDs = append(st.finishTIDs, tid)
		}
	})
}

// Capture: a real ZODB client talks to a real ZEO server through a
// recording pass-through; zrpc must decode every frame both ways and read
// the committed TIDs the Python client reports from the tpc_finish replies.
func TestCaptureRealTraffic(t *testing.T) {
	for _, e := range encodings() {
		t.Run(e.name, func(t *testing.T) {
			srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}, Msgpack: e.msgpack, Blobs: true})
			rec := startRecorder(t, srv.Addr)
			out := zeotest.Python(t, "capture_client.py", "--addr", rec.Addr(), "--blob-dir", t.TempDir())
			conns := rec.Stop(t)
			t.Logf("python:\n%s", out)

			var want []txn.TID
			steps := map[string]bool{}
			for _, l := range jsonLines(t, out) {
				steps[l["step"].(string)] = true
				for _, key := range []string{"last", "tids"} {
					if m, ok := l[key].(map[string]any); ok {
						for _, v := range m {
							if tid := hexTID(t, v.(string)); tid != 0 {
								want = append(want, tid)
							}
						}
					}
				}
			}
			for _, s := range []string{"open", "multi", "abort", "winner", "conflict", "blob", "blob-read", "heartbeat"} {
				require.True(t, steps[s], "python step %s missing", s)
			}

			st := &captureStats{methods: map[string]int{}, errorClasses: map[string]int{}}
			if os.Getenv("ZRPC_UPDATE_CAPTURES") != "" {
				st.saved = map[string]int{}
			}
			require.GreaterOrEqual(t, len(conns), 4)
			for _, rc := range conns {
				decodeConversation(t, rc, st)
			}
			sortTIDs := func(s []txn.TID) []txn.TID {
				s = append([]txn.TID(nil), s...)
				sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
				return s
			}
			require.Equal(t, sortTIDs(want), sortTIDs(st.finishTIDs), "tpc_finish reply TIDs = TIDs the client reports")
			require.Equal(t, 1, st.errorClasses["ZODB.POSException.ConflictError"], "error classes %v", st.errorClasses)
			require.Equal(t, 1, st.failedVotes, "the conflicting vote")
			require.Equal(t, len(want)+2, st.votes, "one successful vote per commit (root creations included), plus the pair voted then aborted")
			require.GreaterOrEqual(t, st.methods["tpc_abort"], 2, "abort on a and b (and after the conflict)")
			require.Greater(t, st.methods["storeBlobChunk"], 0)
			require.Equal(t, 1, st.methods["storeBlobEnd"])
			require.Greater(t, st.methods["receiveBlobChunk"], 0)
			require.Greater(t, st.methods["storea"], 25)
			require.Greater(t, st.methods["invalidateTransaction"], 0)
			require.Greater(t, st.tupleMsgIDs, 0, "loadBefore calls and replies")
			require.Greater(t, st.heartbeats, 0)
			t.Logf("%s: %d connections, %d frames, calls %v, errors %v, %d tuple msgids, %d heartbeats",
				e.name, len(conns), st.frames, st.methods, st.errorClasses, st.tupleMsgIDs, st.heartbeats)
		})
	}
}

// saveCaptured keeps a few real frames of each kind (ZRPC_UPDATE_CAPTURES=1)
// in testdata/captured: TestCapturedFrames decodes them without Python and
// the fuzz targets use them as seeds.
func saveCaptured(t *testing.T, st *captureStats, enc zrpc.Encoding, dir string, m *zrpc.Message, p []byte) {
	kind := m.Name
	if m.IsReply() {
		kind = "reply"
		if m.IsError() {
			kind = "error"
		}
		if m.IsHeartbeat() {
			kind = "heartbeat"
		}
		if _, ok := m.IntMsgID(); !ok {
			kind += "_tuplemsgid"
		}
	}
	d := "c2s"
	if strings.HasPrefix(dir, "server") {
		d = "s2c"
	}
	name := fmt.Sprintf("%c5_%s_%s", unicode.ToLower(rune(enc)), d, kind)
	if st.saved[name] >= 2 || len(p) > 4096 {
		return
	}
	st.saved[name]++
	path := filepath.Join("testdata", "captured", fmt.Sprintf("%s_%d.bin", name, st.saved[name]))
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, p, 0o644))
}
