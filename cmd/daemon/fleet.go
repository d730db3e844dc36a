package daemon

import (
	"net"
	"time"
)

// The fleet roles (docs/deploy.md): a tracker (a fleet block, the
// fleetTracker role) watches its zeo blocks' storages and applies the
// sidecars' report streams; a sidecar (a tracker block, the sidecar role)
// proxies and streams what it observes to its tracker. What both ends
// share is here: the link's TLS files.

// FleetAddr is the tracker's fleet listener address (nil in other roles).
func (d *Daemon) FleetAddr() net.Addr {
	if r, ok := d.role.(*fleetTracker); ok && r.ln != nil {
		return r.ln.Addr()
	}
	return nil
}

// reloadFleetCerts is SIGHUP's part for the fleet link: both roles read
// their TLS files again (same paths); new connections use them, and files
// that do not load leave the previous certificates in use.
func (d *Daemon) reloadFleetCerts() {
	c := d.fleetCerts
	if c == nil {
		return
	}
	certFile, keyFile, caFile := c.Files()
	if err := c.Reload(); err != nil {
		d.Log.Error("SIGHUP: the fleet TLS files do not load; the previous certificates stay in use", "error", err)
		return
	}
	args := []any{"cert_file", certFile, "key_file", keyFile, "ca_file", caFile}
	if leaf := c.Leaf(); leaf != nil {
		args = append(args, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		if time.Now().After(leaf.NotAfter) {
			d.Log.Warn("SIGHUP: the fleet certificate read is expired: the other end will refuse new connections", args...)
		}
	}
	d.Log.Info("SIGHUP: fleet TLS files reloaded: new connections use them", args...)
}
