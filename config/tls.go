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

// tlsAttrs are the attributes of one TLS block as written (nil: absent).
type tlsAttrs struct {
	cert, key, ca, clientCA, serverName *hcl.Attribute
}

// tls decodes a TLS block's files and server name, and records the block
// for CheckPaths.
func (d *decoder) tls(what string, role tlsfiles.Role, block hcl.Range, a tlsAttrs) *TLS {
	t := &TLS{}
	ref := tlsRef{what: what, role: role, t: t, block: block, attrs: map[string]hcl.Range{}}
	for _, f := range []struct {
		attr *hcl.Attribute
		dst  *string
	}{{a.cert, &t.CertFile}, {a.key, &t.KeyFile}, {a.ca, &t.CAFile}, {a.clientCA, &t.ClientCAFile}} {
		if f.attr != nil {
			d.path(f.attr, f.dst, needFile)
			ref.attrs[f.attr.Name] = f.attr.Expr.Range()
		}
	}
	d.str(a.serverName, &t.ServerName)
	d.tlsRefs = append(d.tlsRefs, ref)
	return t
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
