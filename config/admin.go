package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// decodeAdmin reads the admin block; the default token file is set by
// validate, once the role is known.
func (d *decoder) decodeAdmin(r *rawAdmin, a *Admin) {
	d.boolean(r.Enabled, &a.Enabled)
	d.tcpAddress(r.Listen, &a.Listen)
	d.deprecatedDash(&r.TokenFile, "beside the status file or the send buffer")
	d.path(r.TokenFile, &a.TokenFile, needParent)
	if r.AllowedHosts == nil {
		return
	}
	d.stringList(r.AllowedHosts, listMsg{"Invalid allowed_hosts", `allowed_hosts must be a list of host names, e.g. ["backup.example.com:9002"]`},
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
