// Package tid converts ZODB transaction ids (TIDs) between their forms:
// integer (u64 of the 8 bytes, as in the classic protocol and status file),
// 16 hex digits, base64 of the 8 bytes (as the original dump_tid_dict.py
// printed) and UTC time.
//
// A TID is a ZODB TimeStamp: the high 32 bits pack the minute,
// ((((year-1900)*12+month-1)*31+day-1)*24+hour)*60+minute, and the low 32
// bits are the seconds within that minute scaled by 2^32/60.
package txn

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// TID is a ZODB transaction id.
type TID uint64

// FromBytes returns the TID of 8 big-endian bytes.
func TIDFromBytes(b [8]byte) TID { return TID(binary.BigEndian.Uint64(b[:])) }

// Bytes returns the 8 big-endian bytes of t, as stored by ZODB.
func (t TID) Bytes() [8]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t))
	return b
}

// Hex returns the 16 lowercase hex digits of t.
func (t TID) Hex() string {
	b := t.Bytes()
	return hex.EncodeToString(b[:])
}

// Base64 returns the standard, padded base64 of the 8 bytes.
func (t TID) Base64() string {
	b := t.Bytes()
	return base64.StdEncoding.EncodeToString(b[:])
}

// Elements returns the TimeStamp fields encoded in t. The day may be invalid
// for the month (ZODB does not check): Elements does not normalise it.
func (t TID) Elements() (year, month, day, hour, minute int, secondUnits uint32) {
	a := int(t >> 32)
	minute = a % 60
	hour = a / 60 % 24
	day = a/(60*24)%31 + 1
	month = a/(60*24*31)%12 + 1
	year = a/(60*24*31*12) + 1900
	return year, month, day, hour, minute, uint32(t)
}

// Seconds returns the seconds within the minute as ZODB computes them
// (a float64, exact: units*60/2^32 needs at most 38 significant bits).
func (t TID) Seconds() float64 {
	return float64(uint32(t)) * (60.0 / (1 << 32))
}

// String formats t as ZODB's str(TimeStamp): "2006-01-02 15:04:05.000000".
func (t TID) String() string {
	y, mo, d, h, mi, _ := t.Elements()
	return fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%09.6f", y, mo, d, h, mi, t.Seconds())
}

// Format prints t as a number for the integer verbs (%d, %x, %016x…) and as
// String's text for the others, so that a TID given to fmt prints as its
// callers expect whichever form they chose.
func (t TID) Format(f fmt.State, verb rune) {
	switch verb {
	case 'd', 'x', 'X', 'o', 'O', 'b':
		fmt.Fprintf(f, fmt.FormatString(f, verb), uint64(t))
	default:
		fmt.Fprintf(f, fmt.FormatString(f, verb), t.String())
	}
}

// Time returns the UTC time of t, rounded up to the nanosecond so that
// TIDFromTime(t.Time()) == t (one unit is about 14 ns).
func (t TID) Time() time.Time {
	y, mo, d, h, mi, units := t.Elements()
	// units*60e9/2^32 fits in 64 bits: units < 2^32 and 60e9 < 2^36.
	hi, lo := bits.Mul64(uint64(units), 60e9)
	ns := hi<<32 | lo>>32
	if lo&(1<<32-1) != 0 {
		ns++
	}
	return time.Date(y, time.Month(mo), d, h, mi, 0, int(ns), time.UTC)
}

// Valid date range of a TID: the minute count must fit in 32 bits.
var (
	minTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxYear = 1900 + (1<<32)/(60*24*31*12) // first year that does not fit entirely
)

// FromTime returns the TID of t (converted to UTC), as ZODB's
// TimeStamp(year, month, day, hour, minute, seconds) would, except that the
// seconds are scaled with exact integer arithmetic instead of a float
// division (the two can differ by one unit, 14 ns, on rare boundaries).
func TIDFromTime(t time.Time) (TID, error) {
	t = t.UTC()
	if t.Before(minTime) || t.Year() >= maxYear {
		return 0, fmt.Errorf("tid: time %s is outside the TID range (years 1900 to %d)", t.Format(time.RFC3339Nano), maxYear-1)
	}
	a := uint64((((t.Year()-1900)*12+int(t.Month())-1)*31+t.Day()-1)*24+t.Hour())*60 + uint64(t.Minute())
	ns := uint64(t.Second())*1e9 + uint64(t.Nanosecond())
	// floor(ns * 2^32 / 60e9); ns < 60e9 so the quotient fits in 32 bits.
	hi, lo := bits.Mul64(ns, 1<<32)
	b, _ := bits.Div64(hi, lo, 60e9)
	return TID(a<<32 | b), nil
}

// TIDFormat names an input form for Parse.
type TIDFormat string

// Input forms.
const (
	FormatAuto   TIDFormat = ""
	FormatInt    TIDFormat = "int"
	FormatHex    TIDFormat = "hex"
	FormatBase64 TIDFormat = "base64"
	FormatTime   TIDFormat = "time"
)

// timeLayouts are the accepted time inputs; a time without zone is UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999", // str(TimeStamp)
	"2006-01-02 15:04",
	"2006-01-02",
}

// Parse reads a TID written as f. With Auto it guesses: "0x…" or exactly 16
// hex digits is hex, decimal digits (optionally ending in L) an integer, 12
// characters ending in "=" base64, anything with a "-" a time. A 16-digit
// decimal integer is read as hex: use Int to force it.
func ParseTID(s string, f TIDFormat) (TID, error) {
	s = strings.TrimSpace(s)
	if f == FormatAuto {
		f = guess(s)
		if f == FormatAuto {
			return 0, fmt.Errorf("tid: %q is not an integer, 16 hex digits, base64 of 8 bytes or a time", s)
		}
	}
	switch f {
	case FormatInt:
		v, err := strconv.ParseUint(strings.TrimSuffix(s, "L"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("tid: %q is not an unsigned 64-bit integer", s)
		}
		return TID(v), nil
	case FormatHex:
		h := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
		if len(h) == 0 || len(h) > 16 {
			return 0, fmt.Errorf("tid: %q is not 1 to 16 hex digits", s)
		}
		v, err := strconv.ParseUint(h, 16, 64)
		if err != nil {
			return 0, fmt.Errorf("tid: %q is not hex", s)
		}
		return TID(v), nil
	case FormatBase64:
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			b, err = base64.RawStdEncoding.DecodeString(s)
		}
		if err != nil || len(b) != 8 {
			return 0, fmt.Errorf("tid: %q is not the base64 of 8 bytes", s)
		}
		return TIDFromBytes([8]byte(b)), nil
	case FormatTime:
		if s == "now" {
			return TIDFromTime(time.Now())
		}
		for _, layout := range timeLayouts {
			if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
				return TIDFromTime(t)
			}
		}
		return 0, fmt.Errorf("tid: %q is not a time such as 2026-11-24T22:43:36.5Z or \"2026-11-24 22:43:36.5\" (UTC)", s)
	}
	return 0, fmt.Errorf("tid: unknown format %q (use int, hex, base64 or time)", f)
}

func guess(s string) TIDFormat {
	switch {
	case s == "now":
		return FormatTime
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		return FormatHex
	case len(s) == 16 && isHex(s):
		return FormatHex
	case s != "" && isDigits(strings.TrimSuffix(s, "L")):
		return FormatInt
	case len(s) == 12 && strings.HasSuffix(s, "="):
		return FormatBase64
	case strings.Contains(s, "-"):
		return FormatTime
	}
	return FormatAuto
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
