package admin

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/tidstorage/tidstorage/internal/atomicfile"
)

// LoadOrCreateToken returns the admin token kept in path, creating the file
// (32 random bytes in hex, mode 0600, written atomically) when it does not
// exist; created says it did. Like ssh with a private key, it refuses a
// file that group or others may read or write.
func LoadOrCreateToken(path string) (token string, created bool, err error) {
	tok, err := statusdoc.ReadToken(path)
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
		tok, err = statusdoc.ReadToken(path)
		return tok, false, err
	}
	if err != nil {
		return "", false, fmt.Errorf("admin token file %s: creating it: %w", path, err)
	}
	return tok, true, nil
}
