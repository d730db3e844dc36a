package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/stretchr/testify/require"
)

// blockPlaces says where each raw block type is written in a file, with
// the required attributes it needs besides the one under test.
var blockPlaces = []struct {
	raw any
	// wrap puts the attribute lines (one per required attribute, then the
	// one under test) into a whole file.
	wrap func(lines string) string
	// needs are the lines of the required attributes, by name.
	needs map[string]string
}{
	{raw: rawFile{}, wrap: func(l string) string { return l }},
	{raw: rawLog{}, wrap: func(l string) string { return "log {\n" + l + "}\n" }},
	{raw: rawLimits{}, wrap: func(l string) string { return "limits {\n" + l + "}\n" }},
	{raw: rawClassic{}, wrap: func(l string) string { return "classic {\n" + l + "}\n" }},
	{raw: rawAdmin{}, wrap: func(l string) string { return "admin {\n" + l + "}\n" }},
	{raw: rawArchive{}, wrap: func(l string) string { return "archive {\n" + l + "}\n" },
		needs: map[string]string{"url": `url = "file:///a"`}},
	{raw: rawFleet{}, wrap: func(l string) string { return "fleet {\n" + l + "}\n" },
		needs: map[string]string{"listen": `listen = "127.0.0.1:9010"`}},
	{raw: rawFleetTLS{}, wrap: func(l string) string { return "fleet {\nlisten = \"127.0.0.1:9010\"\ntls {\n" + l + "}\n}\n" },
		needs: map[string]string{"cert_file": `cert_file = "c"`, "key_file": `key_file = "k"`, "client_ca_file": `client_ca_file = "ca"`}},
	{raw: rawTracker{}, wrap: func(l string) string { return "tracker {\n" + l + "}\n" },
		needs: map[string]string{"address": `address = "127.0.0.1:9010"`}},
	{raw: rawTrackerTLS{}, wrap: func(l string) string { return "tracker {\naddress = \"127.0.0.1:9010\"\ntls {\n" + l + "}\n}\n" },
		needs: map[string]string{"cert_file": `cert_file = "c"`, "key_file": `key_file = "k"`, "ca_file": `ca_file = "ca"`}},
	{raw: rawZEO{}, wrap: func(l string) string { return "zeo \"z\" {\n" + l + "storage \"1\" {}\n}\n" },
		needs: map[string]string{"listen": `listen = "127.0.0.1:8100"`, "upstream": `upstream = "127.0.0.1:8200"`}},
	{raw: rawZEOStorage{}, wrap: func(l string) string {
		return "zeo \"z\" {\nlisten = \"127.0.0.1:8100\"\nupstream = \"127.0.0.1:8200\"\nstorage \"1\" {\n" + l + "}\n}\n"
	}},
	{raw: rawTopStorage{}, wrap: func(l string) string { return "storage \"s\" {\n" + l + "}\n" }},
	{raw: rawZEOTLS{}, wrap: func(l string) string {
		return "zeo \"z\" {\nlisten = \"127.0.0.1:8100\"\nupstream = \"127.0.0.1:8200\"\nstorage \"1\" {}\ntls {\n" + l + "}\n}\n"
	}, needs: map[string]string{"cert_file": `cert_file = "c"`, "key_file": `key_file = "k"`}},
	{raw: rawUpstreamTLS{}, wrap: func(l string) string {
		return "zeo \"z\" {\nlisten = \"127.0.0.1:8100\"\nupstream = \"127.0.0.1:8200\"\nstorage \"1\" {}\nupstream_tls {\n" + l + "}\n}\n"
	}},
}

// Every attribute of the schema, given a value of no kind it accepts (an
// object), is reported at that value's line and column; the file loads
// with only what it requires (so the error is the attribute's).
func TestEveryAttributeErrorNamesItsPosition(t *testing.T) {
	seen := 0
	for _, place := range blockPlaces {
		schema, _ := gohcl.ImpliedBodySchema(place.raw)
		for _, a := range schema.Attributes {
			name := reflect.TypeOf(place.raw).Name() + "." + a.Name
			t.Run(name, func(t *testing.T) {
				var lines, all string
				for need, line := range place.needs {
					all += line + "\n"
					if need != a.Name {
						lines += line + "\n"
					}
				}
				ok := place.wrap(all)
				_, err := Parse([]byte(ok), "a.hcl")
				require.NoError(t, err, "the file with what it requires only:\n%s", ok)

				bad := place.wrap(lines + a.Name + " = {}\n")
				prefix, _, _ := strings.Cut(place.wrap("\x00"), "\x00")
				line := strings.Count(prefix, "\n") + strings.Count(lines, "\n") + 1
				col := len(a.Name+" = ") + 1
				_, err = Parse([]byte(bad), "a.hcl")
				require.Error(t, err, bad)
				require.Contains(t, err.Error(), fmt.Sprintf("a.hcl:%d:%d: ", line, col), "%s in:\n%s", a.Name, bad)
			})
			seen++
		}
	}
	// Every raw type is placed: the documentation test walks the same list.
	require.Len(t, blockPlaces, len(schemas()))
	require.Greater(t, seen, 60)
}
