package backup

import (
	"errors"
	"io"
	"sync"
)

// copyBlock is the block size of data file copies: large blocks mean few
// system calls and few hand-offs between the hashing goroutines.
const copyBlock = 1 << 20

// fanout writes each block to every writer at once, one goroutine per
// extra writer: md5, sha256 and the file write then overlap instead of
// adding up (on a multi-core machine a copy costs about its slowest part).
// Writers must not keep the block after Write returns, as io.Writer says.
type fanout []io.Writer

func (ws fanout) Write(p []byte) (int, error) {
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i := 1; i < len(ws); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = ws[i].Write(p)
		}()
	}
	_, errs[0] = ws[0].Write(p)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return len(p), nil
}

// copyFanout copies r to every writer in copyBlock blocks.
func copyFanout(r io.Reader, ws ...io.Writer) (int64, error) {
	return io.CopyBuffer(fanout(ws), r, make([]byte, copyBlock))
}
