package zrpc

import (
	"errors"
	"fmt"
)

// Encoding is the message encoding of a connection, fixed by the letter of
// the client's handshake frame.
type Encoding byte

const (
	Pickle  Encoding = 'Z' // pickle: protocol 3 (ZEO ≥5) or protocol 1 (ZEO 4 on Python 2)
	Msgpack Encoding = 'M' // msgpack (ZEO ≥5.1, server configured with msgpack)
)

func (e Encoding) String() string {
	switch e {
	case Pickle:
		return "pickle"
	case Msgpack:
		return "msgpack"
	}
	return fmt.Sprintf("Encoding(%q)", byte(e))
}

// Protocol is a handshake value: encoding letter plus version digits,
// e.g. Z5, M5, Z4, Z3101.
type Protocol struct {
	Encoding Encoding
	Version  string // "5", "4", "3101", "310", "309", ...
}

func (p Protocol) String() string { return string(rune(p.Encoding)) + p.Version }

// Bytes is the handshake frame payload.
func (p Protocol) Bytes() []byte { return []byte(p.String()) }

// ZEO4 reports whether the version is a pre-ZEO-5 protocol (ZEO 4 wire
// semantics: msgids from 0, serialnos during vote, errors as pickled
// exception instances with flags 0).
func (p Protocol) ZEO4() bool { return p.Version != "5" }

// Known protocol versions. ZEO 5/6 use only "5"; ZEO 4 servers announce
// "4" and accept clients down to "200"; ZEO 5.1–5.3 clients could speak
// 309/310/3101/4.
var knownVersions = map[string]bool{
	"5": true, "4": true, "3101": true, "310": true, "309": true, "308": true, "201": true, "200": true,
}

// Ruok is the client's status-probe handshake: the server answers one JSON
// frame and closes.
const RuokHandshake = "ruok"

var (
	ErrBadHandshake = errors.New("bad handshake")
)

// ParseProtocol parses a handshake frame payload such as "Z5" or "M5".
func ParseProtocol(b []byte) (Protocol, error) { return parseProtocol("", b) }

func parseProtocol(who string, b []byte) (Protocol, error) {
	if len(b) < 2 || len(b) > 8 {
		return Protocol{}, fmt.Errorf("zrpc: %shandshake %q: %w: want a letter Z or M and version digits", who, truncForErr(b), ErrBadHandshake)
	}
	e := Encoding(b[0])
	if e != Pickle && e != Msgpack {
		return Protocol{}, fmt.Errorf("zrpc: %shandshake %q: %w: unknown encoding letter %q", who, truncForErr(b), ErrBadHandshake, b[0])
	}
	v := string(b[1:])
	if !knownVersions[v] {
		return Protocol{}, fmt.Errorf("zrpc: %shandshake %q: %w: unknown protocol version %q", who, truncForErr(b), ErrBadHandshake, v)
	}
	if e == Msgpack && v != "5" {
		return Protocol{}, fmt.Errorf("zrpc: %shandshake %q: %w: msgpack exists only with protocol 5", who, truncForErr(b), ErrBadHandshake)
	}
	return Protocol{Encoding: e, Version: v}, nil
}

// ParseServerHandshake parses the server's announcement (first S→C frame).
func ParseServerHandshake(b []byte) (Protocol, error) {
	return parseProtocol("server ", b)
}

// ClientHandshake is the client's first frame: a protocol, or ruok.
type ClientHandshake struct {
	Protocol Protocol // zero when Ruok
	Ruok     bool
}

// ParseClientHandshake parses the client's answer (first C→S frame). The
// encoding of the rest of the connection is the letter of this frame, not
// of the server's announcement.
func ParseClientHandshake(b []byte) (ClientHandshake, error) {
	if string(b) == RuokHandshake {
		return ClientHandshake{Ruok: true}, nil
	}
	p, err := parseProtocol("client ", b)
	if err != nil {
		return ClientHandshake{}, err
	}
	return ClientHandshake{Protocol: p}, nil
}

// ClientAnswer is what a ZEO 5/6 client answers to a server announcement:
// the server's letter with min(server version, "5") compared bytewise, as
// ZEO's client does. Versions other than 5 are refused, as ZEO ≥5.4 does.
func ClientAnswer(server Protocol) (Protocol, error) {
	v := server.Version
	if v > "5" {
		v = "5"
	}
	if v != "5" {
		return Protocol{}, fmt.Errorf("zrpc: server protocol %s: %w: only protocol 5 is supported by this client", server, ErrBadHandshake)
	}
	return Protocol{Encoding: server.Encoding, Version: v}, nil
}

func truncForErr(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
