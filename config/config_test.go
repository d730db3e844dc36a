package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the .golden files from the current output")

// TestGolden parses every testdata/*.hcl: bad_* must fail with exactly the
// messages of their .golden file, ok_* must load and dump to theirs.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.hcl")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".hcl"), func(t *testing.T) {
			src, err := os.ReadFile(file)
			require.NoError(t, err)
			cfg, err := Parse(src, file)
			var got string
			if strings.HasPrefix(filepath.Base(file), "bad_") {
				require.Error(t, err, "a bad_ config must be rejected")
				var cerr *Error
				require.True(t, errors.As(err, &cerr), "error is %T, want *config.Error", err)
				for _, d := range cerr.Diagnostics {
					require.NotNil(t, d.Subject, "every diagnostic needs a position: %s", FormatDiagnostic(d))
				}
				got = err.Error() + "\n"
			} else {
				require.NoError(t, err)
				got = dumpConfig(cfg)
			}
			golden := strings.TrimSuffix(file, ".hcl") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./config/ -update to create it")
			require.Equal(t, string(want), got)
		})
	}
}

// dumpConfig renders every field so that the golden files pin the defaults.
func dumpConfig(c *Config) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("status_file=%q pid_file=%q", c.StatusFile, c.PIDFile)
	p("burst_period=%s full_dump_period=%s classic_txn_timeout=%s shutdown_timeout=%s",
		c.BurstPeriod, c.FullDumpPeriod, c.ClassicTxnTimeout, c.ShutdownTimeout)
	p("log level=%s format=%s file=%q", c.Log.Level, c.Log.Format, c.Log.File)
	p("limits %+v", c.Limits)
	p("classic enabled=%v listen=%s allow=%v max_connections=%d idle_timeout=%s",
		c.Classic.Enabled, c.Classic.Listen, c.Classic.Allow, c.Classic.MaxConnections, c.Classic.IdleTimeout)
	p("admin enabled=%v listen=%s token_file=%q allowed_hosts=%q", c.Admin.Enabled, c.Admin.Listen, c.Admin.TokenFile, c.Admin.AllowedHosts)
	if c.Role() != RoleAllInOne {
		p("role=%s", c.Role())
	}
	if f := c.Fleet; f != nil {
		p("fleet listen=%s tls=%+v", f.Listen, f.TLS)
	}
	if t := c.Tracker; t != nil {
		p("tracker address=%s name=%q buffer_file=%q buffer_events=%d tls=%+v", t.Address, t.Name, t.BufferFile, t.BufferEvents, t.TLS)
	}
	for _, z := range c.ZEO {
		p("zeo %q listen=%s upstream=%s client_address=%s storages=%d", z.Name, z.Listen, z.Upstream, z.ClientAddress, len(z.Storages))
		if z.TLS != nil {
			p("  tls=%+v", *z.TLS)
		}
		if z.UpstreamTLS != nil {
			p("  upstream_tls=%+v", *z.UpstreamTLS)
		}
	}
	for _, s := range c.Storages {
		zeo := "-"
		if s.ZEO != nil {
			zeo = s.ZEO.Name
		}
		p("storage id=%s zeo=%s name=%q data_fs=%q blob_dir=%q repository=%q", s.ID, zeo, s.Name, s.DataFS, s.BlobDir, s.Repository)
	}
	for _, w := range c.Warnings {
		p("%s", FormatDiagnostic(w))
	}
	return b.String()
}

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := Load("../examples/tidstorage.hcl")
	require.NoError(t, err)
	require.Len(t, cfg.ZEO, 2, "the example shows two servers")
	require.Len(t, cfg.ZEO[0].Storages, 2, "one server with two storages")
	require.Empty(t, cfg.Warnings)
	require.NotNil(t, cfg.StorageByID("((('zeo1.example.com', 8100),), '1')"))
	require.True(t, filepath.IsAbs(cfg.StatusFile))
}

func TestLoadResolvesRelativePaths(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.hcl")
	require.NoError(t, os.WriteFile(path, []byte(`status_file = "st/tid.log"`+"\n"), 0o644))
	cfg, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "st", "tid.log"), cfg.StatusFile)

	_, err = Load(filepath.Join(dir, "missing.hcl"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestErrorListsEveryDiagnostic(t *testing.T) {
	_, err := Parse([]byte("a = 1\nb = 2\nburst_period = \"x\"\n"), "x.hcl")
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 3)
	require.True(t, strings.HasPrefix(lines[0], "x.hcl:1:1: Unsupported argument"), lines[0])
	require.True(t, strings.HasPrefix(lines[1], "x.hcl:2:1: Unsupported argument"), lines[1])
	require.True(t, strings.HasPrefix(lines[2], "x.hcl:3:16: Invalid duration"), lines[2])
}

func TestDefaultStorageID(t *testing.T) {
	tcp, err := ParseAddress("localhost:8200")
	require.NoError(t, err)
	require.Equal(t, "((('localhost', 8200),), '2')", DefaultStorageID(tcp, "2"))
	v6, err := ParseAddress("[::1]:8100")
	require.NoError(t, err)
	require.Equal(t, "((('::1', 8100),), '1')", DefaultStorageID(v6, "1"))
	require.Equal(t, "[::1]:8100", v6.String())
	unix, err := ParseAddress("unix:/run/zeo.sock")
	require.NoError(t, err)
	require.Equal(t, "(('/run/zeo.sock',), 'main')", DefaultStorageID(unix, "main"))
	require.Equal(t, "/run/zeo.sock", unix.NetAddress())
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "10B": 10, "4KiB": 4096, "2 MiB": 2 << 20, "1GB": 1e9, "3kB": 3000} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "0", "-1", "1.5MiB", "MiB", "1TiB", "9999999999GiB"} {
		_, err := ParseSize(in)
		require.Error(t, err, in)
	}
}

func TestClassicAllowed(t *testing.T) {
	cfg, err := Parse([]byte(`classic { allow = ["10.0.0.0/8", "192.168.1.7"] }`), "a.hcl")
	require.NoError(t, err)
	require.True(t, cfg.Classic.Allowed(netip.MustParseAddr("10.2.3.4")))
	require.True(t, cfg.Classic.Allowed(netip.MustParseAddr("::ffff:192.168.1.7")))
	require.False(t, cfg.Classic.Allowed(netip.MustParseAddr("192.168.1.8")))
	require.False(t, cfg.Classic.Allowed(netip.MustParseAddr("127.0.0.1")), "an allow list replaces the default")

	nets := cfg.Classic.IPNets()
	require.Len(t, nets, 2)
	require.Equal(t, "10.0.0.0/8", nets[0].String())
	require.Equal(t, "192.168.1.7/32", nets[1].String())
	require.True(t, nets[0].Contains(net.ParseIP("10.9.9.9")))
	require.Equal(t, "::1/128", DefaultClassicAllow[1].String())
	def, err := Parse(nil, "empty.hcl")
	require.NoError(t, err)
	require.Equal(t, "::1/128", def.Classic.IPNets()[1].String())
}

func TestParseAddress(t *testing.T) {
	for in, want := range map[string]Address{
		"localhost:8100":     {Network: "tcp", Host: "localhost", Port: 8100},
		"127.0.0.1:0":        {Network: "tcp", Host: "127.0.0.1", Port: 0},
		"[::1]:9001":         {Network: "tcp", Host: "::1", Port: 9001},
		":8100":              {Network: "tcp", Host: "", Port: 8100},
		"unix:/run/zeo.sock": {Network: "unix", Path: "/run/zeo.sock"},
	} {
		got, err := ParseAddress(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
		require.Equal(t, in, got.String(), "String() gives back the config text")
	}
	for _, in := range []string{"", "localhost", "host:port", "host:-1", "host:65536", "::1:80", "unix:", "unix:rel", "a b:80",
		"unix:/" + strings.Repeat("x", 107)} {
		_, err := ParseAddress(in)
		require.Error(t, err, in)
	}
	wild, _ := ParseAddress("0.0.0.0:8100")
	any6, _ := ParseAddress("[::]:8100")
	empty, _ := ParseAddress(":8100")
	named, _ := ParseAddress("localhost:8100")
	require.True(t, wild.wildcard() && any6.wildcard() && empty.wildcard())
	require.False(t, named.wildcard())
	require.True(t, named.overlaps(wild))
	require.False(t, named.overlaps(Address{Network: "tcp", Host: "localhost", Port: 8101}))
}

// unaccounted = "warn" in a zeo storage block makes that storage only warn
// about unaccounted commits; "hold" (the default) holds; anything else is an
// error.
func TestZEOStorageUnaccounted(t *testing.T) {
	src := func(v string) []byte {
		return []byte(fmt.Sprintf(`
zeo "z" {
  listen   = "127.0.0.1:8100"
  upstream = "127.0.0.1:8200"
  storage "1" {
    unaccounted = %q
  }
  storage "2" {}
}
`, v))
	}
	for v, warn := range map[string]bool{"warn": true, "hold": false} {
		cfg, err := Parse(src(v), "t.hcl")
		require.NoError(t, err)
		require.Equal(t, warn, cfg.ZEO[0].Storages[0].WarnUnaccounted, v)
		require.False(t, cfg.ZEO[0].Storages[1].WarnUnaccounted)
		require.Equal(t, warn, cfg.Storages[0].WarnUnaccounted, v)
	}
	_, err := Parse(src("ignore"), "t.hcl")
	require.ErrorContains(t, err, "Invalid unaccounted")
}

func TestBlindTimeout(t *testing.T) {
	zeo := func(attr string) string {
		return "status_file = \"/tmp/s\"\nzeo \"a\" {\n  listen = \"127.0.0.1:8100\"\n  upstream = \"127.0.0.1:8200\"\n" + attr + "  storage \"1\" {}\n}\n"
	}
	for attr, want := range map[string]time.Duration{
		"":                          DefaultBlindTimeout,
		"blind_timeout = \"30s\"\n": 30 * time.Second,
		"blind_timeout = \"0s\"\n":  0,
	} {
		cfg, err := Parse([]byte(zeo(attr)), "x.hcl")
		require.NoError(t, err, attr)
		require.Equal(t, want, cfg.ZEO[0].BlindTimeout, attr)
	}
	_, err := Parse([]byte(zeo("blind_timeout = \"5\"\n")), "x.hcl")
	require.ErrorContains(t, err, "x.hcl:5:17: Invalid duration")
}

func TestJournalMaxSize(t *testing.T) {
	cfg, err := Parse([]byte("status_file = \"s\"\n"), "x.hcl")
	require.NoError(t, err)
	require.Equal(t, int64(DefaultJournalMaxSize), cfg.JournalMaxSize)
	cfg, err = Parse([]byte("status_file = \"s\"\njournal_max_size = \"1MiB\"\n"), "x.hcl")
	require.NoError(t, err)
	require.Equal(t, int64(1<<20), cfg.JournalMaxSize)
	_, err = Parse([]byte("status_file = \"s\"\njournal_max_size = \"1KiB\"\n"), "x.hcl")
	require.ErrorContains(t, err, "x.hcl:2:")
	require.ErrorContains(t, err, "journal_max_size: at least 65536 bytes")
}
