package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// listener is one address tidstorage binds, for collision checks.
type listener struct {
	what string // "the classic endpoint", "zeo \"a\""
	addr Address
	at   *hcl.Attribute // nil when the address is a default
}

func (l listener) where() string {
	if l.at == nil {
		return "default"
	}
	return pos(l.at.Expr.Range())
}

// validate is the one pass after decoding: it checks what spans fields,
// blocks and roles, and settles the defaults that depend on them (the
// journal, the admin token file, a sidecar's admin listener, default
// storage ids, upstream_tls's server name). r is the file as written, for
// positions and for what was left out.
func (d *decoder) validate(cfg *Config, r *rawFile) {
	if cfg.Fleet != nil && cfg.Tracker != nil {
		d.errorf(cfg.Tracker.Range, "Two roles",
			"a fleet block (this process is the tracker, at %s) and a tracker block (this process is a sidecar) exclude each other",
			pos(cfg.Fleet.Range))
	}
	role := cfg.Role()
	d.validateFiles(cfg, r, role)
	d.validateLimits(cfg, first(r.Limits))
	d.validateFleetLink(cfg, r)
	zeoNames := map[string]hcl.Range{}
	for i, z := range cfg.ZEO {
		rz := r.ZEO[i]
		if prev, dup := zeoNames[z.Name]; dup && z.Name != "" {
			d.errorf(rz.NameRange, "Duplicate zeo name", "zeo %q is already defined at %s", z.Name, pos(prev))
		} else {
			zeoNames[z.Name] = rz.NameRange
		}
		d.validateZEO(z, rz, role)
	}
	d.validateEndpoints(cfg)
}

// validateFiles settles the files and endpoints that depend on the role: a
// sidecar keeps no status file nor journal and runs no classic endpoint;
// the journal and the admin token file default beside the status file (a
// sidecar's token beside its send buffer).
func (d *decoder) validateFiles(cfg *Config, r *rawFile, role Role) {
	if role == RoleSidecar {
		for _, a := range []*hcl.Attribute{r.StatusFile, r.JournalFile} {
			if a != nil {
				d.errorf(a.Expr.Range(), "A sidecar publishes nothing",
					"this configuration has a tracker block: it is a sidecar, which reports to the tracker and keeps no %s (its send buffer is tracker { buffer_file })", a.Name)
			}
		}
		cfg.StatusFile, cfg.JournalFile = "", ""
		if b := first(r.Classic); b != nil {
			d.warnf(b.DefRange, "Classic endpoint off on a sidecar",
				"a sidecar has no tracker of its own: patched Zopes and DUMP talk to the tracker's classic endpoint; this block is ignored")
		}
		cfg.Classic.Enabled = false
		if b := first(r.Admin); b == nil || b.Listen == nil {
			// Its own default, so that a tracker and a sidecar on one host (a
			// first try, a tracker host that also runs Zope) do not collide.
			cfg.Admin.Listen, _ = ParseAddress(DefaultSidecarAdminListen)
		}
	} else {
		if r.JournalFile == nil && cfg.StatusFile != "" {
			cfg.JournalFile = cfg.StatusFile + ".journal"
		}
		if cfg.StatusFile == "" {
			d.warnf(r.Body.MissingItemRange(), "No status file",
				"status_file is not set: published points are not written to disk, so backups can only use DUMP")
		}
	}
	admin := first(r.Admin)
	if admin != nil && admin.TokenFile != nil {
		return
	}
	a := &cfg.Admin
	switch {
	case role == RoleSidecar:
		if cfg.Tracker.BufferFile != "" {
			a.TokenFile = cfg.Tracker.BufferFile + AdminTokenSuffix
		}
		return // a sidecar's tracker holds no pin: nothing to accept there
	case cfg.StatusFile != "":
		a.TokenFile = cfg.StatusFile + AdminTokenSuffix
		return
	}
	if !a.Enabled {
		return
	}
	at := r.Body.MissingItemRange()
	if admin != nil {
		at = admin.DefRange
	}
	d.warnf(at, "No admin token file",
		"neither status_file nor admin { token_file } is set: POST /accept-partial is refused and /status is served redacted; set admin { token_file = \"/var/lib/tidstorage/admin.token\" }")
}

// validateLimits: a frame over the budget, or a pre-register frame over
// the decode limit, could never be decoded: say so rather than turn
// storages blind at run time.
func (d *decoder) validateLimits(cfg *Config, r *rawLimits) {
	if r == nil {
		return
	}
	l := &cfg.Limits
	if a := r.DecodeBudget; a != nil && l.DecodeBudget > 0 && l.DecodeBudget < l.MaxFrameSize {
		d.errorf(a.Expr.Range(), "Invalid size", "%s (%d bytes) is below max_frame_size (%d bytes): a frame between the two could never be decoded",
			a.Name, l.DecodeBudget, l.MaxFrameSize)
	}
	if a := r.MaxPreRegisterFrame; a != nil && l.MaxPreRegisterFrame > l.MaxFrameSize {
		d.errorf(a.Expr.Range(), "Invalid size", "%s (%d bytes) is above max_frame_size (%d bytes)",
			a.Name, l.MaxPreRegisterFrame, l.MaxFrameSize)
	}
}

// validateFleetLink: TLS on the fleet link unless both ends are on this
// host.
func (d *decoder) validateFleetLink(cfg *Config, r *rawFile) {
	if f, rf := cfg.Fleet, first(r.Fleet); f != nil && f.TLS == nil && !f.Listen.IsZero() && !f.Listen.Loopback() {
		d.warnf(attr(rf.Listen).Expr.Range(), "Fleet listener without TLS",
			"no tls block: only sidecars on this host (loopback peers) are accepted; sidecars on other hosts need mutual TLS (tls { cert_file, key_file, client_ca_file })")
	}
	if t, rt := cfg.Tracker, first(r.Tracker); t != nil && t.TLS == nil && !t.Address.IsZero() && !t.Address.Loopback() {
		d.errorf(attr(rt.Address).Expr.Range(), "Fleet link without TLS",
			"the tracker at %s is not on this host: add tls { cert_file, key_file, ca_file } (mutual TLS); without it only a tracker on loopback is allowed", t.Address)
	}
}

// validateZEO applies the role to a zeo block (a tracker watches, a proxy
// listens), settles client_address, upstream_tls's server name and the
// default storage ids.
func (d *decoder) validateZEO(z *ZEO, r *rawZEO, role Role) {
	switch {
	case r.Listen != nil && role == RoleTracker:
		d.errorf(r.Listen.Expr.Range(), "A tracker does not proxy",
			"this configuration has a fleet block: it is a tracker, which watches zeo %q through upstream and proxies nothing; "+
				"remove listen (the ZODB clients connect to the sidecars)", z.Name)
		z.Listen = Address{}
	case r.Listen == nil && role != RoleTracker:
		d.errorf(r.Body.MissingItemRange(), "Missing required argument",
			"zeo %q needs listen, the address its ZODB clients connect to (only a fleet tracker's zeo blocks have none)", z.Name)
	}
	if b := first(r.TLS); b != nil && role == RoleTracker {
		d.errorf(b.DefRange, "A tracker does not proxy",
			"zeo %q has no listener here (this configuration is a fleet tracker): tls belongs in the sidecars' zeo blocks, which ZODB clients connect to; remove it",
			z.Name)
		z.TLS = nil
	}
	if r.ClientAddress == nil {
		z.ClientAddress = z.Listen
	}
	if b := first(r.UpstreamTLS); b != nil {
		d.validateUpstreamTLS(z, r, b)
	}
	d.storageIDs(z, r, role)
}

func (d *decoder) validateUpstreamTLS(z *ZEO, r *rawZEO, b *rawUpstreamTLS) {
	if (b.CertFile == nil) != (b.KeyFile == nil) {
		d.errorf(b.DefRange, "Incomplete client certificate",
			"upstream_tls of zeo %q: cert_file and key_file go together (the certificate tidstorage presents when the ZEO server authenticates clients); give both or neither",
			z.Name)
	}
	t := z.UpstreamTLS
	switch {
	case b.ServerName != nil:
		if t.ServerName == "" {
			d.errorf(b.ServerName.Expr.Range(), "Empty server_name", "remove server_name to check the certificate against upstream's host, or give the name in the ZEO server's certificate")
		}
	case z.Upstream.IsUnix():
		d.errorf(b.DefRange, "Missing server_name",
			"upstream %s of zeo %q is a unix socket: give server_name, the name in the ZEO server's certificate", z.Upstream, z.Name)
	default:
		t.ServerName = z.Upstream.Host
	}
	if z.TLS == nil && !z.Listen.IsZero() && !z.Listen.IsUnix() && !z.Listen.Loopback() {
		at := z.Range
		if r.Listen != nil {
			at = r.Listen.Expr.Range()
		}
		d.warnf(at, "Listener without TLS",
			"zeo %q re-originates TLS to its server but accepts plaintext clients on %s, which is not loopback: what the server receives encrypted crosses that network in clear; add tls or listen on loopback",
			z.Name, z.Listen)
	}
}

// storageIDs gives the storages without an id the one built from the
// address clients dial (DefaultStorageID), which must be one they dial.
func (d *decoder) storageIDs(z *ZEO, r *rawZEO, role Role) {
	if z.ClientAddress.IsZero() {
		if role == RoleTracker {
			for _, s := range z.Storages {
				if !d.explicitID[s] {
					d.errorf(s.Range, "No address for default storage ids",
						"a tracker's zeo block has no listen: give storage %q of zeo %q an id (the one its sidecars use), or set client_address to the address the sidecars' clients dial",
						s.Name, z.Name)
				}
			}
		}
		return
	}
	needDefault := false
	for _, s := range z.Storages {
		if !d.explicitID[s] {
			s.ID = DefaultStorageID(z.ClientAddress, s.Name)
			needDefault = true
		}
	}
	if needDefault && z.ClientAddress.wildcard() {
		rng := r.DefRange
		if a := r.ClientAddress; a != nil {
			rng = a.Expr.Range()
		} else if r.Listen != nil {
			rng = r.Listen.Expr.Range()
		}
		d.errorf(rng, "No address for default storage ids",
			"%s listens on every interface, so it is not the address clients write in zope.conf; set client_address (e.g. \"zeo1.example.com:%d\") or an id in every storage block",
			z.ClientAddress, z.ClientAddress.Port)
	}
}

// validateEndpoints checks the addresses and ids over the whole file:
// endpoints exposed off loopback, listen collisions, proxies pointing at
// themselves, duplicate upstreams and duplicate storage ids.
func (d *decoder) validateEndpoints(cfg *Config) {
	d.warnExposedListeners(cfg)
	var ls []listener
	if cfg.Classic.Enabled {
		ls = append(ls, listener{"the classic endpoint", cfg.Classic.Listen, d.attrs[&cfg.Classic.Listen]})
	}
	if cfg.Admin.Enabled {
		ls = append(ls, listener{"the admin endpoint", cfg.Admin.Listen, d.attrs[&cfg.Admin.Listen]})
	}
	if f := cfg.Fleet; f != nil && !f.Listen.IsZero() {
		ls = append(ls, listener{"the fleet listener", f.Listen, d.attrs[&f.Listen]})
	}
	for _, z := range cfg.ZEO {
		if !z.Listen.IsZero() {
			ls = append(ls, listener{fmt.Sprintf("zeo %q", z.Name), z.Listen, d.attrs[&z.Listen]})
		}
	}
	for i, l := range ls {
		for _, prev := range ls[:i] {
			if !l.addr.overlaps(prev.addr) {
				continue
			}
			// Report on the one written later; a default has no position.
			at, other := l, prev
			if at.at == nil {
				at, other = prev, l
			}
			if at.at == nil {
				continue // two defaults never collide
			}
			d.errorf(at.at.Expr.Range(), "Duplicate listen address",
				"%s of %s collides with %s of %s (%s)", at.addr, at.what, other.addr, other.what, other.where())
			break
		}
	}

	upstreams := map[string]*ZEO{}
	for _, z := range cfg.ZEO {
		if z.Upstream.IsZero() {
			continue
		}
		at := d.attrs[&z.Upstream]
		for _, l := range ls {
			if sameEndpoint(z.Upstream, l.addr) {
				d.errorf(at.Expr.Range(), "Upstream is tidstorage itself",
					"upstream %s of zeo %q is the listen address of %s (%s); upstream must be the real ZEO server",
					z.Upstream, z.Name, l.what, l.where())
			}
		}
		key := z.Upstream.String()
		if prev, dup := upstreams[key]; dup {
			d.errorf(at.Expr.Range(), "Duplicate upstream",
				"zeo %q and zeo %q (%s) both proxy %s; one ZEO server needs one zeo block, or its storages get two ids",
				z.Name, prev.Name, pos(d.attrs[&prev.Upstream].Expr.Range()), z.Upstream)
			continue
		}
		upstreams[key] = z
	}

	ids := map[string]*Storage{}
	for _, s := range cfg.Storages {
		if s.ID == "" {
			continue // already reported, or no usable address
		}
		if prev, dup := ids[s.ID]; dup {
			d.errorf(s.Range, "Duplicate storage id", "%s is also the id of %s (%s)",
				s.ID, prev.describe(), pos(prev.Range))
			continue
		}
		ids[s.ID] = s
	}
}

// sameEndpoint reports whether dialing a reaches the listener l. Only exact
// matches and wildcard listeners count: "localhost" vs "127.0.0.1" would need
// name resolution, which a config check must not depend on.
func sameEndpoint(a, l Address) bool {
	if a.Network != l.Network {
		return false
	}
	if a.IsUnix() {
		return a.Path == l.Path
	}
	return a.Port == l.Port && (a.Host == l.Host || l.wildcard())
}

func (s *Storage) describe() string {
	if s.ZEO == nil {
		return "a top-level storage"
	}
	return fmt.Sprintf("storage %q of zeo %q", s.Name, s.ZEO.Name)
}

// warnExposedListeners warns about the classic and admin endpoints off
// loopback (docs/admin.md, "Running the admin endpoint safely").
func (d *decoder) warnExposedListeners(cfg *Config) {
	if cl := &cfg.Classic; cl.Enabled && !cl.Listen.Loopback() {
		if attr := d.attrs[&cl.Listen]; attr != nil {
			d.warnf(attr.Expr.Range(), "Classic endpoint off loopback",
				"%s is reachable from other hosts, and the classic protocol has no authentication at all: every peer in allow can report commits (and so move or hold the published point) and read DUMP; keep allow to the Zope hosts, or listen on loopback", cl.Listen)
		}
	}
	if ad := &cfg.Admin; ad.Enabled && !ad.Listen.Loopback() {
		if attr := d.attrs[&ad.Listen]; attr != nil {
			d.warnf(attr.Expr.Range(), "Admin endpoint off loopback",
				"%s is reachable from other hosts over plain HTTP: the admin token would cross the network in clear; listen on loopback and reach it through an SSH tunnel, or put a reverse proxy with TLS in front (admin { allowed_hosts } names it)", ad.Listen)
		}
	}
}
