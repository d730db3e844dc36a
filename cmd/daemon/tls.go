package daemon

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/internal/tlsfiles"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// The zeo blocks' TLS files (docs/deploy.md, "ZEO over TLS"): read at
// start (a file that does not load stops the start) and again on SIGHUP,
// where files that do not load leave the previous ones in use. tls
// terminates the clients' TLS at the proxy's listener; upstream_tls is
// used by every connection to the ZEO server: the relayed ones, the
// bootstrap, the witness and resolution connections, the history watchers.

// tlsState holds the loaded files, by zeo block.
type tlsState struct {
	listen   map[*config.ZEO]*tlsfiles.Set
	upstream map[*config.ZEO]*tlsfiles.Set
}

// loadTLS reads every zeo block's TLS files.
func (d *Daemon) loadTLS() error {
	st := &d.tls
	st.listen, st.upstream = map[*config.ZEO]*tlsfiles.Set{}, map[*config.ZEO]*tlsfiles.Set{}
	for _, z := range d.cfg.ZEO {
		if t := z.TLS; t != nil {
			set, err := tlsfiles.New(tlsBlock(z, "tls"), tlsfiles.Server,
				tlsfiles.Files{CertFile: t.CertFile, KeyFile: t.KeyFile, CAFile: t.ClientCAFile})
			if err != nil {
				return fmt.Errorf("zeo %q tls: %w", z.Name, err)
			}
			st.listen[z] = set
		}
		if t := z.UpstreamTLS; t != nil {
			set, err := tlsfiles.New(tlsBlock(z, "upstream_tls"), tlsfiles.Client,
				tlsfiles.Files{CertFile: t.CertFile, KeyFile: t.KeyFile, CAFile: t.CAFile, ServerName: t.ServerName})
			if err != nil {
				return fmt.Errorf("zeo %q upstream_tls: %w", z.Name, err)
			}
			st.upstream[z] = set
		}
	}
	return nil
}

func tlsBlock(z *config.ZEO, kind string) string { return "zeo." + z.Name + "." + kind }

// applyTLS gives the relay's settings their TLS (pc.Servers follows
// cfg.ZEO, see proxyConfig).
func (d *Daemon) applyTLS(pc *zeoproxy.Config) {
	for i, z := range d.cfg.ZEO {
		if set := d.tls.listen[z]; set != nil {
			pc.Servers[i].TLS = set.Config
		}
		pc.Servers[i].UpstreamTLS = d.upstreamTLS(z)
	}
}

// upstreamTLS is the TLS configuration source of connections to z's ZEO
// server (called per connection), nil for plaintext.
func (d *Daemon) upstreamTLS(z *config.ZEO) func() *tls.Config {
	if set := d.tls.upstream[z]; set != nil {
		return set.Config
	}
	return nil
}

// upstreamTLSConfig is the TLS configuration of one new connection to z's
// ZEO server, nil for plaintext.
func (d *Daemon) upstreamTLSConfig(z *config.ZEO) *tls.Config {
	if f := d.upstreamTLS(z); f != nil {
		return f()
	}
	return nil
}

// reloadTLS is SIGHUP's part for the zeo blocks: each block's files are
// read again; new connections use them, established ones keep theirs.
func (d *Daemon) reloadTLS() {
	for _, z := range d.cfg.ZEO {
		for _, set := range []*tlsfiles.Set{d.tls.listen[z], d.tls.upstream[z]} {
			if set == nil {
				continue
			}
			f := set.Files()
			if err := set.Reload(); err != nil {
				d.Log.Error("SIGHUP: TLS files do not load; the previous certificates stay in use", "zeo", z.Name,
					"cert_file", f.CertFile, "error", err)
				continue
			}
			args := []any{"zeo", z.Name}
			now := time.Now()
			for _, e := range set.Expiries() {
				args = append(args, e.Attr, e.File, e.Attr+"_not_after", e.NotAfter.UTC().Format(time.RFC3339))
				if now.After(e.NotAfter) {
					d.Log.Warn("SIGHUP: a TLS file read holds an expired certificate: the other end refuses new connections",
						"zeo", z.Name, e.Attr, e.File, "subject", e.Subject)
				}
			}
			d.Log.Info("SIGHUP: TLS files reloaded: new connections use them", args...)
		}
	}
}

// Certificates lists every loaded certificate file with when it expires:
// the zeo blocks' tls and upstream_tls, and the fleet link's, as in use.
// The admin endpoint exports them (tidstorage_certificate_expiry_timestamp_seconds).
func (d *Daemon) Certificates() []tlsfiles.Expiry {
	var out []tlsfiles.Expiry
	for _, z := range d.cfg.ZEO {
		for _, set := range []*tlsfiles.Set{d.tls.listen[z], d.tls.upstream[z]} {
			if set != nil {
				out = append(out, set.Expiries()...)
			}
		}
	}
	if c := d.fleetCerts; c != nil {
		out = append(out, c.Expiries()...)
	}
	return out
}

// HasTLS reports whether the configuration has any TLS block (the admin
// endpoint exports the certificates' expiry then).
func HasTLS(cfg *config.Config) bool {
	for _, z := range cfg.ZEO {
		if z.TLS != nil || z.UpstreamTLS != nil {
			return true
		}
	}
	return (cfg.Fleet != nil && cfg.Fleet.TLS != nil) || (cfg.Tracker != nil && cfg.Tracker.TLS != nil)
}
