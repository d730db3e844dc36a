package main

import (
	"fmt"
	"io"

	"github.com/tidstorage/tidstorage/backup"
)

const forgetHelp = `
Retention, as repozo -k / collective.recipe.backup's keep: in every
configured repository, keeps the newest --keep N full backups with their
incrementals and removes older data files, ledgers and repozo indexes;
removes the manifests of the sets that needed them (a set is restorable
whole or not at all, so a set is forgotten in every repository at once);
removes the blob revisions of the pool that no remaining set lists, and the
directories left empty.

Without --yes it only prints what it would remove. The repositories are
locked meanwhile (no backup can run). 'tidstorage backup --keep N' does the
same after a successful backup.`

func runForget(c *cli, args []string) (code int) {
	fs := c.flagSet("forget")
	rec := addRunMetricsFlags(fs, "forget")
	path := configFlag(fs)
	keep := fs.Int("keep", 0, "keep the newest `N` full backups (and their incrementals) of every repository")
	yes := fs.Bool("yes", false, "remove; without it, only print what would be removed")
	cfg, repos, repoOf, code, ok := c.loadReposConfig("forget", fs, path, args)
	if cfg != nil && *yes {
		// A dry run removes nothing: it is not an outcome to record.
		rec.use(cfg)
		defer func() { c.finishRun(rec, code) }()
	}
	if !ok {
		return code
	}
	if *keep < 1 {
		return c.usageError("forget", "give --keep N, N >= 1")
	}
	plan, err := backup.Forget(repos, *keep, *yes, repoOf, c.logf(c.stderr))
	if err != nil {
		return c.fail("forget", err)
	}
	rec.out.sets, rec.out.bytes = len(plan.Sets), plan.Bytes()
	printForget(c.stdout, plan, *yes)
	if !*yes {
		fmt.Fprintf(c.stdout, "dry run: nothing was removed (add --yes to remove)\n")
	}
	return 0
}

// printForget says, per repository, what is (or would be) removed.
func printForget(w io.Writer, p *backup.ForgetPlan, done bool) {
	verb := "would remove"
	if done {
		verb = "removed"
	}
	for _, stamp := range p.Sets {
		fmt.Fprintf(w, "set %s: %s\n", stamp, verb)
	}
	for _, r := range p.Repos {
		fmt.Fprintf(w, "%s: keeping %d full chain(s) %v; %s %d file(s) and %d blob file(s), %d bytes\n",
			r.Repo, len(r.KeptChains), r.KeptChains, verb, len(r.Files), len(r.Blobs), r.Bytes)
		for _, f := range r.Files {
			fmt.Fprintf(w, "  %s %s\n", verb, f)
		}
		if r.Note != "" {
			fmt.Fprintf(w, "  note: %s\n", r.Note)
		}
	}
}

// logf writes one line per call to w.
func (c *cli) logf(w io.Writer) func(string, ...any) {
	return func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
}
