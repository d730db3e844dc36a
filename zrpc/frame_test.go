package zrpc_test

import (
	"bufio"
	"bytes"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/zrpc"
)

func frames(payloads ...[]byte) []byte {
	var b []byte
	for _, p := range payloads {
		b = zrpc.AppendFrame(b, p)
	}
	return b
}

func TestFrameReaderReadFrame(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 200000)
	stream := frames([]byte("Z5"), []byte("Z5"), nil, golden(t, "z5_vote"), big)
	// one byte at a time: frames spanning reads, several frames per read
	fr := zrpc.NewFrameReader(iotest.OneByteReader(bytes.NewReader(stream)))
	for _, want := range [][]byte{[]byte("Z5"), []byte("Z5"), {}, golden(t, "z5_vote"), big} {
		got, err := fr.ReadFrame()
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := fr.ReadFrame()
	require.Equal(t, io.EOF, err)
	require.Equal(t, int64(5), fr.Frames())
}

func TestFrameReaderReusesBuffer(t *testing.T) {
	fr := zrpc.NewFrameReader(bytes.NewReader(frames([]byte("aaaa"), []byte("bb"))))
	a, err := fr.ReadFrame()
	require.NoError(t, err)
	b, err := fr.ReadFrame()
	require.NoError(t, err)
	require.Equal(t, &a[0], &b[0], "ReadFrame should reuse its buffer")
	require.Equal(t, "bb", string(b))
}

func TestFrameTooLarge(t *testing.T) {
	fr := zrpc.NewFrameReader(bytes.NewReader(frames(make([]byte, 100))))
	fr.SetMaxFrameSize(99)
	_, err := fr.ReadFrame()
	require.ErrorIs(t, err, zrpc.ErrFrameTooLarge)
	require.ErrorContains(t, err, "frame 1: payload of 100 bytes exceeds the maximum of 99")
	// the payload is still there to stream or skip
	require.Equal(t, int64(100), fr.Remaining())
	n, err := io.Copy(io.Discard, fr.Payload())
	require.NoError(t, err)
	require.Equal(t, int64(100), n)
	_, err = fr.ReadFrame()
	require.Equal(t, io.EOF, err)

	// default limit, declared 2 GiB-1 with no data: error before any allocation
	hdr := []byte{0x7f, 0xff, 0xff, 0xff}
	fr = zrpc.NewFrameReader(bytes.NewReader(hdr))
	_, err = fr.ReadFrame()
	require.ErrorIs(t, err, zrpc.ErrFrameTooLarge)
	require.Equal(t, uint32(zrpc.DefaultMaxFrameSize), fr.MaxFrameSize())
}

func TestFrameMACBit(t *testing.T) {
	fr := zrpc.NewFrameReader(bytes.NewReader([]byte{0x80, 0, 0, 2, 'Z', '4'}))
	h, err := fr.ReadHeader()
	require.ErrorIs(t, err, zrpc.ErrMACFrame)
	require.True(t, h.MAC)
	require.Equal(t, uint32(2), h.Size)
	require.Equal(t, zrpc.FrameHeader{Size: 2, MAC: true}, zrpc.ParseFrameHeader([4]byte{0x80, 0, 0, 2}))
}

func TestFrameTruncated(t *testing.T) {
	full := frames([]byte("hello"))
	for n := 1; n < len(full); n++ {
		fr := zrpc.NewFrameReader(bytes.NewReader(full[:n]))
		_, err := fr.ReadFrame()
		require.ErrorIs(t, err, io.ErrUnexpectedEOF, "cut at %d", n)
		require.ErrorContains(t, err, "truncated")
	}
	fr := zrpc.NewFrameReader(bytes.NewReader(nil))
	_, err := fr.ReadFrame()
	require.Equal(t, io.EOF, err)
}

// The streaming path: header, a peek at the envelope, then the payload
// copied through without a frame-sized buffer.
func TestFrameStreaming(t *testing.T) {
	storea := bigStorea(t, zrpc.Pickle, 1<<20)
	stream := frames(storea, golden(t, "z5_vote"))
	fr := zrpc.NewFrameReader(iotest.HalfReader(bytes.NewReader(stream)))

	h, err := fr.ReadHeader()
	require.NoError(t, err)
	require.Equal(t, uint32(len(storea)), h.Size)
	head, err := fr.PeekPayload(256)
	require.NoError(t, err)
	require.Len(t, head, 256)
	pk, err := zrpc.PeekPickle(head)
	require.NoError(t, err)
	require.Equal(t, zrpc.MethodStorea, pk.Method)

	// a second ReadHeader before the payload is consumed is refused
	_, err = fr.ReadHeader()
	require.ErrorIs(t, err, zrpc.ErrPayloadPending)

	var out bytes.Buffer
	n, err := io.Copy(&out, fr.Payload())
	require.NoError(t, err)
	require.Equal(t, int64(len(storea)), n)
	require.Equal(t, storea, out.Bytes())
	require.Zero(t, fr.Remaining())

	// next frame via Read (not WriteTo), in small pieces
	h, err = fr.ReadHeader()
	require.NoError(t, err)
	got, err := io.ReadAll(io.LimitReader(fr.Payload(), 1<<30))
	require.NoError(t, err)
	require.Equal(t, golden(t, "z5_vote"), got)
	require.Equal(t, uint32(len(got)), h.Size)
	_, err = fr.ReadHeader()
	require.Equal(t, io.EOF, err)
}

func TestFrameDiscardAndTruncatedStream(t *testing.T) {
	stream := frames(make([]byte, 100000), []byte("next"))
	fr := zrpc.NewFrameReader(bytes.NewReader(stream))
	_, err := fr.ReadHeader()
	require.NoError(t, err)
	require.NoError(t, fr.Discard())
	b, err := fr.ReadFrame()
	require.NoError(t, err)
	require.Equal(t, "next", string(b))

	// stream ends inside a streamed payload
	fr = zrpc.NewFrameReader(bytes.NewReader(stream[:5000]))
	_, err = fr.ReadHeader()
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, fr.Payload())
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	fr = zrpc.NewFrameReader(bufio.NewReaderSize(bytes.NewReader(stream[:5000]), 16))
	_, err = fr.ReadHeader()
	require.NoError(t, err)
	_, err = io.ReadAll(fr.Payload())
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	// PeekPayload beyond what the stream has
	fr = zrpc.NewFrameReader(bytes.NewReader(stream[:10]))
	_, err = fr.ReadHeader()
	require.NoError(t, err)
	_, err = fr.PeekPayload(256)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestWriteFrame(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, zrpc.WriteFrame(&b, []byte("Z5")))
	big := make([]byte, 10000)
	require.NoError(t, zrpc.WriteFrame(&b, big))
	require.Equal(t, frames([]byte("Z5"), big), b.Bytes())
}

// bigStorea builds a storea frame with n bytes of object data.
func bigStorea(t testing.TB, enc zrpc.Encoding, n int) []byte {
	t.Helper()
	data := bytes.Repeat([]byte{0x55}, n)
	m := zrpc.AsyncMessage(&zrpc.Storea{OID: oid1, Serial: tidBytes(goldTID), Data: data, TxnID: txnID})
	b, err := zrpc.EncodeMessage(enc, m)
	require.NoError(t, err)
	return b
}
