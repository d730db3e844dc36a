package config

import (
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/tidstorage/tidstorage/internal/tlsfiles"
)

// A zeo block's TLS (docs/config.md, "tls and upstream_tls"): tls terminates
// the ZODB clients' TLS at the listener, upstream_tls re-originates it to
// the ZEO server (the proxy's connections, the history watchers, the
// bootstrap and in-doubt resolution).

var zeoTLSSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "cert_file", Required: true}, {Name: "key_file", Required: true}, {Name: "client_ca_file"},
}}

var upstreamTLSSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "ca_file"}, {Name: "cert_file"}, {Name: "key_file"}, {Name: "server_name"},
}}

// ExpiryWarning is how close to its end a certificate makes `config check`
// warn.
const ExpiryWarning = 30 * 24 * time.Hour

// tlsRef is one TLS block as written, for CheckPaths.
type tlsRef struct {
	what  string // `zeo "main" tls`, for messages
	role  tlsfiles.Role
	t     *TLS
	block hcl.Range
	attrs map[string]hcl.Range // where each file attribute was written
}

// tlsBlock decodes the file attributes common to every TLS block and
// records the block for CheckPaths.
func (d *decoder) tlsBlock(b *hcl.Block, schema *hcl.BodySchema, what string, role tlsfiles.Role) (*TLS, *hcl.BodyContent) {
	c := d.content(b.Body, schema)
	t := &TLS{}
	ref := tlsRef{what: what, role: role, t: t, block: b.DefRange, attrs: map[string]hcl.Range{}}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"cert_file", &t.CertFile}, {"key_file", &t.KeyFile}, {"ca_file", &t.CAFile}, {"client_ca_file", &t.ClientCAFile}} {
		if a := c.Attributes[f.name]; a != nil {
			d.path(a, f.dst)
			ref.attrs[f.name] = a.Expr.Range()
		}
	}
	d.tlsRefs = append(d.tlsRefs, ref)
	return t, c
}

// decodeZEOTLS reads a zeo block's tls and upstream_tls blocks.
func (d *decoder) decodeZEOTLS(z *ZEO, c *hcl.BodyContent) {
	if b := d.once(c.Blocks, "tls"); b != nil {
		t, _ := d.tlsBlock(b, zeoTLSSchema, fmt.Sprintf("zeo %q tls", z.Name), tlsfiles.Server)
		if d.role == RoleTracker {
			d.errorf(b.DefRange, "A tracker does not proxy",
				"zeo %q has no listener here (this configuration is a fleet tracker): tls belongs in the sidecars' zeo blocks, which ZODB clients connect to; remove it",
				z.Name)
		} else {
			z.TLS = t
		}
	}
	b := d.once(c.Blocks, "upstream_tls")
	if b == nil {
		return
	}
	t, uc := d.tlsBlock(b, upstreamTLSSchema, fmt.Sprintf("zeo %q upstream_tls", z.Name), tlsfiles.Client)
	_, hasCert := uc.Attributes["cert_file"]
	_, hasKey := uc.Attributes["key_file"]
	if hasCert != hasKey {
		d.errorf(b.DefRange, "Incomplete client certificate",
			"upstream_tls of zeo %q: cert_file and key_file go together (the certificate tidstorage presents when the ZEO server authenticates clients); give both or neither",
			z.Name)
	}
	if a := uc.Attributes["server_name"]; a != nil {
		if d.str(a, &t.ServerName) && t.ServerName == "" {
			d.errorf(a.Expr.Range(), "Empty server_name", "remove server_name to check the certificate against upstream's host, or give the name in the ZEO server's certificate")
		}
	} else if z.Upstream.IsUnix() {
		d.errorf(b.DefRange, "Missing server_name",
			"upstream %s of zeo %q is a unix socket: give server_name, the name in the ZEO server's certificate", z.Upstream, z.Name)
	} else {
		t.ServerName = z.Upstream.Host
	}
	z.UpstreamTLS = t
	if z.TLS == nil && !z.Listen.IsZero() && !z.Listen.IsUnix() && !z.Listen.Loopback() {
		d.warnf(attrRange(c, "listen", z.Range), "Listener without TLS",
			"zeo %q re-originates TLS to its server but accepts plaintext clients on %s, which is not loopback: what the server receives encrypted crosses that network in clear; add tls or listen on loopback",
			z.Name, z.Listen)
	}
}

// attrRange is the range of an attribute of c, or def when it is absent.
func attrRange(c *hcl.BodyContent, name string, def hcl.Range) hcl.Range {
	if a := c.Attributes[name]; a != nil {
		return a.Expr.Range()
	}
	return def
}

// checkTLS loads every TLS block's files as serve would and warns, at the
// attribute, about a certificate that does not match its key, a CA file
// without certificates, and a certificate expired or about to expire.
// Files that do not exist are left to the path checks.
func (c *Config) checkTLS(now time.Time) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, r := range c.tlsRefs {
		at := func(attr string) *hcl.Range {
			rng, ok := r.attrs[attr]
			if !ok {
				rng = r.block
			}
			return &rng
		}
		warn := func(attr, summary, format string, a ...any) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary,
				Detail: fmt.Sprintf(format, a...), Subject: at(attr)})
		}
		var exps []tlsfiles.Expiry
		if t := r.t; t.CertFile != "" && t.KeyFile != "" && exists(t.CertFile) && exists(t.KeyFile) {
			exp, err := tlsfiles.CheckPair(t.CertFile, t.KeyFile)
			if err != nil {
				warn("cert_file", "TLS files do not load", "%s: %v", r.what, err)
			} else {
				exps = append(exps, exp)
			}
		}
		for _, attr := range []string{"ca_file", "client_ca_file"} {
			path := r.t.CAFile
			if attr == "client_ca_file" {
				path = r.t.ClientCAFile
			}
			if _, written := r.attrs[attr]; !written || !exists(path) {
				continue
			}
			exp, err := tlsfiles.CheckCA(path)
			if err != nil {
				warn(attr, "TLS files do not load", "%s: %s %s: %v", r.what, attr, path, err)
				continue
			}
			exp.Attr = attr
			exps = append(exps, exp)
		}
		for _, e := range exps {
			switch left := e.NotAfter.Sub(now); {
			case left <= 0:
				warn(e.Attr, "Certificate expired", "%s: %s %s (%s) expired on %s", r.what, e.Attr, e.File, e.Subject, e.NotAfter.UTC().Format(time.RFC3339))
			case left < ExpiryWarning:
				warn(e.Attr, "Certificate expires soon", "%s: %s %s (%s) expires on %s, in %d days", r.what, e.Attr, e.File, e.Subject,
					e.NotAfter.UTC().Format(time.RFC3339), int(left.Hours()/24))
			}
		}
	}
	return diags
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
