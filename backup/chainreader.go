package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// errCompressed: a chain with gzipped files cannot be read at random
// offsets.
var errCompressed = errors.New("compressed chain")

// chainReader reads the data files of a chain as the one Data.fs they
// rebuild, without writing it: an io.ReaderAt over the files in order.
type chainReader struct {
	files  []*os.File
	starts []int64 // offset in the rebuilt file of each file's first byte
	size   int64
}

// openChain opens the chain's files; their sizes must match the ranges.
func openChain(repo string, files []FileEntry) (*chainReader, error) {
	c := &chainReader{}
	for _, fe := range files {
		if strings.HasSuffix(fe.Name, "z") {
			c.Close()
			return nil, errCompressed
		}
		f, err := os.Open(filepath.Join(repo, fe.Name))
		if err != nil {
			c.Close()
			return nil, err
		}
		c.files = append(c.files, f)
		c.starts = append(c.starts, fe.Start)
		c.size = fe.End
	}
	return c, nil
}

func (c *chainReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("chain: negative offset %d", off)
	}
	n := 0
	// One iteration per file touched: bounded by the number of files.
	i := sort.Search(len(c.starts), func(i int) bool { return c.starts[i] > off }) - 1
	for ; n < len(p) && i >= 0 && i < len(c.files); i++ {
		m, err := c.files[i].ReadAt(p[n:], off+int64(n)-c.starts[i])
		n += m
		if err != nil && !errors.Is(err, io.EOF) {
			return n, err
		}
		if i+1 < len(c.starts) && off+int64(n) < c.starts[i+1] {
			break // a file shorter than its range: a hole
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (c *chainReader) Close() error {
	for _, f := range c.files {
		f.Close()
	}
	return nil
}

// chainTail returns bytes [from, end of chain) of the file the chain
// rebuilds, decompressing gzipped files as it streams through them.
func chainTail(repo string, files []FileEntry, from int64) ([]byte, error) {
	var out []byte
	for _, fe := range files {
		if fe.End <= from {
			continue
		}
		err := func() error {
			in, err := openData(filepath.Join(repo, fe.Name))
			if err != nil {
				return err
			}
			defer in.Close()
			if skip := from - fe.Start; skip > 0 {
				if _, err := io.CopyN(io.Discard, in, skip); err != nil {
					return fmt.Errorf("%s: %w", fe.Name, err)
				}
			}
			b, err := io.ReadAll(in)
			if err != nil {
				return fmt.Errorf("%s: %w", fe.Name, err)
			}
			out = append(out, b...)
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// offsetReader reads b as the bytes at offset base of a larger file.
type offsetReader struct {
	b    []byte
	base int64
}

func (o offsetReader) ReadAt(p []byte, off int64) (int, error) {
	if off < o.base {
		return 0, fmt.Errorf("offset %d is before the bytes read (%d)", off, o.base)
	}
	return bytes.NewReader(o.b).ReadAt(p, off-o.base)
}
