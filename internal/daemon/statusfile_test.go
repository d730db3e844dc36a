package daemon

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

func TestStatusFileWritesQueuedLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	s, err := openStatusFile(path, hclog.NewNullLogger())
	require.NoError(t, err)
	for _, l := range []string{"1.00 f {}\n", "2.00 d {'a': 1}\n", "3.00 f {'a': 1}\n"} {
		n, err := s.Write([]byte(l))
		require.NoError(t, err)
		require.Equal(t, len(l), n)
		require.NoError(t, s.Sync())
	}
	require.NoError(t, s.Close(10*time.Second))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "1.00 f {}\n2.00 d {'a': 1}\n3.00 f {'a': 1}\n", string(b))
	st := s.stats()
	require.EqualValues(t, 3, st.Lines)
	require.False(t, st.Broken)
}

// After a failed write nothing more is appended (a "d" line after a lost one
// could describe a point that was never coherent), the failure is reported,
// and writers are never blocked or failed.
func TestStatusFileStopsAtFirstFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	s, err := openStatusFile(path, hclog.NewNullLogger())
	require.NoError(t, err)
	_, _ = s.Write([]byte("1.00 f {}\n"))
	require.Eventually(t, func() bool { return s.stats().Lines == 1 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, s.f.Close()) // the disk goes away under the writer
	n, err := s.Write([]byte("2.00 d {'a': 1}\n"))
	require.NoError(t, err, "the tracker is never told to stop")
	require.Equal(t, 16, n)
	require.Eventually(t, func() bool { return s.stats().Broken }, 10*time.Second, 5*time.Millisecond)
	_, _ = s.Write([]byte("3.00 d {'b': 2}\n"))
	st := s.stats()
	require.EqualValues(t, 1, st.Lines)
	require.EqualValues(t, 1, st.Errors)
	require.EqualValues(t, 2, st.Dropped)
	require.NotEmpty(t, st.LastError)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "1.00 f {}\n", string(b), "the file ends at its last good line")
	require.Error(t, s.Close(time.Second))
}
