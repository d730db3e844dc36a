package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/tidstorage/tidstorage/config"
)

const configCheckHelp = `
Reads FILE, reports every error as file:line:col (all at once) and exits 1,
or prints OK with the listen addresses and storages it describes and exits 0
(each storage by its id, preceded by "LABEL =" when backups and restores
name it otherwise: docs/backup.md, "Names"). Warnings go to stderr, before
the OK line that counts them, and do not change the exit code: among them, paths
that cannot work as written today (a certificate or data_fs that does not
exist, the directory of a status, journal, log or pid file that does not),
and TLS files that exist but do not load (a certificate that does not match
its key, a CA file without a certificate) or whose certificate is expired or
expires within 30 days.`

func runConfigCheck(c *cli, args []string) int {
	const name = "config check"
	fs := c.flagSet(name)
	path := configFlag(fs)
	quiet := fs.Bool("q", false, "print nothing on success")
	if ok, code := c.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.usageError(name, "unexpected argument %q (the file is given with -c)", fs.Arg(0))
	}
	if *path == "" {
		return c.usageError(name, "missing -c FILE")
	}
	cfg, err := config.Load(*path)
	var cerr *config.Error
	switch {
	case errors.As(err, &cerr):
		fmt.Fprintln(c.stderr, cerr)
		n := len(cerr.Diagnostics)
		fmt.Fprintf(c.stderr, "%s: %d error%s\n", *path, n, plural(n))
		return 1
	case err != nil:
		return c.fail(name, err)
	}
	warnings := append(cfg.Warnings, cfg.CheckPaths()...)
	for _, w := range warnings {
		fmt.Fprintln(c.stderr, config.FormatDiagnostic(w))
	}
	if !*quiet {
		if n := len(warnings); n > 0 {
			// Warnings went to stderr first; the verdict says they exist.
			fmt.Fprintf(c.stdout, "OK %s, with %d warning%s (printed on stderr)\n", *path, n, plural(n))
		} else {
			fmt.Fprintf(c.stdout, "OK %s\n", *path)
		}
		summarize(c.stdout, cfg)
	}
	return 0
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// summarize prints what an operator checks before starting the daemon: what
// listens where, and the key of every storage.
func summarize(w io.Writer, cfg *config.Config) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "role\t%s\t\n", cfg.Role())
	if f := cfg.Fleet; f != nil {
		auth := "mutual TLS"
		if f.TLS == nil {
			auth = "no TLS: accepts sidecars on this host (loopback) only"
		}
		fmt.Fprintf(tw, "fleet\t%s\t%s\n", f.Listen, auth)
	}
	if t := cfg.Tracker; t != nil {
		auth := "mutual TLS"
		if t.TLS == nil {
			auth = "no TLS: the tracker must be on this host (loopback)"
		}
		name := t.Name
		if name == "" {
			name = "(host name)"
		}
		fmt.Fprintf(tw, "tracker\t%s\tas %s, %s\n", t.Address, name, auth)
	}
	if cfg.Classic.Enabled {
		allow := make([]string, len(cfg.Classic.Allow))
		for i, p := range cfg.Classic.Allow {
			allow[i] = p.String()
		}
		idle := "off"
		if cfg.Classic.IdleTimeout > 0 {
			idle = cfg.Classic.IdleTimeout.String()
		}
		fmt.Fprintf(tw, "classic\t%s\tallow %s, max %d connections, idle timeout %s\n", cfg.Classic.Listen, strings.Join(allow, ", "),
			cfg.Classic.MaxConnections, idle)
	} else {
		fmt.Fprintf(tw, "classic\toff\t\n")
	}
	if cfg.Admin.Enabled {
		token := "token " + cfg.Admin.TokenFile
		if cfg.Admin.TokenFile == "" {
			token = "no token file: POST refused, /status redacted"
		}
		fmt.Fprintf(tw, "admin\t%s\t/metrics /status /healthz, %s\n", cfg.Admin.Listen, token)
	} else {
		fmt.Fprintf(tw, "admin\toff\t\n")
	}
	switch {
	case cfg.Role() == config.RoleSidecar:
		buffer := "none: reports in memory only (a restart is a gap)"
		if cfg.Tracker.BufferFile != "" {
			buffer = cfg.Tracker.BufferFile
		}
		fmt.Fprintf(tw, "send buffer\t%s\tup to %d reports\n", buffer, cfg.Tracker.BufferEvents)
	case cfg.StatusFile == "":
		fmt.Fprintf(tw, "status file\tnone\tpublished points are not recorded\n")
	default:
		fmt.Fprintf(tw, "status file\t%s\ta line every %s after commits, a full one every %s\n", cfg.StatusFile, cfg.BurstPeriod, cfg.FullDumpPeriod)
	}
	for _, z := range cfg.ZEO {
		upTLS := ""
		if t := z.UpstreamTLS; t != nil {
			upTLS = fmt.Sprintf(" over TLS (server name %s", t.ServerName)
			if t.CertFile != "" {
				upTLS += ", client certificate"
			}
			upTLS += ")"
		}
		if z.Listen.IsZero() {
			fmt.Fprintf(tw, "zeo %q\twatched\tupstream %s%s (proxied by sidecars)\n", z.Name, z.Upstream, upTLS)
			continue
		}
		via := ""
		if z.ClientAddress != z.Listen {
			via = fmt.Sprintf(" (clients dial %s)", z.ClientAddress)
		}
		listen := z.Listen.String()
		if t := z.TLS; t != nil {
			listen += " TLS"
			if t.ClientCAFile != "" {
				listen += " (client certificates required)"
			}
		}
		fmt.Fprintf(tw, "zeo %q\t%s\t-> upstream %s%s%s\n", z.Name, listen, z.Upstream, upTLS, via)
	}
	tw.Flush()
	labels := map[string]string{}
	for _, r := range storageRefs(cfg) {
		labels[r.ID] = r.Label
	}
	// Storage ids are long: their own columns.
	fmt.Fprintf(w, "storages: %d\n", len(cfg.Storages))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range cfg.Storages {
		where := "classic reports only"
		if s.ZEO != nil {
			where = fmt.Sprintf("zeo %q storage %q", s.ZEO.Name, s.Name)
		}
		files := ""
		if s.DataFS != "" {
			files += " data_fs " + s.DataFS
		}
		if s.Repository != "" {
			files += " repository " + s.Repository
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", storageDisplay(s.ID, labels[s.ID]), where, strings.TrimSpace(files))
	}
	tw.Flush()
}
