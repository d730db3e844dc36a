package backup_test

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// oneSet backs up a store with a full and an incremental file and returns
// the newest set.
func oneSet(t *testing.T, dir string, blobs bool) (*goStore, *backup.Manifest) {
	t.Helper()
	s := newGoStore(t, dir, "s", blobs)
	s.commit(t, 0x0200, "x")
	_, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x0200}, backup.Options{Now: t0})
	require.NoError(t, err)
	s.commit(t, 0x0300, "y")
	m, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x0300}, backup.Options{Now: t0})
	require.NoError(t, err)
	require.Len(t, m.Storages[0].Files, 2)
	return s, m
}

// Every check of restore stops it before a Data.fs appears at the
// destination, naming what is wrong.
func TestGoRestoreChecks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, s *goStore, m *backup.Manifest)
		want   string
	}{
		{"flipped byte", func(t *testing.T, s *goStore, m *backup.Manifest) {
			p := filepath.Join(s.spec.Repository, m.Storages[0].Files[1].Name)
			b := readFile(t, p)
			b[len(b)/2] ^= 0xff
			require.NoError(t, os.WriteFile(p, b, 0o644))
		}, ".deltafs: sha256 "},
		{"short file", func(t *testing.T, s *goStore, m *backup.Manifest) {
			p := filepath.Join(s.spec.Repository, m.Storages[0].Files[0].Name)
			b := readFile(t, p)
			require.NoError(t, os.WriteFile(p, b[:len(b)-1], 0o644))
		}, "the ledger says"},
		{"missing file", func(t *testing.T, s *goStore, m *backup.Manifest) {
			require.NoError(t, os.Remove(filepath.Join(s.spec.Repository, m.Storages[0].Files[1].Name)))
		}, "no such file"},
		{"gap", func(t *testing.T, _ *goStore, m *backup.Manifest) {
			m.Storages[0].Files[1].Start++
		}, "the manifest says 195-301"},
		{"sha256", func(t *testing.T, _ *goStore, m *backup.Manifest) {
			m.Storages[0].Files[0].SHA256 = "00"
		}, "the manifest says 00"},
		{"size", func(t *testing.T, _ *goStore, m *backup.Manifest) {
			m.Storages[0].Size++
		}, "the manifest says"},
		{"kept tid", func(t *testing.T, _ *goStore, m *backup.Manifest) {
			m.Storages[0].KeptTID = "0000000000000200"
		}, "check the restored file: it ends with tid 0000000000000300"},
		{"magic", func(t *testing.T, _ *goStore, m *backup.Manifest) {
			m.Storages[0].Magic = "FS21"
		}, "magic FS21"},
		{"no files", func(t *testing.T, _ *goStore, m *backup.Manifest) {
			m.Storages[0].Files = nil
		}, "lists no data file"},
		{"blob size", func(t *testing.T, _ *goStore, m *backup.Manifest) {
			m.Storages[0].Blobs.Files[0].Size++
		}, "bytes in the repository, the manifest says"},
		{"blob path", func(t *testing.T, _ *goStore, m *backup.Manifest) {
			m.Storages[0].Blobs.Files[0].Path = "../../etc/passwd"
		}, "leaves the blob directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, m := oneSet(t, dir, true)
			tc.damage(t, s, m)
			to := filepath.Join(dir, "out")
			_, err := backup.Restore(m, to, backup.RestoreOptions{})
			require.ErrorContains(t, err, tc.want)
			if tc.name != "blob size" && tc.name != "blob path" {
				require.NoFileExists(t, filepath.Join(to, "s", "Data.fs"))
				require.NoFileExists(t, filepath.Join(to, "s", "Data.fs.part"))
			}
		})
	}
}

// Existing destination files are kept unless Force, and Force still
// refuses a Data.fs that a ZODB program holds.
func TestGoRestoreOverwrite(t *testing.T) {
	dir := t.TempDir()
	s, m := oneSet(t, dir, true)
	to := filepath.Join(dir, "out")
	out := filepath.Join(to, "s", "Data.fs")
	require.NoError(t, os.MkdirAll(filepath.Dir(out), 0o755))
	require.NoError(t, os.WriteFile(out, []byte("old"), 0o644))
	require.NoError(t, os.WriteFile(out+".index", []byte("stale"), 0o644))
	_, err := backup.Restore(m, to, backup.RestoreOptions{})
	require.ErrorContains(t, err, "refusing to overwrite existing files (use --force)")
	require.Equal(t, "old", string(readFile(t, out)))

	lock, err := backup.LockDataFS(out)
	require.NoError(t, err)
	_, err = backup.Restore(m, to, backup.RestoreOptions{Force: true})
	require.ErrorIs(t, err, backup.ErrInUse)
	require.NoError(t, lock.Unlock())

	rs, err := backup.Restore(m, to, backup.RestoreOptions{Force: true})
	require.NoError(t, err)
	require.Equal(t, s.b.Bytes(), readFile(t, out))
	require.NotEqual(t, "stale", string(readFile(t, out+".index")))
	require.Equal(t, 2, rs[0].Blobs)
	// Again over the restored blobs: replaced, not refused.
	_, err = backup.Restore(m, to, backup.RestoreOptions{Force: true})
	require.NoError(t, err)
}

// A moved repository is found through RepoOf; repozo's gzipped files are
// read.
func TestGoRestoreMovedRepositoryAndGzip(t *testing.T) {
	dir := t.TempDir()
	s, m := oneSet(t, dir, false)
	moved := filepath.Join(dir, "moved")
	require.NoError(t, os.Rename(s.spec.Repository, moved))
	fe := &m.Storages[0].Files[0]
	plain := filepath.Join(moved, fe.Name)
	zipped, err := os.Create(plain + "z")
	require.NoError(t, err)
	zw := gzip.NewWriter(zipped)
	_, err = zw.Write(readFile(t, plain))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, zipped.Close())
	require.NoError(t, os.Remove(plain))
	// repozo -z names the gzipped file in the ledger, with the md5 of the
	// uncompressed bytes.
	dat := filepath.Join(moved, m.Storages[0].Dat)
	require.NoError(t, os.WriteFile(dat, []byte(strings.ReplaceAll(string(readFile(t, dat)), fe.Name, fe.Name+"z")), 0o644))
	fe.Name += "z"
	fe.SHA256 = "" // repozo records none

	_, err = backup.Restore(m, filepath.Join(dir, "x"), backup.RestoreOptions{})
	require.ErrorContains(t, err, "no such file")
	rs, err := backup.Restore(m, filepath.Join(dir, "out"), backup.RestoreOptions{RepoOf: func(string) string { return moved }})
	require.NoError(t, err)
	require.Equal(t, s.b.Bytes(), readFile(t, rs[0].DataFS))
}

func TestGoFindSet(t *testing.T) {
	dir := t.TempDir()
	s, m := oneSet(t, dir, false)
	_, err := backup.FindSet(nil, "")
	require.ErrorContains(t, err, "no repository configured")
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.MkdirAll(empty, 0o755))
	_, err = backup.FindSet([]string{filepath.Join(dir, "nowhere"), empty}, "")
	require.ErrorContains(t, err, "no backup set found")
	require.ErrorContains(t, err, empty+": no backup set")
	_, err = backup.FindSet([]string{s.spec.Repository}, "2000-01-01-00-00-00")
	require.ErrorContains(t, err, "no set 2000-01-01-00-00-00 (sets: 2026-11-24-12-00-00, "+m.Stamp+")")
	got, err := backup.FindSet([]string{empty, s.spec.Repository}, "")
	require.NoError(t, err)
	require.Equal(t, m.Stamp, got.Stamp)
	stamps, err := backup.Sets(s.spec.Repository)
	require.NoError(t, err)
	require.Equal(t, []string{"2026-11-24-12-00-00", "2026-11-24-12-00-01"}, stamps)
	// A manifest of another format is refused, not misread.
	require.NoError(t, os.WriteFile(filepath.Join(s.spec.Repository, m.Stamp+".tidstorage.json"), []byte(`{"format":"x"}`), 0o644))
	_, err = backup.FindSet([]string{s.spec.Repository}, "")
	require.ErrorContains(t, err, `unknown format "x"`)
}

func TestLabel(t *testing.T) {
	require.Equal(t, "main-1", backup.Label("main", "1"))
	require.Equal(t, "zeo3_8100_1", backup.Label("", "zeo3:8100/1"))
	require.Equal(t, "x", backup.Label("..x"))
	require.Equal(t, "storage", backup.Label("'''"))
}
