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
	what string // `zeo "main" tls`, for messages
	t    *TLS
	// cert is where the certificate was written (nil: not written); cas
	// are the CA files written (ca_file, client_ca_file).
	cert *hcl.Attribute
	cas  []tlsCA
}

// tlsCA is a CA file as written and as decoded.
type tlsCA struct {
	attr *hcl.Attribute
	path *string
}

// tlsAttrs are the attributes of one TLS block as written (nil: absent).
type tlsAttrs struct {
	cert, key, ca, clientCA, serverName *hcl.Attribute
}

// tls decodes a TLS block's files and server name, and records the block
// for CheckPaths.
func (d *decoder) tls(what string, a tlsAttrs) *TLS {
	t := &TLS{}
	d.path(a.cert, &t.CertFile, needFile)
	d.path(a.key, &t.KeyFile, needFile)
	d.path(a.ca, &t.CAFile, needFile)
	d.path(a.clientCA, &t.ClientCAFile, needFile)
	d.str(a.serverName, &t.ServerName)
	ref := tlsRef{what: what, t: t, cert: a.cert}
	for _, ca := range []tlsCA{{a.ca, &t.CAFile}, {a.clientCA, &t.ClientCAFile}} {
		if ca.attr != nil {
			ref.cas = append(ref.cas, ca)
		}
	}
	d.tlsRefs = append(d.tlsRefs, ref)
	return t
}

// checkTLS loads every TLS block's files as serve would and warns, at the
// attribute, about a certificate that does not match its key, a CA file
// without certificates, and a certificate expired or about to expire.
// Files that do not exist are left to the path checks.
func (c *Config) checkTLS(now time.Time) hcl.Diagnostics {
	var diags hcl.Diagnostics
	warn := func(at *hcl.Attribute, summary, format string, a ...any) {
		rng := at.Expr.Range()
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary,
			Detail: fmt.Sprintf(format, a...), Subject: &rng})
	}
	type expiry struct {
		tlsfiles.Expiry
		at *hcl.Attribute
	}
	for _, r := range c.tlsRefs {
		var exps []expiry
		if t := r.t; r.cert != nil && t.CertFile != "" && t.KeyFile != "" && exists(t.CertFile) && exists(t.KeyFile) {
			exp, err := tlsfiles.CheckPair(t.CertFile, t.KeyFile)
			if err != nil {
				warn(r.cert, "TLS files do not load", "%s: %v", r.what, err)
			} else {
				exp.Attr = r.cert.Name
				exps = append(exps, expiry{exp, r.cert})
			}
		}
		for _, ca := range r.cas {
			path := *ca.path
			if !exists(path) {
				continue
			}
			exp, err := tlsfiles.CheckCA(path)
			if err != nil {
				warn(ca.attr, "TLS files do not load", "%s: %s %s: %v", r.what, ca.attr.Name, path, err)
				continue
			}
			exp.Attr = ca.attr.Name
			exps = append(exps, expiry{exp, ca.attr})
		}
		for _, e := range exps {
			switch left := e.NotAfter.Sub(now); {
			case left <= 0:
				warn(e.at, "Certificate expired", "%s: %s %s (%s) expired on %s", r.what, e.Attr, e.File, e.Subject, e.NotAfter.UTC().Format(time.RFC3339))
			case left < ExpiryWarning:
				warn(e.at, "Certificate expires soon", "%s: %s %s (%s) expires on %s, in %d days", r.what, e.Attr, e.File, e.Subject,
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
