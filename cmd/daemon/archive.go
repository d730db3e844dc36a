package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/hashicorp/go-hclog"

	"github.com/tidstorage/tidstorage/archive"
	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/internal/statusdoc"
)

// StorageLabels labels every configured storage, in configuration order:
// the id when it is already a safe name, else "<zeo>-<name>" for the
// storages of a zeo block and the id's safe form for top-level ones;
// duplicates get a number. Backups, restores and the
// archive name storages (and their directories) with them.
func StorageLabels(cfg *config.Config) []string {
	labels := make([]string, 0, len(cfg.Storages))
	used := map[string]bool{}
	for _, s := range cfg.Storages {
		label := backup.Label(s.ID)
		if s.ZEO != nil && label != s.ID {
			label = backup.Label(s.ZEO.Name, s.Name)
		}
		base := label
		for n := 2; used[label]; n++ {
			label = fmt.Sprintf("%s-%d", base, n)
		}
		used[label] = true
		labels = append(labels, label)
	}
	return labels
}

// ArchiveSpecs are the storages an archive covers: those with data_fs.
func ArchiveSpecs(cfg *config.Config) []archive.StorageSpec {
	labels := StorageLabels(cfg)
	var specs []archive.StorageSpec
	for i, s := range cfg.Storages {
		if s.DataFS != "" {
			specs = append(specs, archive.StorageSpec{ID: s.ID, Label: labels[i], DataFS: s.DataFS, BlobDir: s.BlobDir})
		}
	}
	return specs
}

// OpenArchiveStore opens the store of the configuration's archive block.
func OpenArchiveStore(ar *config.Archive) (archive.Store, error) {
	return archive.OpenStore(ar.URL, archive.StoreOptions{Endpoint: ar.Endpoint, Region: ar.Region, PathStyle: ar.PathStyle})
}

// Archiving runs an archiver until its context ends: it opens the archive
// (retrying while the store is unreachable or another archiver holds it),
// then ships the source's point every interval. serve and `tidstorage
// archive` both use it.
type Archiving struct {
	mu    sync.Mutex
	a     *archive.Archiver
	state string
	store string
	done  chan struct{}
}

// StartArchiving starts archiving in a goroutine; cancel ctx, then Wait.
func StartArchiving(ctx context.Context, cfg *config.Config, command string, src archive.Source, log hclog.Logger) (*Archiving, error) {
	ar := cfg.Archive
	specs := ArchiveSpecs(cfg)
	if len(specs) == 0 {
		return nil, errors.New("the archive block covers the storages with data_fs, and none has one")
	}
	store, err := OpenArchiveStore(ar)
	if err != nil {
		return nil, err
	}
	var recipients []age.Recipient
	if len(ar.Recipients) > 0 {
		if recipients, err = archive.ParseRecipients(ar.Recipients); err != nil {
			return nil, err
		}
	}
	g := &Archiving{state: "starting", store: store.String(), done: make(chan struct{})}
	logf := func(level, msg string, args ...any) {
		switch level {
		case "error":
			log.Error(msg, args...)
		case "warn":
			log.Warn(msg, args...)
		default:
			log.Info(msg, args...)
		}
	}
	go func() {
		defer close(g.done)
		var a *archive.Archiver
		logged := false
		for wait := ar.Interval; ; wait = min(2*wait, 30*time.Second) {
			a, err = archive.Open(ctx, archive.Options{Store: store, Storages: specs, Command: command, Logf: logf, Recipients: recipients,
				LeaseTTL: max(30*time.Second, 10*ar.Interval)})
			if err == nil {
				break
			}
			g.set(nil, "not running: "+err.Error())
			if !logged {
				log.Error("archive: cannot open the archive; retrying (logged again when it opens)", "store", store.String(), "error", err)
				logged = true
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		log.Info("archive: archiving", "store", store.String(), "storages", len(specs), "interval", ar.Interval.String(),
			"retention", ar.Retention.String())
		g.set(a, "running")
		a.Run(ctx, src, archive.RunOptions{Interval: ar.Interval, Retention: ar.Retention})
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.Close(cctx); err != nil {
			log.Warn("archive: could not release the archive's lock", "error", err)
		}
		g.set(a, "stopped")
	}()
	return g, nil
}

func (g *Archiving) set(a *archive.Archiver, state string) {
	g.mu.Lock()
	g.a, g.state = a, state
	g.mu.Unlock()
}

// Wait returns once the archiving goroutine has stopped.
func (g *Archiving) Wait() { <-g.done }

// Doc is the archive's part of /status and /metrics.
func (g *Archiving) Doc() *statusdoc.ArchiveDoc {
	g.mu.Lock()
	a, state := g.a, g.state
	g.mu.Unlock()
	d := &statusdoc.ArchiveDoc{Store: g.store, State: state}
	if a != nil {
		st := a.Status()
		d.LastShipment, d.LastPoint, d.LagSeconds, d.LagBytes = st.LastShipment, st.LastPoint, st.LagSeconds, st.LagBytes
		d.Shipments, d.BytesShipped, d.Errors, d.Failing, d.LastError = st.Shipments, st.BytesShipped, st.Errors, st.Failing, st.LastError
	}
	return d
}

// archiveSource is serve's point: the tracker's published point, now.
func (d *Daemon) archiveSource(ctx context.Context) (archive.Point, error) {
	if !d.Tracker.Bootstrapped() {
		return archive.Point{}, errors.New("the tracker has not bootstrapped yet")
	}
	return archive.Point{Time: time.Now(), TIDs: d.Tracker.Dump(), Source: "serve"}, nil
}

// startArchive runs the configuration's archive inside serve, off the
// relay's path: it reads the published point once per interval.
func (d *Daemon) startArchive() {
	if d.cfg.Archive == nil {
		return
	}
	if d.Tracker == nil { // a sidecar
		d.Log.Warn("archive: a sidecar publishes no point; run `tidstorage archive --dump TRACKER` on the ZEO host instead. The archive block is ignored here")
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	g, err := StartArchiving(ctx, d.cfg, "serve", d.archiveSource, d.Log.Named("archive"))
	if err != nil {
		cancel()
		d.Log.Error("archive: not started", "error", err)
		return
	}
	d.archCancel = cancel
	d.arch.Store(g)
}

// Archive returns the running archive (nil without one, or before Start
// has started it).
func (d *Daemon) Archive() *Archiving { return d.arch.Load() }

// ArchiveDoc is the archive's part of /status and /metrics: nil until it is
// started.
func (d *Daemon) ArchiveDoc() *statusdoc.ArchiveDoc {
	if g := d.arch.Load(); g != nil {
		return g.Doc()
	}
	return nil
}

func (d *Daemon) stopArchive() {
	if g := d.arch.Load(); g != nil {
		d.archCancel()
		g.Wait()
	}
}
