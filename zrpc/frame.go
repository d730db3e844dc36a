package zrpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrameSize bounds a frame's payload unless SetMaxFrameSize says
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

// FrameReader reads whole frames from a stream; ReadFrame returns each
// payload in a buffer that the next call reuses (copy what you keep). It is
// not safe for concurrent use. (The relay does its own framing over bufio:
// zeoproxy/relay.go.)
//
// Errors name the frame number (1-based, counting the handshake frame).
type FrameReader struct {
	r   *bufio.Reader
	max uint32
	buf []byte
	n   int64 // frames started
	err error // a frame that cannot be skipped: the stream cannot be followed further
}

// DefaultBufferSize is the bufio buffer FrameReader allocates when given a
// plain io.Reader.
const DefaultBufferSize = 64 << 10

// NewFrameReader returns a reader with DefaultMaxFrameSize. If r is already
// a *bufio.Reader it is used as is.
func NewFrameReader(r io.Reader) *FrameReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, DefaultBufferSize)
	}
	return &FrameReader{r: br, max: DefaultMaxFrameSize}
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

// ReadFrame reads a whole frame; the returned payload aliases an internal
// buffer that the next ReadFrame reuses (it grows to the largest frame
// read). io.EOF is returned only at a clean boundary.
//
// A frame over the size limit gives ErrFrameTooLarge before anything is
// buffered, and a frame with the ZEO 4 MAC bit gives ErrMACFrame (an HMAC of
// unknown framing follows); either way the stream cannot be followed further
// and every later call returns the same error.
func (fr *FrameReader) ReadFrame() ([]byte, error) {
	if fr.err != nil {
		return nil, fr.err
	}
	var b [HeaderSize]byte
	n, err := io.ReadFull(fr.r, b[:])
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		if err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("zrpc: frame %d: truncated header (%d of 4 bytes): %w", fr.n+1, n, err)
		}
		return nil, fmt.Errorf("zrpc: frame %d: read header: %w", fr.n+1, err)
	}
	fr.n++
	h := ParseFrameHeader(b)
	switch {
	case h.MAC:
		fr.err = fmt.Errorf("zrpc: frame %d: length word %#08x: %w", fr.n, binary.BigEndian.Uint32(b[:]), ErrMACFrame)
		return nil, fr.err
	case h.Size > fr.max:
		fr.err = fmt.Errorf("zrpc: frame %d: payload of %d bytes exceeds the maximum of %d: %w", fr.n, h.Size, fr.max, ErrFrameTooLarge)
		return nil, fr.err
	}
	if cap(fr.buf) < int(h.Size) {
		fr.buf = make([]byte, h.Size)
	}
	p := fr.buf[:h.Size]
	if n, err := io.ReadFull(fr.r, p); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("zrpc: frame %d: truncated payload (%d bytes missing): %w", fr.n, len(p)-n, io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("zrpc: frame %d: read payload: %w", fr.n, err)
	}
	return p, nil
}
