package txn

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Vectors computed with the real ZODB (.venv-zeo):
//
//	from ZODB.TimeStamp import TimeStamp; from ZODB.utils import p64
//	ts = TimeStamp(p64(v)); p64(v).hex(), base64.b64encode(p64(v)), str(ts), ts.timeTime()
var vectors = []struct {
	v        uint64
	hex, b64 string
	str      string
	unix     float64
}{
	{0, "0000000000000000", "AAAAAAAAAAA=", "1900-01-01 00:00:00.000000", -2208988800.0},
	{1, "0000000000000001", "AAAAAAAAAAE=", "1900-01-01 00:00:00.000000", -2208988800.0},
	{272351243011436356, "03c7960335d52f44", "A8eWAzXVL0Q=", "2018-05-16 21:55:12.617051", 1526507712.6170511},
	{272351243011436360, "03c7960335d52f48", "A8eWAzXVL0g=", "2018-05-16 21:55:12.617051", 1526507712.6170516},
	{282454451045902489, "03eb7ad3a3d1a899", "A+t606PRqJk=", "2022-10-07 11:31:38.395073", 1665142298.395073},
	{288230376151711744, "0400000000000000", "BAAAAAAAAAA=", "2025-04-11 09:04:00.000000", 1744362240.0},
	{283992733042128294, "03f0f1e2d3c4b5a6", "A/Dx4tPEtaY=", "2023-06-08 04:50:49.633218", 1686199849.6332178},
	// The last unit of a minute prints as second 60, as in ZODB.
	{72057594037927935, "00ffffffffffffff", "AP////////8=", "1931-04-26 20:15:60.000000", -1220759040.0},
}

func TestVectors(t *testing.T) {
	for _, vec := range vectors {
		id := TID(vec.v)
		require.Equal(t, vec.hex, id.Hex())
		require.Equal(t, vec.b64, id.Base64())
		require.Equal(t, vec.str, id.String())
		got := float64(id.Time().UnixNano()) / 1e9
		require.InDelta(t, vec.unix, got, 1e-6, "unix time of %d", vec.v)

		for form, text := range map[TIDFormat]string{FormatInt: strconv.FormatUint(vec.v, 10), FormatHex: vec.hex, FormatBase64: vec.b64, FormatTime: id.Time().Format(time.RFC3339Nano)} {
			back, err := ParseTID(text, form)
			require.NoError(t, err)
			require.Equal(t, id, back)
		}
	}
}

// TimeStamp(y, mo, d, h, mi, s) from ZODB: u64(ts.raw()).
func TestFromTime(t *testing.T) {
	for _, c := range []struct {
		in   time.Time
		want uint64
	}{
		{time.Date(2026, 11, 24, 22, 43, 36, 123456000, time.UTC), 291957117565301350},
		{time.Date(2008, 1, 4, 15, 43, 57, 410000000, time.UTC), 248501241283544962},
		{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(2000, 2, 29, 23, 59, 59, 999999000, time.UTC), 230443893286502328},
		{time.Date(2038, 1, 19, 3, 14, 7, 500000000, time.UTC), 317612634507575296},
		// Same instant in another zone.
		{time.Date(2038, 1, 19, 4, 14, 7, 500000000, time.FixedZone("CET", 3600)), 317612634507575296},
	} {
		got, err := TIDFromTime(c.in)
		require.NoError(t, err)
		require.Equal(t, TID(c.want), got, "%s", c.in)
	}
	_, err := TIDFromTime(time.Date(1899, 12, 31, 23, 59, 0, 0, time.UTC))
	require.Error(t, err)
	_, err = TIDFromTime(time.Date(maxYear, 1, 1, 0, 0, 0, 0, time.UTC))
	require.Error(t, err)
	last, err := TIDFromTime(time.Date(maxYear-1, 12, 31, 23, 59, 59, 999999999, time.UTC))
	require.NoError(t, err)
	require.Equal(t, maxYear-1, last.Time().Year())
}

// Time and FromTime agree: a TID survives the round trip.
func TestTimeRoundTrip(t *testing.T) {
	for _, vec := range vectors {
		back, err := TIDFromTime(TID(vec.v).Time())
		require.NoError(t, err)
		require.Equal(t, TID(vec.v), back)
	}
}

func TestParseAuto(t *testing.T) {
	for in, want := range map[string]TID{
		"272351243011436356":               272351243011436356,
		"272351243011436356L":              272351243011436356,
		"03c7960335d52f44":                 272351243011436356,
		"0x3c7960335d52f44":                272351243011436356,
		"A8eWAzXVL0Q=":                     272351243011436356,
		"2026-11-24T22:43:36.123456Z":      291957117565301350,
		"2026-11-24 22:43:36.123456":       291957117565301350,
		"2026-11-24T23:43:36.123456+01:00": 291957117565301350,
		"0":                                0,
	} {
		got, err := ParseTID(in, FormatAuto)
		require.NoError(t, err, in)
		require.Equal(t, TID(want), got, in)
	}
	// 16 decimal digits read as hex unless forced.
	got, err := ParseTID("1000000000000000", FormatAuto)
	require.NoError(t, err)
	require.Equal(t, TID(1<<60), got)
	got, err = ParseTID("1000000000000000", FormatInt)
	require.NoError(t, err)
	require.Equal(t, TID(1e15), got)

	for _, bad := range []string{"", "hello", "18446744073709551616", "0x", "0x11112222333344445", "AAAA=", "2026-13-01"} {
		_, err := ParseTID(bad, FormatAuto)
		require.Error(t, err, bad)
	}
	_, err = ParseTID("AAAAAAAAAAA=", FormatHex)
	require.Error(t, err)
	_, err = ParseTID("1", TIDFormat("octal"))
	require.Error(t, err)
}

func TestTIDFormatVerbs(t *testing.T) {
	v := TID(0x03ec8a5b12345678)
	require.Equal(t, "03ec8a5b12345678", fmt.Sprintf("%016x", v))
	require.Equal(t, "282753000369575544", fmt.Sprintf("%d", v))
	require.Equal(t, v.String(), fmt.Sprintf("%s", v))
	require.Equal(t, v.String(), fmt.Sprintf("%v", v))
}
