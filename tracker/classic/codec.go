package classic

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// Limits applied when the Options leave them at zero.
const (
	// DefaultMaxFieldSize bounds one field (storage ids are a Python repr of
	// a few addresses and a name: a few hundred bytes at most).
	DefaultMaxFieldSize = 64 << 10
	// DefaultMaxCount bounds the count of a list or dict.
	DefaultMaxCount = 100_000
	// DefaultMaxCommandSize bounds a whole command: without it, a count of
	// 100,000 fields of 64 KiB each would be accepted field by field. Real
	// commands name a few storages and take well under 10 KiB.
	DefaultMaxCommandSize = 1 << 20
)

// ErrProtocol is wrapped by every error caused by bytes that break the
// protocol (as opposed to I/O errors).
var ErrProtocol = errors.New("protocol violation")

// The protocol violations, each wrapping ErrProtocol.
var (
	ErrFieldTooLong   = fmt.Errorf("%w: field too long", ErrProtocol)
	ErrBadCount       = fmt.Errorf("%w: bad count", ErrProtocol)
	ErrBadNumber      = fmt.Errorf("%w: not a number", ErrProtocol)
	ErrUnknownCommand = fmt.Errorf("%w: unknown command", ErrProtocol)
	ErrCommandTooLong = fmt.Errorf("%w: command too long", ErrProtocol)
)

// ErrForbiddenByte is returned when asked to send a value holding "\n" or
// "\r": the protocol has no escaping, so such a value cannot be sent.
var ErrForbiddenByte = errors.New(`value contains \n or \r`)

// kind is a command of the protocol.
type kind uint8

const (
	kindBegin kind = iota + 1
	kindAbort
	kindCommit
	kindDump
	kindBootstraped
	kindQuit
)

// kindNames holds the canonical (upper case) spelling, indexed by kind.
var kindNames = [...]string{"", "BEGIN", "ABORT", "COMMIT", "DUMP", "BOOTSTRAPED", "QUIT"}

func (k kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// parseKind matches a command name case-insensitively; 0 means unknown.
func parseKind(b []byte) kind {
	for k := kindBegin; k <= kindQuit; k++ {
		if foldEqual(b, kindNames[k]) {
			return k
		}
	}
	return 0
}

// foldEqual compares b with an upper-case ASCII name without allocating.
func foldEqual(b []byte, upper string) bool {
	if len(b) != len(upper) {
		return false
	}
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// command is one decoded client command. Which fields are set depends on
// kind: id for BEGIN, ABORT and COMMIT; storages for BEGIN; tids and none for
// COMMIT.
type command struct {
	kind     kind
	id       string
	storages []string
	tids     map[string]txn.TID
	none     []string
}

// appendTo encodes c, the inverse of decoder.readCommand. Dict keys are
// written in sorted order so that the encoding is deterministic.
func (c *command) appendTo(dst []byte) ([]byte, error) {
	if c.kind < kindBegin || c.kind > kindQuit {
		return dst, fmt.Errorf("classic: cannot encode %v", c.kind)
	}
	dst = append(dst, kindNames[c.kind]...)
	dst = append(dst, '\n')
	var err error
	switch c.kind {
	case kindBegin:
		if dst, err = appendField(dst, c.id); err != nil {
			return dst, fmt.Errorf("classic: BEGIN transaction id: %w", err)
		}
		if dst, err = appendList(dst, c.storages); err != nil {
			return dst, fmt.Errorf("classic: BEGIN storages: %w", err)
		}
	case kindAbort:
		if dst, err = appendField(dst, c.id); err != nil {
			return dst, fmt.Errorf("classic: ABORT transaction id: %w", err)
		}
	case kindCommit:
		if dst, err = appendField(dst, c.id); err != nil {
			return dst, fmt.Errorf("classic: COMMIT transaction id: %w", err)
		}
		if dst, err = appendTIDDict(dst, c.tids, c.none); err != nil {
			return dst, fmt.Errorf("classic: COMMIT TIDs: %w", err)
		}
	}
	return dst, nil
}

// appendField writes one field.
func appendField(dst []byte, s string) ([]byte, error) {
	if strings.ContainsAny(s, "\n\r") {
		return dst, fmt.Errorf("%w: %q", ErrForbiddenByte, clip([]byte(s)))
	}
	dst = append(dst, s...)
	return append(dst, '\n'), nil
}

// appendUint writes an int field (no "L" suffix, like Python's str()).
func appendUint(dst []byte, v uint64) []byte {
	return append(strconv.AppendUint(dst, v, 10), '\n')
}

// appendList writes a count, then the items.
func appendList(dst []byte, items []string) ([]byte, error) {
	dst = appendUint(dst, uint64(len(items)))
	var err error
	for _, s := range items {
		if dst, err = appendField(dst, s); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// appendDict writes a dict: the count, the keys, then the values (no second
// count). An empty dict is the single field "0".
func appendDict(dst []byte, m map[string]txn.TID) ([]byte, error) {
	return appendTIDDict(dst, m, nil)
}

// appendTIDDict writes a dict whose values are the TIDs in tids and the text
// None for the keys in none.
func appendTIDDict(dst []byte, tids map[string]txn.TID, none []string) ([]byte, error) {
	keys := make([]string, 0, len(tids)+len(none))
	for k := range tids {
		keys = append(keys, k)
	}
	for _, k := range none {
		if _, dup := tids[k]; dup {
			return dst, fmt.Errorf("classic: storage %q has both a TID and None", k)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if i := duplicate(keys); i >= 0 {
		return dst, fmt.Errorf("classic: storage %q given twice", keys[i])
	}
	var err error
	if dst, err = appendList(dst, keys); err != nil {
		return dst, err
	}
	for _, k := range keys {
		if v, ok := tids[k]; ok {
			dst = appendUint(dst, uint64(v))
		} else {
			dst = append(dst, "None\n"...)
		}
	}
	return dst, nil
}

// duplicate returns the index of a repeated element of the sorted keys, or -1.
func duplicate(sorted []string) int {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return i
		}
	}
	return -1
}

// fieldError says which field of which command could not be decoded.
type fieldError struct {
	cmd   string // command name; empty while reading the name itself
	index int    // position in the command, the name being field 0
	what  string // what the field was expected to hold
	err   error
}

func (e *fieldError) Error() string {
	if e.cmd == "" {
		return fmt.Sprintf("command name: %v", e.err)
	}
	return fmt.Sprintf("%s field %d (%s): %v", e.cmd, e.index, e.what, e.err)
}

func (e *fieldError) Unwrap() error { return e.err }

// Interning bounds: patched Zopes reuse a small set of transaction ids (one
// per thread) and storage ids, so a small per-connection table removes most
// string allocations; the bounds keep a hostile peer to 64 KiB of table per
// connection.
const (
	internMaxEntries = 256
	internMaxLen     = 256
)

// decoder reads fields and commands from a buffered stream. It applies the
// size limits but decides nothing about connections: errors go back to the
// caller.
type decoder struct {
	r        *bufio.Reader
	maxField int
	maxCount int
	maxTotal int    // bound on the bytes of one command or reply
	total    int    // bytes of the current command or reply so far
	long     []byte // assembles fields longer than the bufio buffer
	intern   map[string]string

	cmd   string // command being decoded, for errors
	index int    // index of the last field read in the command
}

func newDecoder(r *bufio.Reader, maxField, maxCount int) *decoder {
	if maxField <= 0 {
		maxField = DefaultMaxFieldSize
	}
	if maxCount <= 0 {
		maxCount = DefaultMaxCount
	}
	return &decoder{r: r, maxField: maxField, maxCount: maxCount, maxTotal: DefaultMaxCommandSize,
		intern: make(map[string]string)}
}

// field returns the next field without its "\n" and with every "\r" removed.
// The slice is only valid until the next call. A stream that ends before a
// field starts gives io.EOF; one that ends inside a field gives
// io.ErrUnexpectedEOF.
func (d *decoder) field() ([]byte, error) {
	line, err := d.r.ReadSlice('\n')
	switch err {
	case nil:
		line = stripCR(line[:len(line)-1])
		if len(line) > d.maxField {
			return nil, d.tooLong()
		}
		return line, nil
	case bufio.ErrBufferFull:
		// Longer than the buffer: assemble it, but never beyond the limit,
		// so a peer sending an endless line costs at most maxField bytes.
		// The limit is on the value, "\r" excluded; raw counts every byte so
		// that an endless run of "\r" is refused too.
		d.long = append(d.long[:0], stripCR(line)...)
		raw := len(line)
		if len(d.long) > d.maxField {
			return nil, d.tooLong()
		}
		for {
			line, err = d.r.ReadSlice('\n')
			raw += len(line)
			d.long = append(d.long, stripCR(line)...)
			value := len(d.long)
			if err == nil {
				value-- // the "\n"
			}
			if value > d.maxField || raw > 2*d.maxField {
				return nil, d.tooLong()
			}
			if err == nil {
				return d.long[:value], nil
			}
			if err != bufio.ErrBufferFull {
				return nil, eofInside(err)
			}
		}
	default:
		if err == io.EOF && len(line) == 0 {
			return nil, io.EOF
		}
		if len(stripCR(line)) > d.maxField {
			return nil, d.tooLong()
		}
		return nil, eofInside(err)
	}
}

func (d *decoder) tooLong() error {
	return fmt.Errorf("%w: more than %d bytes", ErrFieldTooLong, d.maxField)
}

// eofInside turns io.EOF into io.ErrUnexpectedEOF: the stream ended in the
// middle of something.
func eofInside(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// stripCR removes every "\r" in place (the original dropped them wherever
// they were).
func stripCR(b []byte) []byte {
	i := bytes.IndexByte(b, '\r')
	if i < 0 {
		return b
	}
	j := i
	for ; i < len(b); i++ {
		if b[i] != '\r' {
			b[j] = b[i]
			j++
		}
	}
	return b[:j]
}

// next reads the next field of the current command: running out of input
// here always means the command was torn.
func (d *decoder) next() ([]byte, error) {
	d.index++
	b, err := d.field()
	if err != nil {
		return nil, eofInside(err)
	}
	d.total += len(b) + 1
	if d.total > d.maxTotal {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrCommandTooLong, d.maxTotal)
	}
	return b, nil
}

func (d *decoder) fail(what string, err error) error {
	return &fieldError{cmd: d.cmd, index: d.index, what: what, err: err}
}

// str copies b into a string, sharing the copy for values seen before.
func (d *decoder) str(b []byte) string {
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(s) <= internMaxLen && len(d.intern) < internMaxEntries {
		d.intern[s] = s
	}
	return s
}

// readCommand decodes one whole command. It returns io.EOF when the stream
// ends cleanly between commands; nothing of a command is returned unless all
// of it was read.
func (d *decoder) readCommand() (command, error) {
	d.cmd, d.index = "", 0
	b, err := d.field()
	d.total = len(b) + 1
	if err != nil {
		if err == io.EOF {
			return command{}, io.EOF
		}
		return command{}, d.fail("command", err)
	}
	c := command{kind: parseKind(b)}
	if c.kind == 0 {
		return command{}, d.fail("command", fmt.Errorf("%w: %q", ErrUnknownCommand, clip(b)))
	}
	d.cmd = kindNames[c.kind]
	switch c.kind {
	case kindBegin:
		if c.id, err = d.readID(); err != nil {
			return command{}, err
		}
		if c.storages, err = d.readStorages(); err != nil {
			return command{}, err
		}
	case kindAbort:
		if c.id, err = d.readID(); err != nil {
			return command{}, err
		}
	case kindCommit:
		if c.id, err = d.readID(); err != nil {
			return command{}, err
		}
		if c.tids, c.none, err = d.readTIDDict(); err != nil {
			return command{}, err
		}
	}
	return c, nil
}

func (d *decoder) readID() (string, error) {
	b, err := d.next()
	if err != nil {
		return "", d.fail("transaction id", err)
	}
	return d.str(b), nil
}

// readCount reads the count of a list or dict.
func (d *decoder) readCount(what string) (int, error) {
	b, err := d.next()
	if err != nil {
		return 0, d.fail(what, err)
	}
	n, ok := parseUint(b)
	if !ok {
		return 0, d.fail(what, fmt.Errorf("%w: %q", ErrBadCount, clip(b)))
	}
	if n > uint64(d.maxCount) {
		return 0, d.fail(what, fmt.Errorf("%w: %d is more than the limit of %d", ErrBadCount, n, d.maxCount))
	}
	return int(n), nil
}

// initialCap bounds preallocation: a count is only a promise, and a peer
// announcing 100,000 items must not cost memory before sending them.
func initialCap(n int) int { return min(n, 64) }

func (d *decoder) readStorages() ([]string, error) {
	n, err := d.readCount("storage count")
	if err != nil {
		return nil, err
	}
	storages := make([]string, 0, initialCap(n))
	for i := range n {
		b, err := d.next()
		if err != nil {
			return nil, d.fail(fmt.Sprintf("storage id %d of %d", i+1, n), err)
		}
		storages = append(storages, d.str(b))
	}
	return storages, nil
}

// readTIDDict reads a COMMIT dict. A value may be the text None; otherwise it
// must be a TID. As with a Python dict built from the pairs, a key given
// twice keeps its last value.
func (d *decoder) readTIDDict() (map[string]txn.TID, []string, error) {
	n, err := d.readCount("storage count")
	if err != nil {
		return nil, nil, err
	}
	keys := make([]string, 0, initialCap(n))
	for i := range n {
		b, err := d.next()
		if err != nil {
			return nil, nil, d.fail(fmt.Sprintf("storage id %d of %d", i+1, n), err)
		}
		keys = append(keys, d.str(b))
	}
	tids := make(map[string]txn.TID, initialCap(n))
	var none []string
	for _, k := range keys {
		b, err := d.next()
		if err != nil {
			return nil, nil, d.fail(fmt.Sprintf("TID of storage %q", clip([]byte(k))), err)
		}
		if string(b) == "None" {
			delete(tids, k)
			none = appendUnique(none, k)
			continue
		}
		v, ok := parseUint(b)
		if !ok {
			return nil, nil, d.fail(fmt.Sprintf("TID of storage %q", clip([]byte(k))), fmt.Errorf("%w: %q", ErrBadNumber, clip(b)))
		}
		tids[k] = txn.TID(v)
		if none != nil {
			if none = slices.DeleteFunc(none, func(s string) bool { return s == k }); len(none) == 0 {
				none = nil
			}
		}
	}
	return tids, none, nil
}

func appendUnique(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// readDict reads a dict of ints (the DUMP reply).
func (d *decoder) readDict() (map[string]txn.TID, error) {
	d.cmd, d.index, d.total = "DUMP reply", -1, 0
	n, err := d.readCount("storage count")
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, initialCap(n))
	for i := range n {
		b, err := d.next()
		if err != nil {
			return nil, d.fail(fmt.Sprintf("storage id %d of %d", i+1, n), err)
		}
		keys = append(keys, string(b))
	}
	m := make(map[string]txn.TID, len(keys))
	for _, k := range keys {
		b, err := d.next()
		if err != nil {
			return nil, d.fail(fmt.Sprintf("TID of storage %q", clip([]byte(k))), err)
		}
		v, ok := parseUint(b)
		if !ok {
			return nil, d.fail(fmt.Sprintf("TID of storage %q", clip([]byte(k))), fmt.Errorf("%w: %q", ErrBadNumber, clip(b)))
		}
		m[k] = txn.TID(v)
	}
	return m, nil
}

// readInt reads a lone int field (the BOOTSTRAPED reply).
func (d *decoder) readInt(what string) (uint64, error) {
	d.cmd, d.index, d.total = what, -1, 0
	b, err := d.next()
	if err != nil {
		return 0, d.fail("int", err)
	}
	v, ok := parseUint(b)
	if !ok {
		return 0, d.fail("int", fmt.Errorf("%w: %q", ErrBadNumber, clip(b)))
	}
	return v, nil
}

// parseUint parses a decimal unsigned 64-bit number, tolerating what
// Python's int() and long() accepted from the original's peers: blanks
// around it and a trailing "L".
func parseUint(b []byte) (uint64, bool) {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	if n := len(b); n > 0 && b[n-1] == 'L' {
		b = b[:n-1]
	}
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// clip shortens a value quoted in an error, so that a hostile field does not
// turn into a huge log line.
func clip(b []byte) []byte {
	const max = 64
	if len(b) <= max {
		return b
	}
	out := make([]byte, 0, max+3)
	out = append(out, b[:max]...)
	return append(out, "..."...)
}
