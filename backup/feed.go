package backup

import (
	"errors"
	"io"
	"os"
	"sync"
)

// errScanRefused stops a copy that ran alongside a scan whose result means
// nothing is to be written (an error, a file behind the point, nothing new).
var errScanRefused = errors.New("the scan found nothing to copy")

// feed lets a copy follow a scan of the same file: the scan publishes how
// far the bytes are known to be kept, the copy reads up to there and waits
// for more. So a full backup reads the file once at the speed of the
// slower of the two, instead of scanning it all and then copying it all.
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

// wait blocks until bytes past pos are kept or the scan is over.
func (f *feed) wait(pos int64) (end int64, done, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Each wake-up follows an advance or the finish: the scan moves
	// forward, and finish (deferred by its caller) always ends the loop.
	for f.end <= pos && !f.done {
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
	end, done, ok := r.feed.wait(r.pos)
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
