package backup_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
	"github.com/tidstorage/tidstorage/internal/tid"
)

// A blob record whose file is gone from blob_dir is reported.
func TestBackupReportsMissingBlobFile(t *testing.T) {
	f := newFixture(t)
	gone, err := filepath.Glob(filepath.Join(f.aBlobs, "0x00", "*", "*", "*", "*", "*", "*", "*", "0x"+f.wa.New[0]+".blob"))
	require.NoError(t, err)
	require.Len(t, gone, 1)
	require.NoError(t, os.Remove(gone[0]))
	var log strings.Builder
	m, err := backup.Backup([]backup.Spec{f.a}, map[string]tid.TID{"A": hexTID(t, f.wa.New[2])}, backup.Options{Log: &log})
	require.NoError(t, err)
	b := m.Storages[0].Blobs
	require.Len(t, b.Files, 2)
	require.Len(t, b.Missing, 1)
	require.True(t, strings.HasSuffix(b.Missing[0], " "+f.wa.New[0]), b.Missing[0])
	require.Contains(t, log.String(), "1 blob record(s) have no blob file")
}

// An FS21 file (Python 2 ZODB) is backed up and restored with its magic.
func TestBackupRestoreFS21(t *testing.T) {
	f := newFixture(t)
	data, err := os.ReadFile(f.b.DataFS)
	require.NoError(t, err)
	copy(data, "FS21")
	require.NoError(t, os.WriteFile(f.b.DataFS, data, 0o644))
	m, err := backup.Backup([]backup.Spec{f.b}, map[string]tid.TID{"B": hexTID(t, f.wb.New[1])}, backup.Options{Now: time.Now()})
	require.NoError(t, err)
	require.Equal(t, "FS21", m.Storages[0].Magic)
	rs, err := backup.Restore(m, filepath.Join(f.dir, "out"), backup.RestoreOptions{})
	require.NoError(t, err)
	got, err := os.ReadFile(rs[0].DataFS)
	require.NoError(t, err)
	require.Equal(t, data[:rs[0].Size], got)
	require.Equal(t, "FS21", string(got[:4]))
}
