package main

import (
	"fmt"
	"time"

	"github.com/tidstorage/tidstorage/backup"
)

const restoreHelp = `
Restores every storage of a backup set (the newest, --set STAMP, or the
newest taken at or before --at DATE; 'tidstorage sets' lists them) under
DIR/<label>/: the Data.fs joined from its full and incremental backups, each
checked against the ledger's size and md5 (and the manifest's sha256), then
scanned: it must end exactly with the set's TID for that storage. Its blob
files go to DIR/<label>/<blob directory name>/. A fresh Data.fs.index is
written from that scan (FS30 files), so ZODB opens the file without a full
scan. The manifest is read from the configured repositories.

--in-place restores to the configured data_fs and blob_dir instead: the
Data.fs, its .index and the blob directory it replaces are renamed with the
suffix .before-restore-<UTC time> and kept (never deleted), and it prints
what to restart. Every storage is checked first: nothing is written while a
ZEO server or any ZODB program holds one of the Data.fs (Data.fs.lock).

Existing files at the destination are not overwritten unless --force (which
also refuses while a ZODB program holds the destination's Data.fs.lock).

--from-archive restores from the configuration's archive block instead
(docs/backup.md, "Continuous archive"): every storage at the newest archived
point at or before --at TIME (RFC 3339, fractions of a second allowed, or
YYYY-MM-DD[-HH[-MM[-SS]]] UTC; default: the newest), or the newest whose TIDs
are at or below the --tid STORAGE=TID given, under --to DIR/<label>/: each
Data.fs joined from its segments (sha256 checked), scanned to end exactly
with that point's transaction, with a fresh index and its blob files; with
--in-place, to the configured files as for sets (every live Data.fs locked,
every storage restored beside it first, the replaced files kept). An
archive written with recipients needs the identity file: --identity FILE.`

func runRestore(c *cli, args []string) int {
	fs := c.flagSet("restore")
	path := configFlag(fs)
	to := fs.String("to", "", "destination `DIR`")
	inPlace := fs.Bool("in-place", false, "restore to the configured data_fs and blob_dir, keeping the replaced files aside (needs --force when they exist)")
	set := fs.String("set", "", "the set's `STAMP` (default: the newest)")
	at := fs.String("at", "", "restore the newest set taken at or before `DATE` (YYYY-MM-DD[-HH[-MM[-SS]]] UTC, as repozo -D, or RFC 3339)")
	force := fs.Bool("force", false, "replace existing files at the destination")
	every := fs.Duration("progress", 10*time.Second, "print progress to stderr every `INTERVAL` (0 = never)")
	fromArchive := fs.Bool("from-archive", false, "restore from the configuration's archive: the newest point at or before --at TIME (RFC 3339 with fractions, or YYYY-MM-DD[-HH[-MM[-SS]]] UTC), or at or below --tid")
	identity := fs.String("identity", "", "with --from-archive: age identity `FILE` of an encrypted archive")
	var tids stringList
	fs.Var(&tids, "tid", "with --from-archive: the newest point whose TID of `STORAGE=TID` is at or below TID (id or label); repeatable")
	cfg, code, ok := c.loadConfig("restore", fs, path, args)
	if !ok {
		return code
	}
	if *fromArchive {
		switch {
		case (*to == "") == !*inPlace:
			return c.usageError("restore", "give the destination: --to DIR or --in-place")
		case *set != "":
			return c.usageError("restore", "--from-archive takes --at or --tid, not --set")
		}
		return restoreFromArchive(c, cfg, archiveRestore{at: *at, tids: tids, to: *to, inPlace: *inPlace, force: *force, identity: *identity})
	}
	if len(tids) > 0 {
		return c.usageError("restore", "--tid needs --from-archive")
	}
	if (*to == "") == !*inPlace {
		return c.usageError("restore", "give the destination: --to DIR or --in-place")
	}
	repos, repoOf := configRepos(cfg)
	if *at != "" {
		if *set != "" {
			return c.usageError("restore", "give --set or --at, not both")
		}
		date, err := backup.ParseDate(*at)
		if err != nil {
			return c.usageError("restore", "--at: %v", err)
		}
		stamps, problems := backup.AllStamps(repos)
		for _, p := range problems {
			fmt.Fprintf(c.stderr, "tidstorage restore: %s\n", p)
		}
		if *set, err = backup.StampAt(stamps, date); err != nil {
			return c.fail("restore", err)
		}
	}
	m, err := backup.FindSet(repos, *set)
	if err != nil {
		return c.fail("restore", err)
	}
	fmt.Fprintf(c.stdout, "backup set %s (taken %s, point: %s)\n", m.Stamp, m.Time.Format(time.RFC3339), m.PointSource)
	opts := backup.RestoreOptions{
		Force:    *force,
		RepoOf:   repoOf,
		Progress: c.stderr, ProgressEvery: *every,
	}
	if *inPlace {
		opts.Dest = inPlaceDest(storageRefs(cfg))
		opts.Aside = ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
	}
	rs, err := backup.Restore(m, *to, opts)
	for _, r := range rs {
		fmt.Fprintf(c.stdout, "%s: %s: %d bytes from %d file(s), ends with tid %s", storageDisplay(r.ID, r.Label), r.DataFS, r.Size, r.Files, r.KeptTID.Hex())
		if r.Index {
			fmt.Fprintf(c.stdout, ", index written")
		}
		if r.BlobDir != "" {
			fmt.Fprintf(c.stdout, "; %d blob file(s) in %s", r.Blobs, r.BlobDir)
		}
		fmt.Fprintln(c.stdout)
	}
	if err != nil {
		return c.fail("restore", err)
	}
	if *inPlace {
		printInPlaceAdvice(c, cfg.StatusFile, rs)
	}
	return 0
}

// inPlaceDest maps each storage of a set to its configured files, by id.
func inPlaceDest(refs []*storageRef) func(e *backup.StorageEntry) (string, string, error) {
	byID := map[string]*storageRef{}
	for _, r := range refs {
		byID[r.ID] = r
	}
	return func(e *backup.StorageEntry) (string, string, error) {
		r := byID[e.ID]
		switch {
		case r == nil || r.DataFS == "":
			return "", "", fmt.Errorf("no data_fs configured for it (id %s): cannot restore it in place", e.ID)
		case e.Blobs != nil && r.BlobDir == "":
			return "", "", fmt.Errorf("the set has blobs but no blob_dir is configured for it")
		}
		return r.DataFS, r.BlobDir, nil
	}
}

// printInPlaceAdvice says what was kept and what to restart.
func printInPlaceAdvice(c *cli, statusFile string, rs []backup.Restored) {
	for _, r := range rs {
		for _, p := range r.Aside {
			fmt.Fprintf(c.stdout, "%s: kept the replaced %s\n", r.Label, p)
		}
	}
	fmt.Fprintf(c.stdout, "next: start the ZEO server(s) of these storages again, then tidstorage serve\n")
	if statusFile != "" {
		// Until serve handles a history that goes back, its
		// status file would hold points after this set and later
		// backups and cuts would refuse its lines.
		fmt.Fprintf(c.stdout, "before starting tidstorage serve: move its status file %s aside (it records points after this set)\n", statusFile)
	}
}
