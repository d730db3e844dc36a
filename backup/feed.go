package backup

import (
	"errors"
	"io"
	"os"
	"sync"
)

// errScanRefused stops a reader whose producer gave up: a scan whose result
// means nothing is to be copied, or a join that failed.
var errScanRefused = errors.New("the scan found nothing to copy")

// feed lets a reader follow a producer through one file: the producer
// publishes how far the bytes are ready, the reader reads up to there and
// waits for more. A full backup's copy follows its scan (the bytes known to
// be kept); a restore's check follows its join (the bytes written). The
// file is then read once, at the speed of the slower of the two.
type feed struct {
	mu   sync.Mutex
	cond *sync.Cond
	end  int64 // bytes before end are kept: they may be copied
	done bool  // end is final
	ok   bool  // with done: copy up to end (false: abandon the copy)
}

func newFeed(start int64) *feed {
	f := &feed{end: start}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// advance publishes a new kept end; the copy is woken once per block, not
// once per transaction.
func (f *feed) advance(end int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if end >= f.end+copyBlock {
		f.end = end
		f.cond.Broadcast()
	}
}

// finish ends the scan: copy up to end if ok, else abandon.
func (f *feed) finish(end int64, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ok {
		f.end = end
	}
	f.done, f.ok = true, ok
	f.cond.Broadcast()
}

// wait blocks until the bytes before need are published or the producer
// is done.
func (f *feed) wait(need int64) (end int64, done, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Each wake-up follows an advance or the finish: the producer moves
	// forward, and its caller always finishes the feed, ending the loop.
	for f.end < need && !f.done {
		f.cond.Wait()
	}
	return f.end, f.done, f.ok
}

// feedReader reads the file from pos as far as the feed allows.
type feedReader struct {
	f    *os.File
	pos  int64
	feed *feed
}

func (r *feedReader) Read(p []byte) (int, error) {
	end, done, ok := r.feed.wait(r.pos + 1)
	switch {
	case done && !ok:
		return 0, errScanRefused
	case r.pos >= end:
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), end-r.pos))
	m, err := r.f.ReadAt(p[:n], r.pos)
	r.pos += int64(m)
	if errors.Is(err, io.EOF) && m == n {
		err = nil
	}
	return m, err
}

// feedReaderAt is an io.ReaderAt over a file being written: a read waits
// until its bytes are published.
type feedReaderAt struct {
	f    *os.File
	feed *feed
}

func (r *feedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	end, done, ok := r.feed.wait(off + int64(len(p)))
	switch {
	case done && !ok:
		return 0, errScanRefused
	case off >= end:
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), end-off))
	m, err := r.f.ReadAt(p[:n], off)
	if err == nil && m < len(p) {
		err = io.EOF
	}
	return m, err
}

// publishingWriter writes to w and publishes the running total to fn.
type publishingWriter struct {
	w  io.Writer
	n  int64
	fn func(end int64)
}

func (p *publishingWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.fn(p.n)
	return n, err
}
