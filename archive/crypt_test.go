package archive

import (
	"bytes"
	"io"
	"testing"

	"filippo.io/age"
	"github.com/stretchr/testify/require"
)

// The encrypted length is known before encrypting (S3 uploads need it).
func TestEncryptedSize(t *testing.T) {
	id1, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	id2, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	for _, rs := range [][]age.Recipient{{id1.Recipient()}, {id1.Recipient(), id2.Recipient()}} {
		e, err := newEncrypter(rs)
		require.NoError(t, err)
		for _, n := range []int64{0, 1, ageChunk - 1, ageChunk, ageChunk + 1, 2 * ageChunk, 3*ageChunk + 7} {
			plain := bytes.Repeat([]byte{7}, int(n))
			r, size, err := e.wrap(bytes.NewReader(plain), n)
			require.NoError(t, err)
			enc, err := io.ReadAll(r)
			require.NoError(t, err)
			require.Equal(t, int64(len(enc)), size, "%d bytes, %d recipients", n, len(rs))
			got, encrypted, err := plaintext(bytes.NewReader(enc), []age.Identity{id2, id1}, "k")
			require.NoError(t, err)
			require.True(t, encrypted)
			back, err := io.ReadAll(got)
			require.NoError(t, err)
			require.Equal(t, plain, back)
		}
	}
	_, _, err = plaintext(bytes.NewReader([]byte(ageMagic+"x")), nil, "k")
	require.ErrorContains(t, err, "--identity")
}
