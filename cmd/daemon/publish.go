package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/tracker/classic"
	"github.com/tidstorage/tidstorage/tracker/history"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
)

// The parts of the roles that publish coherent points (all-in-one and fleet
// tracker; a sidecar has none of them): the status file and its running
// marker, the tracker, its journal (replayed first, groundtruth.go), the
// describer of unaccounted commits and the classic endpoint.

// publishing says how a role publishes.
type publishing struct {
	// replayClean: the journal is replayed after a clean stop too (a fleet
	// tracker: its sidecars kept running, with participations in flight
	// and report streams whose numbering the journal keeps).
	replayClean bool
	// metadata: the history watchers read each commit's metadata (a fleet
	// tracker matches the in-doubt participations of a restarted sidecar
	// against commits its history already reported: tracker/recover.go,
	// RecoverRun).
	metadata bool
}

// openPublishing opens them, in that order.
func (d *Daemon) openPublishing(pub publishing) error {
	cfg := d.cfg
	d.pub = pub
	d.prevClean = d.checkMarker()
	if cfg.StatusFile != "" {
		// The Writer is the file's one owner: its goroutine writes, fsyncs,
		// cuts back and retries; it repairs a torn tail and starts a new
		// epoch when the storages went back (tracker/statusfile).
		var err error
		d.sf, err = statusfile.Open(cfg.StatusFile, statusfile.Options{BurstPeriod: cfg.BurstPeriod,
			FullDumpPeriod: cfg.FullDumpPeriod, CloseTimeout: 30 * time.Second, Logger: d.Log.Named("statusfile")})
		if err != nil {
			return fmt.Errorf("status file: %w", err)
		}
	} else {
		d.Log.Warn("no status_file configured: published points are not recorded for backups")
	}
	switch {
	case cfg.StatusFile == "":
		d.prevRun = PrevUnknown
	case !d.prevClean:
		d.prevRun = PrevUnclean
	case d.sf.Stats().FileLines == 0:
		d.prevRun = PrevNone
	default:
		d.prevRun = PrevClean
	}
	var ids []string
	for _, s := range cfg.Storages {
		ids = append(ids, s.ID)
	}
	d.Tracker = tracker.NewService(tracker.ServiceConfig{
		Config: tracker.Config{ClassicTimeout: cfg.ClassicTxnTimeout, Storages: ids,
			UnaccountedGrace: cfg.UnaccountedGrace, ClassicOnly: len(cfg.ZEO) == 0},
		Logger:     d.Log.Named("tracker"),
		StatusFile: d.sf,
		OnRecord:   d.onRecord,
	})
	if d.markerErr != nil {
		d.Tracker.HoldPublication(holdMarker, "the running marker cannot be written ("+tracker.IOReason(d.markerErr)+")")
	}
	d.gt.watchers = map[string]*history.Watcher{}
	d.gt.unacc = make(chan tracker.Record, 64)
	d.gt.ctx, d.gt.cancel = context.WithCancel(context.Background())
	d.wg.Add(1)
	go d.describeUnaccounted()
	if err := d.openJournal(d.prevClean); err != nil {
		return err
	}
	return d.startClassic()
}

// tickPublishing is the publishing roles' tick: the running marker retried,
// then the tracker's (awaited: the storages a fleet tracker waits for a
// sidecar's resend on, see fleet.Server.Awaited).
func (d *Daemon) tickPublishing(awaited ...string) {
	d.retryMarker()
	d.Tracker.Tick(awaited...)
}

// What PreviousRun says of the run before this one.
const (
	PrevClean   = "clean"   // it stopped cleanly
	PrevUnclean = "unclean" // it did not (the running marker was left)
	PrevNone    = "none"    // there was none: the status file was new or empty
	PrevUnknown = "unknown" // not tracked: no status file (the marker sits beside it)
)

// PreviousRun says how the run before this one ended (PrevClean...).
func (d *Daemon) PreviousRun() string { return d.prevRun }

// checkMarker reports whether the previous run stopped cleanly, and marks
// this one as running. The marker sits beside the status file.
func (d *Daemon) checkMarker() bool {
	if d.cfg.StatusFile == "" {
		return true
	}
	d.marker = d.cfg.StatusFile + ".running"
	_, err := os.Stat(d.marker)
	clean := errors.Is(err, os.ErrNotExist)
	if !clean {
		d.Log.Error("the previous run did not stop cleanly: the live storages may hold half a transaction; the last coherent point before the crash is in the status file",
			"status_file", d.cfg.StatusFile)
	}
	if err := d.writeMarker(); err != nil {
		// Without it, a crash would pass for a clean stop at the next start:
		// publication is held until it can be written (tick).
		d.markerErr = err
		d.Log.Error("cannot write the running marker beside the status file: PUBLICATION IS HELD until it can be written (tried every second); ZODB traffic is relayed as usual",
			"marker", d.marker, "error", err)
	}
	return clean
}

// writeMarker writes the running marker. A marker left by a write that
// failed half-way (a full disk: the file was made, its content was not)
// still marks the run.
func (d *Daemon) writeMarker() error {
	err := os.WriteFile(d.marker, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	if err != nil {
		if _, serr := os.Stat(d.marker); serr == nil {
			return nil
		}
	}
	return err
}

// holdMarker is the cause of a publication hold while the running marker
// cannot be written.
const holdMarker = "marker"

// retryMarker writes the running marker that could not be written at start
// and ends the publication hold it caused (tick).
func (d *Daemon) retryMarker() {
	if d.markerErr == nil {
		return
	}
	if err := d.writeMarker(); err != nil {
		return
	}
	d.markerErr = nil
	d.Tracker.ReleasePublication(holdMarker)
	d.Log.Warn("the running marker is written: publication resumes", "marker", d.marker)
}

func (d *Daemon) startClassic() error {
	cc := d.cfg.Classic
	if !cc.Enabled {
		return nil
	}
	ln, err := net.Listen("tcp", cc.Listen.NetAddress())
	if err != nil {
		return fmt.Errorf("classic endpoint: listen on %s: %w", cc.Listen, err)
	}
	d.classicLn = ln
	d.Classic = classic.NewServer(d.Tracker, classic.Options{Logger: d.Log, MaxFieldSize: int(d.cfg.Limits.MaxClassicField),
		MaxCount: d.cfg.Limits.MaxClassicCount, MaxConns: cc.MaxConnections, Allow: cc.IPNets(), IdleTimeout: cc.IdleTimeout})
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.Classic.Serve(ln); err != nil && !errors.Is(err, classic.ErrServerClosed) {
			d.Log.Error("classic endpoint stopped", "error", err)
		}
	}()
	return nil
}
