package backup_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup"
)

func TestGoListSets(t *testing.T) {
	dir := t.TempDir()
	s := newGoStore(t, dir, "s", false)
	sets := threeFileChain(t, s)
	got, problems := backup.ListSets([]string{s.spec.Repository}, nil)
	require.Empty(t, problems)
	require.Len(t, got, 3)
	for i, si := range got {
		require.Equal(t, sets[i].Stamp, si.Stamp)
		require.Empty(t, si.Problems)
		require.Equal(t, sets[i].Storages[0].Size, si.Bytes)
	}
	require.Equal(t, "incremental", got[2].Storages[0].Kind)
	require.NoError(t, os.Remove(filepath.Join(s.spec.Repository, sets[2].Storages[0].Files[2].Name)))
	got, _ = backup.ListSets([]string{s.spec.Repository}, nil)
	require.Empty(t, got[1].Problems)
	require.Len(t, got[2].Problems, 1)
	require.Contains(t, got[2].Problems[0], "no such file")
}

func TestParseDateAndStampAt(t *testing.T) {
	for in, want := range map[string]string{
		"2026-11-24":                "2026-11-24-00-00-00",
		"2026-11-24-13":             "2026-11-24-13-00-00",
		"2026-11-24-13-05":          "2026-11-24-13-05-00",
		"2026-11-24-13-05-09":       "2026-11-24-13-05-09",
		"2026-11-24T14:05:09+01:00": "2026-11-24-13-05-09",
	} {
		got, err := backup.ParseDate(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got.Format(backup.StampLayout), in)
	}
	_, err := backup.ParseDate("yesterday")
	require.ErrorContains(t, err, "want YYYY-MM-DD")

	stamps := []string{"2026-11-24-12-00-00", "2026-11-24-13-00-00", "2026-11-25-00-00-00"}
	at := func(s string) string {
		d, err := backup.ParseDate(s)
		require.NoError(t, err)
		got, err := backup.StampAt(stamps, d)
		require.NoError(t, err)
		return got
	}
	require.Equal(t, "2026-11-24-12-00-00", at("2026-11-24-12-59-59"))
	require.Equal(t, "2026-11-24-13-00-00", at("2026-11-24-13"))
	require.Equal(t, "2026-11-25-00-00-00", at("2026-12-01"))
	_, err = backup.StampAt(stamps, time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC))
	require.ErrorContains(t, err, "no backup set at or before 2026-11-24-11-00-00 (oldest: 2026-11-24-12-00-00)")
}
