package main

import (
	"fmt"
	"net/http"
	"net/url"
)

const fleetRetireHelp = `
Retire a sidecar that is gone for good (its host decommissioned, or renamed):
the fleet tracker forgets it. Its row leaves 'tidstorage status' and the
/fleet and /metrics figures, it no longer counts as a link down, and the
tracker no longer waits for its resend (after a restart of the tracker,
every sidecar it heard from before is expected back, and an accept waits
for them). A sidecar that later connects under the name is a new one: its
reports are numbered afresh.

A connected sidecar cannot be retired: stop it first. Without --yes nothing
is changed: the sidecar's row is shown and the command exits with status 2.
The address, token and flags are those of accept-partial (-a or -c,
--token-file).

Exit status: 0 retired; 1 no such sidecar, it is connected, the token is
refused, or the tracker cannot be reached; 2 usage error, or --yes missing.`

func runFleetRetire(c *cli, args []string) int {
	const name = "fleet retire"
	fs := c.flagSet(name)
	af := addAdminFlags(fs)
	yes := fs.Bool("yes", false, "really retire (without it, only show the sidecar)")
	if ok, code := c.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return c.usageError(name, "give the sidecar's name (from 'tidstorage status' on the tracker)")
	}
	sidecar := fs.Arg(0)
	base, code := af.baseURL(c, name)
	if code != 0 {
		return code
	}
	token, err := af.token()
	if err != nil {
		return c.fail(name, fmt.Errorf("the admin token is needed to retire a sidecar: %w", err))
	}
	cl := af.client(base, token)
	if !*yes {
		f, err := cl.fleet()
		if err != nil {
			return c.fail(name, err)
		}
		if f == nil || f.Role != "tracker" {
			return c.fail(name, fmt.Errorf("%s is not a fleet tracker", base))
		}
		for _, s := range f.Sidecars {
			if s.Source == sidecar {
				fmt.Fprintf(c.stdout, "Would retire sidecar %q: %s\n", sidecar, upDown(s.Since, s.Connected, s.Since))
				fmt.Fprintf(c.stderr, "tidstorage %s: add --yes to retire it: tidstorage %s %s --yes %s\n", name, name, af.hint(), sidecar)
				return 2
			}
		}
		return c.fail(name, fmt.Errorf("the tracker knows no sidecar %q", sidecar))
	}
	var res map[string]any
	if _, err := cl.do(http.MethodPost, "/fleet/retire?name="+url.QueryEscape(sidecar), &res); err != nil {
		return c.fail(name, err)
	}
	fmt.Fprintf(c.stdout, "Retired sidecar %q: the tracker no longer expects it.\n", sidecar)
	return 0
}
