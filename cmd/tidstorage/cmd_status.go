package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/internal/admin"
)

const statusHelp = `
Fetches /status from the admin endpoint of a running 'tidstorage serve' and
prints: the bootstrap state; every storage with its published TID (hex and
UTC time), its lag (now minus that time) and whether it is busy or blind;
the transactions in flight; and the pins that hold published TIDs back,
partial commits first. The address is -a (HOST:PORT or an http:// URL), or
the admin listen address of the configuration given with -c. With --json
the /status document is printed unchanged (see docs/admin.md).

Exit status: 0 when the status was printed; 1 when the daemon cannot be
reached or answers something else; 3 when the status was printed and shows
at least one partial commit (an operator must decide: see accept-partial).`

// exitPartial is status's exit code when partial commits are pending.
const exitPartial = 3

// adminFlags are the flags that locate the admin endpoint.
type adminFlags struct {
	addr, config *string
	timeout      *time.Duration
}

func addAdminFlags(fs *flag.FlagSet) adminFlags {
	f := adminFlags{addr: fs.String("a", "", "admin endpoint `HOST:PORT` or http:// URL (default: admin.listen of -c FILE)")}
	fs.StringVar(f.addr, "address", "", "`HOST:PORT`, same as -a")
	f.config = configFlag(fs)
	f.timeout = fs.Duration("timeout", 10*time.Second, "connect and reply `TIMEOUT`")
	return f
}

// baseURL resolves the flags to the endpoint's base URL (no trailing
// slash); code is non-zero when the command must stop.
func (f adminFlags) baseURL(c *cli, name string) (string, int) {
	switch {
	case *f.addr != "" && *f.config != "":
		return "", c.usageError(name, "give -a or -c, not both")
	case *f.addr == "" && *f.config == "":
		return "", c.usageError(name, "give the admin endpoint's address with -a HOST:PORT, or a configuration with -c FILE")
	case *f.config != "":
		cfg, err := config.Load(*f.config)
		if err != nil {
			return "", c.fail(name, err)
		}
		if !cfg.Admin.Enabled {
			return "", c.fail(name, fmt.Errorf("%s: the admin endpoint is disabled (admin { enabled = false })", *f.config))
		}
		a := cfg.Admin.Listen
		if a.Port == 0 {
			return "", c.fail(name, fmt.Errorf("%s: admin.listen has port 0 (a free port chosen at start): give the address with -a", *f.config))
		}
		host := a.Host
		// A wildcard listen address is reached on loopback.
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
			if ip != nil && ip.To4() == nil {
				host = "::1"
			}
		}
		return "http://" + net.JoinHostPort(host, strconv.Itoa(a.Port)), 0
	}
	s := *f.addr
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		return "", c.usageError(name, "-a %q is not HOST:PORT or an http:// URL", *f.addr)
	}
	return strings.TrimSuffix(u.String(), "/"), 0
}

// adminClient talks to the admin endpoint.
type adminClient struct {
	base string
	http *http.Client
}

func (f adminFlags) client(base string) *adminClient {
	return &adminClient{base: base, http: &http.Client{Timeout: *f.timeout}}
}

// do sends a request and decodes a JSON reply into out when the status is
// 200; other statuses return the endpoint's error text with the code.
func (a *adminClient) do(method, path string, out any) (int, error) {
	req, err := http.NewRequest(method, a.base+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("cannot reach the admin endpoint at %s (is 'tidstorage serve' running?): %w", a.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: reading the reply: %w", method, a.base+path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e admin.ErrorDoc
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, a.base+path, resp.Status, msg)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: the reply is not a tidstorage document (%v)", method, a.base+path, err)
	}
	return resp.StatusCode, nil
}

func (a *adminClient) status() (admin.StatusDoc, []byte, error) {
	var raw json.RawMessage
	if _, err := a.do(http.MethodGet, "/status", &raw); err != nil {
		return admin.StatusDoc{}, nil, err
	}
	var doc admin.StatusDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return doc, nil, fmt.Errorf("GET %s/status: the reply is not a status document (%v)", a.base, err)
	}
	return doc, raw, nil
}

func runStatus(c *cli, args []string) int {
	fs := c.flagSet("status")
	af := addAdminFlags(fs)
	asJSON := fs.Bool("json", false, "print the /status JSON document unchanged")
	if ok, code := c.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return c.usageError("status", "unexpected argument %q", fs.Arg(0))
	}
	base, code := af.baseURL(c, "status")
	if code != 0 {
		return code
	}
	doc, raw, err := af.client(base).status()
	if err != nil {
		return c.fail("status", err)
	}
	if *asJSON {
		c.stdout.Write(raw)
		if len(raw) > 0 && raw[len(raw)-1] != '\n' {
			fmt.Fprintln(c.stdout)
		}
	} else {
		printStatus(c.stdout, &doc, base, af.hint())
	}
	if len(doc.PartialPins()) > 0 {
		return exitPartial
	}
	return 0
}

// hint repeats the flags that located the endpoint, for suggested commands.
func (f adminFlags) hint() string {
	if *f.config != "" {
		return "-c " + shellQuote(*f.config)
	}
	return "-a " + shellQuote(*f.addr)
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:[]@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

const tsLayout = "2006-01-02 15:04:05.000000"

// age formats seconds for people: whole seconds past a minute.
func age(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d < 0:
		return "-" + age(-sec)
	case d < 10*time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

func tidText(t *admin.TIDDoc) string {
	if t == nil {
		return "-"
	}
	return t.Hex + "  " + t.Time.UTC().Format(tsLayout)
}

func printStatus(w io.Writer, d *admin.StatusDoc, base, hint string) {
	fmt.Fprintf(w, "tidstorage %s at %s, %s UTC\n", d.Version, base, d.Time.UTC().Format("2006-01-02 15:04:05"))
	switch {
	case !d.Bootstrapped:
		fmt.Fprintf(w, "Bootstrap: NOT DONE: nothing is published until every storage has a known TID\n")
	case d.CleanStart:
		fmt.Fprintf(w, "Bootstrap: done (the previous run stopped cleanly)\n")
	default:
		fmt.Fprintf(w, "Bootstrap: done, after an UNCLEAN stop: the live files may hold half a transaction from then; the last coherent point before it is in the status file\n")
	}
	if d.TrackerFailure != "" {
		fmt.Fprintf(w, "!! TRACKER FAILED: %s\n!! Publication stopped at the last good point below; traffic is still relayed. Restart tidstorage.\n", d.TrackerFailure)
	}

	fmt.Fprintf(w, "\nStorages:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(d.Storages) == 0 {
		fmt.Fprintf(w, "  none known yet\n")
	} else {
		fmt.Fprintf(tw, "  STORAGE\tPUBLISHED TID\tTIME (UTC)\tLAG\tSTATE\n")
	}
	for _, s := range d.Storages {
		pub, when, lag := "-", "-", "-"
		if s.Published != nil {
			pub, when = s.Published.Hex, s.Published.Time.UTC().Format(tsLayout)
		}
		if s.LagSeconds != nil {
			lag = age(*s.LagSeconds)
		}
		var state []string
		if s.BlindConnections > 0 {
			state = append(state, fmt.Sprintf("BLIND (%d connection%s)", s.BlindConnections, plural(s.BlindConnections)))
		}
		if s.Busy {
			state = append(state, fmt.Sprintf("busy (group %d)", s.Group))
		}
		if s.Transient != nil && (s.Published == nil || s.Transient.Int != s.Published.Int) {
			state = append(state, "committed up to "+s.Transient.Hex)
		}
		if len(state) == 0 {
			state = append(state, "idle")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", s.ID, pub, when, lag, strings.Join(state, ", "))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nIn flight: %d participation%s, %d classic transaction%s\n",
		len(d.Participations), plural(len(d.Participations)), len(d.Classic), plural(len(d.Classic)))
	for _, p := range d.Participations {
		fmt.Fprintf(w, "  participation %d on %s: %s, for %s\n", p.ID, p.Storage, p.State, age(p.AgeSeconds))
	}
	for _, t := range d.Classic {
		fmt.Fprintf(w, "  classic %s on %s: for %s\n", t.ID, strings.Join(t.Storages, ", "), age(t.AgeSeconds))
	}

	partials := d.PartialPins()
	if len(partials) > 0 {
		fmt.Fprintf(w, "\n!! %d PARTIAL COMMIT%s: a transaction committed on some storages and not on others.\n",
			len(partials), pluralUpper(len(partials)))
		fmt.Fprintf(w, "!! Their published TIDs stay where they are until you decide (see docs/admin.md).\n")
		for _, p := range partials {
			printPin(w, &p, "!! ")
			fmt.Fprintf(w, "   accept the live state as the new baseline: tidstorage accept-partial %s --yes %d\n", hint, p.ID)
		}
	}
	var others []admin.PinDoc
	for _, p := range d.Pins {
		if p.Kind != "partial" {
			others = append(others, p)
		}
	}
	if len(others) > 0 {
		fmt.Fprintf(w, "\nOther pins (holding published TIDs back):\n")
		for _, p := range others {
			printPin(w, &p, "  ")
		}
	}

	if p := d.Proxy; p != nil {
		fmt.Fprintf(w, "\nProxy: %d connection%s open (%d accepted); 2PC: %d begun, %d committed, %d aborted, %d failed votes, %d in doubt; %d decode errors\n",
			p.ConnectionsOpen, plural(int(p.ConnectionsOpen)), p.ConnectionsTotal, p.Begins, p.Commits, p.Aborts,
			p.VotesFailed, p.InDoubt, p.DecodeErrors)
	}
	if ce := d.ClassicEndpoint; ce != nil {
		fmt.Fprintf(w, "Classic endpoint: %d connection%s active (%d accepted, %d refused, %d denied); %d BEGIN, %d COMMIT, %d ABORT, %d DUMP; %d protocol errors\n",
			ce.ConnectionsActive, plural(int(ce.ConnectionsActive)), ce.ConnectionsAccepted, ce.ConnectionsRefused, ce.ConnectionsDenied,
			ce.Commands["begin"], ce.Commands["commit"], ce.Commands["abort"], ce.Commands["dump"], ce.ProtocolErrors)
	}
	if sf := d.StatusFile; sf != nil {
		fmt.Fprintf(w, "Status file: %s, %d lines", sf.Path, sf.Lines)
		if sf.LastWrite != nil {
			fmt.Fprintf(w, ", last at %s UTC", sf.LastWrite.UTC().Format("2006-01-02 15:04:05"))
		}
		if sf.Errors > 0 {
			fmt.Fprintf(w, "; %d WRITE ERROR%s, last: %s", sf.Errors, pluralUpper(int(sf.Errors)), sf.LastError)
		}
		if sf.Broken != "" {
			fmt.Fprintf(w, "; APPENDING STOPPED until restart: %s", sf.Broken)
		}
		if sf.Epochs > 0 {
			fmt.Fprintf(w, "; a new epoch began at start (the storages went back), the previous one is %s", sf.LastAside)
		}
		fmt.Fprintln(w)
	}
	k := d.Counters
	fmt.Fprintf(w, "Tracker: %d publications, %d partial commits, %d warnings, %d criticals, %d pins accepted\n",
		k.Publications, k.Partials, k.Warnings, k.Criticals, k.PinsAccepted)
}

// printPin prints a pin's description, each line prefixed.
func printPin(w io.Writer, p *admin.PinDoc, prefix string) {
	fmt.Fprintf(w, "%spin %d (%s) since %s UTC (%s ago) on %s\n", prefix, p.ID, p.Kind,
		p.Since.UTC().Format("2006-01-02 15:04:05"), age(p.AgeSeconds), strings.Join(p.Storages, ", "))
	fmt.Fprintf(w, "%s  %s\n", prefix, p.Reason)
	for _, h := range p.Held {
		fmt.Fprintf(w, "%s  held at %s: %s\n", prefix, h.Storage, tidText(h.Published))
	}
	if p.Txn != "" {
		fmt.Fprintf(w, "%s  classic transaction %s\n", prefix, p.Txn)
	}
	if len(p.Waiting) > 0 {
		fmt.Fprintf(w, "%s  waiting for a commit on %s\n", prefix, strings.Join(p.Waiting, ", "))
	}
}

func pluralUpper(n int) string { return strings.ToUpper(plural(n)) }
