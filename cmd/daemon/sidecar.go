package daemon

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/tidstorage/tidstorage/fleet"
	"github.com/tidstorage/tidstorage/tracker"
)

// sidecar is the role of a configuration with a tracker block
// (docs/deploy.md): it relays its zeo blocks' clients and streams what it
// observes to its tracker through its send buffer. It publishes nothing and
// has no tracker of its own: /status, /metrics and /readyz answer from what
// it has (status).
type sidecar struct {
	d      *Daemon
	sc     *fleet.Sidecar
	cancel context.CancelFunc
	done   chan struct{}
	ready  atomic.Bool // the storages were read and the proxy serves
}

// open opens the send buffer, then the relay, reporting to it with
// participation ids from this run's range.
func (r *sidecar) open() error {
	d := r.d
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
		d.fleetCerts = tlsCfg
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
	for _, s := range zeoStorages(d.cfg) {
		ids = append(ids, s.ID)
	}
	sc, err := fleet.OpenSidecar(fleet.SidecarConfig{Name: name, Address: tc.Address.NetAddress(), TLS: tlsCfg,
		BufferFile: tc.BufferFile, BufferEvents: tc.BufferEvents, Storages: ids, Version: d.version,
		Logger: d.Log.Named("fleet")})
	if err != nil {
		return err
	}
	r.sc = sc
	d.Log.Info("sidecar", "name", name, "tracker", tc.Address.String(), "tls", tlsCfg != nil,
		"buffer_file", tc.BufferFile, "part_id_base", sc.PartIDBase())
	return d.openProxy(sc, sc.PartIDBase())
}

// bootstrap reads the proxied storages' last TIDs (the relay's floor for
// in-doubt resolution, and what the tracker settles a previous run at),
// recovers the previous runs and starts the sender.
func (r *sidecar) bootstrap() error {
	d := r.d
	live, failed := d.bootstrapStorages(zeoStorages(d.cfg))
	if n := r.sc.PreviousRuns(); n > 0 {
		d.Log.Warn("sidecar restarted: the tracker will resolve the participations its previous run left in flight from the storages' history",
			"previous_runs", n)
		r.sc.Recover(live)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() { defer close(r.done); r.sc.Run(ctx) }()
	d.retryBootstrap(failed, nil) // the relay's floor only
	r.ready.Store(true)
	return nil
}

func (r *sidecar) tick(time.Time) {}

// stop gives the sender a moment to flush, then stops it and closes the
// buffer (what is left is resent at the next start).
func (r *sidecar) stop() {
	d := r.d
	if r.cancel != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if !r.sc.Flush(ctx) {
			st := r.sc.Stats()
			d.Log.Warn("stopping with reports not acknowledged by the tracker; they are resent at the next start",
				"pending", st.Pending, "buffer_file", st.BufferFile)
		}
		cancel()
		r.cancel()
		<-r.done
	}
	if err := r.sc.Close(); err != nil {
		d.Log.Error("sidecar buffer close", "error", err)
	}
}

func (r *sidecar) abort() {
	if r.sc != nil {
		_ = r.sc.Close()
	}
}

func (r *sidecar) status() StatusSource { return r }

func (r *sidecar) dump(args []any) []any {
	return append(args, "fleet_link", fmt.Sprintf("%+v", r.sc.Stats()))
}

func (r *sidecar) parts(p *Parts) {
	p.FleetLink = r.sc.Stats
}

// Status is what a sidecar has of a tracker's status: ready once its
// storages were read and its proxy serves; no storage, participation or pin
// (its tracker holds them).
func (r *sidecar) Status() tracker.Status {
	return tracker.Status{Time: time.Now().UnixNano(), Bootstrapped: r.ready.Load(), CleanStart: true}
}

// Counters: a sidecar counts nothing of a tracker's (its link's figures are
// on /fleet).
func (r *sidecar) Counters() tracker.Counters { return tracker.Counters{} }

// AcceptPartial: a sidecar holds no pin; its tracker does.
func (r *sidecar) AcceptPartial(pin uint64) error {
	return fmt.Errorf("%w: a sidecar holds no pin; accept on its tracker (pin %d)", tracker.ErrNoSuchPin, pin)
}
