package zeoproxy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/tidstorage/tidstorage/internal/rawconn"
)

// peekSize is how much of a frame's payload is looked at before it is
// forwarded. Envelope heads (msgid, flags, method name) fit easily.
const peekSize = 512

// bufSize is the size of each direction's read and write buffers. Four per
// connection keep an idle connection's memory well under 64 KiB while a
// frame that must be decoded whole usually fits in the read buffer.
const bufSize = 8 << 10

// scratchKeep is the largest buffer a pump keeps between frames for frames
// decoded whole that do not fit in its read buffer; a bigger one is dropped
// once used, so that an idle connection never holds more than that.
const scratchKeep = 2 * bufSize

// inspector looks at frames of one direction before they are forwarded.
type inspector interface {
	// head sees the first bytes of a frame's payload (all of it when
	// len(prefix) == size) and says whether it needs the whole payload.
	head(prefix []byte, size int) (wantAll bool)
	// whole sees the whole payload of a frame head asked for.
	whole(payload []byte)
	// skipped is called instead of whole when a frame head asked for is not
	// held for decoding (larger than limit, or the decode budget is spent:
	// overBudget); the frame is relayed all the same.
	skipped(overBudget bool, reason string)
	// unseen is called once when the direction stops being parsed as frames
	// (a length the proxy refuses); every later byte is copied blindly.
	unseen(reason string)
	// limit is the largest payload decoded whole at this point of the stream.
	limit() int
}

// pump relays one direction frame by frame, showing each frame to insp
// before forwarding it. It returns the error that ended the stream (io.EOF
// when the source closed between frames) and whether that error came from
// the destination (a failed write).
type pump struct {
	src      *bufio.Reader
	dst      *bufio.Writer
	insp     inspector
	maxFrame int // largest frame parsed; past it the direction is relayed raw
	// budget is the proxy-wide bound on bytes held for decoding (frames read
	// whole that do not fit in src's buffer).
	budget  *decodeBudget
	scratch []byte
	frames  uint64
	bytes   uint64
	// the raw connections under src and dst, for streaming large frames
	srcConn io.Reader
	dstConn io.Writer
	// shared counters (the proxy's metrics), updated per frame
	framesCtr, bytesCtr *atomic.Int64
}

var errWrite = errors.New("write failed")

// The pumps' buffers are pooled: a connection's four (32 KiB) are taken at
// its start and given back at its end, so that connections that come and
// go (a Zope restarting, health checks) do not allocate and clear them
// each time.
var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}
)

// newPump returns a pump relaying src to dst, reading and writing the
// sockets by raw system calls (package rawconn), with pooled buffers.
func newPump(src, dst net.Conn, insp inspector, p *Proxy, framesCtr, bytesCtr *atomic.Int64) *pump {
	r, _ := rawconn.Split(src)
	_, w := rawconn.Split(dst)
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(writeTagger{w})
	return &pump{src: br, dst: bw, insp: insp, maxFrame: p.cfg.maxParsedFrame, budget: p.budget,
		srcConn: src, dstConn: dst, framesCtr: framesCtr, bytesCtr: bytesCtr}
}

// release gives the pump's buffers back once it has stopped for good.
func (p *pump) release() {
	p.src.Reset(nil)
	readers.Put(p.src)
	p.dst.Reset(nil)
	writers.Put(p.dst)
	p.src, p.dst, p.scratch = nil, nil, nil
}

func (p *pump) run() (err error, writeSide bool) {
	for {
		if p.src.Buffered() == 0 {
			if err := p.dst.Flush(); err != nil {
				return err, true
			}
		}
		hdr, err := p.src.Peek(4)
		if err != nil {
			if len(hdr) > 0 { // a torn header: relay what came, then stop
				return p.forwardRest(err)
			}
			return err, false
		}
		n := int(binary.BigEndian.Uint32(hdr))
		if n > p.maxFrame || n < 0 {
			p.insp.unseen("frame length " + itoa(n) + " exceeds the limit of " + itoa(p.maxFrame) + " bytes (or has the ZEO 4 MAC bit set)")
			return p.copyRaw()
		}
		pre := min(n, peekSize)
		buf, err := p.src.Peek(4 + pre)
		if err != nil {
			return p.forwardRest(err)
		}
		wantAll := p.insp.head(buf[4:], n)
		total := 4 + n
		switch {
		case !wantAll:
		case n > p.insp.limit():
			p.insp.skipped(false, "a "+itoa(n)+"-byte frame that must be decoded exceeds the decode limit of "+itoa(p.insp.limit())+" bytes")
		case n <= pre:
			p.insp.whole(buf[4:])
		case total <= p.src.Size():
			if buf, err = p.src.Peek(total); err != nil {
				return p.forwardRest(err)
			}
			p.insp.whole(buf[4:])
		case !p.budget.acquire(total):
			p.insp.skipped(true, "a "+itoa(n)+"-byte frame that must be decoded does not fit in the decode budget ("+itoa(p.budget.size)+" bytes over all connections)")
		default:
			err, writeSide := p.readWhole(total)
			p.budget.release(total)
			if err != nil {
				return err, writeSide
			}
			p.count(total)
			continue
		}
		if total <= p.src.Buffered() {
			if buf, err = p.src.Peek(total); err != nil {
				return p.forwardRest(err)
			}
			if _, err := p.dst.Write(buf); err != nil {
				return err, true
			}
			_, _ = p.src.Discard(total)
		} else if err, writeSide := p.stream(total); err != nil {
			return err, writeSide
		}
		p.count(total)
	}
}

// readWhole reads a frame larger than the read buffer into the scratch
// buffer, shows it to the inspector and forwards it.
func (p *pump) readWhole(total int) (error, bool) {
	if cap(p.scratch) < total {
		p.scratch = make([]byte, total)
	}
	s := p.scratch[:total]
	if cap(p.scratch) > scratchKeep {
		p.scratch = nil // do not keep a rare large frame's buffer
	}
	if got, err := io.ReadFull(p.src, s); err != nil {
		if _, werr := p.dst.Write(s[:got]); werr != nil {
			return werr, true
		}
		return p.flushThen(err)
	}
	p.insp.whole(s[4:])
	if _, err := p.dst.Write(s); err != nil {
		return err, true
	}
	return nil, false
}

// stream forwards a frame of which only a part is buffered (n < total): the
// buffered part through the buffers, the rest straight from socket to
// socket, which the kernel can splice without copying through user space.
func (p *pump) stream(total int) (error, bool) {
	n := p.src.Buffered() // < total: nothing of the next frame is buffered
	b, _ := p.src.Peek(n)
	if _, err := p.dst.Write(b); err != nil {
		return err, true
	}
	_, _ = p.src.Discard(n)
	if err := p.dst.Flush(); err != nil {
		return err, true
	}
	if p.srcConn == nil || p.dstConn == nil {
		if _, err := io.CopyN(p.dst, p.src, int64(total-n)); err != nil {
			return p.flushThen(err)
		}
		return nil, false
	}
	if _, err := io.CopyN(p.dstConn, p.srcConn, int64(total-n)); err != nil {
		// Which side failed is not told apart here: a large frame is never
		// the tpc_finish whose fate depends on it.
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err, false
	}
	return nil, false
}

func (p *pump) count(n int) {
	p.frames++
	p.bytes += uint64(n)
	p.framesCtr.Add(1)
	p.bytesCtr.Add(int64(n))
}

// forwardRest relays whatever bytes of a torn frame were received, then ends.
func (p *pump) forwardRest(cause error) (error, bool) {
	if n := p.src.Buffered(); n > 0 {
		b, _ := p.src.Peek(n)
		if _, err := p.dst.Write(b); err != nil {
			return err, true
		}
		p.bytes += uint64(n)
		p.bytesCtr.Add(int64(n))
	}
	return p.flushThen(cause)
}

func (p *pump) flushThen(cause error) (error, bool) {
	if err := p.dst.Flush(); err != nil {
		return err, true
	}
	if cause == io.EOF {
		cause = io.ErrUnexpectedEOF // the stream ended inside a frame
	}
	return cause, false
}

// copyRaw relays the rest of the stream without looking at it.
func (p *pump) copyRaw() (error, bool) {
	buf := make([]byte, bufSize)
	for {
		n, err := p.src.Read(buf)
		if n > 0 {
			if _, werr := p.dst.Write(buf[:n]); werr != nil {
				return werr, true
			}
			p.bytes += uint64(n)
			p.bytesCtr.Add(int64(n))
			if p.src.Buffered() == 0 {
				if werr := p.dst.Flush(); werr != nil {
					return werr, true
				}
			}
		}
		if err != nil {
			if ferr := p.dst.Flush(); ferr != nil {
				return ferr, true
			}
			return err, false
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// writeTagger marks errors of the destination so that a pump can tell a
// failed write (the peer it writes to is gone) from a failed read.
type writeTagger struct{ w io.Writer }

func (t writeTagger) Write(b []byte) (int, error) {
	n, err := t.w.Write(b)
	if err != nil {
		err = fmt.Errorf("%w: %w", errWrite, err)
	}
	return n, err
}
