package config

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// The role rules of the validation pass, each at the position of what
// breaks it, and the defaults that follow from the role.
func TestRoleRules(t *testing.T) {
	const zeo = "zeo \"z\" {\n  listen   = \"127.0.0.1:8100\"\n  upstream = \"127.0.0.1:8200\"\n  storage \"1\" {}\n}\n"
	for _, c := range []struct {
		name, src string
		errs      []string // "line:col: summary", every error, in order
		warns     []string // substrings of the warnings
		check     func(t *testing.T, cfg *Config)
	}{{
		name: "all-in-one defaults",
		src:  "status_file = \"/s/st\"\n" + zeo,
		check: func(t *testing.T, cfg *Config) {
			require.Equal(t, RoleAllInOne, cfg.Role())
			require.Equal(t, "/s/st.journal", cfg.JournalFile)
			require.Equal(t, "/s/st"+AdminTokenSuffix, cfg.Admin.TokenFile)
			require.Equal(t, DefaultAdminListen, cfg.Admin.Listen.String())
			require.True(t, cfg.Classic.Enabled)
			require.Equal(t, "((('127.0.0.1', 8100),), '1')", cfg.Storages[0].ID)
		},
	}, {
		name: "sidecar: no status file nor journal, no classic endpoint, its own admin port and token",
		src: "status_file = \"/s/st\"\njournal_file = \"/s/j\"\nclassic {}\n" +
			"tracker {\n  address = \"127.0.0.1:9010\"\n  buffer_file = \"/b/buf\"\n}\n" + zeo,
		errs:  []string{"1:15: A sidecar publishes nothing", "2:16: A sidecar publishes nothing"},
		warns: []string{"3:1: warning: Classic endpoint off on a sidecar"},
	}, {
		name:  "sidecar settled",
		src:   "classic {}\ntracker {\n  address = \"127.0.0.1:9010\"\n  buffer_file = \"/b/buf\"\n}\n" + zeo,
		warns: []string{"1:1: warning: Classic endpoint off on a sidecar"},
		check: func(t *testing.T, cfg *Config) {
			require.Equal(t, RoleSidecar, cfg.Role())
			require.Empty(t, cfg.StatusFile)
			require.Empty(t, cfg.JournalFile)
			require.False(t, cfg.Classic.Enabled)
			require.Equal(t, DefaultSidecarAdminListen, cfg.Admin.Listen.String())
			require.Equal(t, "/b/buf"+AdminTokenSuffix, cfg.Admin.TokenFile)
		},
	}, {
		name: "sidecar's tracker off this host needs TLS",
		src:  "tracker {\n  address = \"10.0.0.5:9010\"\n}\n" + zeo,
		errs: []string{"2:13: Fleet link without TLS"},
	}, {
		name: "tracker: zeo blocks are watched, not proxied",
		src: "status_file = \"/s/st\"\nfleet {\n  listen = \"127.0.0.1:9010\"\n}\n" +
			"zeo \"z\" {\n  listen = \"127.0.0.1:8100\"\n  upstream = \"127.0.0.1:8200\"\n  tls {\n    cert_file = \"c\"\n    key_file = \"k\"\n  }\n  storage \"1\" {}\n}\n",
		errs: []string{"6:12: A tracker does not proxy", "8:3: A tracker does not proxy", "12:11: No address for default storage ids"},
	}, {
		name: "tracker settled",
		src: "status_file = \"/s/st\"\nfleet {\n  listen = \"0.0.0.0:9010\"\n}\n" +
			"zeo \"z\" {\n  upstream = \"127.0.0.1:8200\"\n  client_address = \"zeo1:8100\"\n  storage \"1\" {}\n  storage \"2\" {\n    id = \"two\"\n  }\n}\n",
		warns: []string{"3:12: warning: Fleet listener without TLS"},
		check: func(t *testing.T, cfg *Config) {
			require.Equal(t, RoleTracker, cfg.Role())
			require.True(t, cfg.ZEO[0].Listen.IsZero())
			require.Equal(t, "((('zeo1', 8100),), '1')", cfg.Storages[0].ID)
			require.Equal(t, "two", cfg.Storages[1].ID)
		},
	}, {
		name: "a proxy's zeo block needs listen",
		src:  "status_file = \"/s/st\"\nzeo \"z\" {\n  upstream = \"127.0.0.1:8200\"\n  storage \"1\" {}\n}\n",
		errs: []string{"2:9: Missing required argument"},
	}, {
		name: "two roles",
		src:  "fleet {\n  listen = \"127.0.0.1:9010\"\n}\ntracker {\n  address = \"127.0.0.1:9011\"\n}\n",
		errs: []string{"4:1: Two roles"},
	}} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(c.src), "r.hcl")
			if len(c.errs) > 0 {
				require.Error(t, err)
				var cerr *Error
				require.ErrorAs(t, err, &cerr)
				var got []string
				for _, d := range cerr.Diagnostics {
					got = append(got, fmt.Sprintf("%d:%d: %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Summary))
				}
				require.Equal(t, c.errs, got, "%s", err)
				return
			}
			require.NoError(t, err)
			w := warningsOf(cfg)
			for _, want := range c.warns {
				require.Contains(t, w, "r.hcl:"+want)
			}
			if c.check != nil {
				c.check(t, cfg)
			}
		})
	}
}

// Errors of the three steps (the schema, one attribute's value, a check
// across blocks, a role rule) come back together, in file order.
func TestErrorsOfEveryStepAtOnce(t *testing.T) {
	_, err := Parse([]byte(`status_file = "/s/st"
colour = "blue"
burst_period = 30
classic {
  listen = "127.0.0.1:8100"
}
zeo "z" {
  listen   = "127.0.0.1:8100"
  upstream = "127.0.0.1:8100"
  storage "1" {}
}
zeo "z" {
  upstream = "127.0.0.1:8300"
  storage "1" {}
}
storage "((('127.0.0.1', 8100),), '1')" {}
`), "m.hcl")
	require.Error(t, err)
	var cerr *Error
	require.ErrorAs(t, err, &cerr)
	var got []string
	for _, d := range cerr.Diagnostics {
		got = append(got, pos(*d.Subject)+" "+d.Summary)
	}
	require.Equal(t, []string{
		"m.hcl:2:1 Unsupported argument",
		"m.hcl:3:16 Invalid duration",
		"m.hcl:8:14 Duplicate listen address",
		"m.hcl:9:14 Upstream is tidstorage itself",
		"m.hcl:9:14 Upstream is tidstorage itself",
		"m.hcl:12:5 Duplicate zeo name",
		"m.hcl:12:9 Missing required argument",
		"m.hcl:16:9 Duplicate storage id",
	}, got)
}

// "-", which once stood for the default journal or token file, still
// loads as the default, with a warning at the value.
func TestDashIsReadAsTheDefault(t *testing.T) {
	cfg, err := Parse([]byte("status_file = \"/s/st\"\njournal_file = \"-\"\nadmin {\n  token_file = \"-\"\n}\n"), "d.hcl")
	require.NoError(t, err)
	require.Equal(t, "/s/st.journal", cfg.JournalFile)
	require.Equal(t, "/s/st"+AdminTokenSuffix, cfg.Admin.TokenFile)
	w := warningsOf(cfg)
	require.Contains(t, w, `d.hcl:2:16: warning: Deprecated value: journal_file = "-" is read as the default`)
	require.Contains(t, w, `d.hcl:4:16: warning: Deprecated value: token_file = "-" is read as the default`)
	for _, p := range cfg.paths {
		require.NotEqual(t, "-", p.value[len(p.value)-1:], "a dash is not kept as a path: %s", p.value)
	}
}
