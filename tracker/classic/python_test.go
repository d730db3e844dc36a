package classic

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidstorage/tidstorage/internal/txn"
)

// requirePython returns the python3 to use: missing, it fails the test in CI
// and skips it elsewhere.
func requirePython(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3 not found in PATH (required in CI): %v", err)
		}
		t.Skipf("python3 not found in PATH; skipping the end-to-end test locally: %v", err)
	}
	return py
}

// A client written only from docs/classic-protocol.md, in Python, in its own
// process, drives the server through the original's scenarios. It checks
// its own expectations; here every DUMP it saw is checked again against the
// Go scenario table, so both agree with the original daemon.
func TestPythonClientEndToEnd(t *testing.T) {
	py := requirePython(t)
	script, err := filepath.Abs("../../integration/python/classic_client.py")
	require.NoError(t, err)
	// Read it so that a change to the script invalidates go test's cache.
	src, err := os.ReadFile(script)
	require.NoError(t, err)
	require.NotEmpty(t, src)

	addr, srv, _ := startServer(t, newRefBackend(nil), Options{})
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, script, host, port)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	require.NoError(t, err, "classic_client.py failed:\n%s\nstdout:\n%s", stderr.String(), stdout.String())

	want := make(map[string][]step)
	for _, sc := range scenarios {
		want[sc.name] = sc.steps
	}
	seen := make(map[string]int)
	var final map[string]txn.TID
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var rec struct {
			Scenario string             `json:"scenario"`
			Step     int                `json:"step"`
			Dump     map[string]txn.TID `json:"dump"`
			Final    map[string]txn.TID `json:"final"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), "line %q", sc.Text())
		if rec.Final != nil {
			final = rec.Final
			continue
		}
		steps, ok := want[rec.Scenario]
		require.True(t, ok, "unknown scenario %q", rec.Scenario)
		require.Equal(t, seen[rec.Scenario]+1, rec.Step, "steps of %q out of order", rec.Scenario)
		seen[rec.Scenario] = rec.Step
		require.Equal(t, steps[rec.Step-1].want, rec.Dump, "%s, step %d", rec.Scenario, rec.Step)
	}
	for name, steps := range want {
		require.Equal(t, len(steps), seen[name], "scenario %q not run to the end by the Python client", name)
	}

	got, err := dial(t, addr).Dump()
	require.NoError(t, err)
	require.Equal(t, got, final, "the Python client's final DUMP is the server's")
	st := srv.Stats()
	require.Zero(t, st.ProtocolErrors)
	require.EqualValues(t, 2, st.Commands.Quit)
}
