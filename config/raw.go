package config

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
)

// The schema: every attribute and block of the file is named here once, in a
// struct tag, as gohcl reads them (docs/config.md documents each one; its
// test walks these types). gohcl fills these raw structs with the
// attributes as written, positions included; decode.go turns each into its
// typed value with a message of ours, validate.go checks what spans fields,
// blocks and roles.
//
// An attribute is a *hcl.Attribute (nil when absent), or a required
// (gohcl makes a field whose type is not a pointer required). A block that
// may appear once is still a slice, tagged once:"true", so that a second
// one is reported by decoder.once with both positions.

// required holds the *hcl.Attribute of an attribute the schema requires;
// attr reads it.
type required interface{}

// attr returns the attribute in a required field (nil when it is missing,
// which the schema has already reported).
func attr(r required) *hcl.Attribute {
	a, _ := r.(*hcl.Attribute)
	return a
}

type rawFile struct {
	StatusFile          *hcl.Attribute `hcl:"status_file,optional"`
	JournalFile         *hcl.Attribute `hcl:"journal_file,optional"`
	JournalMaxSize      *hcl.Attribute `hcl:"journal_max_size,optional"`
	UnaccountedGrace    *hcl.Attribute `hcl:"unaccounted_grace,optional"`
	BurstPeriod         *hcl.Attribute `hcl:"burst_period,optional"`
	FullDumpPeriod      *hcl.Attribute `hcl:"full_dump_period,optional"`
	PIDFile             *hcl.Attribute `hcl:"pid_file,optional"`
	ClassicTxnTimeout   *hcl.Attribute `hcl:"classic_txn_timeout,optional"`
	ShutdownTimeout     *hcl.Attribute `hcl:"shutdown_timeout,optional"`
	ClientLabelIdentity *hcl.Attribute `hcl:"client_label_identity,optional"`
	BackupMetricsFile   *hcl.Attribute `hcl:"backup_metrics_file,optional"`

	Log     []*rawLog        `hcl:"log,block" once:"true"`
	Limits  []*rawLimits     `hcl:"limits,block" once:"true"`
	Classic []*rawClassic    `hcl:"classic,block" once:"true"`
	Admin   []*rawAdmin      `hcl:"admin,block" once:"true"`
	Fleet   []*rawFleet      `hcl:"fleet,block" once:"true"`
	Tracker []*rawTracker    `hcl:"tracker,block" once:"true"`
	Archive []*rawArchive    `hcl:"archive,block" once:"true"`
	ZEO     []*rawZEO        `hcl:"zeo,block"`
	Storage []*rawTopStorage `hcl:"storage,block"`

	Body hcl.Body `hcl:",body"`
}

type rawLog struct {
	Level    *hcl.Attribute `hcl:"level,optional"`
	Format   *hcl.Attribute `hcl:"format,optional"`
	File     *hcl.Attribute `hcl:"file,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}

type rawLimits struct {
	MaxFrameSize        *hcl.Attribute `hcl:"max_frame_size,optional"`
	MaxClassicField     *hcl.Attribute `hcl:"max_classic_field,optional"`
	MaxClassicCount     *hcl.Attribute `hcl:"max_classic_count,optional"`
	MaxZEOConnections   *hcl.Attribute `hcl:"max_zeo_connections,optional"`
	MaxPreRegisterFrame *hcl.Attribute `hcl:"max_pre_register_frame,optional"`
	DecodeBudget        *hcl.Attribute `hcl:"decode_budget,optional"`
	RegisterTimeout     *hcl.Attribute `hcl:"register_timeout,optional"`
	DefRange            hcl.Range      `hcl:",def_range"`
}

type rawClassic struct {
	Enabled        *hcl.Attribute `hcl:"enabled,optional"`
	Listen         *hcl.Attribute `hcl:"listen,optional"`
	Allow          *hcl.Attribute `hcl:"allow,optional"`
	MaxConnections *hcl.Attribute `hcl:"max_connections,optional"`
	IdleTimeout    *hcl.Attribute `hcl:"idle_timeout,optional"`
	DefRange       hcl.Range      `hcl:",def_range"`
}

type rawAdmin struct {
	Enabled      *hcl.Attribute `hcl:"enabled,optional"`
	Listen       *hcl.Attribute `hcl:"listen,optional"`
	TokenFile    *hcl.Attribute `hcl:"token_file,optional"`
	AllowedHosts *hcl.Attribute `hcl:"allowed_hosts,optional"`
	DefRange     hcl.Range      `hcl:",def_range"`
}

type rawFleet struct {
	Listen   required       `hcl:"listen"`
	TLS      []*rawFleetTLS `hcl:"tls,block" once:"true"`
	DefRange hcl.Range      `hcl:",def_range"`
}

type rawFleetTLS struct {
	CertFile     required  `hcl:"cert_file"`
	KeyFile      required  `hcl:"key_file"`
	ClientCAFile required  `hcl:"client_ca_file"`
	DefRange     hcl.Range `hcl:",def_range"`
}

type rawTracker struct {
	Address      required         `hcl:"address"`
	Name         *hcl.Attribute   `hcl:"name,optional"`
	BufferFile   *hcl.Attribute   `hcl:"buffer_file,optional"`
	BufferEvents *hcl.Attribute   `hcl:"buffer_events,optional"`
	TLS          []*rawTrackerTLS `hcl:"tls,block" once:"true"`
	DefRange     hcl.Range        `hcl:",def_range"`
}

type rawTrackerTLS struct {
	CertFile   required       `hcl:"cert_file"`
	KeyFile    required       `hcl:"key_file"`
	CAFile     required       `hcl:"ca_file"`
	ServerName *hcl.Attribute `hcl:"server_name,optional"`
	DefRange   hcl.Range      `hcl:",def_range"`
}

type rawArchive struct {
	URL        required       `hcl:"url"`
	Endpoint   *hcl.Attribute `hcl:"endpoint,optional"`
	Region     *hcl.Attribute `hcl:"region,optional"`
	PathStyle  *hcl.Attribute `hcl:"path_style,optional"`
	Interval   *hcl.Attribute `hcl:"interval,optional"`
	Retention  *hcl.Attribute `hcl:"retention,optional"`
	Recipients *hcl.Attribute `hcl:"recipients,optional"`
	DefRange   hcl.Range      `hcl:",def_range"`
}

type rawZEO struct {
	Name          string            `hcl:"name,label"`
	NameRange     hcl.Range         `hcl:"name,label_range"`
	Listen        *hcl.Attribute    `hcl:"listen,optional"`
	Upstream      required          `hcl:"upstream"`
	ClientAddress *hcl.Attribute    `hcl:"client_address,optional"`
	BlindTimeout  *hcl.Attribute    `hcl:"blind_timeout,optional"`
	Storage       []*rawZEOStorage  `hcl:"storage,block"`
	TLS           []*rawZEOTLS      `hcl:"tls,block" once:"true"`
	UpstreamTLS   []*rawUpstreamTLS `hcl:"upstream_tls,block" once:"true"`
	DefRange      hcl.Range         `hcl:",def_range"`
	Body          hcl.Body          `hcl:",body"`
}

// rawZEOStorage is a storage of a zeo block, named by its ZEO storage name.
type rawZEOStorage struct {
	Name        string         `hcl:"name,label"`
	NameRange   hcl.Range      `hcl:"name,label_range"`
	ID          *hcl.Attribute `hcl:"id,optional"`
	DataFS      *hcl.Attribute `hcl:"data_fs,optional"`
	BlobDir     *hcl.Attribute `hcl:"blob_dir,optional"`
	Repository  *hcl.Attribute `hcl:"repository,optional"`
	Unaccounted *hcl.Attribute `hcl:"unaccounted,optional"`
}

// rawTopStorage is a top-level storage, named by its id.
type rawTopStorage struct {
	ID         string         `hcl:"id,label"`
	IDRange    hcl.Range      `hcl:"id,label_range"`
	DataFS     *hcl.Attribute `hcl:"data_fs,optional"`
	BlobDir    *hcl.Attribute `hcl:"blob_dir,optional"`
	Repository *hcl.Attribute `hcl:"repository,optional"`
}

type rawZEOTLS struct {
	CertFile     required       `hcl:"cert_file"`
	KeyFile      required       `hcl:"key_file"`
	ClientCAFile *hcl.Attribute `hcl:"client_ca_file,optional"`
	DefRange     hcl.Range      `hcl:",def_range"`
}

type rawUpstreamTLS struct {
	CAFile     *hcl.Attribute `hcl:"ca_file,optional"`
	CertFile   *hcl.Attribute `hcl:"cert_file,optional"`
	KeyFile    *hcl.Attribute `hcl:"key_file,optional"`
	ServerName *hcl.Attribute `hcl:"server_name,optional"`
	DefRange   hcl.Range      `hcl:",def_range"`
}

// schemas lists the schema of every raw type, for the documentation test.
func schemas() []*hcl.BodySchema {
	var out []*hcl.BodySchema
	for _, v := range []any{
		rawFile{}, rawLog{}, rawLimits{}, rawClassic{}, rawAdmin{}, rawFleet{}, rawFleetTLS{}, rawTracker{},
		rawTrackerTLS{}, rawArchive{}, rawZEO{}, rawZEOStorage{}, rawTopStorage{}, rawZEOTLS{}, rawUpstreamTLS{},
	} {
		s, _ := gohcl.ImpliedBodySchema(v)
		out = append(out, s)
	}
	return out
}
