package backup

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

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

// readSizes records the size of every Read asked of it.
type readSizes struct {
	r     io.Reader
	sizes []int
}

func (r *readSizes) Read(p []byte) (int, error) {
	r.sizes = append(r.sizes, len(p))
	return r.r.Read(p)
}

// The copy asks its source for whole blocks (not io.Copy's 32 KiB), and a
// source's error, io.ErrUnexpectedEOF included (a truncated gzip stream),
// is returned after the bytes before it reached every writer.
func TestCopyFanoutBlocksAndReadErrors(t *testing.T) {
	src := strings.Repeat("x", 3*copyBlock+10)
	rs := &readSizes{r: strings.NewReader(src)}
	var a bytes.Buffer
	n, err := copyFanout(rs, &a)
	require.NoError(t, err)
	require.Equal(t, int64(len(src)), n)
	require.Equal(t, src, a.String())
	require.Equal(t, []int{copyBlock, copyBlock, copyBlock, copyBlock, copyBlock - 10}, rs.sizes)

	for _, cause := range []error{io.ErrUnexpectedEOF, errors.New("bad disk block")} {
		a.Reset()
		r := io.MultiReader(strings.NewReader(src[:copyBlock+5]), iotest.ErrReader(cause))
		n, err = copyFanout(r, &a, io.Discard)
		require.ErrorIs(t, err, cause)
		require.Equal(t, int64(copyBlock+5), n)
		require.Equal(t, src[:copyBlock+5], a.String())
	}
}
