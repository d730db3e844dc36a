package main

import (
	"fmt"

	"github.com/tidstorage/tidstorage/backup"
)

const verifyHelp = `
Checks backup sets without restoring them (repozo -V for every chain, plus
blobs and the set's coherence): every set found in the configured
repositories, or --set STAMP. For each storage of a set: the same manifest
(same point) is in its repository; the chain's .dat ledger agrees with the
manifest; every data file has the ledger's size and md5 and the manifest's
sha256; the chain, read as one file, ends with the set's TID for that
storage; every blob file of the set is in the repository's pool with its
size. --read-data also scans each chain with every Data.fs format check (as
restore does) and reads every blob file through.

Prints one line per set, then a summary; exit status 0 when every set is
sound, 1 otherwise (for a cron job to alert on).`

func runVerify(c *cli, args []string) (code int) {
	fs := c.flagSet("verify")
	rec := addRunMetricsFlags(fs, "verify")
	path := configFlag(fs)
	set := fs.String("set", "", "check only the set `STAMP`")
	readData := fs.Bool("read-data", false, "also scan every chain's Data.fs format and read every blob file")
	asJSON := fs.Bool("json", false, "print the reports as JSON")
	cfg, repos, repoOf, code, ok := c.loadReposConfig("verify", fs, path, args)
	if cfg != nil {
		rec.use(cfg)
		defer func() { c.finishRun(rec, code) }()
	}
	if !ok {
		return code
	}
	stamps, problems := backup.AllStamps(repos)
	if *set != "" {
		stamps = []string{*set}
	}
	for _, p := range problems {
		fmt.Fprintf(c.stderr, "tidstorage verify: %s\n", p)
	}
	reports := backup.Verify(repos, stamps, backup.VerifyOptions{ReadData: *readData, RepoOf: repoOf})
	bad := len(problems)
	for _, r := range reports {
		if !r.OK() {
			bad++
		}
	}
	rec.out.sets, rec.out.errors = len(reports), bad
	if *asJSON {
		if code := c.printJSON("verify", reports); code != 0 {
			return code
		}
	} else {
		for _, r := range reports {
			state := "ok"
			if !r.OK() {
				state = "DAMAGED"
			}
			fmt.Fprintf(c.stdout, "%s: %s (%d storage(s), %d data file(s) checked, %d blob file(s))\n", r.Stamp, state, r.Storages, r.Files, r.Blobs)
			for _, p := range r.Problems {
				fmt.Fprintf(c.stdout, "  problem: %s\n", p)
			}
			for _, n := range r.Notes {
				fmt.Fprintf(c.stdout, "  note: %s\n", n)
			}
		}
		switch {
		case len(reports) == 0:
			fmt.Fprintf(c.stdout, "no backup set found\n")
		case bad == 0:
			fmt.Fprintf(c.stdout, "verified %d set(s): all sound\n", len(reports))
		default:
			fmt.Fprintf(c.stdout, "verified %d set(s): %d with problems\n", len(reports), bad)
		}
	}
	if bad > 0 || len(reports) == 0 {
		return 1
	}
	return 0
}
