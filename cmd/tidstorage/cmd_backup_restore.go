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

Existing files at the destination are not overwritten unless --force (which
also refuses while a ZODB program holds the destination's Data.fs.lock).`

func runRestore(c *cli, args []string) int {
	fs := c.flagSet("restore")
	path := configFlag(fs)
	to := fs.String("to", "", "destination `DIR`")
	set := fs.String("set", "", "the set's `STAMP` (default: the newest)")
	at := fs.String("at", "", "restore the newest set taken at or before `DATE` (YYYY-MM-DD[-HH[-MM[-SS]]] UTC, as repozo -D, or RFC 3339)")
	force := fs.Bool("force", false, "replace existing files at the destination")
	every := fs.Duration("progress", 10*time.Second, "print progress to stderr every `INTERVAL` (0 = never)")
	cfg, code, ok := c.loadConfig("restore", fs, path, args)
	if !ok {
		return code
	}
	if *to == "" {
		return c.usageError("restore", "give the destination with --to DIR")
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
	rs, err := backup.Restore(m, *to, backup.RestoreOptions{
		Force:    *force,
		RepoOf:   repoOf,
		Progress: c.stderr, ProgressEvery: *every,
	})
	for _, r := range rs {
		fmt.Fprintf(c.stdout, "%s: %s: %d bytes from %d file(s), ends with tid %s", r.ID, r.DataFS, r.Size, r.Files, r.KeptTID.Hex())
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
	return 0
}
