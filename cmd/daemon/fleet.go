package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/fleet"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/zrpc"
)

// The fleet roles (docs/deploy.md): a tracker (a fleet block) watches its
// zeo blocks' storages and applies the sidecars' report streams; a sidecar
// (a tracker block) proxies and streams what it observes to its tracker.

// fleetState is the role-specific part of a Daemon.
type fleetState struct {
	server  *fleet.Server // tracker role
	ln      net.Listener
	sidecar *fleet.Sidecar // sidecar role
	certs   *fleet.Certs   // either role, with a tls block: SIGHUP reloads them
	cancel  context.CancelFunc
	done    chan struct{}
}

// Role is what this daemon runs as.
func (d *Daemon) Role() config.Role { return d.cfg.Role() }

// FleetSources returns the sidecars the tracker has seen (tracker role;
// nil otherwise).
func (d *Daemon) FleetSources() []fleet.SourceStats {
	if d.fl.server == nil {
		return nil
	}
	return d.fl.server.Sources()
}

// RetireSidecar forgets a sidecar gone for good (tracker role): POST
// /fleet/retire, tidstorage fleet retire.
func (d *Daemon) RetireSidecar(name string) error {
	if d.fl.server == nil {
		return errors.New("fleet retire: this daemon is not a fleet tracker")
	}
	return d.fl.server.Retire(name)
}

// FleetLink returns the sidecar's link to its tracker (sidecar role).
func (d *Daemon) FleetLink() (fleet.LinkStats, bool) {
	if d.fl.sidecar == nil {
		return fleet.LinkStats{}, false
	}
	return d.fl.sidecar.Stats(), true
}

// FleetAddr is the tracker's fleet listener address (nil otherwise).
func (d *Daemon) FleetAddr() net.Addr {
	if d.fl.ln == nil {
		return nil
	}
	return d.fl.ln.Addr()
}

// openSidecar opens the sidecar's send buffer (sidecar role).
func (d *Daemon) openSidecar() error {
	tc := d.cfg.Tracker
	name := tc.Name
	var tlsCfg *fleet.Certs
	if t := tc.TLS; t != nil {
		sn := t.ServerName
		if sn == "" {
			sn = tc.Address.Host
		}
		var err error
		if tlsCfg, err = fleet.ClientTLS(t.CertFile, t.KeyFile, t.CAFile, sn); err != nil {
			return err
		}
		d.fl.certs = tlsCfg
		// With mutual TLS the name is derived from the certificate
		// (docs/deploy.md, "Sidecar names"): its common name by default.
		if leaf := tlsCfg.Leaf(); name == "" && leaf != nil && leaf.Subject.CommonName != "" {
			name = leaf.Subject.CommonName
		}
	}
	if name == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return fmt.Errorf("sidecar: no name configured and no host name: %v", err)
		}
		name = h
	}
	var ids []string
	for _, s := range d.cfg.Storages {
		if s.ZEO != nil {
			ids = append(ids, s.ID)
		}
	}
	sc, err := fleet.OpenSidecar(fleet.SidecarConfig{Name: name, Address: tc.Address.NetAddress(), TLS: tlsCfg,
		BufferFile: tc.BufferFile, BufferEvents: tc.BufferEvents, Storages: ids, Version: d.version,
		Logger: d.Log.Named("fleet")})
	if err != nil {
		return err
	}
	d.fl.sidecar = sc
	d.Log.Info("sidecar", "name", name, "tracker", tc.Address.String(), "tls", tlsCfg != nil,
		"buffer_file", tc.BufferFile, "part_id_base", sc.PartIDBase())
	return nil
}

// startSidecarLink recovers the previous runs (after the bootstrap read the
// storages' last TIDs) and starts the sender.
func (d *Daemon) startSidecarLink(live map[string]txn.TID) {
	sc := d.fl.sidecar
	if n := sc.PreviousRuns(); n > 0 {
		d.Log.Warn("sidecar restarted: the tracker will resolve the participations its previous run left in flight from the storages' history",
			"previous_runs", n)
		sc.Recover(live)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.fl.cancel, d.fl.done = cancel, make(chan struct{})
	go func() { defer close(d.fl.done); sc.Run(ctx) }()
}

// stopSidecarLink gives the sender a moment to flush, then stops it and
// closes the buffer (what is left is resent at the next start).
func (d *Daemon) stopSidecarLink() {
	sc := d.fl.sidecar
	if sc == nil {
		return
	}
	if d.fl.cancel != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if !sc.Flush(ctx) {
			st := sc.Stats()
			d.Log.Warn("stopping with reports not acknowledged by the tracker; they are resent at the next start",
				"pending", st.Pending, "buffer_file", st.BufferFile)
		}
		cancel()
		d.fl.cancel()
		<-d.fl.done
	}
	if err := sc.Close(); err != nil {
		d.Log.Error("sidecar buffer close", "error", err)
	}
}

// reloadFleetCerts is SIGHUP's part for the fleet link: both roles read
// their TLS files again (same paths); new connections use them, and files
// that do not load leave the previous certificates in use.
func (d *Daemon) reloadFleetCerts() {
	c := d.fl.certs
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

// startFleetServer opens the tracker's fleet listener.
func (d *Daemon) startFleetServer() error {
	fc := d.cfg.Fleet
	var tlsCfg *fleet.Certs
	if t := fc.TLS; t != nil {
		var err error
		if tlsCfg, err = fleet.ServerTLS(t.CertFile, t.KeyFile, t.ClientCAFile); err != nil {
			return err
		}
		d.fl.certs = tlsCfg
	}
	ln, err := net.Listen("tcp", fc.Listen.NetAddress())
	if err != nil {
		return fmt.Errorf("fleet listener: listen on %s: %w", fc.Listen, err)
	}
	var ids []string
	for _, s := range d.cfg.Storages {
		ids = append(ids, s.ID)
	}
	d.fl.ln = ln
	d.fl.server = fleet.NewServer(fleet.ServerConfig{Tracker: d.Tracker, Storages: ids, TLS: tlsCfg, Logger: d.Log.Named("fleet")})
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.fl.server.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			d.Log.Error("fleet listener stopped", "error", err)
		}
	}()
	mode := "mutual TLS"
	if tlsCfg == nil {
		mode = "no TLS: loopback sidecars only"
	}
	d.Log.Info("fleet listener: accepting sidecars", "address", ln.Addr().String(), "auth", mode)
	return nil
}

// bootstrapWatched is the tracker role's bootstrap: the storages are not
// proxied here, so their last TIDs are read over connections of our own.
// After a replayed journal the tracker already stands where it stood (the
// sidecars kept running: their participations are still in flight and
// their reports resume from the tracker's last applied seq), so the
// watchers just resume; only a storage the tracker never watched is
// bootstrapped. Start the tracker before its sidecars the first time.
func (d *Daemon) bootstrapWatched() {
	values := map[string]txn.TID{}
	var fresh []*config.Storage
	for _, s := range d.cfg.Storages {
		if s.ZEO == nil {
			continue
		}
		if _, watched := d.Tracker.HistoryPosition(s.ID); watched {
			d.watchFrom(s, 0)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		tid, err := d.lastTID(ctx, s)
		cancel()
		if err != nil {
			d.Log.Error("bootstrap: cannot read a storage's last TID; retrying in the background", "storage", s.ID, "error", err)
			d.wg.Add(1)
			go d.retryWatched(s)
			continue
		}
		d.Log.Info("bootstrap", "storage", s.ID, "last_tid", tid.Hex())
		values[s.ID] = tid
		fresh = append(fresh, s)
	}
	if !d.prevClean {
		for id, v := range values {
			d.suspectLive(id, v) // no journal and no point to resume from: held at live
		}
	}
	if d.Tracker.JournalStats().Replayed > 0 {
		// The replayed journal may end behind the point this tracker
		// published last (a damaged tail): that point is its floor.
		if floor, err := lastStatusPoint(d.cfg.StatusFile); err == nil {
			d.Tracker.Floor(values, floor)
		}
	}
	// How the previous run stopped is said the same way everywhere (the
	// log, /status, the metrics, tidstorage status): a SIGKILLed tracker
	// starts unclean, although its replayed journal and the sidecars'
	// resends leave nothing to resolve.
	if len(values) > 0 || len(fresh) == 0 {
		d.Tracker.Bootstrap(values, d.prevClean)
	}
	for _, s := range fresh {
		d.watchFrom(s, values[s.ID])
	}
}

func (d *Daemon) retryWatched(s *config.Storage) {
	d.retryLastTID(s.ID, func(ctx context.Context) (txn.TID, error) { return d.lastTID(ctx, s) }, func(tid txn.TID) {
		d.Tracker.Bootstrap(map[string]txn.TID{s.ID: tid}, true)
		d.watchFrom(s, tid)
	})
}

func (d *Daemon) lastTID(ctx context.Context, s *config.Storage) (txn.TID, error) {
	network, addr := "tcp", s.ZEO.Upstream.NetAddress()
	if s.ZEO.Upstream.IsUnix() {
		network = "unix"
	}
	c, err := zrpc.Dial(ctx, network, addr, &zrpc.ClientOptions{CallTimeout: 10 * time.Second, TLS: d.upstreamTLSConfig(s.ZEO)})
	if err != nil {
		return 0, fmt.Errorf("server %s (%s): %w", s.ZEO.Name, s.ZEO.Upstream, err)
	}
	defer c.Close()
	if _, err := c.Register(ctx, s.Name, true); err != nil {
		return 0, fmt.Errorf("storage %q: register: %w", s.Name, err)
	}
	return c.LastTransaction(ctx)
}
