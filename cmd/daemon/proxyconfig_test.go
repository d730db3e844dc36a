package daemon

import (
	"fmt"
	"io"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zeoproxy"
	"github.com/tidstorage/tidstorage/zrpc"
)

// A proxy that listens on one address while its clients dial another
// (client_address, as behind 0.0.0.0 or a NAT) names every storage from the
// address clients dial: a storage the config lists gets the config's id, and
// one it does not list gets the id the config's rule would give it. (The
// relay used to name unlisted storages from its listen address.)
func TestUnlistedStorageIDFollowsClientAddress(t *testing.T) {
	upstream := startAnnouncer(t)
	listen := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	src := fmt.Sprintf(`zeo "main" {
  listen         = %q
  client_address = "zeo1.example.com:8100"
  upstream       = %q
  storage "1" {}
}
`, listen, upstream)
	cfg, err := config.Parse([]byte(src), "t.hcl")
	require.NoError(t, err)
	addr, err := config.ParseAddress("zeo1.example.com:8100")
	require.NoError(t, err)

	obs := make(chan txn.Event, 16)
	p := zeoproxy.New(proxyConfig(cfg, hclog.NewNullLogger()), observerFunc(func(ev txn.Event) { obs <- ev }))
	require.NoError(t, p.Listen())
	p.Serve()
	t.Cleanup(p.Close)

	for _, name := range []string{"1", "2"} { // listed, unlisted
		beginOn(t, listen, name)
		ev := nextEvent(t, obs, txn.Begin)
		require.Equal(t, config.DefaultStorageID(addr, name), ev.Storage, "storage %q", name)
	}
	require.Equal(t, cfg.ZEO[0].Storages[0].ID, config.DefaultStorageID(addr, "1"))
}

type observerFunc func(txn.Event)

func (f observerFunc) Observe(ev txn.Event) { f(ev) }

func nextEvent(t *testing.T, ch <-chan txn.Event, kind txn.EventKind) txn.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-ch:
			if ev.Kind == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event within 10 s", kind)
		}
	}
}

// startAnnouncer is the least of a ZEO server the relay needs to observe a
// client's calls: it announces Z5 and swallows whatever comes.
func startAnnouncer(t *testing.T) string {
	ln := zeotest.ServeTCP(t, func(c net.Conn) {
		defer c.Close()
		if zrpc.WriteFrame(c, []byte("Z5")) == nil {
			_, _ = io.Copy(io.Discard, c)
		}
	})
	return ln.Addr().String()
}

// beginOn dials the proxy, registers storage name and begins a transaction.
func beginOn(t *testing.T, proxy, name string) {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	hello, err := zrpc.NewFrameReader(c).ReadFrame()
	require.NoError(t, err)
	require.Equal(t, "Z5", string(hello))
	out := zrpc.AppendFrame(nil, []byte("Z5"))
	for i, call := range []zrpc.Call{&zrpc.Register{Storage: name}, &zrpc.TPCBegin{TxnID: 1, User: []byte("u"), Description: []byte("d"), Status: " "}} {
		payload, err := zrpc.EncodeMessage(zrpc.Pickle, zrpc.CallMessage(int64(i+1), call))
		require.NoError(t, err)
		out = zrpc.AppendFrame(out, payload)
	}
	_, err = c.Write(out)
	require.NoError(t, err)
}

// blind_timeout reaches each proxied server's settings: the default, and
// "0s" (never).
func TestProxyConfigBlindTimeout(t *testing.T) {
	cfg, err := config.Parse([]byte(`zeo "a" {
  listen   = "127.0.0.1:8100"
  upstream = "127.0.0.1:8200"
  storage "1" {}
}
zeo "b" {
  listen        = "127.0.0.1:8101"
  upstream      = "127.0.0.1:8201"
  blind_timeout = "0s"
  storage "1" {}
}
`), "t.hcl")
	require.NoError(t, err)
	pc := proxyConfig(cfg, hclog.NewNullLogger())
	require.Len(t, pc.Servers, 2)
	require.Equal(t, config.DefaultBlindTimeout, pc.Servers[0].BlindTimeout)
	require.Equal(t, time.Duration(0), pc.Servers[1].BlindTimeout)
}

// The relay's limits come from the limits block, each under the name of the
// config field it comes from; without one, the documented defaults (the
// relay's own, zeoproxy's tests check they are the same).
func TestProxyConfigLimits(t *testing.T) {
	cfg, err := config.Parse([]byte(`limits {
  max_frame_size         = "32MiB"
  max_pre_register_frame = "16KiB"
  decode_budget          = "96MiB"
  register_timeout       = "20s"
}
`), "t.hcl")
	require.NoError(t, err)
	pc := proxyConfig(cfg, hclog.NewNullLogger())
	require.Equal(t, 32<<20, pc.MaxFrameSize)
	require.Equal(t, 16<<10, pc.MaxPreRegisterFrame)
	require.Equal(t, 96<<20, pc.DecodeBudget)
	require.Equal(t, 20*time.Second, pc.RegisterTimeout)

	cfg, err = config.Parse(nil, "empty.hcl")
	require.NoError(t, err)
	pc = proxyConfig(cfg, hclog.NewNullLogger())
	require.Equal(t, config.DefaultMaxFrameSize, pc.MaxFrameSize)
	require.Equal(t, config.DefaultMaxPreRegisterFrame, pc.MaxPreRegisterFrame)
	require.Equal(t, config.DefaultRegisterTimeout, pc.RegisterTimeout)
	require.Equal(t, config.DefaultMaxZEOConnections, pc.MaxZEOConnections)
	require.Zero(t, pc.DecodeBudget, "zeoproxy's default: twice max_frame_size")

	// Every setting but the wiring is named as the config field it comes
	// from (Limits or Config).
	wiring := map[string]bool{"Servers": true, "PartIDBase": true, "Logger": true}
	limits, top := reflect.TypeOf(config.Limits{}), reflect.TypeOf(config.Config{})
	pt := reflect.TypeOf(zeoproxy.Config{})
	for i := range pt.NumField() {
		f := pt.Field(i)
		if !f.IsExported() || wiring[f.Name] {
			continue
		}
		_, inLimits := limits.FieldByName(f.Name)
		_, inTop := top.FieldByName(f.Name)
		require.True(t, inLimits || inTop, "zeoproxy.Config.%s is named as no config field", f.Name)
	}
}
