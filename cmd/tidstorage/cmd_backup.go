package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/tidstorage/tidstorage/backup"
)

const backupHelp = `
Backs up every storage that has data_fs and repository, all to the same
coherent point, as one backup set. The point is the running daemon's current
one (asked at the configuration's admin endpoint, else its classic endpoint),
else the status file's last line (written every burst_period: the command
then says how old it is), or --status-file, --dump, --tid; see docs/backup.md,
"The point". For each storage, the Data.fs bytes up to the end of its last committed
transaction with TID <= the point's are written to its repository in
repozo's format: a full backup <stamp>.fs, or an incremental <stamp>.deltafs
when the file still extends the repository's last backup (same bytes, same
boundary), with a line in the full backup's <stamp>.dat ledger; so
'repozo -R -r REPO -D <stamp> -o Data.fs' restores it too. Blob files of
revisions up to that TID are copied to REPO/blobs/ (same layout as the blob
directory). The set's manifest, <stamp>.tidstorage.json, is written to every
repository last. See docs/backup.md.

Repositories are created on first use and locked while the backup writes
them (REPO/tidstorage.lock: a second backup is refused; a lock left by a
killed process of this host is taken over). Before an incremental, every
file of the chain it extends is re-read and checked against the ledger and
the manifest: a damaged chain gets a new full backup, and the reason is
printed. --quick (-Q) checks only the chain files' sizes and its last
transaction (as repozo -Q): an incremental then costs about its new bytes, and
a damaged middle file is left to 'tidstorage verify'.

--gzip (-z) writes gzipped files as repozo -z does (.fsz, .deltafsz; the
ledger's md5 is of the uncompressed bytes): repozo -R, restore and verify read
them, and a chain may mix both kinds.

--snapshot DIR writes a full set of every storage that has a data_fs into
DIR/<label>/ instead (each a repozo repository with its blobs pool and the
set's manifest; 'restore' reads it with a configuration whose repositories
point there), leaving the configured repositories and their chains alone.

--keep N then applies retention as 'tidstorage forget --keep N --yes'.

Stamps are UTC seconds, strictly increasing per repository. Progress lines go
to stderr every --progress while copying.`

func runBackup(c *cli, args []string) (code int) {
	fs := c.flagSet("backup")
	rec := addRunMetricsFlags(fs, "backup")
	path := configFlag(fs)
	pf := addPointFlags(fs)
	full := fs.Bool("full", false, "full backups, even where an incremental would do")
	gz := fs.Bool("gzip", false, "write gzipped data files (.fsz, .deltafsz), as repozo -z")
	quick := fs.Bool("quick", false, "check the chain an incremental extends by sizes and its last transaction only (as repozo -Q), not by re-reading it")
	fs.BoolVar(quick, "Q", false, "same as --quick")
	fs.BoolVar(gz, "z", false, "same as --gzip")
	every := fs.Duration("progress", 10*time.Second, "print progress to stderr every `INTERVAL` (0 = never)")
	asJSON := fs.Bool("json", false, "print the set's manifest as JSON")
	snapshot := fs.String("snapshot", "", "a full set of every storage with data_fs into `DIR`/<label>/ (repozo repositories), leaving the configured repositories alone")
	keep := fs.Int("keep", 0, "after the backup, keep the newest `N` full chains of every repository and remove the rest (as 'forget --keep N --yes'; 0 = keep all)")
	cfg, code, ok := c.loadConfig("backup", fs, path, args)
	if !ok {
		return code
	}
	rec.use(cfg)
	defer func() { c.finishRun(rec, code) }()
	if *keep < 0 {
		return c.usageError("backup", "--keep N needs N >= 0")
	}
	if *snapshot != "" && *keep > 0 {
		return c.usageError("backup", "--keep applies to the configured repositories, not to a --snapshot")
	}
	refs := storageRefs(cfg)
	var specs []backup.Spec
	for _, s := range refs {
		switch {
		case *snapshot != "" && s.DataFS != "":
			// A snapshot elsewhere (collective.recipe.backup's
			// snapshotbackup): its own repositories, a full set.
			specs = append(specs, backup.Spec{ID: s.ID, Label: s.Label, DataFS: s.DataFS, BlobDir: s.BlobDir, Repository: filepath.Join(*snapshot, s.Label)})
		case *snapshot != "":
		case s.DataFS != "" && s.Repository != "":
			specs = append(specs, backup.Spec{ID: s.ID, Label: s.Label, DataFS: s.DataFS, BlobDir: s.BlobDir, Repository: s.Repository})
		case s.DataFS != "" || s.Repository != "":
			fmt.Fprintf(c.stderr, "tidstorage backup: %s: skipped: needs both data_fs and repository\n", s.Label)
		}
	}
	if len(specs) == 0 {
		return c.fail("backup", fmt.Errorf("%s: no storage has both data_fs and repository", *path))
	}
	point, source, err := pf.resolve(cfg, refs, c.stderr)
	if err != nil {
		return c.fail("backup", err)
	}
	if len(pf.tids) > 0 {
		// A point given by hand names every storage or the run is refused:
		// say which are missing in the flags' own terms.
		var missing []string
		for _, sp := range specs {
			if _, ok := point[sp.ID]; !ok {
				missing = append(missing, sp.Label)
			}
		}
		if len(missing) > 0 {
			return c.usageError("backup", "--tid: give a TID for every storage backed up; missing: %s", strings.Join(missing, ", "))
		}
	}
	m, err := backup.Backup(specs, point, backup.Options{
		Full: *full || *snapshot != "", Gzip: *gz, Quick: *quick, PointSource: source,
		Log: c.stderr, Progress: c.stderr, ProgressEvery: *every,
	})
	if err != nil {
		return c.fail("backup", err)
	}
	if m.SameAs == "" {
		rec.out.sets = 1
		rec.out.bytes = writtenBytes(m)
	} else {
		rec.out.bytes = 0
	}
	code = c.printBackup(m, source, *asJSON)
	if code == 0 && *keep > 0 {
		// The retention that follows is forget's run: its outcome is
		// recorded as forget's, the backup's stands.
		frec := &runRecorder{file: rec.file, pushURL: rec.pushURL, out: runOutcome{command: "forget", start: time.Now(), bytes: -1}}
		repos, repoOf := configRepos(cfg)
		plan, err := backup.Forget(repos, *keep, true, repoOf, c.logf(c.stderr))
		if err != nil {
			c.finishRun(frec, 1)
			return c.fail("backup", err)
		}
		frec.out.sets, frec.out.bytes = len(plan.Sets), plan.Bytes()
		c.finishRun(frec, 0)
		printForget(c.stderr, plan, true)
	}
	return code
}

// writtenBytes are the data bytes a set wrote: each storage's last file
// (the full backup or the incremental of this run).
func writtenBytes(m *backup.Manifest) int64 {
	var n int64
	for _, e := range m.Storages {
		if e.Kind != "unchanged" && len(e.Files) > 0 {
			last := e.Files[len(e.Files)-1]
			n += last.End - last.Start
		}
	}
	return n
}

// printBackup prints the set: its manifest as JSON, or one line per
// storage.
func (c *cli) printBackup(m *backup.Manifest, source string, asJSON bool) int {
	if asJSON {
		return c.printJSON("backup", m)
	}
	if m.SameAs != "" {
		fmt.Fprintf(c.stdout, "nothing new since backup set %s (point: %s): no new set written\n", m.SameAs, source)
		return 0
	}
	fmt.Fprintf(c.stdout, "backup set %s (point: %s)\n", m.Stamp, source)
	for _, e := range m.Storages {
		kept := e.KeptTID
		if kept == "" {
			kept = "none"
		}
		fmt.Fprintf(c.stdout, "%s: %s, tid %s (kept %s), %d bytes", storageDisplay(e.ID, e.Label), e.Kind, e.TID, kept, e.Size)
		if e.Kind != "unchanged" {
			last := e.Files[len(e.Files)-1]
			fmt.Fprintf(c.stdout, ", wrote %s (%d bytes)", last.Name, last.End-last.Start)
		}
		fmt.Fprintf(c.stdout, " in %s", e.Repository)
		if e.Blobs != nil {
			fmt.Fprintf(c.stdout, "; blobs: %d files, %d new", len(e.Blobs.Files), e.Blobs.Copied)
			if len(e.Blobs.Missing) > 0 {
				fmt.Fprintf(c.stdout, ", %d MISSING", len(e.Blobs.Missing))
			}
		}
		fmt.Fprintln(c.stdout)
	}
	return 0
}
