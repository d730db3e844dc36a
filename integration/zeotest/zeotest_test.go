package zeotest_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
)

// The harness itself: a real runzeo with two storages (each encoding), a real
// multi-database ZODB client committing to both, and lastTransaction agreeing.
func TestServerAndClient(t *testing.T) {
	for _, msgpack := range []bool{false, true} {
		name := "pickle"
		if msgpack {
			name = "msgpack"
		}
		t.Run(name, func(t *testing.T) {
			srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}, Msgpack: msgpack, Blobs: true})
			dbs := []string{"--db", "a=" + srv.Addr + "/1", "--db", "b=" + srv.Addr + "/2"}
			out := zeotest.Python(t, "zodb_client.py", append(dbs, "commit", "--count", "3", "--touch", "a,b", "--desc", "harness")...)
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			require.Len(t, lines, 3)
			var lastCommit map[string]string
			require.NoError(t, json.Unmarshal([]byte(lines[2]), &lastCommit))
			require.Len(t, lastCommit["a"], 16)

			var last map[string]string
			require.NoError(t, json.Unmarshal(zeotest.Python(t, "zodb_client.py", append(dbs, "last")...), &last))
			require.Equal(t, lastCommit, last)

			srv.Restart()
			require.NoError(t, json.Unmarshal(zeotest.Python(t, "zodb_client.py", append(dbs, "last")...), &last))
			require.Equal(t, lastCommit, last, "data survives a restart")
		})
	}
}

// The TLS harness: runzeo with <ssl> and authenticate, a real ZODB client
// with an ssl context and the CA's client certificate commits; one with a
// certificate of another CA cannot connect.
func TestTLSServerAndClient(t *testing.T) {
	certs := zeotest.WriteTLSCerts(t)
	srv := zeotest.StartServer(t, zeotest.ServerOptions{TLS: certs})
	db := []string{"--db", "a=" + srv.Addr + "/1", "--wait-timeout", "3"}
	args := append(append(certs.PythonArgs(certs.Client, certs.ClientKey), db...), "commit", "--count", "2")
	out := zeotest.Python(t, "zodb_client.py", args...)
	require.Len(t, strings.Split(strings.TrimSpace(string(out)), "\n"), 2)

	args = append(append(certs.PythonArgs(certs.Rogue, certs.RogueKey), db...), "last")
	_, err := zeotest.PythonErr(t, "zodb_client.py", args...)
	require.Error(t, err, "a client certificate of another CA must be refused by ZEO")
}
