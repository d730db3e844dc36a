package admin

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/tidstorage/tidstorage/internal/atomicfile"
)

// minTokenLen bounds a token written by hand: shorter ones are guessable.
const minTokenLen = 32

// LoadOrCreateToken returns the admin token kept in path, creating the file
// (32 random bytes in hex, mode 0600, written atomically) when it does not
// exist; created says it did. Like ssh with a private key, it refuses a
// file that group or others may read or write.
func LoadOrCreateToken(path string) (token string, created bool, err error) {
	tok, err := ReadToken(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return tok, false, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, fmt.Errorf("admin token file %s: generating a token: %w", path, err)
	}
	tok = hex.EncodeToString(raw[:])
	err = atomicfile.Create(path, 0o600, func(w io.Writer) error {
		_, err := io.WriteString(w, tok+"\n")
		return err
	})
	if errors.Is(err, fs.ErrExist) { // another process created it meanwhile: use theirs
		tok, err = ReadToken(path)
		return tok, false, err
	}
	if err != nil {
		return "", false, fmt.Errorf("admin token file %s: creating it: %w", path, err)
	}
	return tok, true, nil
}

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
