package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidstorage/tidstorage/internal/statusdoc"
)

const acceptHelp = `
A partial commit (a transaction committed on some storages and not on
others) holds the published TIDs of its storages until an operator decides.
Accepting the pin makes the storages' live state the new baseline: their
group publishes again from what is committed now, half transaction
included. The other way out is to stop ZEO, restore or cut those storages
to the held TIDs (see 'tidstorage status'), start ZEO and restart
'tidstorage serve': an accept after a cut is refused, since it would
publish TIDs cut away. Lost and none pins can be accepted too; blind pins
cannot (they end when their connections close).

An unaccounted pin holds one storage below commits that its own history
shows and that nothing accounted for: no proxied client and no classic
COMMIT reported them (a client that bypasses the proxy, or a crash of
tidstorage). Identify each commit first (the ERROR log "unaccounted commit"
gives its time, user and description) and check the other storages for the
rest of its transaction (docs/admin.md, "Ground truth and unaccounted
commits"). Accepting says you decided the commits are whole, or halves you
accept: they count as accounted for, and the storage publishes past them.
Commits after those the pin lists are checked as usual.

Without --yes nothing is changed: the pin is described and the command
exits with status 2. With --yes it is accepted (POST /accept-partial).
The address is -a (HOST:PORT or an http:// URL), or the admin listen address
of the configuration given with -c. The request carries the admin token
(Authorization: Bearer), read from --token-file or from the admin.token_file
of -c FILE (default: the status file's path + ".admin-token"); run it as the
user that runs serve, or one that can read that file.

Exit status: 0 accepted; 1 the pin is not active or cannot be accepted, the
token cannot be read or is refused, or the daemon cannot be reached; 2 usage
error, or --yes missing.`

func runAcceptPartial(c *cli, args []string) int {
	fs := c.flagSet("accept-partial")
	af := addAdminFlags(fs)
	yes := fs.Bool("yes", false, "really accept (without it, only show what would be accepted)")
	all := fs.Bool("all", false, "without --yes, list every unaccounted commit the pin covers (by default, more than 5 are summarised)")
	if ok, code := c.parse(fs, args); !ok {
		return code
	}
	switch fs.NArg() {
	case 0:
		return c.usageError("accept-partial", "give the pin number (from 'tidstorage status')")
	case 1:
	default:
		return c.usageError("accept-partial", "unexpected argument %q", fs.Arg(1))
	}
	pin, err := strconv.ParseUint(fs.Arg(0), 10, 64)
	if err != nil {
		return c.usageError("accept-partial", "pin %q is not a number", fs.Arg(0))
	}
	base, code := af.baseURL(c, "accept-partial")
	if code != 0 {
		return code
	}
	token, err := af.token()
	if err != nil {
		return c.fail("accept-partial", fmt.Errorf("the admin token is needed to accept a pin: %w", err))
	}
	cl := af.client(base, token)

	if !*yes {
		doc, _, err := cl.status()
		if err != nil {
			return c.fail("accept-partial", err)
		}
		p, ok := doc.Pin(pin)
		if !ok {
			return c.fail("accept-partial", noSuchPin(&doc, pin))
		}
		if !p.Acceptable {
			return c.fail("accept-partial", fmt.Errorf("pin %d is a %s pin: it cannot be accepted (%s)", pin, p.Kind, p.Reason))
		}
		fmt.Fprintf(c.stdout, "Would accept:\n")
		printPin(c.stdout, &p, "  ", doc.Time, printOptions{all: *all})
		fmt.Fprintf(c.stdout, "%s Nothing was changed.\n", acceptMeaning(&p))
		fmt.Fprintf(c.stderr, "tidstorage accept-partial: add --yes to accept pin %d: tidstorage accept-partial %s --yes %d\n", pin, af.hint(), pin)
		return 2
	}

	var res statusdoc.AcceptResult
	status, err := cl.do(http.MethodPost, "/accept-partial?pin="+strconv.FormatUint(pin, 10), &res)
	if err != nil {
		if status == http.StatusNotFound {
			if doc, _, serr := cl.status(); serr == nil {
				return c.fail("accept-partial", noSuchPin(&doc, pin))
			}
		}
		return c.fail("accept-partial", err)
	}
	fmt.Fprintf(c.stdout, "Accepted pin %d (%s) on %d storage%s.\n", res.Pin.ID, res.Pin.Kind, len(res.Published), plural(len(res.Published)))
	if res.Pin.Reason != "" {
		fmt.Fprintf(c.stdout, "  %s\n", res.Pin.Reason)
	}
	for _, h := range res.Published {
		fmt.Fprintf(c.stdout, "  published now at %s: %s\n", h.Storage, tidText(h.Published))
	}
	return 0
}

// acceptMeaning says what accepting p decides.
func acceptMeaning(p *statusdoc.PinDoc) string {
	if p.Kind == "unaccounted" && p.Upto != nil {
		return fmt.Sprintf("Accepting says you have decided that these commits of %s, which no proxied client and no classic\n"+
			"COMMIT reported, are whole transactions or halves you accept (identify each from the ERROR log \"unaccounted\n"+
			"commit\": time, user, description; check the other storages for the rest of its transaction). They then count\n"+
			"as accounted for and the storage's publication passes them, up to %s;\nlater commits are checked as usual.",
			strings.Join(p.Storages, ", "), p.Upto.Hex)
	}
	return fmt.Sprintf("The live state of %d storage%s becomes the new baseline.", len(p.Storages), plural(len(p.Storages)))
}

// noSuchPin explains a missing pin and lists the active ones.
func noSuchPin(doc *statusdoc.StatusDoc, pin uint64) error {
	if len(doc.Pins) == 0 {
		return fmt.Errorf("no active pin %d: there are no pins at all (already accepted or released?)", pin)
	}
	msg := fmt.Sprintf("no active pin %d; the active pins are:", pin)
	for _, p := range doc.Pins {
		msg += fmt.Sprintf("\n  pin %d (%s)", p.ID, p.Kind)
	}
	return fmt.Errorf("%s", msg)
}
