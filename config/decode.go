package config

import (
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"

	"github.com/tidstorage/tidstorage/internal/tlsfiles"
)

// Load reads and validates the configuration file at path. Relative paths in
// the file are taken relative to the file's directory and made absolute.
// Configuration errors are returned as *Error.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parse(src, path, abs)
}

// Parse parses and validates src; filename is used in messages and its
// directory as the base of relative paths. Configuration errors are returned
// as *Error listing all of them.
func Parse(src []byte, filename string) (*Config, error) {
	return parse(src, filename, filepath.Dir(filename))
}

func parse(src []byte, filename, base string) (*Config, error) {
	file, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() {
		sortDiagnostics(diags)
		return nil, &Error{Diagnostics: diags}
	}
	d := &decoder{base: base}
	cfg := d.decodeFile(file.Body)
	cfg.File = filename
	d.validate(cfg)
	sortDiagnostics(d.diags)
	var errs, warns hcl.Diagnostics
	for _, diag := range d.diags {
		if diag.Severity == hcl.DiagError {
			errs = append(errs, diag)
		} else {
			warns = append(warns, diag)
		}
	}
	if len(errs) > 0 {
		return nil, &Error{Diagnostics: errs}
	}
	cfg.Warnings = warns
	cfg.paths = d.paths
	cfg.tlsRefs = d.tlsRefs
	return cfg, nil
}

var rootSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "status_file"},
		{Name: "journal_file"},
		{Name: "journal_max_size"},
		{Name: "unaccounted_grace"},
		{Name: "burst_period"},
		{Name: "full_dump_period"},
		{Name: "pid_file"},
		{Name: "classic_txn_timeout"},
		{Name: "shutdown_timeout"},
		{Name: "client_label_identity"},
		{Name: "backup_metrics_file"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "log"},
		{Type: "limits"},
		{Type: "classic"},
		{Type: "admin"},
		{Type: "fleet"},
		{Type: "tracker"},
		{Type: "archive"},
		{Type: "zeo", LabelNames: []string{"name"}},
		{Type: "storage", LabelNames: []string{"id"}},
	},
}

var logSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "level"}, {Name: "format"}, {Name: "file"},
}}

var limitsSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "max_frame_size"}, {Name: "max_classic_field"}, {Name: "max_classic_count"},
	{Name: "max_zeo_connections"}, {Name: "max_pre_register_frame"}, {Name: "decode_budget"}, {Name: "register_timeout"},
}}

var classicSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "enabled"}, {Name: "listen"}, {Name: "allow"}, {Name: "max_connections"}, {Name: "idle_timeout"},
}}

var adminSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "enabled"}, {Name: "listen"}, {Name: "token_file"}, {Name: "allowed_hosts"},
}}

var fleetSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "listen", Required: true}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "tls"}},
}

var trackerSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "address", Required: true}, {Name: "name"}, {Name: "buffer_file"}, {Name: "buffer_events"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "tls"}},
}

var fleetTLSSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "cert_file", Required: true}, {Name: "key_file", Required: true}, {Name: "client_ca_file", Required: true},
}}

var trackerTLSSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "cert_file", Required: true}, {Name: "key_file", Required: true}, {Name: "ca_file", Required: true},
	{Name: "server_name"},
}}

var zeoSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "listen"},
		{Name: "upstream", Required: true},
		{Name: "client_address"},
		{Name: "blind_timeout"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "storage", LabelNames: []string{"name"}}, {Type: "tls"}, {Type: "upstream_tls"}},
}

var zeoStorageSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "id"}, {Name: "data_fs"}, {Name: "blob_dir"}, {Name: "repository"}, {Name: "unaccounted"},
}}

// Top-level storages are named by their id: no id attribute.
var storageSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "data_fs"}, {Name: "blob_dir"}, {Name: "repository"},
}}

// decoder accumulates diagnostics so that one run reports every error.
type decoder struct {
	base  string
	diags hcl.Diagnostics
	// explicitID marks zeo storages whose id was written, not derived.
	explicitID map[*Storage]bool
	// attrs keeps where each address was written, for cross-checks.
	attrs   map[*Address]*hcl.Attribute
	role    Role
	paths   []pathRef // every path attribute, for Config.CheckPaths
	tlsRefs []tlsRef  // every TLS block, for Config.CheckPaths
}

func hasBlock(blocks []*hcl.Block, kind string) bool {
	for _, b := range blocks {
		if b.Type == kind {
			return true
		}
	}
	return false
}

func (d *decoder) errorf(rng hcl.Range, summary, format string, args ...any) {
	r := rng
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: &r,
	})
}

func (d *decoder) warnf(rng hcl.Range, summary, format string, args ...any) {
	r := rng
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: &r,
	})
}

func (d *decoder) content(body hcl.Body, schema *hcl.BodySchema) *hcl.BodyContent {
	c, diags := body.Content(schema)
	d.diags = append(d.diags, diags...)
	return c
}

// once reports a second block of a kind that may appear only once.
func (d *decoder) once(blocks []*hcl.Block, kind string) *hcl.Block {
	var first *hcl.Block
	for _, b := range blocks {
		if b.Type != kind {
			continue
		}
		if first != nil {
			d.errorf(b.DefRange, "Duplicate "+kind+" block",
				"only one %s block is allowed; the first one is at %s", kind, pos(first.DefRange))
			continue
		}
		first = b
	}
	return first
}

func pos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

func (d *decoder) decodeFile(body hcl.Body) *Config {
	cfg := defaults()
	d.explicitID = map[*Storage]bool{}
	d.attrs = map[*Address]*hcl.Attribute{}
	c := d.content(body, rootSchema)
	if c == nil {
		return cfg
	}
	a := c.Attributes
	d.path(a["status_file"], &cfg.StatusFile)
	cfg.JournalFile = "-"
	if attr := a["journal_file"]; attr != nil {
		d.path(attr, &cfg.JournalFile)
	}
	if cfg.JournalFile == "-" {
		cfg.JournalFile = ""
		if cfg.StatusFile != "" {
			cfg.JournalFile = cfg.StatusFile + ".journal"
		}
	}
	if attr := a["journal_max_size"]; attr != nil {
		d.size(attr, &cfg.JournalMaxSize)
		if cfg.JournalMaxSize < MinJournalMaxSize {
			d.errorf(attr.Expr.Range(), "Invalid size", "journal_max_size: at least %d bytes", MinJournalMaxSize)
		}
	}
	d.duration(a["unaccounted_grace"], &cfg.UnaccountedGrace, 0)
	d.path(a["pid_file"], &cfg.PIDFile)
	d.path(a["backup_metrics_file"], &cfg.BackupMetricsFile)
	d.duration(a["burst_period"], &cfg.BurstPeriod, 0)
	d.duration(a["full_dump_period"], &cfg.FullDumpPeriod, 0)
	d.duration(a["classic_txn_timeout"], &cfg.ClassicTxnTimeout, time.Second)
	d.duration(a["shutdown_timeout"], &cfg.ShutdownTimeout, 0)
	d.boolean(a["client_label_identity"], &cfg.ClientLabelIdentity)
	if cfg.StatusFile == "" && !hasBlock(c.Blocks, "tracker") {
		d.warnf(body.MissingItemRange(), "No status file",
			"status_file is not set: published points are not written to disk, so backups can only use DUMP")
	}

	if b := d.once(c.Blocks, "log"); b != nil {
		d.decodeLog(b, &cfg.Log)
	}
	if b := d.once(c.Blocks, "limits"); b != nil {
		d.decodeLimits(b, &cfg.Limits)
	}
	if b := d.once(c.Blocks, "classic"); b != nil {
		d.decodeClassic(b, &cfg.Classic)
	}
	adminBlock := d.once(c.Blocks, "admin")
	if adminBlock != nil {
		d.decodeAdmin(adminBlock, &cfg.Admin)
	}
	if b := d.once(c.Blocks, "fleet"); b != nil {
		cfg.Fleet = d.decodeFleet(b)
	}
	if b := d.once(c.Blocks, "tracker"); b != nil {
		cfg.Tracker = d.decodeTrackerLink(b)
	}
	if b := d.once(c.Blocks, "archive"); b != nil {
		cfg.Archive = d.decodeArchive(b)
	}
	d.defaultTokenFile(cfg, adminBlock, body)
	if cfg.Fleet != nil && cfg.Tracker != nil {
		d.errorf(cfg.Tracker.Range, "Two roles",
			"a fleet block (this process is the tracker, at %s) and a tracker block (this process is a sidecar) exclude each other",
			pos(cfg.Fleet.Range))
	}
	d.role = cfg.Role()
	if d.role == RoleSidecar && (adminBlock == nil || d.content(adminBlock.Body, adminSchema).Attributes["listen"] == nil) {
		// Its own default, so that a tracker and a sidecar on one host (a
		// first try, a tracker host that also runs Zope) do not collide.
		cfg.Admin.Listen, _ = ParseAddress(DefaultSidecarAdminListen)
	}
	if d.role == RoleSidecar {
		for _, name := range []string{"status_file", "journal_file"} {
			if attr := a[name]; attr != nil {
				d.errorf(attr.Expr.Range(), "A sidecar publishes nothing",
					"this configuration has a tracker block: it is a sidecar, which reports to the tracker and keeps no %s (its send buffer is tracker { buffer_file })", name)
			}
		}
		cfg.StatusFile, cfg.JournalFile = "", ""
		if b := d.once(c.Blocks, "classic"); b != nil {
			d.warnf(b.DefRange, "Classic endpoint off on a sidecar",
				"a sidecar has no tracker of its own: patched Zopes and DUMP talk to the tracker's classic endpoint; this block is ignored")
		}
		cfg.Classic.Enabled = false
	}
	zeoNames := map[string]hcl.Range{}
	for _, b := range c.Blocks {
		switch b.Type {
		case "zeo":
			name := b.Labels[0]
			if name == "" {
				d.errorf(b.LabelRanges[0], "Empty zeo name", `a zeo block needs a name, e.g. zeo "main" { ... }`)
			} else if prev, dup := zeoNames[name]; dup {
				d.errorf(b.LabelRanges[0], "Duplicate zeo name", "zeo %q is already defined at %s", name, pos(prev))
			} else {
				zeoNames[name] = b.LabelRanges[0]
			}
			z := d.decodeZEO(b)
			cfg.ZEO = append(cfg.ZEO, z)
			cfg.Storages = append(cfg.Storages, z.Storages...)
		case "storage":
			s := &Storage{ID: b.Labels[0], Range: b.LabelRanges[0]}
			if s.ID == "" {
				d.errorf(b.LabelRanges[0], "Empty storage id",
					`a top-level storage is named by its id, e.g. storage "((('localhost', 8100),), '1')" { ... }`)
			}
			sc := d.content(b.Body, storageSchema)
			d.storageFiles(sc.Attributes, s)
			cfg.Storages = append(cfg.Storages, s)
		}
	}
	return cfg
}

func (d *decoder) decodeLog(b *hcl.Block, l *Log) {
	c := d.content(b.Body, logSchema)
	if attr := c.Attributes["level"]; attr != nil && d.str(attr, &l.Level) {
		l.Level = strings.ToLower(l.Level)
		switch l.Level {
		case "trace", "debug", "info", "warn", "error":
		default:
			d.errorf(attr.Expr.Range(), "Invalid log level",
				"level = %q; use one of trace, debug, info, warn, error", l.Level)
		}
	}
	if attr := c.Attributes["format"]; attr != nil && d.str(attr, &l.Format) {
		if l.Format != "text" && l.Format != "json" {
			d.errorf(attr.Expr.Range(), "Invalid log format", `format = %q; use "text" or "json"`, l.Format)
		}
	}
	d.path(c.Attributes["file"], &l.File)
}

func (d *decoder) decodeLimits(b *hcl.Block, l *Limits) {
	c := d.content(b.Body, limitsSchema)
	d.size(c.Attributes["max_frame_size"], &l.MaxFrameSize)
	d.size(c.Attributes["max_classic_field"], &l.MaxClassicField)
	d.count(c.Attributes["max_classic_count"], &l.MaxClassicCount)
	d.count(c.Attributes["max_zeo_connections"], &l.MaxZEOConnections)
	d.size(c.Attributes["max_pre_register_frame"], &l.MaxPreRegisterFrame)
	d.size(c.Attributes["decode_budget"], &l.DecodeBudget)
	d.duration(c.Attributes["register_timeout"], &l.RegisterTimeout, time.Second)
	// A frame over the budget, or a pre-register frame over the decode
	// limit, could never be decoded: say so rather than turn storages
	// blind at run time.
	if a := c.Attributes["decode_budget"]; a != nil && l.DecodeBudget > 0 && l.DecodeBudget < l.MaxFrameSize {
		d.errorf(a.Expr.Range(), "Invalid size", "decode_budget (%d bytes) is below max_frame_size (%d bytes): a frame between the two could never be decoded", l.DecodeBudget, l.MaxFrameSize)
	}
	if a := c.Attributes["max_pre_register_frame"]; a != nil && l.MaxPreRegisterFrame > l.MaxFrameSize {
		d.errorf(a.Expr.Range(), "Invalid size", "max_pre_register_frame (%d bytes) is above max_frame_size (%d bytes)", l.MaxPreRegisterFrame, l.MaxFrameSize)
	}
}

func (d *decoder) decodeClassic(b *hcl.Block, cl *Classic) {
	c := d.content(b.Body, classicSchema)
	d.boolean(c.Attributes["enabled"], &cl.Enabled)
	d.tcpAddress(c.Attributes["listen"], &cl.Listen)
	d.count(c.Attributes["max_connections"], &cl.MaxConnections)
	d.duration(c.Attributes["idle_timeout"], &cl.IdleTimeout, 0)
	attr := c.Attributes["allow"]
	if attr == nil {
		return
	}
	cl.Allow = cl.Allow[:0]
	d.stringList(attr, listMsg{"Invalid allow list", `allow must be a list of addresses or CIDR prefixes, e.g. ["127.0.0.0/8", "10.1.2.3"]`},
		listMsg{"Invalid CIDR", `allow entries must be strings such as "10.0.0.0/8" or "10.1.2.3"`}, func(e hcl.Expression, s string) {
			p, err := parsePrefix(s)
			if err != nil {
				d.errorf(e.Range(), "Invalid CIDR", "%v", err)
				return
			}
			cl.Allow = append(cl.Allow, p)
		})
}

// listMsg is the summary and detail of a diagnostic.
type listMsg struct{ summary, detail string }

// stringList decodes a list of strings, calling each for every string; a
// value that is not a list is reported with notList, an entry that is not
// a string with notString.
func (d *decoder) stringList(attr *hcl.Attribute, notList, notString listMsg, each func(hcl.Expression, string)) {
	exprs, diags := hcl.ExprList(attr.Expr)
	if diags.HasErrors() {
		d.errorf(attr.Expr.Range(), notList.summary, "%s", notList.detail)
		return
	}
	for _, e := range exprs {
		v, diags := e.Value(nil)
		if diags.HasErrors() || v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
			d.errorf(e.Range(), notString.summary, "%s", notString.detail)
			continue
		}
		each(e, v.AsString())
	}
}

// parsePrefix accepts a CIDR prefix or a bare IP address (one host).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix such as \"10.0.0.0/8\"", s)
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or a CIDR prefix such as \"10.0.0.0/8\"", s)
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

func (d *decoder) decodeZEO(b *hcl.Block) *ZEO {
	z := &ZEO{Name: b.Labels[0], Range: b.DefRange}
	c := d.content(b.Body, zeoSchema)
	listen := c.Attributes["listen"]
	switch {
	case listen != nil && d.role == RoleTracker:
		d.errorf(listen.Expr.Range(), "A tracker does not proxy",
			"this configuration has a fleet block: it is a tracker, which watches zeo %q through upstream and proxies nothing; "+
				"remove listen (the ZODB clients connect to the sidecars)", z.Name)
		listen = nil
	case listen == nil && d.role != RoleTracker:
		d.errorf(b.Body.MissingItemRange(), "Missing required argument",
			"zeo %q needs listen, the address its ZODB clients connect to (only a fleet tracker's zeo blocks have none)", z.Name)
	}
	d.address(listen, &z.Listen, false)
	d.address(c.Attributes["upstream"], &z.Upstream, false)
	z.ClientAddress = z.Listen
	d.address(c.Attributes["client_address"], &z.ClientAddress, false)
	z.BlindTimeout = DefaultBlindTimeout
	d.duration(c.Attributes["blind_timeout"], &z.BlindTimeout, 0)
	d.decodeZEOTLS(z, c)

	names := map[string]hcl.Range{}
	for _, sb := range c.Blocks {
		if sb.Type != "storage" {
			continue
		}
		s := &Storage{Name: sb.Labels[0], ZEO: z, Range: sb.LabelRanges[0]}
		if s.Name == "" {
			d.errorf(sb.LabelRanges[0], "Empty storage name",
				`a storage block in a zeo block is named by its ZEO storage name, e.g. storage "1" { }`)
			continue
		}
		if prev, dup := names[s.Name]; dup {
			d.errorf(sb.LabelRanges[0], "Duplicate storage block",
				"storage %q of zeo %q is already defined at %s", s.Name, z.Name, pos(prev))
			continue
		}
		names[s.Name] = sb.LabelRanges[0]
		sc := d.content(sb.Body, zeoStorageSchema)
		if attr := sc.Attributes["id"]; attr != nil && d.str(attr, &s.ID) {
			if s.ID == "" {
				d.errorf(attr.Expr.Range(), "Empty storage id", "remove id to use the default id, or give a non-empty one")
			}
			d.explicitID[s] = true
			s.Range = attr.Expr.Range()
		}
		d.storageFiles(sc.Attributes, s)
		if attr := sc.Attributes["unaccounted"]; attr != nil {
			var v string
			if d.str(attr, &v) {
				switch v {
				case "hold":
				case "warn":
					s.WarnUnaccounted = true
				default:
					d.errorf(attr.Expr.Range(), "Invalid unaccounted", `unaccounted must be "hold" (the default) or "warn", not %q`, v)
				}
			}
		}
		z.Storages = append(z.Storages, s)
	}
	if !hasBlock(c.Blocks, "storage") {
		d.errorf(b.DefRange, "Missing storage block",
			`zeo %q needs at least one storage block naming a storage of the server, e.g. storage "1" { }`, z.Name)
	}
	// Default ids need an address clients actually dial.
	if z.ClientAddress.IsZero() {
		if d.role == RoleTracker {
			for _, s := range z.Storages {
				if !d.explicitID[s] {
					d.errorf(s.Range, "No address for default storage ids",
						"a tracker's zeo block has no listen: give storage %q of zeo %q an id (the one its sidecars use), or set client_address to the address the sidecars' clients dial",
						s.Name, z.Name)
				}
			}
		}
		return z
	}
	needDefault := false
	for _, s := range z.Storages {
		if !d.explicitID[s] {
			s.ID = DefaultStorageID(z.ClientAddress, s.Name)
			needDefault = true
		}
	}
	if needDefault && z.ClientAddress.wildcard() {
		rng := b.DefRange
		if attr := c.Attributes["client_address"]; attr != nil {
			rng = attr.Expr.Range()
		} else if listen != nil {
			rng = listen.Expr.Range()
		}
		d.errorf(rng, "No address for default storage ids",
			"%s listens on every interface, so it is not the address clients write in zope.conf; set client_address (e.g. \"zeo1.example.com:%d\") or an id in every storage block",
			z.ClientAddress, z.ClientAddress.Port)
	}
	return z
}

func (d *decoder) storageFiles(attrs hcl.Attributes, s *Storage) {
	d.path(attrs["data_fs"], &s.DataFS)
	d.path(attrs["blob_dir"], &s.BlobDir)
	d.path(attrs["repository"], &s.Repository)
}

// str decodes a string attribute; it reports false (and a diagnostic) when
// the value is not a string.
func (d *decoder) str(attr *hcl.Attribute, dst *string) bool {
	if attr == nil {
		return false
	}
	v, ok := d.stringValue(attr)
	if !ok {
		d.errorf(attr.Expr.Range(), "Invalid value", "%s must be a string in double quotes", attr.Name)
		return false
	}
	*dst = v
	return true
}

func (d *decoder) path(attr *hcl.Attribute, dst *string) {
	var s string
	if !d.str(attr, &s) {
		return
	}
	if s == "" {
		d.errorf(attr.Expr.Range(), "Empty path", "%s is empty; remove it instead", attr.Name)
		return
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(d.base, s)
	}
	*dst = s
	d.paths = append(d.paths, pathRef{name: attr.Name, value: s, rng: attr.Expr.Range()})
}

func (d *decoder) boolean(attr *hcl.Attribute, dst *bool) {
	if attr == nil {
		return
	}
	val, diags := attr.Expr.Value(nil)
	if diags.HasErrors() || val.IsNull() || !val.IsKnown() || val.Type() != cty.Bool {
		d.errorf(attr.Expr.Range(), "Invalid value", "%s must be true or false (without quotes)", attr.Name)
		return
	}
	*dst = val.True()
}

func (d *decoder) count(attr *hcl.Attribute, dst *int) {
	if attr == nil {
		return
	}
	val, diags := attr.Expr.Value(nil)
	if diags.HasErrors() || val.IsNull() || !val.IsKnown() || val.Type() != cty.Number {
		d.errorf(attr.Expr.Range(), "Invalid number", "%s must be a whole number (without quotes); 0 means no limit", attr.Name)
		return
	}
	n, acc := val.AsBigFloat().Int64()
	if acc != big.Exact || n < 0 || n > math.MaxInt32 {
		d.errorf(attr.Expr.Range(), "Invalid number", "%s = %s; use 0 for no limit or a positive whole number", attr.Name, val.AsBigFloat().Text('g', -1))
		return
	}
	*dst = int(n)
}

func (d *decoder) duration(attr *hcl.Attribute, dst *time.Duration, minimum time.Duration) {
	if attr == nil {
		return
	}
	s, ok := d.stringValue(attr)
	if !ok {
		d.errorf(attr.Expr.Range(), "Invalid duration",
			`%s must be a string with a unit, such as "30s", "5m" or "1h30m"`, attr.Name)
		return
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.errorf(attr.Expr.Range(), "Invalid duration",
			`%s = %q is not a duration; write a number with a unit, such as "30s", "5m" or "1h30m"`, attr.Name, s)
	case v < minimum:
		d.errorf(attr.Expr.Range(), "Invalid duration", "%s = %q; it must be at least %s", attr.Name, s, minimum)
	default:
		*dst = v
	}
}

// stringValue returns the value of attr when it is a literal string (no
// conversion from numbers or bools: "30" for a duration is a mistake).
func (d *decoder) stringValue(attr *hcl.Attribute) (string, bool) {
	val, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		return "", false
	}
	if val.IsNull() || !val.IsKnown() || val.Type() != cty.String {
		return "", false
	}
	return val.AsString(), true
}

// address decodes a listen/dial address. Port 0 (a free port) is allowed only
// where nobody needs to know the port in advance (classic, admin: tests).
func (d *decoder) address(attr *hcl.Attribute, dst *Address, port0 bool) {
	var s string
	if !d.str(attr, &s) {
		return
	}
	a, err := ParseAddress(s)
	if err == nil && a.Network == "tcp" && a.Port == 0 && !port0 {
		err = fmt.Errorf("%q: port 0 is not allowed here, clients must know the port", s)
	}
	if err != nil {
		d.errorf(attr.Expr.Range(), "Invalid address", "%s: %v", attr.Name, err)
		return
	}
	*dst = a
	d.attrs[dst] = attr
}

// tcpAddress decodes the listen address of the classic or admin endpoint:
// TCP only (patched Zopes and HTTP clients dial host and port), port 0 allowed
// (a free port, for tests).
func (d *decoder) tcpAddress(attr *hcl.Attribute, dst *Address) {
	var a Address
	d.address(attr, &a, true)
	if a.IsZero() {
		return
	}
	if a.IsUnix() {
		d.errorf(attr.Expr.Range(), "Invalid address", "%s: %s: this endpoint is TCP only, use host:port", attr.Name, a)
		return
	}
	*dst = a
	d.attrs[dst] = attr
}

func (d *decoder) decodeFleet(b *hcl.Block) *Fleet {
	f := &Fleet{Range: b.DefRange}
	c := d.content(b.Body, fleetSchema)
	if c == nil {
		return f
	}
	d.tcpAddress(c.Attributes["listen"], &f.Listen)
	if tb := d.once(c.Blocks, "tls"); tb != nil {
		f.TLS, _ = d.tlsBlock(tb, fleetTLSSchema, "fleet tls", tlsfiles.Server)
	} else if !f.Listen.IsZero() && !f.Listen.Loopback() {
		at := b.DefRange
		if a := c.Attributes["listen"]; a != nil {
			at = a.Expr.Range()
		}
		d.warnf(at, "Fleet listener without TLS",
			"no tls block: only sidecars on this host (loopback peers) are accepted; sidecars on other hosts need mutual TLS (tls { cert_file, key_file, client_ca_file })")
	}
	return f
}

func (d *decoder) decodeTrackerLink(b *hcl.Block) *TrackerLink {
	t := &TrackerLink{Range: b.DefRange, BufferEvents: DefaultBufferEvents}
	c := d.content(b.Body, trackerSchema)
	if c == nil {
		return t
	}
	addr := c.Attributes["address"]
	d.address(addr, &t.Address, false)
	if t.Address.IsUnix() {
		d.errorf(addr.Expr.Range(), "Invalid address", "address: %s: the fleet link is TCP only, use host:port", t.Address)
		t.Address = Address{}
	}
	if a := c.Attributes["name"]; a != nil && d.str(a, &t.Name) && t.Name == "" {
		d.errorf(a.Expr.Range(), "Empty name", "remove name to use the host name, or give a non-empty one")
	}
	d.path(c.Attributes["buffer_file"], &t.BufferFile)
	if a := c.Attributes["buffer_events"]; a != nil {
		d.count(a, &t.BufferEvents)
		if t.BufferEvents == 0 {
			d.errorf(a.Expr.Range(), "Invalid number", "buffer_events must be at least 1: the send buffer is bounded")
		}
	}
	if tb := d.once(c.Blocks, "tls"); tb != nil {
		var tc *hcl.BodyContent
		t.TLS, tc = d.tlsBlock(tb, trackerTLSSchema, "tracker tls", tlsfiles.Client)
		if a := tc.Attributes["server_name"]; a != nil {
			d.str(a, &t.TLS.ServerName)
		}
	} else if !t.Address.IsZero() && !t.Address.Loopback() {
		d.errorf(addr.Expr.Range(), "Fleet link without TLS",
			"the tracker at %s is not on this host: add tls { cert_file, key_file, ca_file } (mutual TLS); without it only a tracker on loopback is allowed", t.Address)
	}
	return t
}
