package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tidstorage/tidstorage/cmd/admin"
	"github.com/tidstorage/tidstorage/cmd/daemon"
	"github.com/tidstorage/tidstorage/config"
)

const serveHelp = `Runs in the foreground (systemd style) until TERM or INT:
  - first locks the files it owns (status file, journal, send buffer, admin
    token, pid file: <file>.lock): a second serve on any of them is refused
    at once, naming the running one's pid and host, before it reads or
    writes anything; a lock left by a killed process is taken over;
  - reads every proxied storage's last TID before accepting ZODB clients
    (the first coherent point), then relays ZEO traffic unchanged and
    publishes coherent points to the status file, DUMP, /status, /metrics;
  - serves the classic line protocol for patched Zopes and old scripts;
  - serves the admin endpoint (/metrics, /status, accept-partial); its
    token file (admin.token_file, default: the status file + ".admin-token")
    is created, mode 0600, if missing, and a token file that group or
    others can read stops the start.

Signals:
  HUP     reopen the log file (after logrotate), read the TLS files again
          (the fleet link's, and every zeo block's tls and upstream_tls: new
          connections use them; files that do not load are logged and the
          previous ones kept), and
          apply a new log level from the configuration (other changes need
          a restart)
  USR1    write the whole tracker state to the log
  TERM    stop without splitting a transaction: stop accepting, hold new
  INT     transactions (their clients retry on the next process), let every
          transaction that has voted finish on every storage, then close
          every connection at once; write a final full status line, fsync,
          exit 0. A client silent in the middle of a commit for
          shutdown_timeout (default 5m) is cut, and the stop counts as
          unclean. A second TERM/INT exits at once (status 1).

Exit status: 0 after a clean stop, 1 on a bad configuration or a failed
start (the errors say why and where).`

func runServe(c *cli, args []string) int {
	fs := c.flagSet("serve")
	path := configFlag(fs)
	if ok, code := c.parse(fs, args); !ok {
		return code
	}
	if *path == "" {
		return c.usageError("serve", "a configuration file is required (-c FILE)")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(c.stderr, "tidstorage serve: warning: %s\n", config.FormatDiagnostic(w))
	}
	// Signals are caught before the daemon starts, so that a TERM during
	// the start is not lost.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	// A file-size limit (RLIMIT_FSIZE, systemd's LimitFSIZE) reached by the
	// status file, the journal or the log must fail that write (EFBIG),
	// which is handled like a full disk, not kill the relay.
	signal.Ignore(syscall.SIGXFSZ)
	defer signal.Stop(sigs)

	// Nothing of the state is read before its lock is held: a second serve
	// on the same files stops here.
	lock, err := daemon.LockState(cfg)
	if err != nil {
		fmt.Fprintf(c.stderr, "tidstorage serve: %v\n", err)
		return 1
	}
	token, tokenCreated, err := adminToken(cfg)
	tokenErr := err
	if err != nil {
		if _, serr := os.Stat(cfg.Admin.TokenFile); !errors.Is(serr, os.ErrNotExist) {
			lock.Release()
			fmt.Fprintf(c.stderr, "tidstorage serve: %v\n", err)
			return 1
		}
		// It does not exist and cannot be made (a full or read-only
		// state directory): the relay must not depend on it. The
		// endpoint runs without a token (POST refused, /status
		// redacted) until a restart can make it.
	}
	// The status page's lag history: made with the admin handler, ticked by
	// the daemon (its tick starts after the handler is made).
	var lags *admin.LagHistory
	d, err := daemon.Start(daemon.Options{Config: cfg, Version: version, Stderr: c.stderr, StateLock: lock,
		AdminHandler: func(d *daemon.Daemon) http.Handler {
			lags = admin.NewLagHistory(d.Parts().Status)
			return adminHandler(d, token, lags)
		},
		OnTick: func(now time.Time) {
			if lags != nil {
				lags.Tick(now)
			}
		}})
	if err != nil {
		fmt.Fprintf(c.stderr, "tidstorage serve: %v\n", err)
		return 1
	}
	if tokenErr != nil {
		d.Log.Error("the admin token file cannot be created: the admin endpoint refuses every POST and redacts /status until tidstorage is restarted with a writable state directory",
			"path", cfg.Admin.TokenFile, "error", tokenErr)
	}
	if tokenCreated {
		d.Log.Info("admin token file created: POST /accept-partial and the full /status need it", "path", cfg.Admin.TokenFile)
	}
	done := make(chan error, 1)
	stopping := false
	for {
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintf(c.stderr, "tidstorage serve: stop: %v\n", err)
				return 1
			}
			return 0
		case s := <-sigs:
			switch s {
			case syscall.SIGHUP:
				d.Reopen()
			case syscall.SIGUSR1:
				d.DumpState()
			default:
				if stopping {
					d.Log.Error("second stop signal: exiting at once", "signal", s.String())
					return 1
				}
				stopping = true
				d.Log.Info("stop requested", "signal", s.String(), "shutdown_timeout", cfg.ShutdownTimeout)
				// No deadline: shutdown_timeout bounds how long a client may
				// stay silent in the middle of a commit (docs/admin.md,
				// "Stopping"); a second signal exits at once.
				go func() { done <- d.Shutdown(context.Background()) }()
			}
		}
	}
}

// adminToken reads the admin token file, creating it if missing; "" when
// the endpoint is off or has no token file (POSTs refused, /status
// redacted). A file others may read stops the start.
func adminToken(cfg *config.Config) (string, bool, error) {
	if !cfg.Admin.Enabled || cfg.Admin.TokenFile == "" {
		return "", false, nil
	}
	return admin.LoadOrCreateToken(cfg.Admin.TokenFile)
}

// adminHandler mounts /metrics, /status, /healthz and /accept-partial on
// the parts the daemon's role has.
func adminHandler(d *daemon.Daemon, token string, lags *admin.LagHistory) http.Handler {
	p := d.Parts()
	src := admin.Sources{Tracker: p.Status, Accept: p.Accept, Clock: time.Now, Version: d.Version(),
		PreviousRun: d.PreviousRun(), Labels: map[string]string{}, Token: token, AllowedHosts: d.Config().Admin.AllowedHosts,
		LagHistory: lags, ConfigFile: d.Config().File,
		Proxy: p.Proxy, Classic: p.Classic, StatusFile: p.StatusFile, Watchers: p.Watchers, Journal: p.Journal,
		Certificates: p.Certificates, Archive: p.Archive,
		FleetSidecars: p.FleetSidecars, FleetRetire: p.FleetRetire, FleetLink: p.FleetLink}
	if path := d.Config().BackupMetricsFile; path != "" {
		src.Backups = func() ([]admin.BackupRun, error) {
			runs, err := readLastRuns(path)
			var out []admin.BackupRun
			for _, r := range runs {
				out = append(out, admin.BackupRun{Command: r.command, LastRun: r.lastRun, LastSuccess: r.success, OK: r.ok})
			}
			return out, err
		}
	}
	for _, r := range storageRefs(d.Config()) {
		src.Labels[r.ID] = r.Label // the names backup and restore print
	}
	return admin.NewHandler(src, d.Log.Named("admin"))
}
