package txn

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Expected values from Python 3: repr(s).
func TestPyRepr(t *testing.T) {
	for in, want := range map[string]string{
		"1":      `'1'`,
		"it's":   `"it's"`,
		`a'b"c`:  `'a\'b"c'`,
		`back\`:  `'back\\'`,
		"t\tn\n": `'t\tn\n'`,
		"\x01":   `'\x01'`,
		"é":      `'é'`,
	} {
		require.Equal(t, want, PyRepr(in), "repr(%q)", in)
	}
}

func TestClassicStorageID(t *testing.T) {
	require.Equal(t, "((('localhost', 8200),), '2')", ClassicStorageID("localhost", 8200, "2"))
	require.Equal(t, "((('::1', 8100),), '1')", ClassicStorageID("::1", 8100, "1"))
	require.Equal(t, "(('/run/zeo.sock',), 'main')", ClassicUnixStorageID("/run/zeo.sock", "main"))
}

// The id of an address written as one string is the id of its parts.
func TestClassicStorageIDOf(t *testing.T) {
	require.Equal(t, ClassicStorageID("localhost", 8200, "2"), ClassicStorageIDOf("localhost:8200", "2"))
	require.Equal(t, ClassicStorageID("::1", 8100, "1"), ClassicStorageIDOf("[::1]:8100", "1"))
	require.Equal(t, ClassicUnixStorageID("/run/zeo.sock", "main"), ClassicStorageIDOf("unix:/run/zeo.sock", "main"))
	require.Equal(t, ClassicUnixStorageID("zeo:port", "1"), ClassicStorageIDOf("zeo:port", "1"), "not host:port: kept whole")
}
