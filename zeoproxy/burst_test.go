package zeoproxy_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// burstScript opens argv[2] connections to argv[1], says so, and holds them
// until its standard input closes.
const burstScript = `
import socket, sys
host, _, port = sys.argv[1].rpartition(":")
ss = [socket.create_connection((host, int(port))) for _ in range(int(sys.argv[2]))]
print("open", flush=True)
sys.stdin.read()
`

// 2,000 loopback connections at once used to cost 7 to 25 ms of
// /proc parsing each, before the relay started, and stalled a committing
// writer for up to 16 s. Now the identities are resolved off the relay's
// path, in batches: a writer committing through the same proxy meanwhile
// never waits long, and every burst connection ends up identified as the
// burst's process.
func TestConnectionBurstDoesNotStallCommits(t *testing.T) {
	r := burstRun(t, 2000)
	t.Logf("%d connections opened in %v, all identified after %v; writer: %.0f commits/s, longest commit %.0f ms",
		r.conns, r.opened.Round(time.Millisecond), r.resolved.Round(time.Millisecond), r.tps, r.longest)
	require.Positive(t, r.tps)
	require.Less(t, r.longest, 1000.0, "longest commit (ms) during the burst")
}

type burstResult struct {
	conns            int
	opened, resolved time.Duration
	tps, longest     float64 // the writer's commits/s and longest commit (ms)
}

// burstRun runs a writer committing through the proxy for 10 s (real ZEO)
// and, 2 s in, a Python process opening burst loopback connections
// through the same proxy (to a sink); 0 runs the writer alone.
func burstRun(t *testing.T, burst int) burstResult {
	srv := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1"}})
	sinkAddr, _ := discardSink(t)
	p := serveProxy(t, zeoproxy.Config{
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: testWriter{t}}),
		Servers: []zeoproxy.ServerConfig{
			{Name: "zeo", Listen: "127.0.0.1:0", Upstream: srv.Addr},
			{Name: "burst", Listen: "127.0.0.1:0", Upstream: sinkAddr},
		}}, newRecorder())
	zeoAddr, burstAddr := p.Addrs()[0].String(), p.Addrs()[1].String()

	ctx, cancel := context.WithTimeout(context.Background(), 2*zeotestWait)
	defer cancel()
	writer := zeotest.PythonCommand(ctx, t, "bench_commits.py", "--addr", zeoAddr, "--seconds", "10", "--max-latency")
	var wout, werr bytes.Buffer
	writer.Stdout, writer.Stderr = &wout, &werr
	require.NoError(t, writer.Start())
	time.Sleep(2 * time.Second) // the writer is committing

	r := burstResult{conns: burst}
	if burst > 0 {
		bc := exec.CommandContext(ctx, filepath.Join(zeotest.Venv(t), "bin", "python"), "-c", burstScript, burstAddr, strconv.Itoa(burst))
		stdin, err := bc.StdinPipe()
		require.NoError(t, err)
		out, err := bc.StdoutPipe()
		require.NoError(t, err)
		start := time.Now()
		require.NoError(t, bc.Start())
		defer func() { stdin.Close(); _ = bc.Wait() }()
		line, err := bufio.NewReader(out).ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "open\n", line)
		r.opened = time.Since(start)
		want := fmt.Sprintf("pid:%d/", bc.Process.Pid)
		identified := 0
		require.Eventually(t, func() bool {
			identified = 0
			for _, id := range p.ClientIdentities() {
				if strings.HasPrefix(id, want) {
					identified++
				}
			}
			return identified == burst
		}, zeotestWait, pollEvery, "%d of %d burst connections identified as %s", identified, burst, want)
		r.resolved = time.Since(start)
	}

	require.NoError(t, writer.Wait(), werr.String())
	f := strings.Fields(wout.String())
	require.Len(t, f, 2, wout.String())
	var err error
	r.tps, err = strconv.ParseFloat(f[0], 64)
	require.NoError(t, err)
	r.longest, err = strconv.ParseFloat(f[1], 64)
	require.NoError(t, err)
	return r
}
