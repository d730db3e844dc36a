package main

import (
	"fmt"

	"github.com/tidstorage/tidstorage/backup"
)

const setsHelp = `
Lists the backup sets of the configured repositories, oldest first: stamp
(the name 'restore --set' and 'repozo -D' take), when it was taken, total
size of the Data.fs files it restores, and a quick state: "files present"
when every data file is there with its size, or what is missing. With
--verify, each set is also checked as 'tidstorage verify' does (checksums,
chain ends, blobs) and shown "verified" or "DAMAGED". Under each set, one
line per storage: full, incremental or unchanged, the TID it restores to,
and its size.`

func runSets(c *cli, args []string) int {
	fs := c.flagSet("sets")
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "print the sets (their manifests and problems) as JSON")
	verify := fs.Bool("verify", false, "also verify every set's checksums, chain end and blobs (as 'tidstorage verify')")
	repos, repoOf, code, ok := c.loadRepos("sets", fs, path, args)
	if !ok {
		return code
	}
	sets, problems := backup.ListSets(repos, repoOf)
	if *verify {
		stamps := make([]string, len(sets))
		for i, s := range sets {
			stamps[i] = s.Stamp
		}
		for i, r := range backup.Verify(repos, stamps, backup.VerifyOptions{RepoOf: repoOf}) {
			sets[i].Verified = r.OK()
			sets[i].Problems = append(sets[i].Problems, r.Problems...)
		}
	}
	for _, p := range problems {
		fmt.Fprintf(c.stderr, "tidstorage sets: %s\n", p)
	}
	if *asJSON {
		return c.printJSON("sets", sets)
	}
	if len(sets) == 0 {
		fmt.Fprintf(c.stdout, "no backup set found\n")
		return 0
	}
	for _, s := range sets {
		state := "files present"
		switch {
		case *verify && !s.Verified:
			state = fmt.Sprintf("DAMAGED (%d problem(s))", len(s.Problems))
		case len(s.Problems) > 0:
			state = fmt.Sprintf("INCOMPLETE (%d problem(s))", len(s.Problems))
		case *verify:
			state = "verified"
		}
		fmt.Fprintf(c.stdout, "%s  taken %s  %s  %s\n", s.Stamp, s.Time.Format("2006-01-02T15:04:05Z"), backup.HumanBytes(s.Bytes), state)
		for _, e := range s.Storages {
			fmt.Fprintf(c.stdout, "  %s: %s, tid %s, %s\n", storageDisplay(e.ID, e.Label), e.Kind, e.KeptTID, backup.HumanBytes(e.Size))
		}
		for _, p := range s.Problems {
			fmt.Fprintf(c.stdout, "  problem: %s\n", p)
		}
	}
	return 0
}
