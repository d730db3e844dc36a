package backup

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

// Every writer gets every byte; any writer's error stops the copy.
func TestCopyFanout(t *testing.T) {
	src := strings.Repeat("0123456789", copyBlock/5) // two and a bit blocks
	var a, b, c bytes.Buffer
	n, err := copyFanout(strings.NewReader(src), &a, &b, &c)
	require.NoError(t, err)
	require.Equal(t, int64(len(src)), n)
	for _, w := range []*bytes.Buffer{&a, &b, &c} {
		require.Equal(t, src, w.String())
	}
	boom := errors.New("disk full")
	_, err = copyFanout(strings.NewReader(src), &a, failWriter{boom})
	require.ErrorIs(t, err, boom)
	_, err = copyFanout(strings.NewReader(src), failWriter{boom}, &a)
	require.ErrorIs(t, err, boom)
}
