package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/integration/zeotest"
	"github.com/tidstorage/tidstorage/internal/statusdoc"
)

// chromium returns the path of a headless-capable Chromium (Debian's
// package); in CI it must be there (.ci/run installs it), elsewhere the
// test skips without it.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if zeotest.InCI() {
		t.Fatal("no chromium: .ci/run installs Debian's chromium package")
	}
	t.Skip("no chromium (apt-get install chromium) for the status page's browser test")
	return ""
}

// headless runs Chromium headless on url with args (--dump-dom,
// --screenshot=...) and returns its stdout.
func headless(t *testing.T, browser, url string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, append([]string{"--headless", "--no-sandbox", "--disable-gpu",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}, append(args, url)...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run(), "chromium: %s", errOut.String())
	return out.String()
}

// A person opens the admin address in a browser: a real headless Chromium
// loads the status page of `tidstorage serve` in front of real ZEO
// servers, after real ZODB commits, a client that died between its two
// storages (a partial commit) and a backup, and the page shows the
// storages with their published TIDs and times (those of /status), a
// sparkline per storage, the partial commit with the command that resolves
// it, the history watchers and the backup, without what the token guards.
// With TIDSTORAGE_SCREENSHOT=FILE it also writes its screenshot there (how
// docs/status-page.png is made).
func TestStatusPageInBrowser(t *testing.T) {
	browser := chromium(t)
	zeo := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}})
	dir := t.TempDir()
	proxy := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t))
	cfg := filepath.Join(dir, "site.hcl")
	require.NoError(t, os.WriteFile(cfg, []byte(zeo.SiteHCL(adminAddr, proxy)), 0o644))
	startServe(t, cfg, adminAddr, "/readyz")

	dbs := []string{"--db", "a=" + proxy + "/1", "--db", "b=" + proxy + "/2"}
	zeotest.Python(t, "zodb_client.py", append(dbs, "commit", "--count", "3", "--touch", "a,b")...)
	r := run(t, "backup", "-c", cfg, "--progress", "0")
	require.Equal(t, 0, r.code, r.stderr)
	_, err := zeotest.PythonErr(t, "zodb_client.py", append(dbs, "crash-between", "--first", "a", "--then", "b", "--desc", "/plone/secret-edit")...)
	require.Error(t, err, "the client dies between its two finishes")
	var doc statusdoc.StatusDoc
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + adminAddr + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return json.Unmarshal(b, &doc) == nil && len(doc.PartialPins()) == 1
	}, 30*time.Second, 100*time.Millisecond, "the partial commit is pinned")
	if os.Getenv("TIDSTORAGE_SCREENSHOT") != "" {
		// For the picture: a minute more of commits on the held storage,
		// so that its lag grows along the sparkline.
		for range 6 {
			zeotest.Python(t, "zodb_client.py", append(dbs, "commit", "--count", "1", "--touch", "a")...)
			time.Sleep(10 * time.Second)
		}
	}
	time.Sleep(1500 * time.Millisecond) // a lag sample or two

	dom := headless(t, browser, "http://"+adminAddr+"/", "--dump-dom")
	t.Logf("DOM: %d bytes", len(dom))
	require.Contains(t, dom, "<h1>tidstorage")
	rows := regexp.MustCompile(`(?s)<tr><td title="([^"]+)">([^<]+)</td><td class="tid">([0-9a-f]{16})</td><td>([^<]+)</td>`).FindAllStringSubmatch(dom, -1)
	require.Len(t, rows, 2, "one row per storage")
	for _, s := range doc.Storages {
		found := false
		for _, row := range rows {
			if row[1] == s.ID {
				found = true
				require.Equal(t, s.Published.Hex, row[3], "%s: the page shows /status's published TID", s.ID)
				require.Equal(t, s.Published.Time.UTC().Format("2006-01-02 15:04:05"), row[4])
			}
		}
		require.True(t, found, "no row for %s in %v", s.ID, rows)
	}
	require.Contains(t, dom, ">main-1<")
	require.Contains(t, dom, ">main-2<")
	require.Equal(t, 2, strings.Count(dom, `<svg class="spark"`), "a sparkline per storage")
	pin := doc.PartialPins()[0]
	require.Contains(t, dom, "Partial commit")
	require.Equal(t, 2, strings.Count(dom, fmt.Sprintf("HELD by a partial commit (pin %d)", pin.ID)), "both storages are held")
	require.Contains(t, dom, fmt.Sprintf("tidstorage accept-partial -c CONFIG --yes %d", pin.ID))
	require.NotContains(t, dom, "secret-edit", "the partial commit's description needs the token")
	require.Contains(t, dom, `id="watchers"`)
	require.Regexp(t, `<td>tidstorage backup</td><td>[0-9hms.]+ ago</td><td class="ok">ok</td>`, dom)
	require.Contains(t, dom, "redacted: no credential")

	shot := filepath.Join(t.TempDir(), "status-page.png")
	headless(t, browser, "http://"+adminAddr+"/", "--screenshot="+shot, "--window-size=1200,900")
	png, err := os.ReadFile(shot)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")), "a PNG")
	require.Greater(t, len(png), 10000)
	if dst := os.Getenv("TIDSTORAGE_SCREENSHOT"); dst != "" {
		require.NoError(t, os.WriteFile(dst, png, 0o644))
	}
}
