package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/classic"
)

// bin is the tidstorage binary built once by TestMain: the tests run it as
// an operator would.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tidstorage-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "tidstorage")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// runIn runs the binary in dir ("" = this package's directory).
func runIn(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{code, stdout.String(), stderr.String()}
}

func run(t *testing.T, args ...string) result { t.Helper(); return runIn(t, "", args...) }

func TestHelpListsEveryCommand(t *testing.T) {
	r := run(t, "help")
	require.Equal(t, 0, r.code, r.stderr)
	for _, cmd := range commands {
		require.Contains(t, r.stdout, "  "+cmd.name+" ", "help must list %q", cmd.name)
	}
	require.Equal(t, r, run(t, "--help"))

	r = run(t)
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "Commands:")

	r = run(t, "frobnicate")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, `unknown command "frobnicate"`)

	r = run(t, "config")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "config check")
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, cmd := range commands {
		t.Run(cmd.name, func(t *testing.T) {
			args := append(strings.Fields(cmd.name), "--help")
			r := run(t, args...)
			require.Equal(t, 0, r.code, r.stderr)
			require.True(t, strings.HasPrefix(r.stdout, "Usage: tidstorage "+cmd.name), r.stdout)
			if strings.Contains(cmd.args, "-c FILE") {
				require.Contains(t, r.stdout, "-c FILE")
				require.Contains(t, r.stdout, "-config FILE")
			}
			// help COMMAND is the same text.
			h := run(t, append([]string{"help"}, strings.Fields(cmd.name)...)...)
			require.Equal(t, r, h)

			bad := run(t, append(strings.Fields(cmd.name), "--no-such-flag")...)
			require.Equal(t, 2, bad.code)
			require.Contains(t, bad.stderr, "flag provided but not defined: -no-such-flag")
		})
	}
}

// The version comes from Go's build information: a binary built from a git
// checkout names its module version (a pseudo-version with the commit) and
// the commit; "dev" only when Go recorded nothing (go build -buildvcs=false,
// or a git worktree, whose .git is a file Go does not follow).
func TestVersion(t *testing.T) {
	r := run(t, "version")
	require.Equal(t, 0, r.code)
	require.True(t, strings.HasPrefix(r.stdout, "tidstorage "), r.stdout)
	info, err := exec.Command("go", "version", "-m", bin).Output()
	require.NoError(t, err)
	if m := regexp.MustCompile(`\tbuild\tvcs.revision=([0-9a-f]{12})`).FindSubmatch(info); m != nil {
		require.NotContains(t, r.stdout, "tidstorage dev ")
		require.Contains(t, r.stdout, "(commit "+string(m[1]), r.stdout)
	} else {
		require.True(t, strings.HasPrefix(r.stdout, "tidstorage dev ("), "no VCS information recorded:\n%s\n%s", r.stdout, info)
	}

	for _, c := range []struct {
		main     string
		settings map[string]string
		given    string
		want     string
	}{
		{"v0.0.0-20261124120000-0123456789ab+dirty", map[string]string{"vcs.revision": "0123456789abcdef", "vcs.modified": "true"}, "dev", "v0.0.0-20261124120000-0123456789ab+dirty"},
		{"v1.2.0", map[string]string{"vcs.revision": "0123456789abcdef"}, "dev", "v1.2.0"},
		{"(devel)", map[string]string{"vcs.revision": "0123456789abcdef", "vcs.modified": "true"}, "dev", "devel-0123456789ab+dirty"},
		{"(devel)", nil, "dev", "dev"},
		{"v1.2.0", nil, "v9.9.9", "v9.9.9"},
	} {
		bi := &debug.BuildInfo{Main: debug.Module{Version: c.main}}
		for k, v := range c.settings {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v})
		}
		got, rev, _ := fromBuildInfo(bi, c.given)
		require.Equal(t, c.want, got, c)
		require.Equal(t, c.settings["vcs.revision"], rev)
	}
}

func TestServeRefusesBadStarts(t *testing.T) {
	r := run(t, "serve")
	require.Equal(t, 2, r.code, "no config is a usage error")
	require.Contains(t, r.stderr, "-c FILE")
	r = run(t, "serve", "-c", "testdata-missing.hcl")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "testdata-missing.hcl")
	r = run(t, "serve", "-c", "../../config/testdata/bad_address.hcl")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "bad_address.hcl:", "errors name file:line:col")

	// An admin token file that others may read stops the start, like ssh
	// with a private key; nothing is created beside the status file.
	dir := t.TempDir()
	tok := filepath.Join(dir, "status.admin-token")
	require.NoError(t, os.WriteFile(tok, []byte(strings.Repeat("a", 64)+"\n"), 0o644))
	cfg := filepath.Join(dir, "t.hcl")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("status_file = %q\nclassic {\n  listen = \"127.0.0.1:0\"\n}\nadmin {\n  listen = \"127.0.0.1:0\"\n}\n",
		filepath.Join(dir, "status"))), 0o644))
	r = run(t, "serve", "-c", cfg)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "tidstorage serve: admin token file "+tok+" is accessible by group or others (mode 0644)")
	_, err := os.Stat(filepath.Join(dir, "status"))
	require.ErrorIs(t, err, os.ErrNotExist, "refused before anything started")
}

func TestConfigCheckAcceptsTheExample(t *testing.T) {
	r := run(t, "config", "check", "-c", "../../examples/tidstorage.hcl")
	require.Equal(t, 0, r.code, r.stderr)
	require.True(t, strings.HasPrefix(r.stdout, "OK ../../examples/tidstorage.hcl, with 7 warnings (printed on stderr)\n"), r.stdout)
	// The example's paths (/var/lib/tidstorage, /srv/zeo1, ...) do not
	// exist here: config check says so, and says nothing else.
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if l != "" {
			require.Contains(t, l, "does not exist", "the example has no other warning")
		}
	}
	require.Contains(t, r.stderr, `tidstorage.hcl:56:18: warning: Path does not exist: data_fs "/srv/zeo1/var/Data.fs" does not exist`)
	for _, want := range []string{
		"127.0.0.1:9001", "127.0.0.1:9002", `zeo "main"`, `zeo "sessions"`, "storages: 4",
		"main-1 = ((('zeo1.example.com', 8100),), '1')", "main-catalog = ((('zeo1.example.com', 8100),), 'catalog')",
	} {
		require.Contains(t, r.stdout, want)
	}
	q := run(t, "config", "check", "--config", "../../examples/tidstorage.hcl", "-q")
	require.Equal(t, 0, q.code)
	require.Empty(t, q.stdout)
}

// Every bad config of config/testdata fails with exit 1 and exactly the
// messages of its golden file, then a count.
func TestConfigCheckReportsErrors(t *testing.T) {
	files, err := filepath.Glob("../../config/testdata/bad_*.hcl")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		rel := filepath.Join("testdata", filepath.Base(file))
		t.Run(filepath.Base(file), func(t *testing.T) {
			golden, err := os.ReadFile(strings.TrimSuffix(file, ".hcl") + ".golden")
			require.NoError(t, err)
			n := strings.Count(string(golden), "\n")
			r := runIn(t, "../../config", "config", "check", "-c", rel)
			require.Equal(t, 1, r.code)
			require.Empty(t, r.stdout)
			want := fmt.Sprintf("%s%s: %d error%s\n", golden, rel, n, plural(n))
			require.Equal(t, want, r.stderr)
		})
	}

	r := run(t, "config", "check", "-c", "no-such.hcl")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "no-such.hcl: no such file or directory")

	r = run(t, "config", "check")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "missing -c FILE")
}

func TestConfigCheckWarnings(t *testing.T) {
	r := runIn(t, "../../config", "config", "check", "-c", "testdata/ok_no_status_file.hcl")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stderr, "testdata/ok_no_status_file.hcl:1:1: warning: No status file")
	require.Contains(t, r.stdout, "classic      off")
}

func TestTIDConversions(t *testing.T) {
	// Vector from ZODB: TimeStamp(p64(272351243011436356)).
	want := "int     272351243011436356\n" +
		"hex     03c7960335d52f44\n" +
		"base64  A8eWAzXVL0Q=\n" +
		"time    2018-05-16T21:55:12.61705136Z\n" +
		"zodb    2018-05-16 21:55:12.617051 UTC\n"
	for _, in := range []string{"272351243011436356", "03c7960335d52f44", "A8eWAzXVL0Q=", "2018-05-16T21:55:12.61705136Z"} {
		r := run(t, "tid", in)
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, want, r.stdout, in)
	}

	// A time as ZODB prints it: TimeStamp(2018, 5, 16, 21, 55, 12.617051).
	r := run(t, "tid", "--from", "time", "2018-05-16 21:55:12.617051")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "int     272351243011436330\n")

	r = run(t, "tid", "--json", "0x10", "1000000000000000")
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2)
	var info tidInfo
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &info))
	require.Equal(t, uint64(1)<<60, info.Int, "16 digits are hex")
	r = run(t, "tid", "--from", "int", "--json", "1000000000000000")
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &info))
	require.Equal(t, uint64(1e15), info.Int)

	r = run(t, "tid", "12", "nonsense")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "int     12\n", "good arguments are still converted")
	require.Contains(t, r.stderr, `"nonsense" is not`)

	// Flags may follow arguments; "--" ends flags.
	r = run(t, "tid", "0x10", "--json", "0x11")
	require.Equal(t, 0, r.code, r.stderr)
	require.Len(t, strings.Split(strings.TrimSpace(r.stdout), "\n"), 2)
	require.Contains(t, r.stdout, `"int":17`)
	r = run(t, "tid", "--", "0x10", "--json")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "int     16\n")
	require.Contains(t, r.stderr, `"--json" is not`)

	require.Equal(t, 2, run(t, "tid").code)
	require.Equal(t, 2, run(t, "tid", "--from", "octal", "1").code)
}

// fixedBackend is a classic.Backend with a fixed published point.
type fixedBackend struct {
	point   map[string]txn.TID
	booting bool
}

func (fixedBackend) ClassicBegin(string, []string)                      {}
func (fixedBackend) ClassicCommit(string, map[string]txn.TID, []string) {}
func (fixedBackend) ClassicAbort(string)                                {}
func (b fixedBackend) Dump() map[string]txn.TID                         { return b.point }
func (b fixedBackend) Bootstrapped() bool                               { return !b.booting }

func startClassic(t *testing.T, b fixedBackend) string {
	srv := classic.NewServer(b, classic.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func TestDump(t *testing.T) {
	point := map[string]txn.TID{
		"((('localhost', 8100),), '1')": 272351243011436356,
		"((('localhost', 8200),), '2')": 272351243011436360,
	}
	addr := startClassic(t, fixedBackend{point: point})

	r := run(t, "dump", "-a", addr)
	require.Equal(t, 0, r.code, r.stderr)
	require.Empty(t, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2)
	require.Equal(t, []string{"((('localhost',", "8100),),", "'1')", "272351243011436356", "03c7960335d52f44", "2018-05-16T21:55:12.61705136Z"}, strings.Fields(lines[0]))
	require.True(t, strings.HasPrefix(lines[1], "((('localhost', 8200),), '2')"), lines[1])

	// --json, and the address taken from a config file.
	cfg := filepath.Join(t.TempDir(), "t.hcl")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("classic {\n  listen = %q\n}\n", addr)), 0o644))
	r = run(t, "dump", "-c", cfg, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var out struct {
		Bootstrapped bool
		Storages     map[string]tidInfo
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.True(t, out.Bootstrapped)
	require.Len(t, out.Storages, 2)
	require.Equal(t, uint64(272351243011436360), out.Storages["((('localhost', 8200),), '2')"].Int)
	require.Equal(t, "A8eWAzXVL0g=", out.Storages["((('localhost', 8200),), '2')"].Base64)
}

// TID 0 (a storage without a transaction) is "empty", as status says, not
// 1900-01-01; with -c a storage whose label is another name shows both.
func TestDumpEmptyAndNames(t *testing.T) {
	addr := startClassic(t, fixedBackend{point: map[string]txn.TID{"((('localhost', 8100),), '1')": 0, "main": 272351243011436356}})
	cfg := filepath.Join(t.TempDir(), "t.hcl")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`classic {
  listen = %q
}
zeo "z" {
  listen   = "localhost:8100"
  upstream = "localhost:8200"
  storage "1" {}
}
zeo "m" {
  listen   = "localhost:8101"
  upstream = "localhost:8201"
  storage "1" { id = "main" }
}
`, addr)), 0o644))
	r := run(t, "dump", "-c", cfg)
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2)
	require.Equal(t, []string{"z-1", "=", "((('localhost',", "8100),),", "'1')", "0", "0000000000000000", "empty"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"main", "272351243011436356", "03c7960335d52f44", "2018-05-16T21:55:12.61705136Z"}, strings.Fields(lines[1]),
		"an id that is a plain name is the storage's only name")
}

func TestDumpBeforeBootstrap(t *testing.T) {
	addr := startClassic(t, fixedBackend{point: map[string]txn.TID{}, booting: true})
	r := run(t, "dump", "-a", addr)
	require.Equal(t, 0, r.code, r.stderr)
	require.Empty(t, r.stdout)
	require.Contains(t, r.stderr, "has not finished its bootstrap")
	r = run(t, "dump", "-a", addr, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	require.JSONEq(t, `{"bootstrapped": false, "storages": {}}`, r.stdout)
}

func TestDumpErrors(t *testing.T) {
	// A port nobody listens on: take one and close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	r := run(t, "dump", "-a", addr, "--timeout", "2s")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "tidstorage dump: cannot reach a classic endpoint at "+addr+" (is 'tidstorage serve' running there? give -a HOST:PORT or -c FILE): connection refused")

	// Without -a or -c: the default classic address (README's "tidstorage
	// dump"), which may or may not answer on this machine.
	r = run(t, "dump", "--timeout", "2s")
	require.NotEqual(t, 2, r.code, "not a usage error: %s", r.stderr)
	if r.code != 0 {
		require.Contains(t, r.stderr, "at 127.0.0.1:9001 ")
	}
	require.Equal(t, 2, run(t, "dump", "-a", addr, "-c", "x.hcl").code)
	r = run(t, "dump", "-c", "../../config/testdata/bad_cidr.hcl")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "bad_cidr.hcl:3:27: Invalid CIDR")
}

func TestVersionFlag(t *testing.T) {
	v := run(t, "version")
	for _, arg := range []string{"--version", "-version"} {
		r := run(t, arg)
		require.Equal(t, 0, r.code, arg)
		require.Equal(t, v.stdout, r.stdout, arg)
	}
}

// A sidecar has no status file by design: config check shows its send
// buffer instead, and warns about nothing of the kind.
func TestConfigCheckSidecar(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "sidecar.hcl")
	require.NoError(t, os.WriteFile(cfg, []byte(`tracker {
  address     = "127.0.0.1:9010"
  name        = "zope1"
  buffer_file = "/tmp/sidecar.buffer"
}
zeo "main" {
  listen   = "127.0.0.1:8100"
  upstream = "127.0.0.1:8200"
  storage "1" { id = "main" }
}
`), 0o644))
	r := run(t, "config", "check", "-c", cfg)
	require.Equal(t, 0, r.code, r.stderr)
	require.Empty(t, r.stderr)
	require.True(t, strings.HasPrefix(r.stdout, "OK "+cfg+"\n"), r.stdout)
	require.Regexp(t, `\nsend buffer +/tmp/sidecar.buffer +up to 1000000 reports\n`, r.stdout)
	require.NotContains(t, r.stdout, "status file")
	require.Regexp(t, `\n  main +zeo "main" storage "1" *\n`, r.stdout, "an id that is a plain name is the storage's one name")
}
