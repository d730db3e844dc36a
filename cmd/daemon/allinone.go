package daemon

import (
	"time"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// allInOne is the role of a configuration with neither a fleet nor a
// tracker block: one process relays its zeo blocks' clients, tracks their
// commits and publishes coherent points (docs/deploy.md).
type allInOne struct {
	d *Daemon
}

// open: the publishing parts, then the relay, reporting to the tracker.
func (r *allInOne) open() error {
	d := r.d
	if err := d.openPublishing(publishing{}); err != nil {
		return err
	}
	return d.openProxy(d.Tracker, 0)
}

// bootstrap reads every proxied storage's last TID before the proxy
// accepts its first client: those TIDs are the first point. After an
// unclean stop the tracker first resolves the previous process's
// participations against them. Every proxied storage's history is watched
// from there.
func (r *allInOne) bootstrap() error {
	d := r.d
	clean := d.prevClean
	values, failed := d.bootstrapStorages(zeoStorages(d.cfg))
	var floor map[string]txn.TID
	if !clean {
		// The participations the previous process had in flight end with
		// its connections; the history resolves the ones in doubt. The
		// point it published last is a floor for the replayed state: a
		// journal that ends behind it (damaged, or no longer written) must
		// not make published TIDs go back.
		var err error
		floor, err = lastStatusPoint(d.cfg.StatusFile)
		if err != nil && d.cfg.StatusFile != "" {
			d.Log.Warn("the status file's last point cannot be read: no floor for the replayed state", "error", err)
		}
		d.Tracker.Recover(values, floor)
		for id, v := range values {
			d.suspectLive(id, v)
		}
	}
	d.Tracker.Bootstrap(values, clean)
	for _, s := range d.cfg.Storages {
		if s.ZEO == nil {
			continue
		}
		if v, ok := values[s.ID]; ok {
			// A storage the replayed journal does not watch yet (it lost
			// its tail before) is watched from the point published last,
			// not from its live state: what the dead process committed
			// since is accounted for by the history, or held.
			if f, ok := floor[s.ID]; ok && f < v {
				v = f
			}
			d.watchFrom(s, v)
		} else if _, watched := d.Tracker.HistoryPosition(s.ID); watched {
			d.watchFrom(s, 0) // the replayed journal knows where it stands
		}
	}
	d.retryBootstrap(failed, func(s *config.Storage, tid txn.TID) {
		if !d.prevClean {
			d.Tracker.SettleAt(s.ID, tid)
			d.suspectLive(s.ID, tid)
		}
		d.Tracker.Bootstrap(map[string]txn.TID{s.ID: tid}, true)
		d.watchFrom(s, tid)
	})
	return nil
}

func (r *allInOne) tick(_ time.Time)      { r.d.tickPublishing() }
func (r *allInOne) stop()                 {}
func (r *allInOne) abort()                {}
func (r *allInOne) status() StatusSource  { return r.d.Tracker }
func (r *allInOne) dump(args []any) []any { return args }

func (r *allInOne) parts(p *Parts) {
	r.d.publishingParts(p)
	if r.d.Proxy != nil {
		p.Watchers = r.d.Watchers // every proxied storage's history
	}
}
