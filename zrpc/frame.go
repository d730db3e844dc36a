package zrpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrameSize bounds a frame's payload unless FrameReader.Max says
// otherwise. ZEO itself has no limit but the 32-bit length field; storea
// frames carry whole object pickles, so the default is generous.
const DefaultMaxFrameSize = 64 << 20

// macBit is the high bit of a ZEO 4 length word: set when an HMAC-SHA1
// (ZEO 4 authentication) follows the header. ZEO 5/6 never set it.
const macBit = 0x80000000

// HeaderSize is the size of the length prefix of every frame.
const HeaderSize = 4

var (
	// ErrFrameTooLarge is returned (wrapped) for a frame whose declared size
	// exceeds the reader's maximum.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrMACFrame is returned (wrapped) for a frame with the ZEO 4 MAC bit
	// set: an authenticated ZEO 4 session, which zrpc does not support.
	ErrMACFrame = errors.New("ZEO 4 MAC bit set in frame length (authenticated ZEO 4 session, not supported)")
	// ErrPayloadPending is returned when a new frame is requested while the
	// payload of the previous one has not been consumed via Payload.
	ErrPayloadPending = errors.New("previous frame payload not consumed")
)

// FrameHeader is a decoded length prefix.
type FrameHeader struct {
	Size uint32 // payload size, without the header (MAC bit removed)
	MAC  bool   // ZEO 4 MAC bit was set
}

// ParseFrameHeader decodes a 4-byte length prefix.
func ParseFrameHeader(b [HeaderSize]byte) FrameHeader {
	v := binary.BigEndian.Uint32(b[:])
	return FrameHeader{Size: v &^ macBit, MAC: v&macBit != 0}
}

// AppendFrameHeader appends the length prefix for a payload of size n.
func AppendFrameHeader(dst []byte, n int) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// AppendFrame appends header and payload.
func AppendFrame(dst, payload []byte) []byte {
	dst = AppendFrameHeader(dst, len(payload))
	return append(dst, payload...)
}

// WriteFrame writes one frame (header then payload) in a single Write when
// the payload is small, in two otherwise (no copy of a large payload).
func WriteFrame(w io.Writer, payload []byte) error {
	if uint64(len(payload)) >= macBit {
		return fmt.Errorf("zrpc: write frame: payload of %d bytes does not fit the 31-bit length", len(payload))
	}
	if len(payload) <= 512 {
		var buf [HeaderSize + 512]byte
		b := AppendFrame(buf[:0], payload)
		_, err := w.Write(b)
		return err
	}
	var hdr [HeaderSize]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// FrameReader reads frames from a stream. It is not safe for concurrent use.
//
// Two ways to read:
//   - ReadFrame returns the whole payload in a buffer that is reused by the
//     next call (copy what you keep).
//   - ReadHeader returns only the header; then PeekPayload(n) shows the first
//     bytes without consuming them and Payload() streams the rest. A proxy
//     uses this to look at the envelope of a 50 MiB storea and forward it
//     without buffering it.
//
// Errors name the frame number (1-based, counting the handshake frame).
type FrameReader struct {
	r   *bufio.Reader
	max uint32
	buf []byte
	n   int64 // frames started

	remaining int64 // payload bytes of the current frame not yet consumed
	payload   payloadReader
}

// DefaultBufferSize is the bufio buffer FrameReader allocates when given a
// plain io.Reader; large enough for PeekPayload of a typical envelope.
const DefaultBufferSize = 64 << 10

// NewFrameReader returns a reader with DefaultMaxFrameSize. If r is already
// a *bufio.Reader it is used as is (PeekPayload can then show at most its
// buffer size).
func NewFrameReader(r io.Reader) *FrameReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, DefaultBufferSize)
	}
	fr := &FrameReader{r: br, max: DefaultMaxFrameSize}
	fr.payload.fr = fr
	return fr
}

// SetMaxFrameSize sets the largest payload accepted (0 means the default).
func (fr *FrameReader) SetMaxFrameSize(n uint32) {
	if n == 0 {
		n = DefaultMaxFrameSize
	}
	fr.max = n
}

// MaxFrameSize reports the current limit.
func (fr *FrameReader) MaxFrameSize() uint32 { return fr.max }

// Frames reports how many frame headers have been read so far.
func (fr *FrameReader) Frames() int64 { return fr.n }

// ReadHeader reads the next frame's header. The payload of the previous
// frame must have been consumed (ReadFrame, Payload read to EOF, or Discard);
// otherwise ErrPayloadPending. io.EOF is returned only at a clean boundary.
//
// A frame over the size limit gives ErrFrameTooLarge together with its
// header, and its payload is left pending, so the caller can still stream
// or discard it. A frame with the ZEO 4 MAC bit gives ErrMACFrame and the
// stream cannot be followed further (an HMAC of unknown framing follows).
func (fr *FrameReader) ReadHeader() (FrameHeader, error) {
	if fr.remaining > 0 {
		return FrameHeader{}, fmt.Errorf("zrpc: frame %d: %w (%d bytes left)", fr.n, ErrPayloadPending, fr.remaining)
	}
	var b [HeaderSize]byte
	n, err := io.ReadFull(fr.r, b[:])
	if err != nil {
		if err == io.EOF {
			return FrameHeader{}, io.EOF
		}
		if err == io.ErrUnexpectedEOF {
			return FrameHeader{}, fmt.Errorf("zrpc: frame %d: truncated header (%d of 4 bytes): %w", fr.n+1, n, err)
		}
		return FrameHeader{}, fmt.Errorf("zrpc: frame %d: read header: %w", fr.n+1, err)
	}
	fr.n++
	h := ParseFrameHeader(b)
	if h.MAC {
		return h, fmt.Errorf("zrpc: frame %d: length word %#08x: %w", fr.n, binary.BigEndian.Uint32(b[:]), ErrMACFrame)
	}
	fr.remaining = int64(h.Size)
	if h.Size > fr.max {
		// The payload stays pending: a relay may still stream it
		// (Payload) or skip it (Discard) without buffering it.
		return h, fmt.Errorf("zrpc: frame %d: payload of %d bytes exceeds the maximum of %d: %w", fr.n, h.Size, fr.max, ErrFrameTooLarge)
	}
	return h, nil
}

// PeekPayload returns up to n leading bytes of the current payload without
// consuming them. The slice is valid until the next read. Fewer than n
// bytes are returned only if the payload is shorter or n exceeds the
// bufio buffer size; an error only if the stream ends early.
func (fr *FrameReader) PeekPayload(n int) ([]byte, error) {
	if int64(n) > fr.remaining {
		n = int(fr.remaining)
	}
	if n > fr.r.Size() {
		n = fr.r.Size()
	}
	b, err := fr.r.Peek(n)
	if err != nil {
		return b, fr.truncated(err)
	}
	return b, nil
}

// Payload returns a reader over the unconsumed rest of the current payload.
// It returns io.EOF at the end of the frame and io.ErrUnexpectedEOF (wrapped)
// if the stream ends first.
func (fr *FrameReader) Payload() io.Reader { return &fr.payload }

// Remaining reports the unconsumed payload bytes of the current frame.
func (fr *FrameReader) Remaining() int64 { return fr.remaining }

// Discard skips the rest of the current payload.
func (fr *FrameReader) Discard() error {
	for fr.remaining > 0 {
		k := fr.remaining
		if k > 1<<30 {
			k = 1 << 30
		}
		d, err := fr.r.Discard(int(k))
		fr.remaining -= int64(d)
		if err != nil {
			return fr.truncated(err)
		}
	}
	return nil
}

// ReadFrame reads a whole frame; the returned payload aliases an internal
// buffer that the next ReadFrame reuses (it grows to the largest frame
// read). On ErrFrameTooLarge nothing is buffered and the payload is left
// pending (see ReadHeader).
func (fr *FrameReader) ReadFrame() ([]byte, error) {
	h, err := fr.ReadHeader()
	if err != nil {
		return nil, err
	}
	if cap(fr.buf) < int(h.Size) {
		fr.buf = make([]byte, h.Size)
	}
	b := fr.buf[:h.Size]
	n, err := io.ReadFull(fr.r, b)
	fr.remaining -= int64(n)
	if err != nil {
		return nil, fr.truncated(err)
	}
	return b, nil
}

func (fr *FrameReader) truncated(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("zrpc: frame %d: truncated payload (%d bytes missing): %w", fr.n, fr.remaining, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("zrpc: frame %d: read payload: %w", fr.n, err)
}

type payloadReader struct{ fr *FrameReader }

func (p *payloadReader) Read(b []byte) (int, error) {
	fr := p.fr
	if fr.remaining <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > fr.remaining {
		b = b[:fr.remaining]
	}
	n, err := fr.r.Read(b)
	fr.remaining -= int64(n)
	if err != nil {
		if err == io.EOF && fr.remaining > 0 {
			return n, fr.truncated(err)
		}
		if err != io.EOF {
			return n, fr.truncated(err)
		}
	}
	return n, nil
}

// WriteTo lets io.Copy forward a payload straight from the bufio buffer.
func (p *payloadReader) WriteTo(w io.Writer) (int64, error) {
	fr := p.fr
	var total int64
	for fr.remaining > 0 {
		if fr.r.Buffered() == 0 {
			if _, err := fr.r.Peek(1); err != nil {
				return total, fr.truncated(err)
			}
		}
		k := fr.r.Buffered()
		if int64(k) > fr.remaining {
			k = int(fr.remaining)
		}
		b, _ := fr.r.Peek(k)
		n, err := w.Write(b)
		total += int64(n)
		fr.remaining -= int64(n)
		if _, derr := fr.r.Discard(n); derr != nil && err == nil {
			err = derr
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
