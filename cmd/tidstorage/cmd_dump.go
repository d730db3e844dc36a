package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker/classic"
)

const dumpHelp = `
Connects to a classic endpoint (tidstorage, or the original TIDStorage
daemon), sends DUMP and prints every published storage id with its TID as
integer, hex and UTC time ("empty" for TID 0: a storage without a
transaction), sorted by storage id. The address is -a, or the classic listen
address of the configuration given with -c (which also names each storage
as backups do, when that name is not its id), or else the default classic
address 127.0.0.1:9001. With --json the
output is {"bootstrapped": bool, "storages": {"<id>": {int, hex, base64, time,
...}}}. An empty point (nothing published yet, e.g. before bootstrap) is not
an error.`

func runDump(c *cli, args []string) int {
	fs := c.flagSet("dump")
	addr := fs.String("a", "", "classic endpoint `HOST:PORT` (default: classic.listen of -c FILE, else "+config.DefaultClassicListen+")")
	fs.StringVar(addr, "address", "", "`HOST:PORT`, same as -a")
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "connect and reply `TIMEOUT`")
	if ok, code := c.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.usageError("dump", "unexpected argument %q", fs.Arg(0))
	}
	labels := map[string]string{}
	switch {
	case *addr != "" && *path != "":
		return c.usageError("dump", "give -a or -c, not both")
	case *addr == "" && *path == "":
		*addr = config.DefaultClassicListen
	case *path != "":
		cfg, err := config.Load(*path)
		if err != nil {
			return c.fail("dump", err)
		}
		if *addr, err = classicAddr(cfg); err != nil {
			return c.fail("dump", fmt.Errorf("%s: %w", *path, err))
		}
		for _, r := range storageRefs(cfg) {
			labels[r.ID] = r.Label
		}
	}

	cl, err := classic.Dial(*addr, *timeout)
	if err != nil {
		return c.fail("dump", fmt.Errorf("cannot reach a classic endpoint at %s (is 'tidstorage serve' running there? give -a HOST:PORT or -c FILE): %w", *addr, rootCause(err)))
	}
	defer cl.Close()
	point, err := cl.Dump()
	if err != nil {
		return c.fail("dump", err)
	}
	// BOOTSTRAPED is older than DUMP in the protocol: the original daemon
	// answers it too.
	boot, err := cl.Bootstraped()
	if err != nil {
		return c.fail("dump", err)
	}
	cl.Quit()

	ids := make([]string, 0, len(point))
	for id := range point {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if *asJSON {
		out := struct {
			Bootstrapped bool               `json:"bootstrapped"`
			Storages     map[string]tidInfo `json:"storages"`
		}{boot, make(map[string]tidInfo, len(point))}
		for id, v := range point {
			out.Storages[id] = newTIDInfo("", txn.TID(v))
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return c.fail("dump", err)
		}
		return 0
	}
	if !boot {
		fmt.Fprintf(c.stderr, "tidstorage dump: %s has not finished its bootstrap: nothing is published until every storage has committed\n", *addr)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	for _, id := range ids {
		t := txn.TID(point[id])
		when := "empty"
		if t != 0 {
			when = t.Time().Format(time.RFC3339Nano)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", storageDisplay(id, labels[id]), uint64(t), t.Hex(), when)
	}
	tw.Flush()
	return 0
}
