package archive

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
)

// Optional client-side encryption with age (docs/backup.md, "Encryption"):
// the Data.fs segments and blob files are encrypted to the configured
// recipients before they leave the host; the timeline records, the blob
// lists (oids and TIDs), the lock and the format marker stay readable, and
// so do object names (byte ranges, blob paths, the sha256 of the content). A reader recognizes an encrypted object by age's header,
// so an archive may hold both kinds (recipients added later).

const ageMagic = "age-encryption.org/v1\n"

// ParseRecipients parses age public keys ("age1...").
func ParseRecipients(keys []string) ([]age.Recipient, error) {
	r, err := age.ParseRecipients(strings.NewReader(strings.Join(keys, "\n")))
	if err != nil {
		return nil, fmt.Errorf("archive recipients: %w", err)
	}
	return r, nil
}

// ReadIdentities reads an age identity file (AGE-SECRET-KEY-1... lines).
func ReadIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity file: %w", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	return ids, nil
}

// encrypter encrypts objects to fixed recipients and knows the size of the
// result (age's format is deterministic in length: a header that depends
// on the recipients only, a 16-byte nonce, then 64 KiB chunks each with a
// 16-byte tag, at least one chunk).
type encrypter struct {
	recipients []age.Recipient
	header     int64 // header length for these recipients
}

const ageChunk = 64 << 10

func newEncrypter(recipients []age.Recipient) (*encrypter, error) {
	if len(recipients) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	w, err := age.Encrypt(&b, recipients...)
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("archive: encrypt: %w", err)
	}
	return &encrypter{recipients: recipients, header: int64(b.Len()) - 16 - 16}, nil
}

// size is the encrypted length of n plaintext bytes.
func (e *encrypter) size(n int64) int64 {
	chunks := max(1, (n+ageChunk-1)/ageChunk)
	return e.header + 16 + n + 16*chunks
}

// wrap returns the encrypted stream of r (n bytes) and its length.
func (e *encrypter) wrap(r io.Reader, n int64) (io.Reader, int64, error) {
	if e == nil {
		return r, n, nil
	}
	er, err := age.EncryptReader(r, e.recipients...)
	if err != nil {
		return nil, 0, fmt.Errorf("archive: encrypt: %w", err)
	}
	return er, e.size(n), nil
}

// plaintext returns the content of an object's stream, decrypted when it
// is an age file.
func plaintext(r io.Reader, ids []age.Identity, key string) (io.Reader, bool, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(len(ageMagic))
	if string(head) != ageMagic {
		return br, false, nil
	}
	if len(ids) == 0 {
		return nil, true, fmt.Errorf("%s is encrypted (age): give the identity file (--identity FILE)", key)
	}
	pr, err := age.Decrypt(br, ids...)
	if err != nil {
		return nil, true, fmt.Errorf("%s: decrypt: %w", key, err)
	}
	return pr, true, nil
}
