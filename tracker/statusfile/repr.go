package statusfile

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// AppendPyStr appends the Python repr of s as a byte string would print it
// (Python 2's str, which wrote the original files): single quotes unless s
// contains a single quote and no double quote; backslash, the quote, \t \n
// \r escaped; other bytes outside printable ASCII as \xNN.
func AppendPyStr(dst []byte, s string) []byte {
	q := byte('\'')
	if containsByte(s, '\'') && !containsByte(s, '"') {
		q = '"'
	}
	dst = append(dst, q)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c < 0x20 || c >= 0x7f:
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, q)
}

const hexDigits = "0123456789abcdef"

func containsByte(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

// AppendDict appends the Python repr of a dict of str to int, in the order
// given: {'k': 1, "k'2": 2}. An empty dict is {}.
func AppendDict(dst []byte, entries []Entry) []byte {
	dst = append(dst, '{')
	for i, e := range entries {
		if i > 0 {
			dst = append(dst, ',', ' ')
		}
		dst = AppendPyStr(dst, e.Storage)
		dst = append(dst, ':', ' ')
		dst = strconv.AppendUint(dst, uint64(e.TID), 10)
	}
	return append(dst, '}')
}

// parser reads the Python literal subset used by status files: a dict of
// string keys ('…' or "…", with Python 2 or 3 escapes, optional b/u
// prefix) to non-negative ints (optional L suffix).
type parser struct {
	s   string
	pos int
}

func (p *parser) errf(format string, args ...any) error {
	return fmt.Errorf("column %d: %s", p.pos+1, fmt.Sprintf(format, args...))
}

func (p *parser) skipSpace() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

func (p *parser) dict(fn func(key string, v txn.TID) error) error {
	p.skipSpace()
	if p.pos >= len(p.s) || p.s[p.pos] != '{' {
		return p.errf("expected '{'")
	}
	p.pos++
	p.skipSpace()
	if p.pos < len(p.s) && p.s[p.pos] == '}' {
		p.pos++
		return p.end()
	}
	for {
		p.skipSpace()
		k, err := p.str()
		if err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.s) || p.s[p.pos] != ':' {
			return p.errf("expected ':' after key %q", k)
		}
		p.pos++
		p.skipSpace()
		v, err := p.int()
		if err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
		if err := fn(k, txn.TID(v)); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.s) {
			return p.errf("unterminated dict")
		}
		switch p.s[p.pos] {
		case ',':
			p.pos++
			p.skipSpace()
			if p.pos < len(p.s) && p.s[p.pos] == '}' { // trailing comma
				p.pos++
				return p.end()
			}
		case '}':
			p.pos++
			return p.end()
		default:
			return p.errf("expected ',' or '}'")
		}
	}
}

func (p *parser) end() error {
	p.skipSpace()
	if p.pos != len(p.s) {
		return p.errf("trailing data after dict")
	}
	return nil
}

func (p *parser) int() (uint64, error) {
	start := p.pos
	for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	if start == p.pos {
		return 0, p.errf("expected an integer")
	}
	v, err := strconv.ParseUint(p.s[start:p.pos], 10, 64)
	if err != nil {
		return 0, p.errf("bad integer %q: %v", p.s[start:p.pos], err)
	}
	if p.pos < len(p.s) && (p.s[p.pos] == 'L' || p.s[p.pos] == 'l') {
		p.pos++
	}
	return v, nil
}

func (p *parser) str() (string, error) {
	if p.pos < len(p.s) && (p.s[p.pos] == 'u' || p.s[p.pos] == 'b' || p.s[p.pos] == 'U' || p.s[p.pos] == 'B') {
		p.pos++
	}
	if p.pos >= len(p.s) || (p.s[p.pos] != '\'' && p.s[p.pos] != '"') {
		return "", p.errf("expected a quoted string")
	}
	q := p.s[p.pos]
	p.pos++
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.s) && p.s[p.pos] != q && p.s[p.pos] != '\\' {
		p.pos++
	}
	if p.pos < len(p.s) && p.s[p.pos] == q {
		p.pos++
		return p.s[start : p.pos-1], nil
	}
	buf := []byte(p.s[start:p.pos])
	for {
		if p.pos >= len(p.s) {
			return "", p.errf("unterminated string")
		}
		c := p.s[p.pos]
		p.pos++
		if c == q {
			return string(buf), nil
		}
		if c != '\\' {
			buf = append(buf, c)
			continue
		}
		if p.pos >= len(p.s) {
			return "", p.errf("unterminated escape")
		}
		e := p.s[p.pos]
		p.pos++
		switch e {
		case '\\', '\'', '"':
			buf = append(buf, e)
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'a':
			buf = append(buf, 7)
		case 'b':
			buf = append(buf, 8)
		case 'f':
			buf = append(buf, 12)
		case 'v':
			buf = append(buf, 11)
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			if p.pos+n > len(p.s) {
				return "", p.errf("short \\%c escape", e)
			}
			v, err := strconv.ParseUint(p.s[p.pos:p.pos+n], 16, 32)
			if err != nil {
				return "", p.errf("bad \\%c escape", e)
			}
			p.pos += n
			if e == 'x' {
				buf = append(buf, byte(v))
			} else {
				buf = utf8.AppendRune(buf, rune(v))
			}
		default:
			if e >= '0' && e <= '7' {
				v := int(e - '0')
				for k := 0; k < 2 && p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '7'; k++ {
					v = v*8 + int(p.s[p.pos]-'0')
					p.pos++
				}
				buf = append(buf, byte(v))
				continue
			}
			// Python keeps unknown escapes as written.
			buf = append(buf, '\\', e)
		}
	}
}
