package statusdoc

import (
	"fmt"
	"os"
	"strings"
)

// minTokenLen bounds a token written by hand: shorter ones are guessable.
const minTokenLen = 32

// ReadToken reads the admin token kept in path. The error wraps
// fs.ErrNotExist when there is no such file, and fs.ErrPermission when it
// cannot be read.
func ReadToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("admin token file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("admin token file %s is accessible by group or others (mode %04o): anyone who reads it can accept partial commits; run chmod 600 %s (or remove it and restart serve, which creates a new one)",
			path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case len(tok) < minTokenLen:
		return "", fmt.Errorf("admin token file %s holds %d characters: a token needs at least %d (remove the file and restart serve to get a random one)",
			path, len(tok), minTokenLen)
	case strings.ContainsAny(tok, " \t\r\n") || strings.ContainsFunc(tok, func(r rune) bool { return r < 0x21 || r > 0x7e }):
		return "", fmt.Errorf("admin token file %s: the token must be one word of printable ASCII characters", path)
	}
	return tok, nil
}
