package config

import (
	"net/netip"
	"time"
)

// Defaults. docs/config.md repeats them: change both together. The relay's
// (max_frame_size, max_pre_register_frame, register_timeout) are also
// zeoproxy's when its settings are zero; a test there keeps them equal.
const (
	DefaultClassicListen         = "127.0.0.1:9001" // the original daemon's port
	DefaultAdminListen           = "127.0.0.1:9002"
	DefaultSidecarAdminListen    = "127.0.0.1:9003" // a sidecar's: not the tracker's on the same host
	DefaultBurstPeriod           = 30 * time.Second // the original's sample setting
	DefaultFullDumpPeriod        = 5 * time.Minute  // idem
	DefaultClassicTxnTimeout     = 10 * time.Minute
	DefaultShutdownTimeout       = 5 * time.Minute
	DefaultLogLevel              = "info"
	DefaultLogFormat             = "text"
	DefaultMaxFrameSize          = 64 << 20
	DefaultMaxClassicField       = 64 << 10 // tracker/classic's default too
	DefaultJournalMaxSize        = 64 << 20 // tracker.DefaultJournalRotate
	MinJournalMaxSize            = 64 << 10
	DefaultMaxClassicCount       = 100000 // idem
	DefaultMaxZEOConnections     = 4096
	DefaultClassicMaxConnections = 1024
	DefaultClassicIdleTimeout    = 10 * time.Minute
	DefaultBufferEvents          = 1000000 // a sidecar's unacknowledged reports
	DefaultBlindTimeout          = 5 * time.Minute
	DefaultMaxPreRegisterFrame   = 64 << 10
	DefaultRegisterTimeout       = 60 * time.Second
)

// DefaultClassicAllow is the classic allow-list when none is given: loopback.
var DefaultClassicAllow = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

func defaults() *Config {
	classic, _ := ParseAddress(DefaultClassicListen)
	admin, _ := ParseAddress(DefaultAdminListen)
	return &Config{
		BurstPeriod:       DefaultBurstPeriod,
		FullDumpPeriod:    DefaultFullDumpPeriod,
		ClassicTxnTimeout: DefaultClassicTxnTimeout,
		ShutdownTimeout:   DefaultShutdownTimeout,
		JournalMaxSize:    DefaultJournalMaxSize,
		Log:               Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Limits: Limits{
			MaxFrameSize:        DefaultMaxFrameSize,
			MaxClassicField:     DefaultMaxClassicField,
			MaxClassicCount:     DefaultMaxClassicCount,
			MaxZEOConnections:   DefaultMaxZEOConnections,
			MaxPreRegisterFrame: DefaultMaxPreRegisterFrame,
			RegisterTimeout:     DefaultRegisterTimeout,
		},
		Classic: Classic{
			Enabled:        true,
			Listen:         classic,
			Allow:          append([]netip.Prefix(nil), DefaultClassicAllow...),
			MaxConnections: DefaultClassicMaxConnections,
			IdleTimeout:    DefaultClassicIdleTimeout,
		},
		Admin: Admin{Enabled: true, Listen: admin},
	}
}
