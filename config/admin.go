package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// decodeAdmin reads the admin block; the default token file is set later,
// once the role is known (defaultTokenFile).
func (d *decoder) decodeAdmin(b *hcl.Block, a *Admin) {
	c := d.content(b.Body, adminSchema)
	d.boolean(c.Attributes["enabled"], &a.Enabled)
	d.tcpAddress(c.Attributes["listen"], &a.Listen)
	a.TokenFile = "-" // not given: defaultTokenFile decides
	if attr := c.Attributes["token_file"]; attr != nil {
		d.path(attr, &a.TokenFile)
	}
	attr := c.Attributes["allowed_hosts"]
	if attr == nil {
		return
	}
	d.stringList(attr, listMsg{"Invalid allowed_hosts", `allowed_hosts must be a list of host names, e.g. ["backup.example.com:9002"]`},
		listMsg{"Invalid host", `allowed_hosts entries must be strings such as "backup.example.com:9002"`}, func(e hcl.Expression, s string) {
			h, err := parseAllowedHost(s)
			if err != nil {
				d.errorf(e.Range(), "Invalid host", "%v", err)
				return
			}
			a.AllowedHosts = append(a.AllowedHosts, h)
		})
}

// parseAllowedHost checks one allowed_hosts entry, "name:port" or "name",
// and returns it in lower case (Host headers compare case-insensitively).
func parseAllowedHost(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("allowed_hosts entry %q: %s; write a name as clients put it in the Host header, e.g. \"backup.example.com:9002\"", s, why)
	}
	if s == "" {
		return bad("empty")
	}
	if strings.ContainsAny(s, " \t\r\n/@?#") || strings.Contains(s, "://") {
		return bad("not a host name (no scheme, path or spaces)")
	}
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return bad("the port is not a number between 1 and 65535")
		}
		host = h
	} else if strings.Count(s, ":") == 1 {
		return bad("the port is missing after ':'")
	}
	if host == "" {
		return bad("the host is empty")
	}
	return strings.ToLower(s), nil
}

// defaultTokenFile sets the admin token file when the admin block did not
// name one: beside the status file, or a sidecar's send buffer. It warns
// when there is none (POSTs refused, /status redacted).
func (d *decoder) defaultTokenFile(cfg *Config, block *hcl.Block, body hcl.Body) {
	a := &cfg.Admin
	if a.TokenFile != "-" && a.TokenFile != "" {
		return
	}
	a.TokenFile = ""
	switch {
	case cfg.Tracker != nil:
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
	at := body.MissingItemRange()
	if block != nil {
		at = block.DefRange
	}
	d.warnf(at, "No admin token file",
		"neither status_file nor admin { token_file } is set: POST /accept-partial is refused and /status is served redacted; set admin { token_file = \"/var/lib/tidstorage/admin.token\" }")
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
