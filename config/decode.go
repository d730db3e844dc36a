package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
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

// parse runs the three steps, each reporting every problem it finds: gohcl
// reads the file into the raw structs (raw.go: unknown or missing
// attributes and blocks), decode turns each attribute into its value
// (decode.go, values.go), validate checks what spans fields, blocks and
// roles and settles the defaults that depend on them (validate.go).
func parse(src []byte, filename, base string) (*Config, error) {
	file, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() {
		sortDiagnostics(diags)
		return nil, &Error{Diagnostics: diags}
	}
	var raw rawFile
	d := &decoder{base: base, explicitID: map[*Storage]bool{}, attrs: map[*Address]*hcl.Attribute{}}
	d.diags = append(d.diags, gohcl.DecodeBody(file.Body, nil, &raw)...)
	cfg := d.decodeFile(&raw)
	cfg.File = filename
	d.validate(cfg, &raw)
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

// decoder accumulates diagnostics so that one run reports every error.
type decoder struct {
	base  string
	diags hcl.Diagnostics
	// explicitID marks zeo storages whose id was written, not derived.
	explicitID map[*Storage]bool
	// attrs keeps where each address was written, for cross-checks.
	attrs   map[*Address]*hcl.Attribute
	paths   []pathRef // every path attribute, for Config.CheckPaths
	tlsRefs []tlsRef  // every TLS block, for Config.CheckPaths
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

// once reports every block after the first of each kind that may appear
// only once in the raw struct v points to (its block fields tagged
// once:"true"), and drops them.
func (d *decoder) once(v any) {
	rv := reflect.ValueOf(v).Elem()
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		if f.Tag.Get("once") != "true" {
			continue
		}
		kind, _, _ := strings.Cut(f.Tag.Get("hcl"), ",")
		blocks := rv.Field(i)
		if blocks.Len() < 2 {
			continue
		}
		def := func(j int) hcl.Range { return blocks.Index(j).Elem().FieldByName("DefRange").Interface().(hcl.Range) }
		for j := 1; j < blocks.Len(); j++ {
			d.errorf(def(j), "Duplicate "+kind+" block",
				"only one %s block is allowed; the first one is at %s", kind, pos(def(0)))
		}
		blocks.SetLen(1)
	}
}

// first is the block of a kind that appears at most once (after once), or
// nil.
func first[T any](blocks []*T) *T {
	if len(blocks) == 0 {
		return nil
	}
	return blocks[0]
}

func pos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// decodeFile turns the raw file into a Config: the defaults, overridden by
// every attribute written. What depends on the role or on other fields is
// left to validate.
func (d *decoder) decodeFile(r *rawFile) *Config {
	cfg := defaults()
	d.once(r)
	d.path(r.StatusFile, &cfg.StatusFile, needParent)
	d.deprecatedDash(&r.JournalFile, "status_file + \".journal\"")
	d.path(r.JournalFile, &cfg.JournalFile, needParent)
	if r.JournalMaxSize != nil {
		d.size(r.JournalMaxSize, &cfg.JournalMaxSize)
		if cfg.JournalMaxSize < MinJournalMaxSize {
			d.errorf(r.JournalMaxSize.Expr.Range(), "Invalid size", "journal_max_size: at least %d bytes", MinJournalMaxSize)
		}
	}
	d.duration(r.UnaccountedGrace, &cfg.UnaccountedGrace, 0)
	d.path(r.PIDFile, &cfg.PIDFile, needParent)
	d.path(r.BackupMetricsFile, &cfg.BackupMetricsFile, needParent)
	d.duration(r.BurstPeriod, &cfg.BurstPeriod, 0)
	d.duration(r.FullDumpPeriod, &cfg.FullDumpPeriod, 0)
	d.duration(r.ClassicTxnTimeout, &cfg.ClassicTxnTimeout, time.Second)
	d.duration(r.ShutdownTimeout, &cfg.ShutdownTimeout, 0)
	d.boolean(r.ClientLabelIdentity, &cfg.ClientLabelIdentity)

	if b := first(r.Log); b != nil {
		d.decodeLog(b, &cfg.Log)
	}
	if b := first(r.Limits); b != nil {
		d.decodeLimits(b, &cfg.Limits)
	}
	if b := first(r.Classic); b != nil {
		d.decodeClassic(b, &cfg.Classic)
	}
	if b := first(r.Admin); b != nil {
		d.decodeAdmin(b, &cfg.Admin)
	}
	if b := first(r.Fleet); b != nil {
		cfg.Fleet = d.decodeFleet(b)
	}
	if b := first(r.Tracker); b != nil {
		cfg.Tracker = d.decodeTrackerLink(b)
	}
	if b := first(r.Archive); b != nil {
		cfg.Archive = d.decodeArchive(b)
	}
	// Storages in file order: a zeo block's where the block is, between
	// the top-level ones.
	type placed struct {
		s  *Storage
		at int
	}
	var all []placed
	for _, rz := range r.ZEO {
		z := d.decodeZEO(rz)
		cfg.ZEO = append(cfg.ZEO, z)
		for _, s := range z.Storages {
			all = append(all, placed{s, rz.DefRange.Start.Byte})
		}
	}
	for _, rs := range r.Storage {
		s := &Storage{ID: rs.ID, Range: rs.IDRange}
		if s.ID == "" {
			d.errorf(rs.IDRange, "Empty storage id",
				`a top-level storage is named by its id, e.g. storage "((('localhost', 8100),), '1')" { ... }`)
		}
		d.storageFiles(rs.DataFS, rs.BlobDir, rs.Repository, s)
		all = append(all, placed{s, rs.IDRange.Start.Byte})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at < all[j].at })
	for _, p := range all {
		cfg.Storages = append(cfg.Storages, p.s)
	}
	return cfg
}

// deprecatedDash reads a path attribute written as "-", which once stood
// for its default, as absent, and says so.
func (d *decoder) deprecatedDash(a **hcl.Attribute, def string) {
	if *a == nil {
		return
	}
	if v, ok := d.stringValue(*a); ok && v == "-" {
		d.warnf((*a).Expr.Range(), "Deprecated value",
			`%s = "-" is read as the default (%s); remove the attribute`, (*a).Name, def)
		*a = nil
	}
}

func (d *decoder) decodeLog(r *rawLog, l *Log) {
	if d.str(r.Level, &l.Level) {
		l.Level = strings.ToLower(l.Level)
		switch l.Level {
		case "trace", "debug", "info", "warn", "error":
		default:
			d.errorf(r.Level.Expr.Range(), "Invalid log level",
				"level = %q; use one of trace, debug, info, warn, error", l.Level)
		}
	}
	if d.str(r.Format, &l.Format) && l.Format != "text" && l.Format != "json" {
		d.errorf(r.Format.Expr.Range(), "Invalid log format", `format = %q; use "text" or "json"`, l.Format)
	}
	d.path(r.File, &l.File, needParent)
}

func (d *decoder) decodeLimits(r *rawLimits, l *Limits) {
	d.size(r.MaxFrameSize, &l.MaxFrameSize)
	d.size(r.MaxClassicField, &l.MaxClassicField)
	d.count(r.MaxClassicCount, &l.MaxClassicCount)
	d.count(r.MaxZEOConnections, &l.MaxZEOConnections)
	d.size(r.MaxPreRegisterFrame, &l.MaxPreRegisterFrame)
	d.size(r.DecodeBudget, &l.DecodeBudget)
	d.duration(r.RegisterTimeout, &l.RegisterTimeout, time.Second)
}

func (d *decoder) decodeClassic(r *rawClassic, cl *Classic) {
	d.boolean(r.Enabled, &cl.Enabled)
	d.tcpAddress(r.Listen, &cl.Listen)
	d.count(r.MaxConnections, &cl.MaxConnections)
	d.duration(r.IdleTimeout, &cl.IdleTimeout, 0)
	if r.Allow == nil {
		return
	}
	cl.Allow = cl.Allow[:0]
	d.stringList(r.Allow, listMsg{"Invalid allow list", `allow must be a list of addresses or CIDR prefixes, e.g. ["127.0.0.0/8", "10.1.2.3"]`},
		listMsg{"Invalid CIDR", `allow entries must be strings such as "10.0.0.0/8" or "10.1.2.3"`}, func(e hcl.Expression, s string) {
			p, err := parsePrefix(s)
			if err != nil {
				d.errorf(e.Range(), "Invalid CIDR", "%v", err)
				return
			}
			cl.Allow = append(cl.Allow, p)
		})
}

func (d *decoder) decodeZEO(r *rawZEO) *ZEO {
	d.once(r)
	z := &ZEO{Name: r.Name, Range: r.DefRange}
	if z.Name == "" {
		d.errorf(r.NameRange, "Empty zeo name", `a zeo block needs a name, e.g. zeo "main" { ... }`)
	}
	d.address(r.Listen, &z.Listen, false)
	d.address(attr(r.Upstream), &z.Upstream, false)
	d.address(r.ClientAddress, &z.ClientAddress, false)
	z.BlindTimeout = DefaultBlindTimeout
	d.duration(r.BlindTimeout, &z.BlindTimeout, 0)
	if b := first(r.TLS); b != nil {
		z.TLS = d.tls(fmt.Sprintf("zeo %q tls", z.Name),
			tlsAttrs{cert: attr(b.CertFile), key: attr(b.KeyFile), clientCA: b.ClientCAFile})
	}
	if b := first(r.UpstreamTLS); b != nil {
		z.UpstreamTLS = d.tls(fmt.Sprintf("zeo %q upstream_tls", z.Name),
			tlsAttrs{cert: b.CertFile, key: b.KeyFile, ca: b.CAFile, serverName: b.ServerName})
	}

	names := map[string]hcl.Range{}
	for _, rs := range r.Storage {
		s := &Storage{Name: rs.Name, ZEO: z, Range: rs.NameRange}
		if s.Name == "" {
			d.errorf(rs.NameRange, "Empty storage name",
				`a storage block in a zeo block is named by its ZEO storage name, e.g. storage "1" { }`)
			continue
		}
		if prev, dup := names[s.Name]; dup {
			d.errorf(rs.NameRange, "Duplicate storage block",
				"storage %q of zeo %q is already defined at %s", s.Name, z.Name, pos(prev))
			continue
		}
		names[s.Name] = rs.NameRange
		if a := rs.ID; a != nil && d.str(a, &s.ID) {
			if s.ID == "" {
				d.errorf(a.Expr.Range(), "Empty storage id", "remove id to use the default id, or give a non-empty one")
			}
			d.explicitID[s] = true
			s.Range = a.Expr.Range()
		}
		d.storageFiles(rs.DataFS, rs.BlobDir, rs.Repository, s)
		var unaccounted string
		if d.str(rs.Unaccounted, &unaccounted) {
			switch unaccounted {
			case "hold":
			case "warn":
				s.WarnUnaccounted = true
			default:
				d.errorf(rs.Unaccounted.Expr.Range(), "Invalid unaccounted", `unaccounted must be "hold" (the default) or "warn", not %q`, unaccounted)
			}
		}
		z.Storages = append(z.Storages, s)
	}
	if len(r.Storage) == 0 {
		d.errorf(r.DefRange, "Missing storage block",
			`zeo %q needs at least one storage block naming a storage of the server, e.g. storage "1" { }`, z.Name)
	}
	return z
}

func (d *decoder) storageFiles(dataFS, blobDir, repository *hcl.Attribute, s *Storage) {
	d.path(dataFS, &s.DataFS, needFile)
	d.path(blobDir, &s.BlobDir, needDir)
	d.path(repository, &s.Repository, needNone)
}

func (d *decoder) decodeFleet(r *rawFleet) *Fleet {
	d.once(r)
	f := &Fleet{Range: r.DefRange}
	d.tcpAddress(attr(r.Listen), &f.Listen)
	if b := first(r.TLS); b != nil {
		f.TLS = d.tls("fleet tls",
			tlsAttrs{cert: attr(b.CertFile), key: attr(b.KeyFile), clientCA: attr(b.ClientCAFile)})
	}
	return f
}

func (d *decoder) decodeTrackerLink(r *rawTracker) *TrackerLink {
	d.once(r)
	t := &TrackerLink{Range: r.DefRange, BufferEvents: DefaultBufferEvents}
	if a := attr(r.Address); a != nil {
		d.address(a, &t.Address, false)
		if t.Address.IsUnix() {
			d.errorf(a.Expr.Range(), "Invalid address", "address: %s: the fleet link is TCP only, use host:port", t.Address)
			t.Address = Address{}
		}
	}
	if d.str(r.Name, &t.Name) && t.Name == "" {
		d.errorf(r.Name.Expr.Range(), "Empty name", "remove name to use the host name, or give a non-empty one")
	}
	d.path(r.BufferFile, &t.BufferFile, needParent)
	if r.BufferEvents != nil {
		d.count(r.BufferEvents, &t.BufferEvents)
		if t.BufferEvents == 0 {
			d.errorf(r.BufferEvents.Expr.Range(), "Invalid number", "buffer_events must be at least 1: the send buffer is bounded")
		}
	}
	if b := first(r.TLS); b != nil {
		t.TLS = d.tls("tracker tls",
			tlsAttrs{cert: attr(b.CertFile), key: attr(b.KeyFile), ca: attr(b.CAFile), serverName: b.ServerName})
	}
	return t
}
