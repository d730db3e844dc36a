package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestArchiveBlock(t *testing.T) {
	cfg, err := Parse([]byte(`
status_file = "/var/lib/tidstorage/status"
archive {
  url        = "s3://tidstorage/site1"
  endpoint   = "http://127.0.0.1:7070"
  region     = "us-east-1"
  path_style = true
  interval   = "500ms"
  retention  = "30d"
  recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
}
`), "/etc/tidstorage.hcl")
	require.NoError(t, err)
	ar := cfg.Archive
	require.NotNil(t, ar)
	require.Equal(t, "s3://tidstorage/site1", ar.URL)
	require.Equal(t, "http://127.0.0.1:7070", ar.Endpoint)
	require.True(t, ar.PathStyle)
	require.Equal(t, 500*time.Millisecond, ar.Interval)
	require.Equal(t, 30*24*time.Hour, ar.Retention)
	require.Len(t, ar.Recipients, 1)

	cfg, err = Parse([]byte("archive {\n  url = \"file:///backup/archive\"\n}\n"), "/etc/t.hcl")
	require.NoError(t, err)
	require.Equal(t, DefaultArchiveInterval, cfg.Archive.Interval)
	require.Equal(t, DefaultArchiveRetention, cfg.Archive.Retention)

	_, err = Parse([]byte(`archive {
  url       = "ftp://x/y"
  endpoint  = "127.0.0.1:7070"
  retention = "a month"
  interval  = "1ms"
  recipients = ["ssh-rsa AAAA"]
}
archive {
  url = "file://relative/dir"
}
`), "t.hcl")
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{`t.hcl:2:15`, `use "s3://BUCKET/PREFIX" or "file:///DIRECTORY"`, `t.hcl:3:15`, "Invalid endpoint",
		`t.hcl:4:15`, `Invalid retention`, `t.hcl:5:15`, "at least 10ms", `t.hcl:6:17`, "not an age public key", "Duplicate archive block"} {
		require.Contains(t, msg, want)
	}
}

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "72h": 72 * time.Hour, "90m": 90 * time.Minute} {
		got, ok := ParseRetention(in)
		require.True(t, ok, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "d", "0d", "-1d", "1.5d", "0s", "month"} {
		_, ok := ParseRetention(bad)
		require.False(t, ok, bad)
	}
}
