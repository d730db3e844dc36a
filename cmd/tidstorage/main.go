// Command tidstorage is the tidstorage daemon and its tools.
//
// Adding a subcommand: write cmd_<name>.go with a func(*cli, []string) int
// that builds its FlagSet with c.flagSet and parses with c.parse, then add a
// line to the commands table below. Exit codes: 0 success, 1 failure (bad
// config, unreachable server...), 2 usage error or not implemented.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
)

// command is one subcommand; name may hold two words ("config check").
type command struct {
	name    string
	args    string // synopsis after the name, for usage lines
	summary string // one line, for `tidstorage help`
	help    string // optional paragraphs for `tidstorage NAME --help`
	run     func(c *cli, args []string) int
}

// commands is the table `tidstorage help` prints, in this order. It is set
// in init because help and the parser look commands up in it.
var commands []*command

func init() {
	commands = []*command{
		{name: "serve", args: "-c FILE", run: runServe, help: serveHelp,
			summary: "run the daemon: ZEO proxies, classic endpoint, admin endpoint"},
		{name: "status", args: "[-c FILE | -a HOST:PORT] [--all] [--json]", run: runStatus, help: statusHelp,
			summary: "show the running daemon's storages, published TIDs, in-flight and partial commits"},
		{name: "dump", args: "[-a HOST:PORT | -c FILE] [--json]", run: runDump, help: dumpHelp,
			summary: "print the published point of a running server (classic DUMP)"},
		{name: "accept-partial", args: "[-c FILE | -a HOST:PORT] [--yes] [--all] PIN", run: runAcceptPartial, help: acceptHelp,
			summary: "accept a reported partial commit as the new baseline, or unaccounted commits once decided"},
		{name: "fleet retire", args: "[-c FILE | -a HOST:PORT] [--yes] NAME", run: runFleetRetire, help: fleetRetireHelp,
			summary: "forget a sidecar gone for good (fleet tracker)"},
		{name: "config check", args: "-c FILE", run: runConfigCheck, help: configCheckHelp,
			summary: "validate a configuration file and summarise it"},
		{name: "tid", args: "[--from FORMAT] [--json] TID|TIME...", run: runTID, help: tidHelp,
			summary: "convert TIDs between integer, hex, base64 and UTC time"},
		{name: "backup", args: "-c FILE [--full] [-Q] [-z] [--keep N | --snapshot DIR] [--status-file F | --dump HOST:PORT | --tid STORAGE=TID...]", run: runBackup, help: backupHelp,
			summary: "back up every storage to the coherent point, in repozo-compatible repositories"},
		{name: "restore", args: "-c FILE (--to DIR | --in-place) [--set STAMP | --at DATE] [--force] | -c FILE --from-archive (--to DIR | --in-place) [--at TIME | --tid STORAGE=TID...] [--identity FILE] [--force]", run: runRestore, help: restoreHelp,
			summary: "restore every storage of a backup set, verified"},
		{name: "verify", args: "-c FILE [--set STAMP] [--read-data] [--json]", run: runVerify, help: verifyHelp,
			summary: "check backup sets without restoring them: checksums, chain ends, blobs, coherence"},
		{name: "forget", args: "-c FILE --keep N [--yes]", run: runForget, help: forgetHelp,
			summary: "retention: keep the newest N full chains, remove older sets and unneeded blobs"},
		{name: "sets", args: "-c FILE [--verify] [--json]", run: runSets, help: setsHelp,
			summary: "list the backup sets of the configured repositories"},
		{name: "cut", args: "-c FILE [--status-file F | --dump HOST:PORT | --tid STORAGE=TID...] [--dry-run]", run: runCut, help: cutHelp,
			summary: "cut every live Data.fs right after its coherent TID (after a crash), keeping what it removes"},
		// Two-word commands before "archive": lookup takes the first match.
		{name: "archive list", args: "-c FILE [--json]", run: runArchiveList, help: archiveListHelp,
			summary: "list the archive: restorable window, bases, sizes, lock"},
		{name: "archive verify", args: "-c FILE [--read-data] [--identity FILE]", run: runArchiveVerify, help: archiveVerifyHelp,
			summary: "check the archive without restoring it (--read-data: every object's sha256)"},
		{name: "archive prune", args: "-c FILE [--retention D] [--yes]", run: runArchivePrune, help: archivePruneHelp,
			summary: "apply the archive's retention by hand, printing what it removes"},
		{name: "archive", args: "-c FILE [--status-file F | --dump HOST:PORT]", run: runArchive, help: archiveHelp,
			summary: "archive every published point to the object store continuously (a ZEO host without serve)"},
		{name: "version", run: runVersion,
			summary: "print the version"},
		{name: "help", args: "[COMMAND]", run: runHelp,
			summary: "list the commands, or show one command's help"},
	}
}

// version is what the binary says it is: -ldflags "-X main.version=v1.2.3"
// when given, else the module version Go recorded at build time (a tag, or a
// pseudo-version naming the commit: v0.0.0-20261124120000-0123456789ab,
// "+dirty" for a modified work tree), else "dev".
var version = "dev"

// revision is the VCS commit the binary was built from, "" when unknown;
// modified says the work tree had changes.
var revision, modified = "", false

func init() {
	if bi, ok := debug.ReadBuildInfo(); ok {
		version, revision, modified = fromBuildInfo(bi, version)
	}
}

// fromBuildInfo reads the version, the VCS revision and whether the tree
// was modified from Go's build information; given is the version set by
// -ldflags ("dev" when not).
func fromBuildInfo(bi *debug.BuildInfo, given string) (version, revision string, modified bool) {
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	version = given
	if version != "dev" {
		return version, revision, modified
	}
	switch v := bi.Main.Version; {
	case v != "" && v != "(devel)":
		version = v
	case revision != "":
		version = "devel-" + short(revision)
		if modified {
			version += "+dirty"
		}
	}
	return version, revision, modified
}

func short(rev string) string { return rev[:min(12, len(rev))] }

// cli carries the process's outputs so that tests can capture them.
type cli struct {
	stdout, stderr io.Writer
}

func main() {
	os.Exit((&cli{stdout: os.Stdout, stderr: os.Stderr}).run(os.Args[1:]))
}

func (c *cli) run(args []string) int {
	if len(args) == 0 {
		c.usage(c.stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		c.usage(c.stdout)
		return 0
	case "-version", "--version":
		return runVersion(c, args[1:])
	}
	cmd, rest := lookup(args)
	if cmd == nil {
		if group := groupOf(args[0]); len(group) > 0 {
			fmt.Fprintf(c.stderr, "tidstorage %s: missing subcommand; one of:\n", args[0])
			c.list(c.stderr, group)
			return 2
		}
		fmt.Fprintf(c.stderr, "tidstorage: unknown command %q; run 'tidstorage help' for the list\n", args[0])
		return 2
	}
	return cmd.run(c, rest)
}

// lookup finds the command named by the first one or two words of args.
func lookup(args []string) (*command, []string) {
	for _, cmd := range commands {
		words := strings.Fields(cmd.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == cmd.name {
			return cmd, args[len(words):]
		}
	}
	return nil, nil
}

// groupOf lists the commands whose first word is word, for two-word
// commands ("config" → "config check").
func groupOf(word string) []*command {
	var group []*command
	for _, cmd := range commands {
		if first, _, two := strings.Cut(cmd.name, " "); two && first == word {
			group = append(group, cmd)
		}
	}
	return group
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintf(w, "tidstorage: consistent backups of multi-database ZODB sites.\n\n")
	fmt.Fprintf(w, "Usage: tidstorage COMMAND [flags] [args]\n\nCommands:\n")
	c.list(w, commands)
	fmt.Fprintf(w, "\nRun 'tidstorage COMMAND --help' for a command's flags.\n")
}

func (c *cli) list(w io.Writer, cmds []*command) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, cmd := range cmds {
		fmt.Fprintf(tw, "  %s\t%s\n", cmd.name, cmd.summary)
	}
	tw.Flush()
}

// flagSet returns the FlagSet of a subcommand. Errors are printed by flag
// itself; c.parse prints the full usage only on -h/--help.
func (c *cli) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {}
	return fs
}

// parse parses args into fs, allowing flags after arguments ("tid 123
// --json"); "--" ends the flags. It returns ok=false with the exit code when
// the command must stop: 0 after --help, 2 after a usage error.
func (c *cli) parse(fs *flag.FlagSet, args []string) (ok bool, code int) {
	cmd, _ := lookup(strings.Fields(fs.Name()))
	var positional []string
	for {
		err := fs.Parse(args)
		switch {
		case errors.Is(err, flag.ErrHelp):
			c.commandUsage(c.stdout, cmd, fs)
			return false, 0
		case err != nil:
			fmt.Fprintf(c.stderr, "Run 'tidstorage %s --help' for usage.\n", fs.Name())
			return false, 2
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); len(rest) == 0 || consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Leave the arguments in fs.Args(); "--" sets no flag.
	if err := fs.Parse(append([]string{"--"}, positional...)); err != nil {
		panic(err) // cannot happen: nothing to parse before "--"
	}
	return true, 0
}

func (c *cli) commandUsage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: tidstorage %s %s\n\n%s.\n", cmd.name, cmd.args, upperFirst(cmd.summary))
	if cmd.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(cmd.help))
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(c.stderr)
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// configFlag registers -c and --config (one value) on fs.
func configFlag(fs *flag.FlagSet) *string {
	p := new(string)
	fs.StringVar(p, "c", "", "configuration `FILE` (HCL, see docs/config.md)")
	fs.StringVar(p, "config", "", "`FILE`, same as -c")
	return p
}

// fail prints "tidstorage CMD: err" and returns exit code 1. An error that
// already begins with the command's name ("restore: storage …", from the
// package doing the work) does not repeat it.
func (c *cli) fail(name string, err error) int {
	fmt.Fprintf(c.stderr, "tidstorage %s: %s\n", name, strings.TrimPrefix(err.Error(), name+": "))
	return 1
}

// usageError prints a usage problem and returns exit code 2.
func (c *cli) usageError(name, format string, args ...any) int {
	fmt.Fprintf(c.stderr, "tidstorage %s: %s\nRun 'tidstorage %s --help' for usage.\n", name, fmt.Sprintf(format, args...), name)
	return 2
}

func runHelp(c *cli, args []string) int {
	fs := c.flagSet("help")
	if ok, code := c.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		c.usage(c.stdout)
		return 0
	}
	cmd, _ := lookup(fs.Args())
	if cmd == nil {
		if group := groupOf(fs.Arg(0)); len(group) > 0 {
			c.list(c.stdout, group)
			return 0
		}
		return c.usageError("help", "unknown command %q", strings.Join(fs.Args(), " "))
	}
	return cmd.run(c, []string{"--help"})
}

func runVersion(c *cli, args []string) int {
	fs := c.flagSet("version")
	if ok, code := c.parse(fs, args); !ok {
		return code
	}
	built := ""
	if revision != "" {
		built = "commit " + short(revision)
		if modified {
			built += " with local changes"
		}
		built += ", "
	}
	fmt.Fprintf(c.stdout, "tidstorage %s (%s%s, %s/%s)\n", version, built, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}
