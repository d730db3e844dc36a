package zeoproxy_test

import (
	"bufio"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// A ZODB client keeps committing through a restart of the proxy (it
// reconnects to the same address) and through a restart of the ZEO server
// behind it.
func TestClientSurvivesRestarts(t *testing.T) {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}})
	port := zeotest.FreePort(t)
	listen := "127.0.0.1:" + strconv.Itoa(port)
	rec := newRecorder()
	newProxy := func() *zeoproxy.Proxy {
		p := zeoproxy.New(zeoproxy.Config{Servers: []zeoproxy.ServerConfig{{Name: "z", Listen: listen, Upstream: srv.Addr}}}, rec)
		var err error
		for i := 0; i < 50; i++ { // the old listener's port may linger a moment
			if err = p.Listen(); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		require.NoError(t, err)
		p.Serve()
		return p
	}
	p := newProxy()
	defer func() { p.Close() }()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := zeotest.PythonCommand(ctx, t, "zodb_client.py", "--db", "a="+listen+"/1", "--db", "b="+listen+"/2",
		"paired", "--count", "100000", "--seconds", "90")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { cancel(); _ = cmd.Wait() }()
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitCommits := func(n int, what string) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for i := 0; i < n; i++ {
			select {
			case _, ok := <-lines:
				require.True(t, ok, "client ended early (%s)", what)
			case <-deadline:
				t.Fatalf("client made %d of %d commits %s", i, n, what)
			}
		}
	}
	waitCommits(5, "at start")
	p.Close()
	p = newProxy()
	drain(lines)
	waitCommits(5, "after the proxy restart")
	srv.Restart()
	drain(lines)
	waitCommits(5, "after the ZEO server restart")
}

func drain(c chan string) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}
