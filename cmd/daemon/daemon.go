// Package daemon is `tidstorage serve`: it wires the configuration, the
// tracker, the status file, the ZEO proxy, the classic endpoint and the admin
// endpoint together, and stops them in the right order.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/tracker/classic"
	"github.com/tidstorage/tidstorage/tracker/history"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// Options of Start.
type Options struct {
	Config  *config.Config
	Version string
	// Stderr receives the log when the config names no log file (default
	// os.Stderr).
	Stderr io.Writer
	// AdminHandler, if set, builds the admin endpoint's handler (/metrics,
	// /status, ...) from the running daemon.
	AdminHandler func(d *Daemon) http.Handler
	// OnTick, if set, is called from the daemon's once-a-second tick (after
	// the tracker's), until the daemon stops: the status page's lag history.
	OnTick func(now time.Time)
	// StateLock, if set, is the lock of the configuration's files, taken by
	// the caller (LockState) before it read any of them (the admin token);
	// Start takes it itself otherwise. Either way the Daemon releases it when
	// it stops, or when Start fails.
	StateLock *StateLock
}

// Daemon is a running tidstorage.
type Daemon struct {
	cfg     *config.Config
	version string
	Log     hclog.Logger
	logFile *reopenFile

	sf      *statusfile.Writer // nil without a status file; the Tracker feeds it and closes it
	Tracker *tracker.Service
	Proxy   *zeoproxy.Proxy // nil without zeo blocks
	Classic *classic.Server // nil when disabled

	classicLn  net.Listener
	admin      *http.Server
	lock       *StateLock
	marker     string // exists while running: its presence at start means the last stop was unclean
	markerErr  error  // the marker could not be written yet (publication held; tick retries)
	prevClean  bool
	prevRun    string // PreviousRun's answer, set at start
	pidWritten bool

	gt         groundTruth               // groundtruth.go
	arch       atomic.Pointer[Archiving] // archive.go; nil without an archive block
	archCancel context.CancelFunc
	fl         fleetState // fleet.go
	tls        tlsState   // tls.go
	onTick     func(time.Time)

	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
	started  time.Time
}

// Start brings everything up: when it returns, the proxy accepts clients and
// the endpoints serve.
func Start(opts Options) (d *Daemon, err error) {
	cfg := opts.Config
	d = &Daemon{cfg: cfg, version: opts.Version, stop: make(chan struct{}), started: time.Now(), lock: opts.StateLock, onTick: opts.OnTick}
	// One process per state: the files are locked before anything of them
	// is read or written (the log file included).
	if d.lock == nil {
		if d.lock, err = LockState(cfg); err != nil {
			return nil, err
		}
	}
	if err := d.openLog(opts.Stderr); err != nil {
		d.lock.Release()
		return nil, err
	}
	defer func() {
		if err != nil {
			d.abortStart()
		}
	}()
	d.Log.Info("starting tidstorage", "version", opts.Version, "config", cfg.File)
	for _, note := range d.lock.takeovers {
		d.Log.Warn(note)
	}
	if err := d.writePIDFile(); err != nil {
		return d, err
	}
	if err := d.loadTLS(); err != nil {
		return d, err
	}
	clean := d.checkMarker()
	d.prevClean = clean

	if cfg.StatusFile != "" {
		// The Writer is the file's one owner: its goroutine writes, fsyncs,
		// cuts back and retries; it repairs a torn tail and starts a new
		// epoch when the storages went back (tracker/statusfile).
		d.sf, err = statusfile.Open(cfg.StatusFile, statusfile.Options{BurstPeriod: cfg.BurstPeriod,
			FullDumpPeriod: cfg.FullDumpPeriod, CloseTimeout: 30 * time.Second, Logger: d.Log.Named("statusfile")})
		if err != nil {
			return d, fmt.Errorf("status file: %w", err)
		}
	} else if cfg.Role() != config.RoleSidecar { // a sidecar publishes nothing: it has none
		d.Log.Warn("no status_file configured: published points are not recorded for backups")
	}
	switch {
	case cfg.StatusFile == "":
		d.prevRun = PrevUnknown
	case !clean:
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
	role := cfg.Role()
	if role == config.RoleSidecar {
		ids = nil // a sidecar's tracker is elsewhere; this one stays empty (admin)
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
	if err := d.openJournal(clean); err != nil {
		return d, err
	}

	var observer txn.Observer = d.Tracker
	pc := proxyConfig(cfg, d.Log)
	d.applyTLS(&pc)
	if role == config.RoleSidecar {
		if err := d.openSidecar(); err != nil {
			return d, err
		}
		observer = d.fl.sidecar
		pc.PartIDBase = d.fl.sidecar.PartIDBase()
	}
	if len(cfg.ZEO) > 0 && role != config.RoleTracker {
		d.Proxy = zeoproxy.New(pc, observer)
		if err := d.Proxy.Listen(); err != nil {
			return d, err
		}
	}
	if err := d.startClassic(); err != nil {
		return d, err
	}
	if err := d.startAdmin(opts.AdminHandler); err != nil {
		return d, err
	}
	switch role {
	case config.RoleTracker:
		d.bootstrapWatched()
		if err := d.startFleetServer(); err != nil {
			return d, err
		}
	case config.RoleSidecar:
		d.startSidecarLink(d.sidecarBootstrap())
		// Its empty tracker (admin only) is ready once the proxy serves:
		// /readyz then says the sidecar is up.
		d.Tracker.Bootstrap(nil, d.prevClean)
	default:
		d.bootstrap(clean)
	}
	if d.Proxy != nil {
		d.Proxy.Serve()
		for i, a := range d.Proxy.Addrs() {
			d.Log.Info("accepting ZODB clients", "zeo", cfg.ZEO[i].Name, "listen", a.String(), "upstream", cfg.ZEO[i].Upstream.String())
		}
	}
	d.startArchive()
	d.wg.Add(1)
	go d.tick()
	return d, nil
}

func (d *Daemon) openLog(stderr io.Writer) error {
	lc := d.cfg.Log
	out := stderr
	if out == nil {
		out = os.Stderr
	}
	if lc.File != "" {
		f, err := openLogFile(lc.File)
		if err != nil {
			return err
		}
		d.logFile = f
		out = f
	}
	level := hclog.LevelFromString(lc.Level)
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	d.Log = hclog.New(&hclog.LoggerOptions{Name: "tidstorage", Level: level, Output: out,
		JSONFormat: lc.Format == "json", TimeFormat: time.RFC3339Nano, DisableTime: false})
	return nil
}

// writePIDFile refuses to start over a live process's pid file.
func (d *Daemon) writePIDFile() error {
	path := d.cfg.PIDFile
	if path == "" {
		return nil
	}
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && pid != os.Getpid() {
			if syscall.Kill(pid, 0) == nil {
				return fmt.Errorf("pid file %s: process %d is running (another tidstorage?)", path, pid)
			}
			d.Log.Warn("stale pid file replaced", "path", path, "pid", pid)
		}
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	d.pidWritten = true
	return nil
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

func (d *Daemon) startAdmin(h func(*Daemon) http.Handler) error {
	ac := d.cfg.Admin
	if !ac.Enabled || h == nil {
		return nil
	}
	ln, err := net.Listen("tcp", ac.Listen.NetAddress())
	if err != nil {
		return fmt.Errorf("admin endpoint: listen on %s: %w", ac.Listen, err)
	}
	d.admin = &http.Server{Handler: h(d), ReadHeaderTimeout: 10 * time.Second}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.Log.Info("admin endpoint listening", "address", ln.Addr().String())
		if err := d.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.Log.Error("admin endpoint stopped", "error", err)
		}
	}()
	return nil
}

// sidecarBootstrap reads the proxied storages' last TIDs (the relay's floor
// for in-doubt resolution, and what the tracker settles a previous run at).
func (d *Daemon) sidecarBootstrap() map[string]txn.TID {
	values := map[string]txn.TID{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range d.Proxy.Bootstrap(ctx) {
		if r.Err != nil {
			d.Log.Error("bootstrap: cannot read a storage's last TID", "storage", r.Storage, "error", r.Err)
			continue
		}
		values[r.Storage] = r.TID
	}
	return values
}

// bootstrap reads every proxied storage's last TID before the proxy accepts
// its first client: those TIDs are the first point (docs/design.md, "Bootstrap"). Storages that
// cannot be read are retried in the background while clients are served;
// their value then joins later (the tracker publishes a storage only when its
// group has nothing in flight, so a late value cannot cut a transaction).
func (d *Daemon) bootstrap(clean bool) {
	values := map[string]txn.TID{}
	var failed []zeoproxy.BootstrapResult
	if d.Proxy != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for _, r := range d.Proxy.Bootstrap(ctx) {
			if r.Err != nil {
				d.Log.Error("bootstrap: cannot read a storage's last TID; retrying in the background", "storage", r.Storage, "error", r.Err)
				failed = append(failed, r)
				continue
			}
			d.Log.Info("bootstrap", "storage", r.Storage, "last_tid", r.TID.Hex())
			values[r.Storage] = r.TID
		}
		cancel()
	}
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
	for _, r := range failed {
		d.wg.Add(1)
		go d.retryBootstrap(r)
	}
}

func (d *Daemon) retryBootstrap(r zeoproxy.BootstrapResult) {
	read := func(ctx context.Context) (txn.TID, error) {
		res, err := d.Proxy.BootstrapOne(ctx, r.Server, r.Name)
		return res.TID, err
	}
	d.retryLastTID(r.Storage, read, func(tid txn.TID) {
		if !d.prevClean {
			d.Tracker.SettleAt(r.Storage, tid)
			d.suspectLive(r.Storage, tid)
		}
		d.Tracker.Bootstrap(map[string]txn.TID{r.Storage: tid}, true)
		if s := d.cfg.StorageByID(r.Storage); s != nil && s.ZEO != nil {
			d.watchFrom(s, tid)
		}
	})
}

// retryLastTID reads a storage whose server was unreachable at start
// until it answers (backoff from 1 s to a minute, until the daemon stops),
// then hands its last TID to done.
func (d *Daemon) retryLastTID(storage string, read func(context.Context) (txn.TID, error), done func(txn.TID)) {
	defer d.wg.Done()
	backoff := time.Second
	for {
		select {
		case <-d.stop:
			return
		case <-time.After(backoff):
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		tid, err := read(ctx)
		cancel()
		if err == nil {
			d.Log.Info("bootstrap (late)", "storage", storage, "last_tid", tid.Hex())
			done(tid)
			return
		}
		backoff = min(2*backoff, time.Minute)
		d.Log.Warn("bootstrap retry failed", "storage", storage, "error", err, "retry_in", backoff)
	}
}

func (d *Daemon) tick() {
	defer d.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case now := <-t.C:
			d.retryMarker()
			// The storages a sidecar is behind on (down, resending,
			// refused) wait for its resend before their unaccounted
			// commits are reported (fleet.Server.Awaited).
			var awaited []string
			if d.fl.server != nil {
				awaited = d.fl.server.Awaited()
			}
			d.Tracker.Tick(awaited...)
			if d.onTick != nil {
				d.onTick(now)
			}
		}
	}
}

// StatusFile returns the status file's writer (nil without one), for its
// Stats.
func (d *Daemon) StatusFile() *statusfile.Writer { return d.sf }

// Version is the version the daemon was started with.
func (d *Daemon) Version() string { return d.version }

// Config returns the configuration the daemon runs with (not to be changed).
func (d *Daemon) Config() *config.Config { return d.cfg }

// Reopen is SIGHUP: the log file is reopened (after rotation), the fleet
// link's and the zeo blocks' TLS files are read again, and the
// configuration is read again for
// what can change safely while running: the log level. Other changes are
// reported as needing a restart.
func (d *Daemon) Reopen() {
	if d.logFile == nil {
		d.Log.Info("SIGHUP: logging to stderr, nothing to reopen")
	} else if err := d.logFile.Reopen(); err != nil {
		d.Log.Error("SIGHUP: cannot reopen the log file; still writing to the old one", "error", err)
	} else {
		d.Log.Info("SIGHUP: log file reopened", "path", d.cfg.Log.File)
	}
	d.reloadFleetCerts()
	d.reloadTLS()
	if d.cfg.File == "" {
		return
	}
	cfg, err := config.Load(d.cfg.File)
	if err != nil {
		d.Log.Error("SIGHUP: the configuration no longer loads; keeping the running one", "error", err)
		return
	}
	if cfg.Log.Level != d.cfg.Log.Level {
		if lvl := hclog.LevelFromString(cfg.Log.Level); lvl != hclog.NoLevel {
			d.Log.SetLevel(lvl)
			d.Log.Info("SIGHUP: log level changed", "from", d.cfg.Log.Level, "to", cfg.Log.Level)
			d.cfg.Log.Level = cfg.Log.Level
		}
	}
	if restartNeeded(d.cfg, cfg) {
		d.Log.Warn("SIGHUP: the configuration changed in ways that take effect only after a restart (listeners, storages, files, periods, limits)")
	}
}

// restartNeeded compares what only a restart applies.
func restartNeeded(old, cur *config.Config) bool {
	a, b := *old, *cur
	a.Log.Level, b.Log.Level = "", ""
	a.Warnings, b.Warnings = nil, nil
	return fmt.Sprint(summary(&a)) != fmt.Sprint(summary(&b))
}

func summary(c *config.Config) []any {
	out := []any{c.StatusFile, c.JournalFile, c.JournalMaxSize, c.BurstPeriod, c.FullDumpPeriod, c.PIDFile, c.ClassicTxnTimeout, c.ShutdownTimeout,
		c.Log.File, c.Log.Format, c.Limits, c.Classic.Enabled, c.Classic.Listen.String(), fmt.Sprint(c.Classic.Allow),
		c.Classic.MaxConnections, c.Classic.IdleTimeout, c.Admin.Enabled, c.Admin.Listen.String(), c.Admin.TokenFile,
		fmt.Sprint(c.Admin.AllowedHosts)}
	if f := c.Fleet; f != nil {
		out = append(out, "fleet", f.Listen.String(), fmt.Sprint(f.TLS))
	}
	if t := c.Tracker; t != nil {
		out = append(out, "tracker", t.Address.String(), t.Name, t.BufferFile, t.BufferEvents, fmt.Sprint(t.TLS))
	}
	for _, z := range c.ZEO {
		out = append(out, z.Name, z.Listen.String(), z.Upstream.String(), fmt.Sprint(z.TLS), fmt.Sprint(z.UpstreamTLS))
	}
	for _, s := range c.Storages {
		out = append(out, s.ID, s.DataFS, s.BlobDir, s.Repository)
	}
	return out
}

// DumpState is SIGUSR1: the whole tracker state goes to the log.
func (d *Daemon) DumpState() {
	st := d.Tracker.Status()
	b, err := json.Marshal(st)
	if err != nil {
		d.Log.Error("SIGUSR1: cannot encode the state", "error", err)
		return
	}
	args := []any{"state", string(b)}
	if d.Proxy != nil {
		args = append(args, "proxy", fmt.Sprintf("%+v", d.Proxy.Metrics()))
	}
	if st, ok := d.FleetLink(); ok {
		args = append(args, "fleet_link", fmt.Sprintf("%+v", st))
	}
	if src := d.FleetSources(); src != nil {
		args = append(args, "fleet_sources", fmt.Sprintf("%+v", src))
	}
	d.Log.Info("SIGUSR1: tracker state", args...)
}

// Shutdown stops gracefully without splitting a transaction
// (docs/admin.md, "Stopping"): stop accepting and hold new transactions, let
// every transaction that has voted run to its end on every storage, close
// every connection at once, write the final full status line and fsync it,
// remove the running marker and the pid file. A client that stays silent in
// the middle of a commit for shutdown_timeout, or the end of ctx, cuts the
// wait short; the stop then counts as unclean.
func (d *Daemon) Shutdown(ctx context.Context) error {
	var err error
	d.stopOnce.Do(func() { err = d.shutdown(ctx) })
	return err
}

func (d *Daemon) shutdown(ctx context.Context) error {
	// The classic endpoint stays open meanwhile: patched Zopes report the
	// end of their transactions there.
	cut := false
	if d.Proxy != nil {
		d.Log.Info("stopping: no new connections or transactions; waiting for the transactions that have voted to finish on every storage",
			"shutdown_timeout", d.cfg.ShutdownTimeout)
		res := d.Proxy.Drain(ctx, d.cfg.ShutdownTimeout)
		if len(res.Cut) > 0 {
			cut = true
			d.Log.Error("stop timeout: connections closed with transactions in their commit; this stop counts as unclean",
				"cut", len(res.Cut), "waited", res.Waited.Round(time.Millisecond))
		} else {
			d.Log.Info("stopping: no transaction in its commit; every connection closed",
				"waited", res.Waited.Round(time.Millisecond), "held", res.Held)
		}
	} else {
		d.Log.Info("stopping")
	}
	close(d.stop)
	if d.gt.cancel != nil {
		d.gt.cancel()
	}
	if d.Proxy != nil {
		d.Proxy.Close()
	}
	d.stopSidecarLink()
	if d.fl.server != nil {
		d.fl.server.Stop()
	}
	if d.Classic != nil {
		_ = d.Classic.Close()
	}
	if d.admin != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = d.admin.Shutdown(sctx)
		cancel()
	}
	d.stopArchive()
	d.wg.Wait()
	err := d.Tracker.Close() // the final full line, fsynced, and the file closed
	if err != nil {
		d.Log.Error("final status line failed", "error", err)
	}
	if d.marker != "" && !cut {
		_ = os.Remove(d.marker)
	}
	if d.pidWritten {
		_ = os.Remove(d.cfg.PIDFile)
	}
	d.Log.Info("stopped")
	if d.logFile != nil {
		_ = d.logFile.Close()
	}
	d.lock.Release()
	return err
}

// abortStart releases what a failed Start had opened.
func (d *Daemon) abortStart() {
	if d.gt.cancel != nil {
		d.gt.cancel()
	}
	if d.Tracker != nil {
		_ = d.Tracker.CloseJournal()
	}
	if d.Proxy != nil {
		d.Proxy.Close()
	}
	if d.fl.sidecar != nil {
		_ = d.fl.sidecar.Close()
	}
	if d.fl.server != nil {
		d.fl.server.Stop()
	} else if d.fl.ln != nil {
		_ = d.fl.ln.Close()
	}
	if d.Classic != nil {
		_ = d.Classic.Close()
	} else if d.classicLn != nil {
		_ = d.classicLn.Close()
	}
	if d.admin != nil {
		_ = d.admin.Close()
	}
	if d.sf != nil {
		_ = d.sf.Close() // nothing was started: no line is written
	}
	if d.marker != "" && d.prevClean {
		_ = os.Remove(d.marker) // an earlier unclean stop stays on record
	}
	if d.pidWritten {
		_ = os.Remove(d.cfg.PIDFile)
	}
	if d.logFile != nil {
		_ = d.logFile.Close()
	}
	d.lock.Release()
}
