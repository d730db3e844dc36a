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
	// the stream cannot be followed past it
	_, again := fr.ReadFrame()
	require.Equal(t, err, again)

	// default limit, declared 2 GiB-1 with no data: error before any allocation
	hdr := []byte{0x7f, 0xff, 0xff, 0xff}
	fr = zrpc.NewFrameReader(bytes.NewReader(hdr))
	_, err = fr.ReadFrame()
	require.ErrorIs(t, err, zrpc.ErrFrameTooLarge)
	require.Equal(t, uint32(zrpc.DefaultMaxFrameSize), fr.MaxFrameSize())
}

func TestFrameMACBit(t *testing.T) {
	fr := zrpc.NewFrameReader(bytes.NewReader([]byte{0x80, 0, 0, 2, 'Z', '4'}))
	_, err := fr.ReadFrame()
	require.ErrorIs(t, err, zrpc.ErrMACFrame)
	_, err = fr.ReadFrame()
	require.ErrorIs(t, err, zrpc.ErrMACFrame)
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

// A payload cut short names how much is missing.
func TestFrameTruncatedPayload(t *testing.T) {
	stream := frames(make([]byte, 100000))
	fr := zrpc.NewFrameReader(bufio.NewReaderSize(bytes.NewReader(stream[:5000]), 16))
	_, err := fr.ReadFrame()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.ErrorContains(t, err, "frame 1: truncated payload (95004 bytes missing)")
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
