package main

import (
	"fmt"
	"time"

	"github.com/tidstorage/tidstorage/backup"
)

const cutHelp = `
After a crash without restore (the job of the original restore_tidstorage.py),
cuts every configured Data.fs (data_fs) right after its storage's TID in the
coherent point: the end of the last committed transaction whose TID is <= the
point's, dropping later transactions and any in-progress or torn tail, so
that all storages agree again.

The point is the running daemon's current one (asked at the configuration's
admin endpoint, else its classic endpoint), else the status file's last line
(status_file of the configuration; the command then says how old it is); or
the last line of --status-file, a running server's DUMP (--dump), or --tid
STORAGE=TID for each storage.

Nothing is destroyed: the removed bytes are saved to
<Data.fs>.cut-<tid>-<UTC stamp> first, and the stale <Data.fs>.index (it
would point past the cut) is renamed to <Data.fs>.index.cut-<tid>-<stamp>
and replaced by a fresh one built while checking the cut file (FS30 files),
so that ZODB opens it without a full scan.
Each file is locked as ZODB does (Data.fs.lock): the command refuses to run
while a ZEO server or any ZODB program has a storage open, or while a pack is
in progress. Every storage is checked before any is changed; a file whose
data ends before the point (it lacks transactions of the point) is refused
unless --allow-behind. --dry-run prints what would be done and changes
nothing; it also works while a ZEO server runs (it reads the file as of now
and says which program holds it).`

func runCut(c *cli, args []string) int {
	fs := c.flagSet("cut")
	path := configFlag(fs)
	pf := addPointFlags(fs)
	dry := fs.Bool("dry-run", false, "print what would be cut, change nothing")
	behind := fs.Bool("allow-behind", false, "cut the other storages even if a file ends before its point's TID")
	cfg, code, ok := c.loadConfig("cut", fs, path, args)
	if !ok {
		return code
	}
	refs := storageRefs(cfg)
	point, source, err := pf.resolve(cfg, refs, c.stderr)
	if err != nil {
		return c.fail("cut", err)
	}
	fmt.Fprintf(c.stdout, "point: %s\n", source)

	var plans []*backup.CutPlan
	var planned []*storageRef
	release := func() {
		for _, p := range plans {
			p.Release()
		}
	}
	failed := false
	for _, s := range refs {
		if s.DataFS == "" {
			fmt.Fprintf(c.stdout, "%s: no data_fs configured, skipped\n", s.Label)
			continue
		}
		t, ok := point[s.ID]
		if !ok {
			fmt.Fprintf(c.stderr, "tidstorage cut: %s (%s): not in the point: no coherent TID is known for it\n", s.Label, s.ID)
			failed = true
			continue
		}
		plan := backup.PlanCut
		if *dry {
			plan = backup.PreviewCut
		}
		p, err := plan(s.DataFS, t, *behind)
		if err != nil {
			fmt.Fprintf(c.stderr, "tidstorage cut: %s: %v\n", s.Label, err)
			failed = true
			continue
		}
		plans = append(plans, p)
		planned = append(planned, s)
	}
	if len(plans) == 0 && !failed {
		release()
		return c.fail("cut", fmt.Errorf("%s: no storage has a data_fs", *path))
	}
	if failed {
		release()
		fmt.Fprintf(c.stderr, "tidstorage cut: nothing was changed\n")
		return 1
	}
	for i, p := range plans {
		fmt.Fprintf(c.stdout, "%s: %s: tid %s: %s\n", storageDisplay(planned[i].ID, planned[i].Label), p.Path, p.Target.Hex(), p.Cut.Summary())
		if p.InUse != "" {
			fmt.Fprintf(c.stdout, "  in use (the file as of now; the cut itself will refuse until it stops): %s\n", p.InUse)
		}
	}
	if *dry {
		release()
		fmt.Fprintf(c.stdout, "dry run: nothing was changed\n")
		return 0
	}
	now := time.Now()
	code = 0
	for i, p := range plans {
		label := storageDisplay(planned[i].ID, planned[i].Label)
		if p.Noop() {
			p.Release()
			fmt.Fprintf(c.stdout, "%s: already ends right after the point: unchanged\n", label)
			continue
		}
		res, err := p.Apply(now)
		if err != nil {
			fmt.Fprintf(c.stderr, "tidstorage cut: %s: %v\n", label, err)
			code = 1
			continue
		}
		fmt.Fprintf(c.stdout, "%s: cut %s to %d bytes; removed %d bytes saved to %s", label, p.Path, p.Cut.Offset, p.Cut.RemovedBytes(), res.TailFile)
		if res.IndexMoved != "" {
			fmt.Fprintf(c.stdout, "; stale index moved to %s", res.IndexMoved)
		}
		if res.IndexWritten {
			fmt.Fprintf(c.stdout, "; fresh index written")
		}
		fmt.Fprintln(c.stdout)
	}
	return code
}
