package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func warningsOf(cfg *Config) string {
	var b strings.Builder
	for _, w := range cfg.Warnings {
		b.WriteString(FormatDiagnostic(w) + "\n")
	}
	return b.String()
}

// The admin block's token file and allowed hosts, the classic idle timeout.
func TestAdminAndClassicSecurityAttributes(t *testing.T) {
	cfg, err := Parse([]byte(`status_file = "/var/lib/t/status"
classic {
  idle_timeout = "90s"
}
admin {
  allowed_hosts = ["Backup.Example:9000", "metrics.example"]
}
`), "/etc/t.hcl")
	require.NoError(t, err)
	require.Equal(t, "/var/lib/t/status.admin-token", cfg.Admin.TokenFile, "default: beside the status file")
	require.Equal(t, []string{"backup.example:9000", "metrics.example"}, cfg.Admin.AllowedHosts)
	require.Equal(t, 90*time.Second, cfg.Classic.IdleTimeout)
	require.Empty(t, cfg.Warnings)

	cfg, err = Parse([]byte("status_file = \"/s\"\nadmin {\n  token_file = \"tok\"\n}\n"), "/etc/t.hcl")
	require.NoError(t, err)
	require.Equal(t, "/etc/tok", cfg.Admin.TokenFile, "relative to the config file")
	require.Equal(t, DefaultClassicIdleTimeout, cfg.Classic.IdleTimeout)

	// No status file, no token_file: warned, no default.
	cfg, err = Parse([]byte("classic {\n  idle_timeout = \"0s\"\n}\n"), "/etc/t.hcl")
	require.NoError(t, err)
	require.Empty(t, cfg.Admin.TokenFile)
	require.Zero(t, cfg.Classic.IdleTimeout)
	require.Contains(t, warningsOf(cfg), "No admin token file")

	_, err = Parse([]byte(`admin {
  allowed_hosts = ["http://x:1", "", "x:0", "x:", 3, "ok:1"]
}
classic {
  idle_timeout = 30
}
`), "t.hcl")
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, `t.hcl:2:20: Invalid host: allowed_hosts entry "http://x:1": not a host name`)
	require.Contains(t, msg, `t.hcl:2:34: Invalid host: allowed_hosts entry "": empty`)
	require.Contains(t, msg, `t.hcl:2:38: Invalid host: allowed_hosts entry "x:0": the port is not a number`)
	require.Contains(t, msg, `t.hcl:2:45: Invalid host: allowed_hosts entry "x:": the port is not a number`)
	require.Contains(t, msg, `t.hcl:2:51: Invalid host: allowed_hosts entries must be strings`)
	require.Contains(t, msg, `t.hcl:5:18: Invalid duration`)
	require.Equal(t, 6, strings.Count(msg, "\n")+1, msg)
}

// Endpoints off loopback are warned about, at the listen attribute.
func TestExposedListenersWarn(t *testing.T) {
	cfg, err := Parse([]byte(`status_file = "/s"
classic {
  listen = "0.0.0.0:9001"
}
admin {
  listen = "10.1.2.3:9002"
}
`), "t.hcl")
	require.NoError(t, err)
	w := warningsOf(cfg)
	require.Contains(t, w, "t.hcl:3:12: warning: Classic endpoint off loopback: 0.0.0.0:9001 is reachable from other hosts, and the classic protocol has no authentication at all")
	require.Contains(t, w, "t.hcl:6:12: warning: Admin endpoint off loopback: 10.1.2.3:9002 is reachable from other hosts over plain HTTP")
	require.Contains(t, w, "SSH tunnel")

	for _, host := range []string{"127.0.0.1", "localhost", "[::1]", "127.0.0.2"} {
		cfg, err := Parse([]byte("status_file = \"/s\"\nclassic {\n  listen = \""+host+":9001\"\n}\nadmin {\n  listen = \""+host+":9002\"\n}\n"), "t.hcl")
		require.NoError(t, err, host)
		require.Empty(t, cfg.Warnings, host)
	}
	// [::] and a name are off loopback too; a disabled endpoint is not warned.
	cfg, err = Parse([]byte("status_file = \"/s\"\nclassic {\n  listen = \"[::]:9001\"\n}\nadmin {\n  enabled = false\n  listen = \"zeo1.example:9002\"\n}\n"), "t.hcl")
	require.NoError(t, err)
	w = warningsOf(cfg)
	require.Contains(t, w, "Classic endpoint off loopback: [::]:9001")
	require.NotContains(t, w, "Admin endpoint")
}
