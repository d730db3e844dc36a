package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/tracker/history"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
	"github.com/tidstorage/tidstorage/zrpc"
)

// Ground truth and crash recovery (docs/design.md, "Ground truth";
// docs/admin.md, "Crash recovery"): the journal is opened (and replayed
// after an unclean stop) before anything else feeds the tracker; every
// proxied storage gets a watcher of its own commit history, started before
// the proxy accepts clients, whose commits every observed event is
// accounted against.

// groundTruth holds the watchers, one per proxied storage id.
type groundTruth struct {
	mu       sync.Mutex
	watchers map[string]*history.Watcher
	unacc    chan tracker.Record // unaccounted commits to describe (metadata lookup)
	// describeLimit: onRecord, under the tracker's lock.
	describeLimit tracker.LogLimiter
	ctx           context.Context
	cancel        context.CancelFunc
	// suspect: after an unclean stop with no journal, the proxied storages
	// the status file has no point for: each is held at its live state
	// until the operator accepts it.
	suspect map[string]bool
}

// openJournal opens the tracker's journal; after an unclean stop it replays
// it, or, without one, restores every proxied storage at the status file's
// last point so that everything after it is held until accounted for.
func (d *Daemon) openJournal(clean bool) error {
	cfg := d.cfg
	replayed := 0
	if cfg.JournalFile != "" {
		replay := !clean || d.pub.replayClean
		st, err := d.Tracker.OpenJournal(cfg.JournalFile, tracker.JournalOptions{Replay: replay, RotateSize: cfg.JournalMaxSize})
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		replayed = st.Replayed
		if st.Damage != "" {
			d.Log.Error("journal: a damaged tail was cut; what it held is accounted for by the storages' history instead",
				"journal", cfg.JournalFile, "damage", st.Damage)
		}
		if !clean {
			d.Log.Warn("journal replayed after an unclean stop", "journal", cfg.JournalFile, "inputs", replayed)
		} else if replay && replayed > 0 {
			d.Log.Info("journal replayed (fleet tracker)", "journal", cfg.JournalFile, "inputs", replayed)
		}
	}
	if clean || replayed > 0 {
		return nil
	}
	point, err := lastStatusPoint(cfg.StatusFile)
	if err != nil {
		d.Log.Error("unclean stop and no journal to replay; the status file cannot be read either: every storage is held until the operator accepts",
			"error", err)
	}
	sn := tracker.Snapshot{Bootstrapped: len(point) > 0, BootRequested: len(point) > 0}
	d.gt.suspect = map[string]bool{}
	for _, s := range cfg.Storages {
		if s.ZEO == nil {
			continue
		}
		v, ok := point[s.ID]
		if !ok {
			d.gt.suspect[s.ID] = true
			continue
		}
		sn.Storages = append(sn.Storages, tracker.StorageSnapshot{Storage: s.ID, Published: v, HasPublished: true,
			Transient: v, Known: true, Watched: true, WarnOnly: s.WarnUnaccounted, Hist: v})
	}
	d.Log.Error("unclean stop and no journal to replay: publication resumes from the status file's last point; every commit since is held and reported as unaccounted until accepted; a storage with no point there is held at its live state until accepted",
		"status_file", cfg.StatusFile, "storages_with_a_point", len(sn.Storages), "storages_without", len(d.gt.suspect))
	d.Tracker.Restore(sn)
	return nil
}

func lastStatusPoint(path string) (map[string]txn.TID, error) {
	if path == "" {
		return nil, errors.New("no status file configured")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := statusfile.Replay(f, statusfile.ReplayOptions{})
	if err != nil {
		return nil, err
	}
	return res.Point, nil
}

// suspectLive holds a storage that has no point to resume from (see
// groundTruth.suspect) at its live last TID.
func (d *Daemon) suspectLive(id string, live txn.TID) {
	if d.gt.suspect[id] {
		d.Tracker.Suspect(id, live)
	}
}

// watchFrom makes storage s watched (from after, unless the replayed
// journal already watches it) and starts its watcher where the tracker's
// history of it stands.
func (d *Daemon) watchFrom(s *config.Storage, after txn.TID) {
	d.Tracker.HistoryStart(s.ID, after, s.WarnUnaccounted)
	pos, ok := d.Tracker.HistoryPosition(s.ID)
	if !ok {
		return
	}
	if !d.prevClean {
		// After a crash, hear again (from the iterator, with metadata) the
		// held commits the dead process's history had reported without
		// it: an orphan's commit announced before the crash by a bare
		// invalidation is recognised then (tracker/recover.go, rehear).
		if p, ok := d.Tracker.HistoryResume(s.ID); ok && p < pos {
			pos = p
		}
	}
	gt := &d.gt
	gt.mu.Lock()
	defer gt.mu.Unlock()
	if gt.watchers[s.ID] != nil {
		return
	}
	z := s.ZEO
	network, addr := upstreamAddr(z)
	var scratch []txn.Commit // the watcher's goroutine's
	w, err := history.New(history.Config{
		Storage: s.ID, Network: network, Addr: addr, Name: s.Name, After: pos, AfterExact: true,
		Metadata: d.pub.metadata,
		// With metadata, read per batch of a few milliseconds rather than per
		// commit: a fleet tracker's sidecars' reports wait up to their send
		// linger (10 ms) anyway before it can publish what they report.
		MetadataLinger: metadataLinger,
		BatchSink: func(_ context.Context, cs []history.Commit) error {
			d.historyBatch(cs, &scratch)
			return nil
		},
		TLS:    d.upstreamTLS(z),
		Logger: d.Log.Named("history"), // its lines name the storage
	})
	if err != nil {
		d.Log.Error("cannot watch a storage's history: its publication stops", "storage", s.ID, "error", err)
		return
	}
	gt.watchers[s.ID] = w
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		err := w.Run(gt.ctx)
		if err != nil && !errors.Is(err, context.Canceled) && gt.ctx.Err() == nil {
			d.Log.Error("the storage's history watcher stopped: its publication is held until tidstorage is restarted",
				"storage", s.ID, "error", err)
		}
	}()
}

// metadataLinger is the fleet tracker's watchers' history.Config.MetadataLinger.
const metadataLinger = 5 * time.Millisecond

// historyBatch hands commits of a storage's history to the tracker, in one
// input call (one lock, one journal write); scratch is the calling
// watcher's.
func (d *Daemon) historyBatch(cs []history.Commit, scratch *[]txn.Commit) {
	tcs := (*scratch)[:0]
	for _, c := range cs {
		tc := txn.Commit{Storage: c.Storage, TID: c.TID}
		if m := c.Meta; m != nil {
			tc.HasMeta, tc.User, tc.Description = true, m.User, m.Description
			tc.Extension = zrpc.CanonicalText(m.Extension)
		}
		tcs = append(tcs, tc)
	}
	d.Tracker.HistoryBatch(tcs)
	clear(tcs)
	*scratch = tcs[:0]
}

// onRecord sees every record under the tracker's lock: it only queues the
// unaccounted commits for describeUnaccounted.
func (d *Daemon) onRecord(r tracker.Record) {
	// Described one by one within the tracker's log limit only: each
	// description is a lookup in the storage's history.
	if r.Kind == tracker.RecUnaccounted && d.gt.unacc != nil {
		d.gt.describeLimit.Due(r.Time) // the tracker's log says what was not described
		if !d.gt.describeLimit.Allow(r.Storage, r.TID, r.Time) {
			return
		}
		select {
		case d.gt.unacc <- r:
		default: // the count and the pin say it anyway
		}
	}
}

// describeUnaccounted logs each unaccounted commit with what the storage's
// history knows of it: who committed it and why, for the operator's
// decision (tidstorage accept-partial).
func (d *Daemon) describeUnaccounted() {
	defer d.wg.Done()
	for {
		var r tracker.Record
		select {
		case <-d.gt.ctx.Done():
			return
		case r = <-d.gt.unacc:
		}
		d.gt.mu.Lock()
		w := d.gt.watchers[r.Storage]
		d.gt.mu.Unlock()
		args := []any{"storage", r.Storage, "tid", r.TID.Hex(), "committed_at", r.TID.Time().Format(time.RFC3339Nano)}
		if w != nil {
			ctx, cancel := context.WithTimeout(d.gt.ctx, 10*time.Second)
			m, err := w.Lookup(ctx, r.TID)
			cancel()
			if err == nil && m != nil {
				args = append(args, "user", m.User, "description", m.Description, "extension", zrpc.CanonicalText(m.Extension))
			} else if err != nil {
				args = append(args, "lookup_error", err.Error())
			}
		}
		d.Log.Error("unaccounted commit: the storage has a transaction that no proxied client and no classic COMMIT reported "+
			"(a client that bypasses the proxy, or a crash of tidstorage); the storage is held just below it until "+
			"'tidstorage accept-partial' or a late report", args...)
	}
}

// Watchers returns the history watchers' states, by storage id.
func (d *Daemon) Watchers() map[string]history.Status {
	d.gt.mu.Lock()
	defer d.gt.mu.Unlock()
	out := make(map[string]history.Status, len(d.gt.watchers))
	for id, w := range d.gt.watchers {
		out[id] = w.Snapshot()
	}
	return out
}
