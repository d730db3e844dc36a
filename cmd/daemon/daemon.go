// Package daemon is `tidstorage serve`: it wires the configuration, the
// tracker, the status file, the ZEO proxy, the classic endpoint and the admin
// endpoint together, and stops them in the right order.
//
// Each role (docs/deploy.md) is a type of its own with its own setup, as
// Nomad's agent has setupServer and setupClient: allInOne (allinone.go),
// fleetTracker (fleettracker.go) and sidecar (sidecar.go). The Daemon holds
// what every role shares: the locks of its files, the log, the pid file,
// the TLS files, the admin endpoint, the tick, the signals' work (Reopen,
// DumpState) and the stop; the pieces two roles share are small helpers
// (publish.go: the status file, tracker and journal of the roles that
// publish; bootstrap.go: the storages' last TIDs; openProxy).
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
	"github.com/tidstorage/tidstorage/fleet"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/tracker/classic"
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

// Daemon is a running tidstorage, in one of the roles.
type Daemon struct {
	cfg     *config.Config
	version string
	Log     hclog.Logger
	logFile *reopenFile
	role    role

	// The parts of the roles that publish (publish.go): nil on a sidecar.
	sf         *statusfile.Writer // nil without a status file; the Tracker feeds it and closes it
	Tracker    *tracker.Service
	Classic    *classic.Server // nil when disabled
	classicLn  net.Listener
	marker     string                    // exists while running: its presence at start means the last stop was unclean
	markerErr  error                     // the marker could not be written yet (publication held; tick retries)
	pub        publishing                // publish.go
	gt         groundTruth               // groundtruth.go
	arch       atomic.Pointer[Archiving] // archive.go; nil without an archive block
	archCancel context.CancelFunc

	// Proxy relays the ZODB clients (all-in-one and sidecar, with zeo
	// blocks; nil otherwise).
	Proxy *zeoproxy.Proxy

	admin      *http.Server
	lock       *StateLock
	prevClean  bool
	prevRun    string // PreviousRun's answer, set at start
	pidWritten bool
	tls        tlsState     // tls.go
	fleetCerts *fleet.Certs // the fleet link's, either end, with a tls block: SIGHUP reloads them
	onTick     func(time.Time)

	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
	started  time.Time
}

// role is what one role adds to the Daemon.
type role interface {
	// open opens the role's parts up to its listeners (the proxy listens
	// but does not serve yet); the admin endpoint starts after it.
	open() error
	// bootstrap reads the storages' last TIDs and starts what feeds the
	// role; the proxy serves once it returns.
	bootstrap() error
	// tick runs once a second.
	tick(now time.Time)
	// stop ends the role's own parts, once the proxy has drained and closed.
	stop()
	// abort releases what the role opened, after a failed Start.
	abort()
	// status is what /status, /metrics and /readyz read of the role.
	status() StatusSource
	// parts adds the role's own to the admin endpoint's parts.
	parts(p *Parts)
	// dump adds the role's state to SIGUSR1's log line.
	dump(args []any) []any
}

// newRole picks the configuration's role.
func newRole(d *Daemon) role {
	switch d.cfg.Role() {
	case config.RoleTracker:
		return &fleetTracker{d: d}
	case config.RoleSidecar:
		return &sidecar{d: d}
	default:
		return &allInOne{d: d}
	}
}

// Start brings everything up: when it returns, the proxy accepts clients and
// the endpoints serve.
func Start(opts Options) (d *Daemon, err error) {
	cfg := opts.Config
	d = &Daemon{cfg: cfg, version: opts.Version, stop: make(chan struct{}), started: time.Now(), lock: opts.StateLock, onTick: opts.OnTick,
		prevClean: true, prevRun: PrevUnknown}
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
	d.Log.Info("starting tidstorage", "version", opts.Version, "config", cfg.File, "role", cfg.Role().String())
	for _, note := range d.lock.takeovers {
		d.Log.Warn(note)
	}
	if err := d.writePIDFile(); err != nil {
		return d, err
	}
	if err := d.loadTLS(); err != nil {
		return d, err
	}
	d.role = newRole(d)
	if err := d.role.open(); err != nil {
		return d, err
	}
	if err := d.startAdmin(opts.AdminHandler); err != nil {
		return d, err
	}
	if err := d.role.bootstrap(); err != nil {
		return d, err
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

// openProxy makes the relay of the zeo blocks, reporting to observer, and
// opens its listeners (all-in-one and sidecar; nothing without zeo blocks).
func (d *Daemon) openProxy(observer txn.Observer, partIDBase uint64) error {
	if len(d.cfg.ZEO) == 0 {
		return nil
	}
	pc := proxyConfig(d.cfg, d.Log)
	d.applyTLS(&pc)
	pc.PartIDBase = partIDBase
	d.Proxy = zeoproxy.New(pc, observer)
	return d.Proxy.Listen()
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

func (d *Daemon) tick() {
	defer d.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case now := <-t.C:
			d.role.tick(now)
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

// DumpState is SIGUSR1: the whole tracker state goes to the log (a
// sidecar's: what it has).
func (d *Daemon) DumpState() {
	st := d.role.status().Status()
	b, err := json.Marshal(st)
	if err != nil {
		d.Log.Error("SIGUSR1: cannot encode the state", "error", err)
		return
	}
	args := []any{"state", string(b)}
	if d.Proxy != nil {
		args = append(args, "proxy", fmt.Sprintf("%+v", d.Proxy.Metrics()))
	}
	d.Log.Info("SIGUSR1: tracker state", d.role.dump(args)...)
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
	d.role.stop()
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
	var err error
	if d.Tracker != nil {
		err = d.Tracker.Close() // the final full line, fsynced, and the file closed
		if err != nil {
			d.Log.Error("final status line failed", "error", err)
		}
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
	if d.role != nil {
		d.role.abort()
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
