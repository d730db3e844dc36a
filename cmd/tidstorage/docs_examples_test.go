package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/config"
)

// The documentation's examples are part of the product: every HCL block of
// README.md and docs/*.md (and every examples/*.hcl) must pass `config
// check`, and every `tidstorage …` command line in their code (blocks and
// inline spans) must name a command that exists, with flags it has. A
// failure says file:line and what is wrong, for whoever edits the docs.
func TestDocumentedExamples(t *testing.T) {
	docs := []string{"../../README.md"}
	more, err := filepath.Glob("../../docs/*.md")
	require.NoError(t, err)
	docs = append(docs, more...)
	flags := commandFlags(t)

	var problems []string
	configs, commandLines := 0, 0
	for _, path := range docs {
		src, err := os.ReadFile(path)
		require.NoError(t, err)
		name := strings.TrimPrefix(path, "../../")
		for _, b := range codeBlocks(src) {
			if b.lang == "hcl" {
				configs++
				problems = append(problems, checkConfig(name, b.line, b.text)...)
			}
			for i, l := range strings.Split(b.text, "\n") {
				for _, c := range findCommands(l) {
					commandLines++
					if p := checkCommand(c, flags); p != "" {
						problems = append(problems, fmt.Sprintf("%s:%d: `%s`: %s", name, b.line+i, c, p))
					}
				}
			}
		}
		for _, s := range inlineSpans(src) {
			for _, c := range findCommands(s.text) {
				commandLines++
				if p := checkCommand(c, flags); p != "" {
					problems = append(problems, fmt.Sprintf("%s:%d: `%s`: %s", name, s.line, c, p))
				}
			}
		}
	}
	examples, err := filepath.Glob("../../examples/*.hcl")
	require.NoError(t, err)
	for _, path := range examples {
		src, err := os.ReadFile(path)
		require.NoError(t, err)
		configs++
		problems = append(problems, checkConfig(strings.TrimPrefix(path, "../../"), 1, string(src))...)
	}
	require.Empty(t, problems, "documented examples that do not work:\n%s", strings.Join(problems, "\n"))
	// The extraction itself works: the docs hold many of both.
	require.Greater(t, configs, 6)
	require.Greater(t, commandLines, 80)
	t.Logf("%d configurations and %d command lines checked", configs, commandLines)
}

// block is a fenced code block: its language, the line of its first line
// of content (1-based), its text with the fence's indentation removed.
type block struct {
	lang string
	line int
	text string
}

var fence = regexp.MustCompile("^( *)(```+|~~~+)\\s*([A-Za-z0-9_-]*)")

func codeBlocks(src []byte) []block {
	var out []block
	lines := strings.Split(string(src), "\n")
	for i := 0; i < len(lines); i++ {
		m := fence.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, marker := len(m[1]), m[2]
		b := block{lang: m[3], line: i + 2}
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(strings.TrimLeft(lines[i], " "), marker); i++ {
			l := lines[i]
			if len(l)-len(strings.TrimLeft(l, " ")) >= indent {
				l = l[indent:]
			}
			body = append(body, l)
		}
		b.text = strings.Join(body, "\n")
		out = append(out, b)
	}
	return out
}

// span is an inline code span outside fenced blocks.
type span struct {
	line int
	text string
}

var inlineCode = regexp.MustCompile("`([^`\n]+)`")

func inlineSpans(src []byte) []span {
	var out []span
	inFence := ""
	for i, l := range strings.Split(string(src), "\n") {
		if m := fence.FindStringSubmatch(l); m != nil {
			switch {
			case inFence == "":
				inFence = m[2]
			case strings.HasPrefix(strings.TrimLeft(l, " "), inFence):
				inFence = ""
			}
			continue
		}
		if inFence != "" {
			continue
		}
		for _, m := range inlineCode.FindAllStringSubmatch(l, -1) {
			out = append(out, span{line: i + 1, text: m[1]})
		}
	}
	return out
}

// checkConfig parses one configuration as `config check` does; errors are
// reported at the documentation's line.
func checkConfig(name string, first int, text string) []string {
	_, err := config.Parse([]byte(text), name)
	if err == nil {
		return nil
	}
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		return []string{fmt.Sprintf("%s:%d: configuration example: %v", name, first, err)}
	}
	var out []string
	for _, d := range cerr.Diagnostics {
		if d.Severity != hcl.DiagError {
			continue
		}
		line := first
		if d.Subject != nil {
			line += d.Subject.Start.Line - 1
		}
		out = append(out, fmt.Sprintf("%s:%d: configuration example fails `config check`: %s: %s", name, line, d.Summary, d.Detail))
	}
	return out
}

// A command starts at the word tidstorage (or a path ending in it: bin/,
// ExecStart=/usr/local/bin/) followed by a command word or a flag; a
// placeholder (COMMAND, NAME) or a version number is not one.
var commandStart = regexp.MustCompile(`(?:^|[\s($])(?:\S*/)?tidstorage( +(?:[a-z][a-z-]*|--?[a-z][a-z-]*)\b.*)`)

// findCommands returns each command line in s, from "tidstorage" to its
// end: a shell separator (&&, ;, a pipe outside brackets, a redirection, a
// comment) or the end of s.
func findCommands(s string) []string {
	var out []string
	for _, m := range commandStart.FindAllStringSubmatchIndex(s, -1) {
		rest := s[m[2]:m[3]]
		var words []string
		depth := 0
	scan:
		for _, w := range strings.Fields(rest) {
			switch {
			case w == "&&" || w == "||" || w == ";" || strings.HasPrefix(w, "#") || strings.HasPrefix(w, ">") || strings.HasPrefix(w, "2>"):
				break scan
			case w == "|" && depth == 0:
				break scan
			case w == "\\":
				continue
			}
			depth += strings.Count(w, "[") + strings.Count(w, "(") - strings.Count(w, "]") - strings.Count(w, ")")
			if strings.HasSuffix(w, ";") || strings.HasSuffix(w, ")") && depth < 0 {
				words = append(words, strings.TrimRight(w, ";)"))
				break
			}
			words = append(words, w)
		}
		out = append(out, "tidstorage "+strings.Join(words, " "))
	}
	return out
}

// checkCommand says what is wrong with one documented command line, or "".
func checkCommand(line string, flags map[string][]string) string {
	words := strings.Fields(strings.TrimPrefix(line, "tidstorage "))
	// Synopsis brackets and alternatives are not part of words.
	clean := func(w string) string { return strings.Trim(w, "[]()|,.:'\"") }
	var args []string
	for _, w := range words {
		if w = clean(w); w != "" && w != "|" && w != "…" && w != "..." {
			args = append(args, w)
		}
	}
	if len(args) == 0 {
		return ""
	}
	if strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-h", "-help", "--help", "-version", "--version":
			return ""
		}
		return fmt.Sprintf("tidstorage has no top-level flag %s (only --help and --version)", args[0])
	}
	cmd, rest := lookup(args)
	if cmd == nil {
		if len(groupOf(args[0])) > 0 {
			return fmt.Sprintf("%q is a group: name one of its commands", args[0])
		}
		return fmt.Sprintf("no command %q (tidstorage help lists them)", args[0])
	}
	if cmd.name == "help" && len(rest) > 0 && strings.ToUpper(rest[0]) != rest[0] {
		if c, _ := lookup(rest); c == nil && len(groupOf(rest[0])) == 0 {
			return fmt.Sprintf("help: no command %q", rest[0])
		}
	}
	known := flags[cmd.name]
	for _, w := range rest {
		if !strings.HasPrefix(w, "-") || w == "-" || w == "--" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
		if name == "h" || name == "help" {
			continue
		}
		if !slices.Contains(known, name) {
			return fmt.Sprintf("%s has no flag -%s (its flags: %s)", cmd.name, name, strings.Join(known, " "))
		}
	}
	return ""
}

// commandFlags reads every command's flags from its own --help.
func commandFlags(t *testing.T) map[string][]string {
	out := map[string][]string{}
	flagLine := regexp.MustCompile(`^  -([A-Za-z0-9-]+)`)
	for _, cmd := range commands {
		var stdout, stderr bytes.Buffer
		c := &cli{stdout: &stdout, stderr: &stderr}
		require.Equal(t, 0, c.run(append(strings.Fields(cmd.name), "--help")), "%s --help: %s", cmd.name, stderr.String())
		for _, l := range strings.Split(stdout.String(), "\n") {
			if m := flagLine.FindStringSubmatch(l); m != nil {
				out[cmd.name] = append(out[cmd.name], m[1])
			}
		}
	}
	return out
}

// The checker itself: what it must catch, and what it must let through.
func TestDocumentedExamplesChecker(t *testing.T) {
	flags := commandFlags(t)
	for line, want := range map[string]string{
		"tidstorage backup -c FILE [--full] [-Q] [-z] [--keep N | --snapshot DIR]": "",
		"tidstorage status -a 127.0.0.1:9002 --token-file …":                       "",
		"tidstorage status --json | jq .storages":                                  "",
		"tidstorage config check -c tidstorage.hcl":                                "",
		"tidstorage --version":                                                     "",
		"tidstorage help backup":                                                   "",
		"tidstorage backup --no-such":                                              "backup has no flag -no-such",
		"tidstorage frobnicate -c x":                                               `no command "frobnicate"`,
		"tidstorage config -c x":                                                   `"config" is a group`,
		"tidstorage --frob":                                                        "no top-level flag --frob",
	} {
		cmds := findCommands(line)
		require.Len(t, cmds, 1, line)
		got := checkCommand(cmds[0], flags)
		if want == "" {
			require.Empty(t, got, line)
		} else {
			require.Contains(t, got, want, line)
		}
	}
	require.Empty(t, findCommands("tidstorage v1.0.0 at http://127.0.0.1:9002"), "a version is not a command")
	require.Empty(t, findCommands("tidstorage_fleet_link_connected"))
	require.Empty(t, findCommands(`-subj "/CN=tidstorage fleet CA"`))
	require.Empty(t, findCommands("Description=tidstorage tracker (coherent backup points for ZODB)"))
	require.Equal(t, []string{"tidstorage serve -c /etc/tidstorage/tracker.hcl"},
		findCommands("ExecStart=/usr/local/bin/tidstorage serve -c /etc/tidstorage/tracker.hcl"))

	bad := checkConfig("docs/x.md", 10, "status_file = \"s\"\nclassic { listen = \"127.0.0.1:9001\", allow = [] }\n")
	require.Len(t, bad, 1)
	require.Contains(t, bad[0], "docs/x.md:11: configuration example fails `config check`: ")
	blocks := codeBlocks([]byte("text\n\n   ```hcl\n   a = 1\n   ```\n"))
	require.Equal(t, []block{{lang: "hcl", line: 4, text: "a = 1"}}, blocks)
}
