package daemon

import (
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/fleet"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// fleetTracker is the role of a configuration with a fleet block
// (docs/deploy.md): it relays nothing; it watches its zeo blocks' storages
// and applies the report streams of its sidecars, and publishes.
type fleetTracker struct {
	d      *Daemon
	server *fleet.Server
	ln     net.Listener
}

// open: the publishing parts (the journal replayed after a clean stop too,
// groundtruth.go); no relay.
func (r *fleetTracker) open() error {
	return r.d.openPublishing(publishing{replayClean: true, metadata: true})
}

// bootstrap: the storages are not proxied here, so their last TIDs are
// read over connections of our own. After a replayed journal the tracker
// already stands where it stood (the sidecars kept running: their
// participations are still in flight and their reports resume from the
// tracker's last applied seq), so the watchers just resume; only a storage
// the tracker never watched is bootstrapped. Start the tracker before its
// sidecars the first time. The fleet listener opens last.
func (r *fleetTracker) bootstrap() error {
	d := r.d
	var unwatched []*config.Storage
	for _, s := range zeoStorages(d.cfg) {
		if _, watched := d.Tracker.HistoryPosition(s.ID); watched {
			d.watchFrom(s, 0)
			continue
		}
		unwatched = append(unwatched, s)
	}
	values, failed := d.bootstrapStorages(unwatched)
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
	d.Tracker.Bootstrap(values, d.prevClean)
	for _, s := range unwatched {
		if v, ok := values[s.ID]; ok {
			d.watchFrom(s, v)
		}
	}
	d.retryBootstrap(failed, func(s *config.Storage, tid txn.TID) {
		d.Tracker.Bootstrap(map[string]txn.TID{s.ID: tid}, true)
		d.watchFrom(s, tid)
	})
	return r.listen()
}

// listen opens the fleet listener.
func (r *fleetTracker) listen() error {
	d := r.d
	fc := d.cfg.Fleet
	var tlsCfg *fleet.Certs
	if t := fc.TLS; t != nil {
		var err error
		if tlsCfg, err = fleet.ServerTLS(t.CertFile, t.KeyFile, t.ClientCAFile); err != nil {
			return err
		}
		d.fleetCerts = tlsCfg
	}
	ln, err := net.Listen("tcp", fc.Listen.NetAddress())
	if err != nil {
		return fmt.Errorf("fleet listener: listen on %s: %w", fc.Listen, err)
	}
	var ids []string
	for _, s := range d.cfg.Storages {
		ids = append(ids, s.ID)
	}
	r.ln = ln
	r.server = fleet.NewServer(fleet.ServerConfig{Tracker: d.Tracker, Storages: ids, TLS: tlsCfg, Logger: d.Log.Named("fleet")})
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := r.server.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
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

// tick: the storages a sidecar is behind on (down, resending, refused)
// wait for its resend before their unaccounted commits are reported
// (fleet.Server.Awaited).
func (r *fleetTracker) tick(time.Time) {
	var awaited []string
	if r.server != nil {
		awaited = r.server.Awaited()
	}
	r.d.tickPublishing(awaited...)
}

func (r *fleetTracker) stop() {
	if r.server != nil {
		r.server.Stop()
	}
}

func (r *fleetTracker) abort() {
	if r.server != nil {
		r.server.Stop()
	} else if r.ln != nil {
		_ = r.ln.Close()
	}
}

func (r *fleetTracker) status() StatusSource { return r.d.Tracker }

func (r *fleetTracker) dump(args []any) []any {
	if r.server != nil {
		args = append(args, "fleet_sources", fmt.Sprintf("%+v", r.server.Sources()))
	}
	return args
}

func (r *fleetTracker) parts(p *Parts) {
	r.d.publishingParts(p)
	p.Watchers = r.d.Watchers // every watched storage's history
	p.FleetSidecars = r.sources
	p.FleetRetire = r.retire
}

// sources are the sidecars the tracker has seen.
func (r *fleetTracker) sources() []fleet.SourceStats {
	if r.server == nil {
		return nil
	}
	return r.server.Sources()
}

// retire forgets a sidecar gone for good: POST /fleet/retire, tidstorage
// fleet retire.
func (r *fleetTracker) retire(name string) error {
	if r.server == nil {
		return errors.New("fleet retire: the fleet listener is not open yet")
	}
	return r.server.Retire(name)
}
