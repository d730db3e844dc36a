package backup

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// copyBlock is the block size of data file copies: large enough for few
// system calls and hand-offs between the goroutines of a copy (4 per MiB),
// small enough that the blocks in flight stay in the CPU's caches between
// the read, the hashes and the write. Measured on a 1 GiB file (read,
// sha256, write): 256 KiB blocks took half the CPU time of 1 MiB blocks,
// and 32 KiB blocks (io.Copy's) a little more than 256 KiB (BENCHMARKS.md,
// "backup and restore").
const copyBlock = 256 << 10

// copyDepth is how many blocks a copy holds at once: the reader fills one
// while the writers handle the others.
const copyDepth = 4

// block is one buffer of a copy, handed to every writer; the last writer
// done with it gives it back to the reader.
type block struct {
	buf  []byte
	n    int
	refs atomic.Int32
}

// copyFanout copies r to every writer in copyBlock blocks, as a pipeline:
// one goroutine per writer (the file write, md5, sha256 each on its own),
// while the caller's goroutine reads the next blocks ahead. Read, hashes
// and write then overlap instead of adding up: on a multi-core machine a
// copy costs about its slowest part. Every writer sees every byte in
// order; the first error of the reader or of any writer stops the copy
// and is returned (with the others). r is read with Read only, never
// through WriterTo (an *os.File's would copy in 32 KiB pieces).
func copyFanout(r io.Reader, ws ...io.Writer) (int64, error) {
	free := make(chan *block, copyDepth)
	for range copyDepth {
		free <- &block{buf: make([]byte, copyBlock)}
	}
	var failed atomic.Bool // a writer failed: stop reading
	errs := make([]error, len(ws)+1)
	chans := make([]chan *block, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		ch := make(chan *block, copyDepth)
		chans[i] = ch
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range ch {
				if errs[i] == nil {
					if _, err := w.Write(b.buf[:b.n]); err != nil {
						errs[i] = err
						failed.Store(true)
					}
				}
				if b.refs.Add(-1) == 0 {
					free <- b
				}
			}
		}()
	}
	var total int64
	for !failed.Load() {
		b := <-free
		n, err := fill(r, b.buf)
		if n > 0 {
			b.n = n
			total += int64(n)
			b.refs.Store(int32(len(ws)))
			for _, ch := range chans {
				ch <- b
			}
		} else {
			free <- b
		}
		if err != nil {
			if err != io.EOF {
				errs[len(ws)] = err
			}
			break
		}
	}
	for _, ch := range chans {
		close(ch)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return total, err
	}
	return total, nil
}

// fill reads into b until it is full or r ends; io.EOF (and only it) means
// the end of r.
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
