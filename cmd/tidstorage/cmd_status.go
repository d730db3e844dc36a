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
	"time"

	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/tidstorage/tidstorage/config"
)

const statusHelp = `
Fetches /status from the admin endpoint of a running 'tidstorage serve' and
prints: the bootstrap state; every storage with its published TID (hex and
UTC time), its lag (now minus that time) and whether it is busy, blind or
held; the transactions in flight; the pins that hold published TIDs back,
partial commits first, then the storages held by commits that nothing
accounted for (ground truth), each with the accept-partial command to run
once decided (more than 5 unaccounted commits of one storage are summarised:
count, first and last, a sample; --all lists every one); the storages'
history watchers; the journal. In a fleet
(from /fleet): on a tracker, a line per sidecar (connected, or down since
when; reports applied; age of its newest report; lag; gaps; restarts); on
a sidecar, its link to the tracker (up or down since when, the reports
pending in its send buffer and their age, sent, acknowledged, resent,
dropped, the last error). The address is
-a (HOST:PORT or an http:// URL), or the admin listen address of the
configuration given with -c. With --json the /status document is printed
unchanged (see docs/admin.md).

The admin token (--token-file, or admin.token_file of -c FILE) is sent when
it can be read; without it client addresses and pids, users, descriptions,
transaction ids and file paths show as <redacted>, and the header line says
"(redacted: no credential)".

Exit status: 0 when the status was printed; 1 when the daemon cannot be
reached or answers something else; 3 when the status was printed and shows
at least one partial commit or unaccounted pin (an operator must decide:
see accept-partial).

With a backup metrics file (--metrics-file, or backup_metrics_file of -c
FILE), it ends with the age of the last successful backup, verify and
forget, and says when their last run failed.`

// exitPartial is status's exit code when an operator must decide: partial
// commits or unaccounted commits are pinned.
const exitPartial = 3

// adminFlags are the flags that locate the admin endpoint and its token.
type adminFlags struct {
	addr, config *string
	timeout      *time.Duration
	// tokenFile is --token-file; tokenPath is the file used (--token-file,
	// or admin.token_file of -c FILE), set by baseURL.
	tokenFile, tokenPath *string
}

func addAdminFlags(fs *flag.FlagSet) adminFlags {
	f := adminFlags{addr: fs.String("a", "", "admin endpoint `HOST:PORT` or http:// URL (default: admin.listen of -c FILE)")}
	fs.StringVar(f.addr, "address", "", "`HOST:PORT`, same as -a")
	f.config = configFlag(fs)
	f.timeout = fs.Duration("timeout", 10*time.Second, "connect and reply `TIMEOUT`")
	f.tokenFile = fs.String("token-file", "", "admin token `FILE` (default: admin.token_file of -c FILE)")
	f.tokenPath = new(string)
	return f
}

// token reads the admin token from --token-file or the configuration's
// token file; "" and why not when there is none or it cannot be read.
func (f adminFlags) token() (string, error) {
	if *f.tokenPath == "" {
		return "", errors.New("no token file: give -c FILE (its admin.token_file) or --token-file FILE")
	}
	return statusdoc.ReadToken(*f.tokenPath)
}

// baseURL resolves the flags to the endpoint's base URL (no trailing
// slash); code is non-zero when the command must stop.
func (f adminFlags) baseURL(c *cli, name string) (string, int) {
	*f.tokenPath = *f.tokenFile
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
		if *f.tokenFile == "" {
			*f.tokenPath = cfg.Admin.TokenFile
		}
		base, err := adminBase(cfg)
		if err != nil {
			return "", c.fail(name, fmt.Errorf("%s: %w", *f.config, err))
		}
		return base, 0
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

// adminBase is the URL of cfg's admin endpoint, as reached from this host.
func adminBase(cfg *config.Config) (string, error) {
	if !cfg.Admin.Enabled {
		return "", errors.New("the admin endpoint is disabled (admin { enabled = false })")
	}
	a := cfg.Admin.Listen
	if a.Port == 0 {
		return "", errors.New("admin.listen has port 0 (a free port chosen at start): give the address with -a")
	}
	return "http://" + dialable(a), nil
}

// classicAddr is cfg's classic endpoint, as reached from this host.
func classicAddr(cfg *config.Config) (string, error) {
	if !cfg.Classic.Enabled {
		return "", errors.New("the classic endpoint is disabled")
	}
	a := cfg.Classic.Listen
	if a.Port == 0 {
		return "", errors.New("classic.listen has port 0 (a free port chosen at start): give the address with -a")
	}
	return dialable(a), nil
}

// dialable is a listen address as a client dials it: a wildcard host is
// reached on loopback.
func dialable(a config.Address) string {
	host := a.Host
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(a.Port))
}

// adminClient talks to the admin endpoint.
type adminClient struct {
	base  string
	http  *http.Client
	token string // sent as a bearer token when not ""
}

func (f adminFlags) client(base, token string) *adminClient {
	return &adminClient{base: base, http: &http.Client{Timeout: *f.timeout}, token: token}
}

// do sends a request and decodes a JSON reply into out when the status is
// 200; other statuses return the endpoint's error text with the code.
func (a *adminClient) do(method, path string, out any) (int, error) {
	req, err := http.NewRequest(method, a.base+path, nil)
	if err != nil {
		return 0, err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
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
		var e statusdoc.ErrorDoc
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

func (a *adminClient) status() (statusdoc.StatusDoc, []byte, error) {
	var raw json.RawMessage
	if _, err := a.do(http.MethodGet, "/status", &raw); err != nil {
		return statusdoc.StatusDoc{}, nil, err
	}
	var doc statusdoc.StatusDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return doc, nil, fmt.Errorf("GET %s/status: the reply is not a status document (%v)", a.base, err)
	}
	return doc, raw, nil
}

// fleet fetches /fleet: nil in the all-in-one role (404).
func (a *adminClient) fleet() (*statusdoc.FleetDoc, error) {
	var doc statusdoc.FleetDoc
	code, err := a.do(http.MethodGet, "/fleet", &doc)
	if code == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &doc, nil
}

func runStatus(c *cli, args []string) int {
	fs := c.flagSet("status")
	af := addAdminFlags(fs)
	asJSON := fs.Bool("json", false, "print the /status JSON document unchanged")
	all := fs.Bool("all", false, "list every unaccounted commit (by default, more than 5 of one storage are summarised: count, first, last, a sample)")
	metricsFile := fs.String("metrics-file", "", "the backup commands' metrics `FILE`, for the last backup's age (default: backup_metrics_file of -c FILE)")
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
	token, terr := af.token()
	if terr != nil && *af.tokenFile != "" {
		return c.fail("status", terr) // asked for by name: it must work
	}
	doc, raw, err := af.client(base, token).status()
	if err != nil {
		return c.fail("status", err)
	}
	if *asJSON {
		if token == "" {
			fmt.Fprintf(c.stderr, "tidstorage status: (redacted: no credential: %v)\n", terr)
		}
		c.stdout.Write(raw)
		if len(raw) > 0 && raw[len(raw)-1] != '\n' {
			fmt.Fprintln(c.stdout)
		}
	} else {
		where := base
		if token == "" {
			where += " (redacted: no credential)"
		}
		fl, ferr := af.client(base, token).fleet()
		if fl != nil && fl.Role == "sidecar" {
			// Its own tracker is an empty admin shell: bootstrap, storages
			// and pins are the tracker's.
			fmt.Fprintf(c.stdout, "tidstorage %s at %s, %s UTC\n", doc.Version, where, doc.Time.UTC().Format("2006-01-02 15:04:05"))
			fmt.Fprintf(c.stdout, "Role: sidecar: it proxies its Zopes' ZEO connections and reports to the tracker; "+
				"the published point, pins and the status file are the tracker's (run tidstorage status against its admin endpoint)\n")
		} else {
			printStatus(c.stdout, &doc, where, af.hint(), printOptions{all: *all})
		}
		printFleet(c.stdout, &doc, fl, ferr)
		if path := af.backupMetricsFile(*metricsFile); path != "" {
			printLastRuns(c.stdout, path, time.Now())
		}
	}
	if len(doc.PartialPins()) > 0 || len(doc.UnaccountedPins()) > 0 {
		return exitPartial
	}
	return 0
}

// backupMetricsFile is flag, or else the backup_metrics_file of -c FILE
// (already loaded once by baseURL); "" when neither names one.
func (f adminFlags) backupMetricsFile(flag string) string {
	if flag != "" || *f.config == "" {
		return flag
	}
	cfg, err := config.Load(*f.config)
	if err != nil {
		return ""
	}
	return cfg.BackupMetricsFile
}

// hint repeats the flags that located the endpoint, for suggested commands.
func (f adminFlags) hint() string {
	h := "-a " + shellQuote(*f.addr)
	if *f.config != "" {
		h = "-c " + shellQuote(*f.config)
	}
	if *f.tokenFile != "" {
		h += " --token-file " + shellQuote(*f.tokenFile)
	}
	return h
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:[]@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
