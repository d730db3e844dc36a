package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// metricsOf parses the metrics file and returns each command's value of
// family name (tidstorage_backup_ + name).
func metricsOf(t *testing.T, path, name string) map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	require.NoError(t, err, string(b))
	out := map[string]float64{}
	f, ok := fams["tidstorage_backup_"+name]
	if !ok {
		return out
	}
	require.Equal(t, dto.MetricType_GAUGE, f.GetType())
	require.NotEmpty(t, f.GetHelp())
	for _, m := range f.Metric {
		out[labelValue(m, "command")] = m.GetGauge().GetValue()
	}
	return out
}

// backup, verify and forget write their outcome to one file: each run
// replaces its command's series and keeps the others'; a failed run keeps
// the last success time and says it failed; a dry-run forget and a usage
// error record nothing. The configuration's backup_metrics_file is the
// default of --metrics-file.
func TestBackupMetricsFile(t *testing.T) {
	s := newGoSite(t)
	mf := filepath.Join(s.dir, "textfile", "tidstorage.prom")
	require.NoError(t, os.MkdirAll(filepath.Dir(mf), 0o755))
	cfg, err := os.ReadFile(s.cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(s.cfg, append([]byte("backup_metrics_file = \"textfile/tidstorage.prom\"\n"), cfg...), 0o644))

	before := time.Now()
	s.backup(t, 0x0100)
	now := float64(time.Now().UnixNano()) / 1e9
	require.Equal(t, map[string]float64{"backup": 1}, metricsOf(t, mf, "last_run_success"))
	require.Equal(t, map[string]float64{"backup": 1}, metricsOf(t, mf, "last_sets"))
	require.Equal(t, map[string]float64{"backup": 0}, metricsOf(t, mf, "last_errors"))
	st, err := os.Stat(s.fs)
	require.NoError(t, err)
	require.Equal(t, float64(st.Size()), metricsOf(t, mf, "last_bytes")["backup"], "a full backup of the whole file")
	success := metricsOf(t, mf, "last_success_timestamp_seconds")["backup"]
	require.InDelta(t, now, success, now-float64(before.UnixNano())/1e9+0.01)
	require.Equal(t, success, metricsOf(t, mf, "last_run_timestamp_seconds")["backup"])
	require.Less(t, metricsOf(t, mf, "last_duration_seconds")["backup"], 30.0)

	// Nothing new: a success that wrote no set.
	s.backup(t, 0x0100)
	require.Equal(t, map[string]float64{"backup": 0}, metricsOf(t, mf, "last_sets"))
	require.Equal(t, 0.0, metricsOf(t, mf, "last_bytes")["backup"])
	s.commit(t, 0x0200)
	s.backup(t, 0x0200)

	r := run(t, "verify", "-c", s.cfg)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, map[string]float64{"backup": 1, "verify": 1}, metricsOf(t, mf, "last_run_success"))
	require.Equal(t, 2.0, metricsOf(t, mf, "last_sets")["verify"], "sets checked")
	require.NotContains(t, metricsOf(t, mf, "last_bytes"), "verify")
	okBackup := metricsOf(t, mf, "last_success_timestamp_seconds")["backup"]
	okVerify := metricsOf(t, mf, "last_success_timestamp_seconds")["verify"]

	// A damaged set: verify fails, its last success stays.
	s.damageDelta(t)
	r = run(t, "verify", "-c", s.cfg)
	require.Equal(t, 1, r.code)
	require.Equal(t, map[string]float64{"backup": 1, "verify": 0}, metricsOf(t, mf, "last_run_success"))
	require.Equal(t, 1.0, metricsOf(t, mf, "last_errors")["verify"])
	require.Equal(t, okVerify, metricsOf(t, mf, "last_success_timestamp_seconds")["verify"])
	require.Greater(t, metricsOf(t, mf, "last_run_timestamp_seconds")["verify"], okVerify)

	// A failed backup (the Data.fs is gone): the same.
	require.NoError(t, os.Rename(s.fs, s.fs+".away"))
	r = run(t, "backup", "-c", s.cfg, "--progress", "0", "--tid", "main=0000000000000300")
	require.Equal(t, 1, r.code)
	require.Equal(t, 0.0, metricsOf(t, mf, "last_run_success")["backup"])
	require.Equal(t, okBackup, metricsOf(t, mf, "last_success_timestamp_seconds")["backup"])
	require.NoError(t, os.Rename(s.fs+".away", s.fs))

	// A usage error is no run; a dry-run forget removes nothing: neither is
	// recorded.
	r = run(t, "forget", "-c", s.cfg, "--keep", "0", "--yes")
	require.Equal(t, 2, r.code)
	r = run(t, "forget", "-c", s.cfg, "--keep", "1")
	require.Equal(t, 0, r.code, r.stderr)
	require.NotContains(t, metricsOf(t, mf, "last_run_success"), "forget")

	// --metrics-file names another file: the configuration's is left alone.
	other := filepath.Join(s.dir, "other.prom")
	r = run(t, "forget", "-c", s.cfg, "--keep", "1", "--yes", "--metrics-file", other)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, map[string]float64{"forget": 1}, metricsOf(t, other, "last_run_success"))
	require.Equal(t, map[string]float64{"forget": 0}, metricsOf(t, other, "last_sets"), "one full chain: nothing to forget")
	require.NotContains(t, metricsOf(t, mf, "last_run_success"), "forget")
}

// Two commands ending at once both keep their series (the file is
// rewritten under a lock).
func TestBackupMetricsFileConcurrentWriters(t *testing.T) {
	mf := filepath.Join(t.TempDir(), "t.prom")
	var wg sync.WaitGroup
	for _, cmd := range []string{"backup", "verify", "forget"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				now := time.Now()
				_, err := writeRunMetrics(mf, runOutcome{command: cmd, start: now, end: now, ok: i%2 == 0, bytes: -1})
				require.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	require.Len(t, metricsOf(t, mf, "last_run_timestamp_seconds"), 3)
	require.Len(t, metricsOf(t, mf, "last_success_timestamp_seconds"), 3)
}

// --pushgateway POSTs the run's series to the group job/instance/command
// (a Pushgateway replaces only the families pushed, so the last success
// time it holds survives a failed run's push). The Pushgateway is an
// httptest server that records what it is sent.
func TestBackupMetricsPushgateway(t *testing.T) {
	type req struct{ method, path, body string }
	var (
		mu     sync.Mutex
		reqs   []req
		refuse atomic.Bool
	)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() {
			http.Error(w, "nope", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, req{r.Method, r.URL.Path, string(b)})
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer gw.Close()
	s := newGoSite(t)
	s.backup(t, 0x0100, "--pushgateway", gw.URL)
	host, err := os.Hostname()
	require.NoError(t, err)
	mu.Lock()
	got := append([]req(nil), reqs...)
	mu.Unlock()
	require.Len(t, got, 1)
	require.Equal(t, http.MethodPost, got[0].method)
	// The grouping key, in whatever order the client writes it.
	parts := strings.Split(strings.TrimPrefix(got[0].path, "/metrics/"), "/")
	require.Len(t, parts, 6, got[0].path)
	key := map[string]string{}
	for i := 0; i+1 < len(parts); i += 2 {
		key[parts[i]] = parts[i+1]
	}
	require.Equal(t, map[string]string{"job": "tidstorage_backup", "instance": host, "command": "backup"}, key, got[0].path)
	// Every family, without the command label: the grouping key carries it.
	dec := expfmt.NewDecoder(strings.NewReader(got[0].body), expfmt.NewFormat(expfmt.TypeProtoDelim))
	var names []string
	for {
		var f dto.MetricFamily
		if err := dec.Decode(&f); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		names = append(names, f.GetName())
		require.Len(t, f.Metric, 1)
		require.Empty(t, f.Metric[0].Label, f.GetName())
	}
	require.Len(t, names, len(runMetrics))

	// A Pushgateway that refuses: the backup still succeeds, the error is
	// printed.
	refuse.Store(true)
	s.commit(t, 0x0200)
	r := run(t, "backup", "-c", s.cfg, "--progress", "0", "--tid", "main=0000000000000200", "--pushgateway", gw.URL)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stderr, "tidstorage backup: pushgateway:")
}

// status ends with the backup commands' last runs when it can read the
// metrics file.
func TestStatusShowsLastBackup(t *testing.T) {
	_, srv := startAdmin(t)
	mf := filepath.Join(t.TempDir(), "t.prom")
	now := time.Now()
	_, err := writeRunMetrics(mf, runOutcome{command: "backup", start: now.Add(-3*time.Hour - time.Minute), end: now.Add(-3 * time.Hour), ok: true, bytes: 10})
	require.NoError(t, err)
	_, err = writeRunMetrics(mf, runOutcome{command: "verify", start: now.Add(-time.Hour - time.Minute), end: now.Add(-time.Hour), ok: false, errors: 1, bytes: -1})
	require.NoError(t, err)
	r := run(t, "status", "-a", srv.URL, "--token-file", tokenFile(t), "--metrics-file", mf)
	require.Equal(t, exitPartial, r.code, r.stderr)
	require.Contains(t, r.stdout, "Backups ("+mf+"):")
	require.Regexp(t, `backup  last success 3h0m\ds ago \(`, r.stdout)
	require.Contains(t, r.stdout, "verify  never succeeded; !! last run FAILED 1h0m")

	r = run(t, "status", "-a", srv.URL, "--token-file", tokenFile(t), "--metrics-file", filepath.Join(t.TempDir(), "none.prom"))
	require.Contains(t, r.stdout, "no run recorded yet")
	r = run(t, "status", "-a", srv.URL, "--token-file", tokenFile(t))
	require.NotContains(t, r.stdout, "Backups")
}

// Every family of the metrics file is documented (docs/admin.md, "Backup
// freshness").
func TestBackupMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/admin.md")
	require.NoError(t, err)
	for _, m := range runMetrics {
		require.Contains(t, string(doc), "| `"+m.name+"` |")
	}
}
