// Package docs holds no code: its test keeps architecture.md true to the
// module's import graph.
package docs

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/tidstorage/tidstorage"

// layers reads the fenced block under "### Direction of imports" of
// architecture.md: one layer a line, its name first, top layer first. It
// returns each package's layer index (0 is the top).
func layers(t *testing.T) map[string]int {
	doc, err := os.ReadFile("architecture.md")
	require.NoError(t, err)
	s := string(doc)
	i := strings.Index(s, "### Direction of imports")
	require.GreaterOrEqual(t, i, 0, "architecture.md lost its section \"### Direction of imports\"")
	s = s[i:]
	i = strings.Index(s, "```\n")
	require.GreaterOrEqual(t, i, 0, "architecture.md: no fenced layer block under \"Direction of imports\"")
	s = s[i+4:]
	j := strings.Index(s, "```")
	require.GreaterOrEqual(t, j, 0, "architecture.md: the layer block is not closed")
	out := map[string]int{}
	for n, line := range strings.Split(strings.TrimSpace(s[:j]), "\n") {
		f := strings.Fields(line)
		require.GreaterOrEqual(t, len(f), 2, "architecture.md layer line %q: a name and at least one package", line)
		for _, p := range f[1:] {
			_, dup := out[p]
			require.False(t, dup, "architecture.md names %s in two layers", p)
			out[p] = n
		}
	}
	return out
}

// harnesses may import anything and be imported by tests only.
var harnesses = map[string]bool{
	"integration/zeotest":      true,
	"integration/s3test":       true,
	"cmd/admin/admintest":      true,
	"backup/fsdata/fsdatatest": true,
	"fleet/fleettest":          true,
	"integration":              true, // end-to-end tests only
	"docs":                     true, // this test
}

type pkg struct {
	path    string
	imports []string
}

// goList returns the module's packages with their non-test imports
// inside the module, paths relative to the module.
func goList(t *testing.T) []pkg {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	var pkgs []pkg
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		p := pkg{path: rel(f[0])}
		for _, imp := range f[1:] {
			if imp == module || strings.HasPrefix(imp, module+"/") {
				p.imports = append(p.imports, rel(imp))
			}
		}
		pkgs = append(pkgs, p)
	}
	require.NotEmpty(t, pkgs)
	return pkgs
}

func rel(p string) string {
	if p == module {
		return "."
	}
	return strings.TrimPrefix(p, module+"/")
}

func TestImportsPointDown(t *testing.T) {
	layer := layers(t)
	for _, p := range goList(t) {
		if harnesses[p.path] {
			continue
		}
		from, ok := layer[p.path]
		if !ok {
			t.Errorf("package %s is not named in docs/architecture.md's layer block (\"Direction of imports\"): add it to the layer it belongs to", p.path)
			continue
		}
		for _, imp := range p.imports {
			if harnesses[imp] {
				t.Errorf("production package %s imports the test harness %s", p.path, imp)
				continue
			}
			to, ok := layer[imp]
			if !ok {
				continue // reported as unnamed on its own line
			}
			if to <= from {
				t.Errorf("%s imports %s, which is not in a lower layer of docs/architecture.md", p.path, imp)
			}
		}
	}
}

// The layer block must not name packages that no longer exist.
func TestLayersNameRealPackages(t *testing.T) {
	real := map[string]bool{}
	for _, p := range goList(t) {
		real[p.path] = true
	}
	for p := range layers(t) {
		require.True(t, real[p], "docs/architecture.md names %s, which is not a package of the module", p)
	}
}
