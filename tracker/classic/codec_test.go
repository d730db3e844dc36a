package classic

import (
	"bufio"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidstorage/tidstorage/internal/txn"
)

func decoderFor(s string) *decoder {
	return newDecoder(bufio.NewReader(strings.NewReader(s)), 0, 0)
}

// The exact bytes of every command, and their decoding back: encode and
// decode are each other's inverse.
func TestCommandEncoding(t *testing.T) {
	cases := []struct {
		name string
		cmd  command
		wire string
	}{
		{"begin", command{kind: kindBegin, id: "t1", storages: []string{"((('localhost', 8100),), '1')", "b"}},
			"BEGIN\nt1\n2\n((('localhost', 8100),), '1')\nb\n"},
		{"begin no storage", command{kind: kindBegin, id: "t1", storages: []string{}}, "BEGIN\nt1\n0\n"},
		{"empty id", command{kind: kindBegin, id: "", storages: []string{"a"}}, "BEGIN\n\n1\na\n"},
		{"abort", command{kind: kindAbort, id: "127.0.0.1:8080_7f3a"}, "ABORT\n127.0.0.1:8080_7f3a\n"},
		{"commit", command{kind: kindCommit, id: "t1", tids: map[string]txn.TID{"b": 2, "a": 272351243011436356}},
			"COMMIT\nt1\n2\na\nb\n272351243011436356\n2\n"},
		{"commit empty dict", command{kind: kindCommit, id: "t1", tids: map[string]txn.TID{}}, "COMMIT\nt1\n0\n"},
		{"commit None", command{kind: kindCommit, id: "t1", tids: map[string]txn.TID{"a": 5}, none: []string{"b"}},
			"COMMIT\nt1\n2\na\nb\n5\nNone\n"},
		{"commit max TID", command{kind: kindCommit, id: "t", tids: map[string]txn.TID{"a": 1<<64 - 1}},
			"COMMIT\nt\n1\na\n18446744073709551615\n"},
		{"dump", command{kind: kindDump}, "DUMP\n"},
		{"bootstraped", command{kind: kindBootstraped}, "BOOTSTRAPED\n"},
		{"quit", command{kind: kindQuit}, "QUIT\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.cmd.appendTo(nil)
			require.NoError(t, err)
			require.Equal(t, tc.wire, string(b))

			d := decoderFor(tc.wire)
			got, err := d.readCommand()
			require.NoError(t, err)
			require.Equal(t, tc.cmd, got)
			_, err = d.readCommand()
			require.Equal(t, io.EOF, err)
		})
	}
}

func TestDictEncoding(t *testing.T) {
	b, err := appendDict(nil, map[string]txn.TID{})
	require.NoError(t, err)
	require.Equal(t, "0\n", string(b), "an empty dict is the single field 0")

	b, err = appendDict(nil, map[string]txn.TID{"k2": 2, "k1": 1})
	require.NoError(t, err)
	require.Equal(t, "2\nk1\nk2\n1\n2\n", string(b), "keys, then values, no second count")

	m, err := decoderFor("0\n").readDict()
	require.NoError(t, err)
	require.Empty(t, m)

	m, err = decoderFor("2\nk1\nk2\n1\n2L\n").readDict()
	require.NoError(t, err)
	require.Equal(t, map[string]txn.TID{"k1": 1, "k2": 2}, m)

	_, err = appendDict(nil, map[string]txn.TID{"a\nb": 1})
	require.ErrorIs(t, err, ErrForbiddenByte)
}

// What the original accepted on input: any case, "\r" anywhere, a trailing
// L on ints, blanks around ints (Python's int()).
func TestDecodeTolerance(t *testing.T) {
	cases := []struct {
		name, wire string
		want       command
	}{
		{"crlf", "begin\r\nt1\r\n2\r\na\r\nb\r\n", command{kind: kindBegin, id: "t1", storages: []string{"a", "b"}}},
		{"mixed case", "BeGiN\nt1\n1\na\n", command{kind: kindBegin, id: "t1", storages: []string{"a"}}},
		{"lower dump", "dump\n", command{kind: kindDump}},
		{"mixed bootstraped", "BootStraped\r\n", command{kind: kindBootstraped}},
		{"cr inside a field", "ABORT\nt\r1\r\r\n", command{kind: kindAbort, id: "t1"}},
		{"L suffix", "Commit\nt1\n2L\na\nb\n5L\n272351243011436356L\n",
			command{kind: kindCommit, id: "t1", tids: map[string]txn.TID{"a": 5, "b": 272351243011436356}}},
		{"blanks around ints", "COMMIT\nt1\n 1 \na\n\t7\n", command{kind: kindCommit, id: "t1", tids: map[string]txn.TID{"a": 7}}},
		{"key twice keeps the last", "COMMIT\nt1\n3\na\nb\na\n1\nNone\n3\n",
			command{kind: kindCommit, id: "t1", tids: map[string]txn.TID{"a": 3}, none: []string{"b"}}},
		{"None then number", "COMMIT\nt1\n2\na\na\nNone\n4\n", command{kind: kindCommit, id: "t1", tids: map[string]txn.TID{"a": 4}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decoderFor(tc.wire).readCommand()
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, wire string
		is         error
		msg        string
	}{
		{"unknown command", "FROB\n", ErrUnknownCommand, `command name: protocol violation: unknown command: "FROB"`},
		{"empty command", "\n", ErrUnknownCommand, `unknown command: ""`},
		{"count not a number", "BEGIN\nt\nabc\n", ErrBadCount, `BEGIN field 2 (storage count): protocol violation: bad count: "abc"`},
		{"negative count", "BEGIN\nt\n-1\n", ErrBadCount, `bad count: "-1"`},
		{"absurd count", "BEGIN\nt\n100001\n", ErrBadCount, "100001 is more than the limit of 100000"},
		{"absurd dict count", "COMMIT\nt\n99999999999999999999999\n", ErrBadCount, "COMMIT field 2"},
		{"TID not a number", "COMMIT\nt\n2\na\nb\n1\nxyz\n", ErrBadNumber, `COMMIT field 6 (TID of storage "b"): protocol violation: not a number: "xyz"`},
		{"negative TID", "COMMIT\nt\n1\na\n-5\n", ErrBadNumber, `"-5"`},
		{"TID overflow", "COMMIT\nt\n1\na\n18446744073709551616\n", ErrBadNumber, "18446744073709551616"},
		{"none lowercase", "COMMIT\nt\n1\na\nnone\n", ErrBadNumber, `"none"`},
		{"torn command", "BEGIN\nt1\n2\na\n", io.ErrUnexpectedEOF, "BEGIN field 4 (storage id 2 of 2)"},
		{"torn commit", "COMMIT\nt1\n2\na\nb\n5\n", io.ErrUnexpectedEOF, `COMMIT field 6 (TID of storage "b")`},
		{"torn field", "DUMP", io.ErrUnexpectedEOF, "command name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decoderFor(tc.wire).readCommand()
			require.ErrorIs(t, err, tc.is)
			require.Contains(t, err.Error(), tc.msg)
		})
	}
	_, err := decoderFor("").readCommand()
	require.Equal(t, io.EOF, err, "a stream ending between commands ends cleanly")
}

// Fields longer than the bufio buffer are assembled up to the limit, and not
// a byte further even if no "\n" ever comes.
func TestFieldLimit(t *testing.T) {
	const limit = 100
	long := strings.Repeat("x", limit)
	d := newDecoder(bufio.NewReaderSize(strings.NewReader("ABORT\n"+long+"\r\n"), 16), limit, 0)
	c, err := d.readCommand()
	require.NoError(t, err)
	require.Equal(t, long, c.id, "a field of exactly the limit is accepted")

	for _, wire := range []string{"ABORT\n" + long + "y\n", "ABORT\n" + long + "y"} {
		d = newDecoder(bufio.NewReaderSize(strings.NewReader(wire), 16), limit, 0)
		_, err = d.readCommand()
		require.ErrorIs(t, err, ErrFieldTooLong)
		require.Contains(t, err.Error(), "ABORT field 1 (transaction id)")
	}

	// A stream that never sends "\n": the decoder stops after the limit.
	r := &countingReader{}
	d = newDecoder(bufio.NewReaderSize(r, 16), limit, 0)
	_, err = d.readCommand()
	require.ErrorIs(t, err, ErrFieldTooLong)
	require.Less(t, r.n, 2*limit)
}

// countingReader is an endless stream of "x" without newline.
type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	r.n += len(p)
	return len(p), nil
}

// A command is bounded as a whole, not only field by field.
func TestCommandLimit(t *testing.T) {
	d := decoderFor("BEGIN\nt\n3\naaaa\nbbbb\ncccc\n")
	d.maxTotal = 24
	_, err := d.readCommand()
	require.ErrorIs(t, err, ErrCommandTooLong)
	require.EqualError(t, err, "BEGIN field 5 (storage id 3 of 3): protocol violation: command too long: more than 24 bytes")

	d = decoderFor("BEGIN\nt\n3\naaaa\nbbbb\ncccc\nBEGIN\nt\n3\naaaa\nbbbb\ncccc\n")
	d.maxTotal = 25 // exactly one command
	for range 2 {
		_, err = d.readCommand()
		require.NoError(t, err, "the bound is per command")
	}
}

func TestEncodeRefusesNewlines(t *testing.T) {
	for _, cmd := range []command{
		{kind: kindBegin, id: "t\n1", storages: []string{"a"}},
		{kind: kindBegin, id: "t1", storages: []string{"a\rb"}},
		{kind: kindAbort, id: "t\r"},
		{kind: kindCommit, id: "t1", tids: map[string]txn.TID{"a\n": 1}},
		{kind: kindCommit, id: "t1", none: []string{"\n"}},
	} {
		_, err := cmd.appendTo(nil)
		require.ErrorIs(t, err, ErrForbiddenByte, "%+v", cmd)
	}
	_, err := (&command{kind: kindCommit, id: "t", tids: map[string]txn.TID{"a": 1}, none: []string{"a"}}).appendTo(nil)
	require.ErrorContains(t, err, "both a TID and None")
}

func TestParseUint(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "7": 7, "12L": 12, " 3 ": 3, "18446744073709551615": 1<<64 - 1} {
		v, ok := parseUint([]byte(in))
		require.True(t, ok, in)
		require.Equal(t, want, v, in)
	}
	for _, in := range []string{"", "L", "-1", "+1", "1.0", "0x10", "1 2", "18446744073709551616", "99999999999999999999", "None"} {
		_, ok := parseUint([]byte(in))
		require.False(t, ok, in)
	}
}

// Whatever the bytes, decoding neither panics nor returns a command that
// does not encode back to the same command.
func FuzzDecodeCommand(f *testing.F) {
	for _, seed := range []string{
		"BEGIN\nt1\n2\na\nb\n", "commit\r\nt\r\n2\r\na\r\nb\r\n1L\r\nNone\r\n", "ABORT\nx\n", "DUMP\nQUIT\n",
		"COMMIT\nt\n3\na\nb\na\n1\nNone\n3\n", "BEGIN\nt\n99999999\n", "FROB\n", "\r\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := newDecoder(bufio.NewReaderSize(strings.NewReader(string(data)), 16), 256, 64)
		for range 100 {
			c, err := d.readCommand()
			if err != nil {
				return
			}
			b, err := c.appendTo(nil)
			require.NoError(t, err, "%+v", c)
			back, err := decoderFor(string(b)).readCommand()
			require.NoError(t, err)
			slices.Sort(c.none)
			require.Equal(t, c, back)
		}
	})
}
