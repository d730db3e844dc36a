package main

import "fmt"

// The daemon-side commands are wired by the daemon work of issue 6; until
// then they validate their flags and say so.


func notYet(c *cli, name string, args []string) int {
	fs := c.flagSet(name)
	configFlag(fs)
	if ok, code := c.parse(fs, args); !ok {
		return code
	}
	fmt.Fprintf(c.stderr, "tidstorage %s: not implemented yet\n", name)
	return 2
}
