// Package config reads the tidstorage HCL configuration file.
//
// One file describes everything the daemon and the CLI need: global settings,
// the classic line-protocol endpoint, the admin HTTP endpoint, one zeo block
// per proxied ZEO server with its storages, and top-level storages reported
// only by patched Zopes. Parse reports every problem at once, each as
// file:line:col (see Error). docs/config.md is the reference for every
// attribute; keep it in step with defaults.go and raw.go (the schema).
package config

import (
	"net"
	"net/netip"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Config is a loaded, validated configuration. Paths are absolute when the
// config came from Load, and relative to the config file's directory
// otherwise (Parse joins them to filepath.Dir(filename)).
type Config struct {
	File string // the file it was read from, as given to Load/Parse

	StatusFile string // status file (TID log) path; "" = none
	// JournalFile is the tracker's write-ahead journal (crash recovery);
	// default: StatusFile + ".journal"; "" without a status file.
	JournalFile string
	// JournalMaxSize: past this size the journal restarts from an image of
	// the tracker at the next second, busy or not.
	JournalMaxSize int64
	// UnaccountedGrace: how long a commit the storage's history shows and no
	// report accounts for waits for a late report before it is reported.
	UnaccountedGrace time.Duration
	BurstPeriod      time.Duration // min time between two "d" lines
	FullDumpPeriod   time.Duration // max time between two "f" lines
	PIDFile          string        // "" = no pid file
	// BackupMetricsFile is where backup, verify and forget write their
	// outcome in the Prometheus text format (node_exporter's textfile
	// collector), and where status reads the last backup's age; "" = none.
	BackupMetricsFile string
	ClassicTxnTimeout time.Duration // a classic transaction open longer than this ends as lost
	ShutdownTimeout   time.Duration // on TERM, how long a client may stay silent in the middle of a commit before the stop cuts it
	// ClientLabelIdentity adds ZEO's client-label to the client identity
	// used to correlate one transaction's connections (zeoproxy.Config.ClientLabelIdentity).
	ClientLabelIdentity bool

	Log     Log
	Limits  Limits
	Classic Classic
	Admin   Admin

	// Fleet, when set, makes this process a fleet tracker: sidecars report
	// to it; its zeo blocks are watched, not proxied (no listen).
	Fleet *Fleet
	// Tracker, when set, makes this process a sidecar: it proxies its zeo
	// blocks and reports to the tracker at Tracker.Address.
	Tracker *TrackerLink

	// Archive, when set, archives every storage with a data_fs to an
	// object store (serve and `tidstorage archive`).
	Archive *Archive

	// ZEO lists the proxied ZEO servers in file order.
	ZEO []*ZEO
	// Storages lists every storage in file order: those of the zeo blocks and
	// the top-level ones (ZEO == nil). Ids are unique.
	Storages []*Storage

	// Warnings are problems that do not stop the daemon (e.g. no status file).
	Warnings hcl.Diagnostics

	paths   []pathRef // CheckPaths
	tlsRefs []tlsRef  // CheckPaths
}

// Log configures logging (go-hclog).
type Log struct {
	Level  string // trace, debug, info, warn, error
	Format string // "text" or "json"
	File   string // "" = stderr
}

// Limits bound what peers can make tidstorage hold.
type Limits struct {
	MaxFrameSize      int64 // largest ZEO frame (payload bytes) the proxy decodes
	MaxClassicField   int64 // largest field (one line) of the classic protocol, bytes
	MaxClassicCount   int   // largest count of a classic list or dict (BEGIN storages, COMMIT dict)
	MaxZEOConnections int   // client connections over all zeo listeners; 0 = unlimited
	// MaxPreRegisterFrame: largest frame decoded whole from a ZEO client
	// before the server accepted its register (zeoproxy.Config.PreZEOMax).
	MaxPreRegisterFrame int64
	// DecodeBudget bounds the bytes held for decoding over all ZEO
	// connections (zeoproxy.Config.DecodeBudget); 0 = twice MaxFrameSize.
	DecodeBudget int64
	// RegisterTimeout closes a ZEO client connection that has not
	// registered (nor gone blind) that long after it was accepted.
	RegisterTimeout time.Duration
}

// Classic is the classic line-protocol endpoint (patched Zopes, dump tools).
// It is TCP only: patched Zopes know a backend ip and port.
type Classic struct {
	Enabled        bool
	Listen         Address
	Allow          []netip.Prefix // peers allowed to connect (tcp only)
	MaxConnections int            // 0 = unlimited
	// IdleTimeout closes a connection that has sent no command for that
	// long, unless it has reported a transaction (BEGIN, COMMIT or ABORT:
	// a patched Zope's one connection, which must not lose a report);
	// 0 = never.
	IdleTimeout time.Duration
}

// Allowed reports whether a peer at ip may use the classic endpoint.
func (c *Classic) Allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range c.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// IPNets returns Allow as net.IPNet values (what tracker/classic.Options
// takes).
func (c *Classic) IPNets() []*net.IPNet {
	nets := make([]*net.IPNet, len(c.Allow))
	for i, p := range c.Allow {
		nets[i] = &net.IPNet{
			IP:   net.IP(p.Addr().AsSlice()),
			Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
		}
	}
	return nets
}

// Admin is the HTTP endpoint serving /metrics, /status and /healthz.
type Admin struct {
	Enabled bool
	Listen  Address
	// TokenFile holds the bearer token that POST requests need, and that
	// /status needs to show what identifies clients. Default: StatusFile +
	// ".admin-token" (a sidecar: its buffer_file + ".admin-token"); "" when
	// there is neither: POSTs are then refused and /status is redacted.
	TokenFile string
	// AllowedHosts are the Host header values accepted besides the listen
	// address itself: "name:port", or "name" for any port (lower case).
	AllowedHosts []string
}

// AdminTokenSuffix is added to the status file's path (a sidecar's buffer
// file's) to make the default admin token file.
const AdminTokenSuffix = ".admin-token"

// Role is what `tidstorage serve` runs as, decided by the configuration.
type Role int

const (
	RoleAllInOne Role = iota // proxies and tracker in one process (no fleet, no tracker block)
	RoleTracker              // a fleet block: tracker of sidecars, watches its zeo blocks
	RoleSidecar              // a tracker block: proxies, reports to a tracker
)

func (r Role) String() string {
	switch r {
	case RoleTracker:
		return "tracker"
	case RoleSidecar:
		return "sidecar"
	}
	return "all-in-one"
}

// Role says what this configuration runs.
func (c *Config) Role() Role {
	switch {
	case c.Fleet != nil:
		return RoleTracker
	case c.Tracker != nil:
		return RoleSidecar
	}
	return RoleAllInOne
}

// Fleet is the tracker's listener for sidecars' report streams.
type Fleet struct {
	Listen Address
	// TLS: nil = no TLS, only loopback peers are accepted.
	TLS   *TLS
	Range hcl.Range
}

// TrackerLink is a sidecar's link to its tracker.
type TrackerLink struct {
	Address Address
	// Name is this sidecar's stable name (the source of its reports);
	// default: the host name.
	Name string
	// BufferFile is the durable send buffer (a journal of the reports not
	// yet acknowledged); "" = kept in memory only.
	BufferFile string
	// BufferEvents bounds the reports held unacknowledged; past it reports
	// are dropped and a gap is declared.
	BufferEvents int
	// TLS: nil = no TLS, the tracker must be on loopback.
	TLS   *TLS
	Range hcl.Range
}

// TLS holds the files of one TLS end: a side of the fleet link, or a zeo
// block's tls (clients -> tidstorage) or upstream_tls (tidstorage -> ZEO).
type TLS struct {
	CertFile string // upstream_tls: "" when the ZEO server does not authenticate clients
	KeyFile  string
	// CAFile: the CA that signed the server's certificate (a sidecar: the
	// tracker's; upstream_tls: the ZEO server's, "" = the system's roots).
	CAFile string
	// ClientCAFile: the CA that must sign the clients' certificates (a
	// tracker: the sidecars'; a zeo block's tls: the ZODB clients', ""
	// asks for no client certificate).
	ClientCAFile string
	// ServerName: the name the server's certificate must hold (a sidecar:
	// default the address's host, left ""; upstream_tls: the upstream's
	// host when not written).
	ServerName string
}

// ZEO is one proxied ZEO server.
type ZEO struct {
	Name     string  // block label
	Listen   Address // where the proxy accepts ZODB clients; zero on a fleet tracker (watched, not proxied)
	Upstream Address // the real ZEO server
	// ClientAddress is the address clients use to reach the proxy, as written
	// in their zope.conf; default storage ids are built from it. Defaults to
	// Listen.
	ClientAddress Address
	// BlindTimeout: a connection the proxy cannot decode (blind) is closed
	// after that long; 0 never closes it.
	BlindTimeout time.Duration
	// TLS, when set, terminates TLS at Listen: the ZODB clients talk TLS to
	// tidstorage (their zope.conf's <ssl>). Nil: plaintext clients.
	TLS *TLS
	// UpstreamTLS, when set, re-originates TLS to Upstream: the proxy's
	// connections, the history watchers, the bootstrap and in-doubt
	// resolution talk TLS to the ZEO server. Nil: plaintext.
	UpstreamTLS *TLS
	Storages    []*Storage // in file order
	Range       hcl.Range  // the block header, for messages
}

// Storage is one storage: a ZEO storage behind a proxied server, or (ZEO ==
// nil) a storage known only from patched Zopes' classic reports.
type Storage struct {
	ID         string // key in DUMP, the status file and backups
	Name       string // ZEO storage name ("1" by default in ZEO); "" for top-level storages
	ZEO        *ZEO   // nil for top-level storages
	DataFS     string // FileStorage file, for backups; "" = not backed up
	BlobDir    string // blob directory; "" = none
	Repository string // backup repository directory; "" = none
	// WarnUnaccounted: unaccounted commits of this storage are reported but
	// do not hold its publication (unaccounted = "warn").
	WarnUnaccounted bool
	Range           hcl.Range
}

// StorageByID returns the storage with that id, or nil.
func (c *Config) StorageByID(id string) *Storage {
	for _, s := range c.Storages {
		if s.ID == id {
			return s
		}
	}
	return nil
}
