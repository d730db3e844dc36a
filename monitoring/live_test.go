package monitoring

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/fleet/fleettest"
	"github.com/tidstorage/tidstorage/integration/zeotest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// tidstorageBin builds the binary of this checkout once, in the main
// module (its go.mod, as shipped).
func tidstorageBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tidstorage-monitoring-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "tidstorage")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/tidstorage")
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// daemon is a `tidstorage serve` process of a live test.
type daemon struct {
	cmd    *exec.Cmd
	admin  string
	stderr *zeotest.SyncBuffer
	done   chan struct{}
}

// serve starts `tidstorage serve` on the configuration src (written to
// dir) and waits until its admin endpoint answers.
func serve(t *testing.T, dir, name, src string) *daemon {
	t.Helper()
	cfg := filepath.Join(dir, name+".hcl")
	require.NoError(t, os.WriteFile(cfg, []byte(src), 0o644))
	admin := ""
	for line := range strings.SplitSeq(src, "\n") {
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "admin { listen = "); ok {
			admin = strings.Trim(strings.TrimSuffix(a, " }"), `"`)
		}
	}
	require.NotEmpty(t, admin, "the configuration sets admin { listen = ... } on one line")
	d := &daemon{cmd: exec.Command(tidstorageBin(t), "serve", "-c", cfg), admin: admin, stderr: &zeotest.SyncBuffer{}, done: make(chan struct{})}
	d.cmd.Stderr = d.stderr
	require.NoError(t, d.cmd.Start())
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 50*time.Millisecond, "%s did not come up: %s", name, d.stderr.String())
	return d
}

// scrape returns the metric families of the daemon's /metrics.
func (d *daemon) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + d.admin + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

func freeAddr(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", zeotest.FreePort(t)) }

// addNames adds the series names of families: a summary or histogram
// family's _sum, _count (and _bucket) too, as PromQL sees them.
func addNames(names map[string]bool, fams map[string]*dto.MetricFamily) {
	for name, f := range fams {
		names[name] = true
		switch f.GetType() {
		case dto.MetricType_SUMMARY:
			names[name+"_sum"], names[name+"_count"] = true, true
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_sum"], names[name+"_count"], names[name+"_bucket"] = true, true, true
		}
	}
}

// Every metric the mixin names is exported: by a running all-in-one
// daemon in front of a real ZEO server (after real ZODB commits through
// it), by a fleet tracker and a sidecar linked with mutual TLS, and by the
// backup commands' metrics file (the all-in-one also archives to a
// directory), or is recorded by rules.yaml, or is
// declared in optional-metrics.txt with the feature that exports it.
func TestMixinNamesOnlyExportedMetrics(t *testing.T) {
	zeo := zeotest.StartServer(t, zeotest.ServerOptions{Storages: []string{"1", "2"}})
	dir := t.TempDir()
	names := map[string]bool{}

	// All-in-one, with repositories for the backup commands.
	proxy := freeAddr(t)
	aio := serve(t, dir, "aio", zeo.SiteHCL(freeAddr(t), proxy)+fmt.Sprintf("archive {\n  url = %q\n}\n", "file://"+filepath.Join(dir, "archive")))
	zeotest.Python(t, "zodb_client.py", "--db", "a="+proxy+"/1", "--db", "b="+proxy+"/2", "commit", "--count", "3", "--touch", "a,b")
	var fams map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		fams = aio.scrape(t)
		f := fams["tidstorage_published_tid_age_seconds"]
		return f != nil && len(f.Metric) == 2
	}, 30*time.Second, 100*time.Millisecond, "the commits are published")
	addNames(names, fams)

	// The backup commands, reading the point from the status file.
	for _, args := range [][]string{{"backup", "--progress", "0"}, {"verify"}, {"forget", "--keep", "1", "--yes"}} {
		out, err := exec.Command(tidstorageBin(t), append(args, "-c", filepath.Join(dir, "aio.hcl"))...).CombinedOutput()
		require.NoError(t, err, "%v: %s", args, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "backup.prom"))
	require.NoError(t, err)
	p := expfmt.NewTextParser(model.UTF8Validation)
	backupFams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	require.NoError(t, err)
	require.Len(t, backupFams["tidstorage_backup_last_run_success"].GetMetric(), 3, "backup, verify, forget")
	addNames(names, backupFams)

	// A fleet: a tracker watching the same storages and a sidecar in front
	// of them, linked with mutual TLS (the certificate expiry metric).
	certs, err := fleettest.Write(dir)
	require.NoError(t, err)
	fleetAddr := freeAddr(t)
	storages := `  storage "1" { id = "A" }
  storage "2" { id = "B" }
}
`
	tracker := serve(t, dir, "tracker", fmt.Sprintf(`status_file = "tracker.status"
classic { listen = "127.0.0.1:0" }
admin { listen = %q }
%szeo "main" {
  upstream = %q
%s`, freeAddr(t), certs.TrackerHCL(fleetAddr), zeo.Addr, storages))
	sidecarProxy := freeAddr(t)
	sidecar := serve(t, dir, "sidecar", fmt.Sprintf(`admin { listen = %q }
tracker {
  address     = %q
  name        = "zope1"
  buffer_file = "sidecar.buffer"
  tls {
    cert_file = %q
    key_file  = %q
    ca_file   = %q
  }
}
zeo "main" {
  listen   = %q
  upstream = %q
%s`, freeAddr(t), fleetAddr, certs.SidecarCert, certs.SidecarKey, certs.CA, sidecarProxy, zeo.Addr, storages))
	zeotest.Python(t, "zodb_client.py", "--db", "a="+sidecarProxy+"/1", "--db", "b="+sidecarProxy+"/2", "commit", "--count", "2", "--touch", "a,b")
	require.Eventually(t, func() bool {
		fams = tracker.scrape(t)
		f := fams["tidstorage_fleet_sidecar_last_report_age_seconds"]
		return f != nil && len(f.Metric) == 1
	}, 30*time.Second, 100*time.Millisecond, "the sidecar reports to the tracker: %s", sidecar.stderr.String())
	addNames(names, fams)
	fams = sidecar.scrape(t)
	require.Contains(t, fams, "tidstorage_certificate_expiry_timestamp_seconds")
	addNames(names, fams)

	t.Logf("the daemons and the backup commands export %d metric names", len(names))
	checkNames(t, names)
}
