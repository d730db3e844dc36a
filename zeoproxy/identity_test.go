package zeoproxy_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
)

// A ZODB client on this host is identified by its process (pid and start
// time), found through sock_diag and the owners' index, off the relay's
// path; every participation of it carries that identity.
func TestLoopbackClientIsItsProcess(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}})
	rec := newRecorder()
	_, addrs := startProxy(t, rec, srv)
	ctx, cancel := context.WithTimeout(context.Background(), zeotestWait)
	defer cancel()
	cmd := zeotest.PythonCommand(ctx, t, "zodb_client.py", "--db", "a="+addrs[0]+"/1", "--db", "b="+addrs[0]+"/2",
		"commit", "--count", "2", "--desc", "whose")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	require.NoError(t, cmd.Wait(), stderr.String())
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := 0
	for _, b := range rec.begins {
		if b.Info.Description != "whose" {
			continue
		}
		n++
		require.True(t, strings.HasPrefix(b.Info.Client, "pid:"+strconv.Itoa(pid)+"/"), "client %q, python pid %d", b.Info.Client, pid)
		require.True(t, strings.HasSuffix(b.Info.Client, "@127.0.0.1"), b.Info.Client)
	}
	require.Equal(t, 4, n, "two transactions on two storages")
}
