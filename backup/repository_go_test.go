package backup

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The stamp of a new set is later than every stamped file of every
// repository of the set, even one from a clock that ran ahead.
func TestRepositoriesNextStamp(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(b, "2026-11-24-12-00-05.deltafs"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(a, "2026-11-24-11-00-00.fs"), nil, 0o644))
	rs := openRepositories([]string{a, b}, nil)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	stamp, err := rs.nextStamp(now)
	require.NoError(t, err)
	require.Equal(t, "2026-11-24-12-00-06", stamp)
	stamp, err = rs.nextStamp(now.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, "2026-11-24-13-00-00", stamp)
}

// A storage of a set is read from the repository the override gives, else
// from the one its manifest records.
func TestRepositoriesStorage(t *testing.T) {
	e := &StorageEntry{ID: "main", Repository: "/old/main"}
	require.Equal(t, "/old/main", openRepositories(nil, nil).storage(e).dir)
	moved := openRepositories(nil, func(id string) string {
		if id == "main" {
			return "/new/main"
		}
		return ""
	})
	require.Equal(t, "/new/main", moved.storage(e).dir)
	require.Equal(t, "/old/other", moved.storage(&StorageEntry{ID: "other", Repository: "/old/other"}).dir)
}

// forget's listing of a chain's files: every stamped file before the stamp
// but the manifests (the set rule removes those), and no directory.
func TestRepositoryStampedBefore(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{
		"2026-11-24-11-00-00.fs", "2026-11-24-11-00-00.dat", "2026-11-24-11-00-00.index",
		"2026-11-24-11-00-00.tidstorage.json", "2026-11-24-11-30-00.deltafs",
		"2026-11-24-12-00-00.fs", "2026-11-24-12-00-00.dat", "notes.txt",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o644))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "2026-11-24-10-00-00.d"), 0o755))
	r := openRepository(dir)
	names, err := r.stampedBefore("2026-11-24-12-00-00")
	require.NoError(t, err)
	require.Equal(t, []string{"2026-11-24-11-00-00.dat", "2026-11-24-11-00-00.fs", "2026-11-24-11-00-00.index", "2026-11-24-11-30-00.deltafs"}, names)
	fulls, err := r.fulls()
	require.NoError(t, err)
	require.Equal(t, []string{"2026-11-24-11-00-00", "2026-11-24-12-00-00"}, fulls)
	require.NoError(t, r.remove(append(names, "2026-11-24-09-00-00.fs")))
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, left, 5)
}
