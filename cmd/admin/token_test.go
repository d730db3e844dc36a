package admin_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/cmd/admin"
)

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "status.admin-token")
	_, err := statusdoc.ReadToken(p)
	require.ErrorIs(t, err, fs.ErrNotExist)

	tok, created, err := admin.LoadOrCreateToken(p)
	require.NoError(t, err)
	require.True(t, created)
	require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{64}$`), tok)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	again, created, err := admin.LoadOrCreateToken(p)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, tok, again, "an existing token is kept")
	other, _, err := admin.LoadOrCreateToken(filepath.Join(dir, "other"))
	require.NoError(t, err)
	require.NotEqual(t, tok, other)

	// Readable by others: refused, naming the file and the fix.
	require.NoError(t, os.Chmod(p, 0o640))
	_, _, err = admin.LoadOrCreateToken(p)
	require.ErrorContains(t, err, "admin token file "+p+" is accessible by group or others (mode 0640)")
	require.ErrorContains(t, err, "chmod 600 "+p)
	_, err = statusdoc.ReadToken(p)
	require.Error(t, err)

	// A hand-written token must be long enough and one word.
	short := filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(short, []byte("secret\n"), 0o600))
	_, _, err = admin.LoadOrCreateToken(short)
	require.ErrorContains(t, err, "holds 6 characters: a token needs at least 32")
	spaced := filepath.Join(dir, "spaced")
	require.NoError(t, os.WriteFile(spaced, []byte("0123456789abcdef 0123456789abcdef0123\n"), 0o600))
	_, err = statusdoc.ReadToken(spaced)
	require.ErrorContains(t, err, "one word")
	hand := filepath.Join(dir, "hand")
	require.NoError(t, os.WriteFile(hand, []byte("  0123456789abcdef0123456789abcdef  \n"), 0o600))
	tok, err = statusdoc.ReadToken(hand)
	require.NoError(t, err)
	require.Equal(t, "0123456789abcdef0123456789abcdef", tok)

	// A directory that does not exist: a clear error, no file.
	_, _, err = admin.LoadOrCreateToken(filepath.Join(dir, "missing", "tok"))
	require.ErrorContains(t, err, "admin token file "+filepath.Join(dir, "missing", "tok")+": creating it")
}
