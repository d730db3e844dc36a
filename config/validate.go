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

// validate runs the checks that span blocks: listen collisions, proxies
// pointing at themselves, duplicate upstreams and duplicate storage ids.
func (d *decoder) validate(cfg *Config) {
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
