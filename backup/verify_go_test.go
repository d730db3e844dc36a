package backup_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/internal/txn"
)

func verifyAll(t *testing.T, repos []string, opts backup.VerifyOptions) []*backup.SetReport {
	t.Helper()
	stamps, problems := backup.AllStamps(repos)
	require.Empty(t, problems)
	return backup.Verify(repos, stamps, opts)
}

// A sound repository verifies, each data file read once per run; damage
// shows in exactly the sets that need the damaged file.
func TestGoVerify(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", true)
	sets := threeFileChain(t, s)
	repos := []string{s.spec.Repository}
	for _, readData := range []bool{false, true} {
		rs := verifyAll(t, repos, backup.VerifyOptions{ReadData: readData})
		require.Len(t, rs, 3)
		for i, r := range rs {
			require.True(t, r.OK(), "%v", r.Problems)
			require.Equal(t, sets[i].Stamp, r.Stamp)
			require.Equal(t, 1, r.Files, "each file once per run")
			require.Equal(t, i+1, r.Blobs)
		}
	}

	flipByte(t, filepath.Join(s.spec.Repository, sets[2].Storages[0].Files[1].Name))
	rs := verifyAll(t, repos, backup.VerifyOptions{})
	require.True(t, rs[0].OK())
	require.False(t, rs[1].OK())
	require.Contains(t, rs[1].Problems[0], "s: "+filepath.Join(s.spec.Repository, sets[2].Storages[0].Files[1].Name)+": md5 ")
	require.False(t, rs[2].OK())
}

// Verify catches what restore would: a chain that does not end at the
// set's TID, a missing or resized blob, a ledger that disagrees, a set
// whose repositories hold different points.
func TestGoVerifyProblems(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, a, b *goStore, m *backup.Manifest)
		want   string
	}{
		{"kept tid", func(t *testing.T, a, _ *goStore, m *backup.Manifest) {
			editManifest(t, a.spec.Repository, m.Stamp, `"kept_tid": "0000000000000200"`, `"kept_tid": "0000000000000100"`)
		}, "the manifest says 0000000000000100"},
		{"missing blob", func(t *testing.T, a, _ *goStore, m *backup.Manifest) {
			require.NoError(t, os.Remove(filepath.Join(a.spec.Repository, "blobs", m.Storage("a").Blobs.Files[0].Path)))
		}, "a: 1 blob file(s) bad: "},
		{"blob size", func(t *testing.T, a, _ *goStore, m *backup.Manifest) {
			p := filepath.Join(a.spec.Repository, "blobs", m.Storage("a").Blobs.Files[0].Path)
			require.NoError(t, os.Chmod(p, 0o644))
			require.NoError(t, os.WriteFile(p, []byte("longer than it was"), 0o644))
		}, "bytes, the manifest says 7"},
		{"ledger", func(t *testing.T, a, _ *goStore, m *backup.Manifest) {
			dat := filepath.Join(a.spec.Repository, m.Storage("a").Dat)
			require.NoError(t, os.WriteFile(dat, []byte(strings.Replace(string(readFile(t, dat)), m.Storage("a").Files[0].MD5, strings.Repeat("e", 32), 1)), 0o644))
		}, "a: the ledger "},
		{"incoherent", func(t *testing.T, _, b *goStore, m *backup.Manifest) {
			editManifest(t, b.spec.Repository, m.Stamp, `"a": "0000000000000200"`, `"a": "0000000000000201"`)
		}, "b: the manifest in "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a, b := newGoStore(t, dir, "a", true), newGoStore(t, dir, "b", false)
			a.commit(t, 0x0200, "a1")
			m, err := backup.Backup([]backup.Spec{a.spec, b.spec}, map[string]txn.TID{"a": 0x0200, "b": 0x0100}, backup.Options{Now: t0})
			require.NoError(t, err)
			tc.damage(t, a, b, m)
			for _, readData := range []bool{false, true} {
				rs := verifyAll(t, []string{a.spec.Repository, b.spec.Repository}, backup.VerifyOptions{ReadData: readData})
				require.Len(t, rs, 1)
				require.False(t, rs[0].OK())
				require.Contains(t, strings.Join(rs[0].Problems, "\n"), tc.want, "read data: %v", readData)
			}
		})
	}
}

func editManifest(t *testing.T, repo, stamp, old, new string) {
	t.Helper()
	p := filepath.Join(repo, stamp+".tidstorage.json")
	s := string(readFile(t, p))
	require.Contains(t, s, old)
	require.NoError(t, os.WriteFile(p, []byte(strings.Replace(s, old, new, 1)), 0o644))
}
