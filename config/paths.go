package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// pathNeed says what must already exist for a path attribute to work.
type pathNeed int

const (
	needParent pathNeed = iota // a file tidstorage creates: its directory must exist
	needFile                   // a file tidstorage reads (certificates, a Data.fs)
	needDir                    // a directory tidstorage reads (a blob directory)
	needNone                   // created on first use, directories included
)

// pathRef is where a path was written, kept for CheckPaths.
type pathRef struct {
	name, value string
	need        pathNeed
	rng         hcl.Range
}

// CheckPaths looks at the file system now and returns a warning, at the
// attribute, for each path that cannot work as written: a certificate or
// Data.fs that does not exist, a status file, journal, log or pid file
// whose directory does not exist; and for TLS files that exist but do not
// load (a certificate that does not match its key, a CA file without a
// certificate) or a certificate expired or expiring within ExpiryWarning.
// `config check` prints them; they are warnings because the files may be
// put right between the check and the start (a volume mounted by the
// service manager, a first backup, a renewal).
func (c *Config) CheckPaths() hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, p := range c.paths {
		rng := p.rng
		if p.name == "file" {
			p.name = "log file"
		}
		warn := func(summary, format string, a ...any) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary,
				Detail: fmt.Sprintf(format, a...), Subject: &rng})
		}
		switch need := p.need; need {
		case needNone:
		case needFile, needDir:
			fi, err := os.Stat(p.value)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				warn("Path does not exist", "%s %q does not exist", p.name, p.value)
			case err != nil:
				warn("Path cannot be read", "%s: %v", p.name, err)
			case need == needDir && !fi.IsDir():
				warn("Not a directory", "%s %q is not a directory", p.name, p.value)
			case need == needFile && fi.IsDir():
				warn("Not a file", "%s %q is a directory, a file is expected", p.name, p.value)
			}
		default:
			dir := filepath.Dir(p.value)
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				warn("Directory does not exist", "the directory of %s %q does not exist: tidstorage creates the file, not its directory", p.name, p.value)
			}
		}
	}
	return append(diags, c.checkTLS(time.Now())...)
}
