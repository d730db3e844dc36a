package backup_test

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// Gzipped sets (repozo -z): .fsz and .deltafsz files holding the Data.fs
// bytes, whose ledger md5 and manifest sha256 are of those bytes; they
// restore and verify, also in a chain that mixes plain and gzipped files.
func TestGoGzipSets(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", false)
	var sets []*backup.Manifest
	for i, tid := range []txn.TID{0x0200, 0x0300, 0x0400} {
		s.commit(t, tid, strings.Repeat("z", 300))
		m, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": tid}, backup.Options{Now: t0, Gzip: i != 2})
		require.NoError(t, err)
		sets = append(sets, m)
	}
	files := sets[2].Storages[0].Files
	require.True(t, strings.HasSuffix(files[0].Name, ".fsz"))
	require.True(t, strings.HasSuffix(files[1].Name, ".deltafsz"))
	require.True(t, strings.HasSuffix(files[2].Name, ".deltafs"))
	// Really gzip, of exactly the Data.fs bytes, and smaller.
	zf, err := os.Open(filepath.Join(s.spec.Repository, files[0].Name))
	require.NoError(t, err)
	zr, err := gzip.NewReader(zf)
	require.NoError(t, err)
	raw, err := io.ReadAll(zr)
	require.NoError(t, err)
	zf.Close()
	require.Equal(t, s.b.Bytes()[:files[0].End], raw)
	require.Equal(t, md5Hex(raw), files[0].MD5)
	st, err := os.Stat(filepath.Join(s.spec.Repository, files[0].Name))
	require.NoError(t, err)
	require.Less(t, st.Size(), files[0].End)

	for _, m := range sets {
		rs, err := backup.Restore(m, filepath.Join(dir, "out-"+m.Stamp), backup.RestoreOptions{})
		require.NoError(t, err)
		require.Equal(t, s.b.Bytes()[:m.Storages[0].Size], readFile(t, rs[0].DataFS))
	}
	for _, readData := range []bool{false, true} {
		for _, r := range verifyAll(t, []string{s.spec.Repository}, backup.VerifyOptions{ReadData: readData}) {
			require.True(t, r.OK(), "%s: %v", r.Stamp, r.Problems)
			require.Empty(t, r.Notes)
		}
	}
	// A wrong kept TID in a compressed set is caught both ways.
	editManifest(t, s.spec.Repository, sets[1].Stamp, `"kept_tid": "0000000000000300"`, `"kept_tid": "0000000000000200"`)
	for _, readData := range []bool{false, true} {
		rs := backup.Verify([]string{s.spec.Repository}, []string{sets[1].Stamp}, backup.VerifyOptions{ReadData: readData})
		require.False(t, rs[0].OK())
		require.Contains(t, strings.Join(rs[0].Problems, "\n"), "the manifest says 0000000000000200")
	}
	// A damaged gzipped file stops the chain from growing.
	flipByte(t, filepath.Join(s.spec.Repository, files[1].Name))
	var log strings.Builder
	s.commit(t, 0x0500, "more")
	m, err := backup.Backup([]backup.Spec{s.spec}, map[string]txn.TID{"s": 0x0500}, backup.Options{Now: t0, Gzip: true, Log: &log})
	require.NoError(t, err)
	require.Equal(t, "full", m.Storages[0].Kind)
	require.Contains(t, log.String(), "chain is damaged")
}
