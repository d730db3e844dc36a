package monitoring

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/tidstorage/tidstorage/backup/fsdata"
	"github.com/tidstorage/tidstorage/backup/fsdata/fsdatatest"
	"github.com/tidstorage/tidstorage/integration/zeotest"
)

// startPushgateway builds the Prometheus Pushgateway from its module and
// runs it on a free loopback port; it returns its URL.
func startPushgateway(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pushgateway")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/prometheus/pushgateway").CombinedOutput()
	require.NoError(t, err, "building the pushgateway: %s", out)
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--web.listen-address="+addr)
	log := &zeotest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	url := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "pushgateway: %s", log.String())
	return url
}

// gatewayValue is the value the Pushgateway exposes for family name in
// the group job/command.
func gatewayValue(t *testing.T, url, name, command string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	host, err := os.Hostname()
	require.NoError(t, err)
	for _, m := range fams[name].GetMetric() {
		l := map[string]string{}
		for _, lp := range m.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		if l["job"] == "tidstorage_backup" && l["command"] == command && l["instance"] == host {
			require.Equal(t, dto.MetricType_GAUGE, fams[name].GetType())
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// `tidstorage backup --pushgateway URL` against a real Pushgateway: the
// run's series appear in the group job/instance/command; a failed run
// then sets last_run_success to 0 and leaves the last success time the
// Pushgateway holds, since it pushes with POST (docs/admin.md, "Backup
// freshness").
func TestBackupPushesToPushgateway(t *testing.T) {
	gw := startPushgateway(t)
	dir := t.TempDir()
	b := fsdatatest.New(fsdata.MagicFS30)
	b.Add(fsdatatest.Txn{TID: 0x0100, Recs: []fsdatatest.Rec{{OID: 0, Data: []byte("object")}}})
	dataFS := filepath.Join(dir, "Data.fs")
	require.NoError(t, os.WriteFile(dataFS, b.Bytes(), 0o644))
	cfg := filepath.Join(dir, "t.hcl")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("storage \"main\" {\n  data_fs = %q\n  repository = \"repo\"\n}\n", dataFS)), 0o644))
	backup := func() error {
		return exec.Command(tidstorageBin(t), "backup", "-c", cfg, "--progress", "0", "--tid", "main=0000000000000100", "--pushgateway", gw).Run()
	}

	require.NoError(t, backup())
	ok, found := gatewayValue(t, gw, "tidstorage_backup_last_run_success", "backup")
	require.True(t, found, "the backup's series are in its group")
	require.Equal(t, 1.0, ok)
	success, found := gatewayValue(t, gw, "tidstorage_backup_last_success_timestamp_seconds", "backup")
	require.True(t, found)
	require.InDelta(t, float64(time.Now().Unix()), success, 60)
	sets, _ := gatewayValue(t, gw, "tidstorage_backup_last_sets", "backup")
	require.Equal(t, 1.0, sets)

	require.NoError(t, os.Rename(dataFS, dataFS+".away"))
	require.Error(t, backup(), "no Data.fs: the backup fails")
	ok, _ = gatewayValue(t, gw, "tidstorage_backup_last_run_success", "backup")
	require.Equal(t, 0.0, ok)
	still, found := gatewayValue(t, gw, "tidstorage_backup_last_success_timestamp_seconds", "backup")
	require.True(t, found, "a failed run's push leaves the last success")
	require.Equal(t, success, still)
}
