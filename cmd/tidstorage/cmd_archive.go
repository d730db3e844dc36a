package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	fage "filippo.io/age"
	"github.com/hashicorp/go-hclog"

	"github.com/tidstorage/tidstorage/archive"
	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/cmd/daemon"
	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/classic"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
)

const archiveHelp = `
Archives continuously, in the foreground until TERM or INT, every storage of
the configuration that has data_fs to the object store of its archive block
(docs/backup.md, "Continuous archive"), on a ZEO host whose tracker runs
elsewhere. 'tidstorage serve' does the same by itself when its configuration
has an archive block.

Every interval, when the published point moved: the new bytes of each Data.fs
up to the point (a new base after a pack), the blob files they reference, then
the point's timeline record, written last: a crash or a cut mid-upload leaves
no point that cannot be restored, and the next run resumes from the last
record. Retention runs every 10 minutes.

The point comes from the status file (its last line, each time the file
changes: as often as the tracker writes lines, burst_period), or with --dump
from a running tidstorage's classic DUMP, read every interval.`

const archiveListHelp = `
Lists the archive: the first and last restorable moments, the newest point's
TIDs, the bases of each storage with their sizes, the blob files, and who
holds the archive's lock.`

const archiveVerifyHelp = `
Checks the archive without restoring it: every restorable point's bases are
present and their segments join up to the point's offset. --read-data also
reads every object and checks its sha256, and scans each base up to its
newest point with every format check (an encrypted archive needs
--identity FILE). Exit status 1 when anything is wrong.`

const archivePruneHelp = `
Retention by hand (the archiver applies it every 10 minutes): removes the
points older than the retention window but the newest of them (the state at
the window's start), each base only once every kept point is in a newer one
of the same storage, then the blob files no kept base references. Without
--yes it prints what it would remove and changes nothing.`

// loadArchive loads a configuration that must have an archive block.
func (c *cli) loadArchive(name string, fs *flag.FlagSet, path *string, args []string) (*config.Config, archive.Store, int, bool) {
	cfg, code, ok := c.loadConfig(name, fs, path, args)
	if !ok {
		return nil, nil, code, false
	}
	if cfg.Archive == nil {
		return nil, nil, c.fail(name, fmt.Errorf("%s has no archive block", *path)), false
	}
	store, err := daemon.OpenArchiveStore(cfg.Archive)
	if err != nil {
		return nil, nil, c.fail(name, err), false
	}
	return cfg, store, 0, true
}

func runArchive(c *cli, args []string) int {
	fs := c.flagSet("archive")
	path := configFlag(fs)
	statusFile := fs.String("status-file", "", "follow the last line of status `FILE` (default: status_file of the configuration)")
	dump := fs.String("dump", "", "follow a running server's classic DUMP at `HOST:PORT`")
	cfg, _, code, ok := c.loadArchive("archive", fs, path, args)
	if !ok {
		return code
	}
	if *statusFile != "" && *dump != "" {
		return c.usageError("archive", "give --status-file or --dump, not both")
	}
	level := hclog.LevelFromString(cfg.Log.Level)
	log := hclog.New(&hclog.LoggerOptions{Name: "tidstorage", Level: level, Output: c.stderr, JSONFormat: cfg.Log.Format == "json"})
	var src archive.Source
	if *dump != "" {
		src = dumpSource(*dump)
	} else {
		p := *statusFile
		if p == "" {
			p = cfg.StatusFile
		}
		if p == "" {
			return c.usageError("archive", "no point to follow: give --status-file or --dump (the configuration has no status_file)")
		}
		src = statusFileSource(p)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	g, err := daemon.StartArchiving(ctx, cfg, "archive", src, log.Named("archive"))
	if err != nil {
		return c.fail("archive", err)
	}
	g.Wait()
	log.Info("stopped")
	return 0
}

// dumpSource reads the point from a running server's DUMP.
func dumpSource(addr string) archive.Source {
	return func(ctx context.Context) (archive.Point, error) {
		cl, err := classic.Dial(addr, 10*time.Second)
		if err != nil {
			return archive.Point{}, err
		}
		defer cl.Close()
		raw, err := cl.Dump()
		if err != nil {
			return archive.Point{}, err
		}
		boot, err := cl.Bootstraped()
		if err != nil {
			return archive.Point{}, err
		}
		cl.Quit()
		if !boot || len(raw) == 0 {
			return archive.Point{}, fmt.Errorf("%s has published no point yet", addr)
		}
		p := archive.Point{Time: time.Now(), TIDs: map[string]txn.TID{}, Source: "dump " + addr}
		for k, v := range raw {
			p.TIDs[k] = txn.TID(v)
		}
		return p, nil
	}
}

// statusFileSource reads the status file's last point when the file changed.
func statusFileSource(path string) archive.Source {
	var last archive.Point
	var lastSize int64 = -1
	var lastMod time.Time
	return func(ctx context.Context) (archive.Point, error) {
		st, err := os.Stat(path)
		if err != nil {
			return archive.Point{}, err
		}
		if st.Size() == lastSize && st.ModTime().Equal(lastMod) && last.TIDs != nil {
			return last, nil
		}
		f, err := os.Open(path)
		if err != nil {
			return archive.Point{}, err
		}
		defer f.Close()
		res, err := statusfile.Replay(f, statusfile.ReplayOptions{})
		if err != nil {
			return archive.Point{}, err
		}
		if res.Applied == 0 {
			return archive.Point{}, fmt.Errorf("%s holds no point yet", path)
		}
		// The line's time, to the microsecond (the file writes fractions).
		p := archive.Point{Time: time.UnixMicro(int64(math.Round(res.Time * 1e6))).UTC(), TIDs: map[string]txn.TID{},
			Source: fmt.Sprintf("status file %s, line %d", path, res.LastLine)}
		if res.Time == 0 {
			p.Time = time.Now()
		}
		for k, v := range res.Point {
			p.TIDs[k] = txn.TID(v)
		}
		last, lastSize, lastMod = p, st.Size(), st.ModTime()
		return p, nil
	}
}

func runArchiveList(c *cli, args []string) int {
	fs := c.flagSet("archive list")
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	cfg, store, code, ok := c.loadArchive("archive list", fs, path, args)
	if !ok {
		return code
	}
	sum, err := archive.Summarize(context.Background(), store)
	if err != nil {
		return c.fail("archive list", err)
	}
	if *asJSON {
		return c.printJSON("archive list", sum)
	}
	w := c.stdout
	fmt.Fprintf(w, "archive %s: %d point(s)\n", sum.Store, sum.Points)
	if sum.Points == 0 || sum.First.IsZero() {
		fmt.Fprintf(w, "no restorable point yet\n")
	} else {
		fmt.Fprintf(w, "restorable from %s to %s (retention %s)\n", sum.First.Format(time.RFC3339Nano), sum.Last.Format(time.RFC3339Nano), cfg.Archive.Retention)
		fmt.Fprintf(w, "newest point (shipped %s, %s behind now):\n", sum.Newest.Shipped.Format(time.RFC3339), time.Since(sum.Newest.Time).Round(time.Millisecond))
		ids := make([]string, 0, len(sum.Newest.Storages))
		for id := range sum.Newest.Storages {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			sr := sum.Newest.Storages[id]
			fmt.Fprintf(w, "  %s: tid %s, %s in base %s\n", sr.Label, sr.TID, backup.HumanBytes(sr.Offset), sr.Base)
		}
	}
	if sum.Newest != nil && cfg.StatusFile != "" {
		// The lag behind the published point, as the status file has it.
		if p, err := statusFileSource(cfg.StatusFile)(context.Background()); err == nil {
			behind := false
			for id, sr := range sum.Newest.Storages {
				if t, ok := p.TIDs[id]; ok && t.Hex() != sr.TID {
					behind = true
				}
			}
			if behind {
				fmt.Fprintf(w, "the published point (%s, %s) is NOT archived yet: the archive is %s behind it\n", p.Source,
					p.Time.Format(time.RFC3339Nano), p.Time.Sub(sum.Newest.Time).Round(time.Millisecond))
			} else {
				fmt.Fprintf(w, "the published point (%s) is archived\n", p.Source)
			}
		}
	}
	for _, b := range sum.Bases {
		state := ""
		if !b.Present {
			state = " (INCOMPLETE: no base marker; being removed, or damaged)"
		}
		fmt.Fprintf(w, "base %s/%s: %d segment(s), %s%s\n", b.Label, b.Base, b.Segments, backup.HumanBytes(b.Bytes), state)
	}
	labels := make([]string, 0, len(sum.Blobs))
	for l := range sum.Blobs {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		fmt.Fprintf(w, "blobs %s: %d file(s), %s\n", l, sum.Blobs[l].Count, backup.HumanBytes(sum.Blobs[l].Bytes))
	}
	if sum.Lock != "" {
		fmt.Fprintf(w, "locked by %s\n", sum.Lock)
	}
	return 0
}

func runArchiveVerify(c *cli, args []string) int {
	fs := c.flagSet("archive verify")
	path := configFlag(fs)
	readData := fs.Bool("read-data", false, "read every object and check its sha256; scan every base")
	identity := fs.String("identity", "", "age identity `FILE` to decrypt an encrypted archive (with --read-data)")
	_, store, code, ok := c.loadArchive("archive verify", fs, path, args)
	if !ok {
		return code
	}
	ids, err := readIdentities(*identity)
	if err != nil {
		return c.fail("archive verify", err)
	}
	res, err := archive.Verify(context.Background(), store, *readData, ids)
	if err != nil {
		return c.fail("archive verify", err)
	}
	for _, p := range res.Problems {
		fmt.Fprintf(c.stdout, "DAMAGED: %s\n", p)
	}
	what := "structure"
	if *readData {
		what = fmt.Sprintf("%d object(s), %s read", res.Objects, backup.HumanBytes(res.Bytes))
	}
	if len(res.Problems) > 0 {
		fmt.Fprintf(c.stdout, "archive %s: %d problem(s) (%d point(s), %d base(s); %s)\n", store, len(res.Problems), res.Points, res.Bases, what)
		return 1
	}
	fmt.Fprintf(c.stdout, "archive %s: ok (%d point(s), %d base(s); %s)\n", store, res.Points, res.Bases, what)
	return 0
}

func runArchivePrune(c *cli, args []string) int {
	fs := c.flagSet("archive prune")
	path := configFlag(fs)
	yes := fs.Bool("yes", false, "remove (without it: print what would be removed)")
	ret := fs.String("retention", "", "window to keep, as the block's retention (default: the configuration's)")
	cfg, store, code, ok := c.loadArchive("archive prune", fs, path, args)
	if !ok {
		return code
	}
	retention := cfg.Archive.Retention
	if *ret != "" {
		var okR bool
		if retention, okR = config.ParseRetention(*ret); !okR {
			return c.usageError("archive prune", "--retention %q: write a number of days such as 30d, or a duration such as 72h", *ret)
		}
	}
	ctx := context.Background()
	var plan *archive.PrunePlan
	var err error
	if *yes {
		// Under the archive's lock: a running archiver must not ship while
		// its objects are removed.
		a, oerr := archive.Open(ctx, archive.Options{Store: store, Storages: daemon.ArchiveSpecs(cfg), Command: "archive prune"})
		if oerr != nil {
			return c.fail("archive prune", oerr)
		}
		plan, err = a.Prune(ctx, retention, true)
		if cerr := a.Close(ctx); err == nil {
			err = cerr
		}
	} else {
		plan, err = archive.PlanPrune(ctx, store, time.Now().Add(-retention))
	}
	if plan != nil {
		verb := "would remove"
		if *yes {
			verb = "removed"
		}
		for _, l := range plan.Summary() {
			fmt.Fprintf(c.stdout, "%s: %s\n", verb, l)
		}
	}
	if err != nil {
		return c.fail("archive prune", err)
	}
	return 0
}

// readIdentities reads an age identity file ("" = none).
func readIdentities(path string) ([]fage.Identity, error) {
	if path == "" {
		return nil, nil
	}
	return archive.ReadIdentities(path)
}

// archiveRestore are the flags of `restore --from-archive`.
type archiveRestore struct {
	at, to, identity string
	tids             []string
	inPlace, force   bool
}

// restoreFromArchive is `restore --from-archive`.
func restoreFromArchive(c *cli, cfg *config.Config, o archiveRestore) int {
	at, tids := o.at, o.tids
	ids, err := readIdentities(o.identity)
	if err != nil {
		return c.fail("restore", err)
	}
	if cfg.Archive == nil {
		return c.fail("restore", errors.New("--from-archive: the configuration has no archive block"))
	}
	store, err := daemon.OpenArchiveStore(cfg.Archive)
	if err != nil {
		return c.fail("restore", err)
	}
	var sel archive.Selector
	if at != "" {
		if sel.At, err = backup.ParseDate(at); err != nil {
			return c.usageError("restore", "--at: %v", err)
		}
	}
	if len(tids) > 0 {
		if sel.TIDs, err = parseTIDArgs(storageRefs(cfg), tids); err != nil {
			return c.usageError("restore", "%v", err)
		}
	}
	ctx := context.Background()
	rec, err := archive.FindPoint(ctx, store, sel)
	if err != nil {
		return c.fail("restore", err)
	}
	fmt.Fprintf(c.stdout, "archive point %s (shipped %s, from %s)\n", rec.Time.Format(time.RFC3339Nano), rec.Shipped.Format(time.RFC3339Nano), rec.Source)
	specs := daemon.ArchiveSpecs(cfg)
	ro := archive.RestoreOptions{Dest: o.to, Storages: specs, Force: o.force, Identities: ids,
		Logf: func(format string, args ...any) { fmt.Fprintf(c.stderr, format+"\n", args...) }}
	if o.inPlace {
		live := map[string]archive.StorageSpec{}
		for _, sp := range specs {
			live[sp.ID] = sp
		}
		ro.InPlace = func(id string) (string, string, error) {
			sp, ok := live[id]
			if !ok {
				return "", "", fmt.Errorf("no data_fs configured for it (id %s)", id)
			}
			return sp.DataFS, sp.BlobDir, nil
		}
		ro.Aside = ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
	}
	rs, err := archive.Restore(ctx, store, rec, ro)
	for _, r := range rs {
		fmt.Fprintf(c.stdout, "%s: %s: %d bytes from %d segment(s), ends with tid %s, index written", r.Label, r.DataFS, r.Size, r.Segments, r.KeptTID.Hex())
		if r.BlobDir != "" {
			fmt.Fprintf(c.stdout, "; %d blob file(s) in %s", r.Blobs, r.BlobDir)
		}
		fmt.Fprintln(c.stdout)
	}
	for _, r := range rs {
		for _, p := range r.Aside {
			fmt.Fprintf(c.stdout, "%s: kept the replaced %s\n", r.Label, p)
		}
	}
	if err != nil {
		return c.fail("restore", err)
	}
	if o.inPlace {
		fmt.Fprintf(c.stdout, "next: start the ZEO server(s) of these storages again, then tidstorage serve\n")
		if cfg.StatusFile != "" {
			fmt.Fprintf(c.stdout, "before starting tidstorage serve: move its status file %s aside (it records points after this one)\n", cfg.StatusFile)
		}
	}
	return 0
}
