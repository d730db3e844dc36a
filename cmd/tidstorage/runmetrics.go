package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/tidstorage/tidstorage/config"
	"github.com/tidstorage/tidstorage/internal/atomicfile"
)

// The outcome of the backup commands (backup, verify, forget), for cron
// jobs that have no daemon to scrape: written in the Prometheus text format
// to a file that node_exporter's textfile collector reads, and optionally
// pushed to a Pushgateway (docs/admin.md, "Backup freshness"). One file
// holds the three commands' series, told apart by the "command" label: each
// run replaces its own command's series and keeps the others', and the last
// success time of a command survives its failed runs.

// runMetric names one family of the outcome.
type runMetric struct{ name, help string }

var (
	rmLastRun     = runMetric{"tidstorage_backup_last_run_timestamp_seconds", "Unix time at which the command's last run ended, successful or not."}
	rmLastSuccess = runMetric{"tidstorage_backup_last_success_timestamp_seconds", "Unix time at which the command's last successful run ended (kept across failed runs; absent before the first success)."}
	rmSuccess     = runMetric{"tidstorage_backup_last_run_success", "1 if the command's last run succeeded (exit status 0), else 0."}
	rmDuration    = runMetric{"tidstorage_backup_last_duration_seconds", "Duration of the command's last run."}
	rmBytes       = runMetric{"tidstorage_backup_last_bytes", "Bytes of the command's last run: backup: data bytes written to the repositories; forget: bytes removed (not exported for verify)."}
	rmSets        = runMetric{"tidstorage_backup_last_sets", "Backup sets of the command's last run: backup: sets written (0 when nothing was new); verify: sets checked; forget: sets removed."}
	rmErrors      = runMetric{"tidstorage_backup_last_errors", "Errors of the command's last run: backup and forget: 1 if it failed; verify: damaged sets and unreadable repositories."}
)

// runMetrics are the families in the order they are written.
var runMetrics = []runMetric{rmLastRun, rmLastSuccess, rmSuccess, rmDuration, rmBytes, rmSets, rmErrors}

// runOutcome is what one run reports. bytes < 0 is not exported.
type runOutcome struct {
	command    string
	start, end time.Time
	ok         bool
	bytes      int64
	sets       int
	errors     int
}

// runRecorder collects a run's outcome and writes it where its flags say.
type runRecorder struct {
	file, pushURL *string
	out           runOutcome
}

// addRunMetricsFlags registers --metrics-file and --pushgateway.
func addRunMetricsFlags(fs *flag.FlagSet, command string) *runRecorder {
	return &runRecorder{
		file:    fs.String("metrics-file", "", "write this run's outcome in the Prometheus text format to `FILE` (node_exporter's textfile collector; default: backup_metrics_file of -c FILE)"),
		pushURL: fs.String("pushgateway", "", "also push this run's outcome to the Pushgateway at `URL` (job tidstorage_backup, grouped by instance and command)"),
		out:     runOutcome{command: command, start: time.Now(), bytes: -1},
	}
}

// use takes the configuration's default file when --metrics-file is not
// given.
func (r *runRecorder) use(cfg *config.Config) {
	if *r.file == "" && cfg != nil {
		*r.file = cfg.BackupMetricsFile
	}
}

// finishRun records the run's end with its exit status: 0 is a success, 1 a
// failure; a usage error (2) is no run and is not recorded. Problems
// writing or pushing are printed and leave the exit status alone: the
// freshness alert catches a job whose outcome is never recorded.
func (c *cli) finishRun(r *runRecorder, code int) {
	if code != 0 && code != 1 || *r.file == "" && *r.pushURL == "" {
		return
	}
	r.out.end = time.Now()
	r.out.ok = code == 0
	if !r.out.ok && r.out.errors == 0 {
		r.out.errors = 1
	}
	var lastSuccess time.Time
	if r.out.ok {
		lastSuccess = r.out.end
	}
	if *r.file != "" {
		prev, err := writeRunMetrics(*r.file, r.out)
		if err != nil {
			fmt.Fprintf(c.stderr, "tidstorage %s: metrics file: %v\n", r.out.command, err)
		}
		if lastSuccess.IsZero() {
			lastSuccess = prev
		}
	}
	if *r.pushURL != "" {
		if err := pushRunMetrics(*r.pushURL, r.out, lastSuccess); err != nil {
			fmt.Fprintf(c.stderr, "tidstorage %s: pushgateway: %v\n", r.out.command, err)
		}
	}
}

// families are the run's series, labelled command; lastSuccess zero leaves
// that family out.
func (o runOutcome) families(lastSuccess time.Time) []*dto.MetricFamily {
	secs := func(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
	vals := map[runMetric]float64{
		rmLastRun: secs(o.end), rmSuccess: b2f(o.ok), rmDuration: o.end.Sub(o.start).Seconds(),
		rmSets: float64(o.sets), rmErrors: float64(o.errors),
	}
	if !lastSuccess.IsZero() {
		vals[rmLastSuccess] = secs(lastSuccess)
	}
	if o.bytes >= 0 {
		vals[rmBytes] = float64(o.bytes)
	}
	var fams []*dto.MetricFamily
	for _, m := range runMetrics {
		v, ok := vals[m]
		if !ok {
			continue
		}
		fams = append(fams, &dto.MetricFamily{Name: proto.String(m.name), Help: proto.String(m.help), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Label: []*dto.LabelPair{{Name: proto.String("command"), Value: proto.String(o.command)}},
				Gauge: &dto.Gauge{Value: proto.Float64(v)}}}})
	}
	return fams
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// writeRunMetrics replaces o.command's series in the file at path, keeping
// the other commands' and, after a failed run, the last success time. The
// file is replaced whole (atomicfile: a collector never reads half of it),
// under an exclusive lock on path+".lock" so that two commands ending at
// once do not lose each other's series. It returns the command's last
// success time before this run.
func writeRunMetrics(path string, o runOutcome) (prevSuccess time.Time, err error) {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return time.Time{}, err
	}
	defer unlock()
	old, err := readMetricsFile(path)
	if err != nil {
		return time.Time{}, err
	}
	if v, ok := seriesValue(old, rmLastSuccess.name, o.command); ok {
		prevSuccess = time.Unix(0, int64(v*1e9))
	}
	last := prevSuccess
	if o.ok {
		last = o.end
	}
	merged := map[string]*dto.MetricFamily{}
	for name, f := range old {
		kept := f.Metric[:0]
		for _, m := range f.Metric {
			if labelValue(m, "command") != o.command {
				kept = append(kept, m)
			}
		}
		if f.Metric = kept; len(kept) > 0 {
			merged[name] = f
		}
	}
	for _, f := range o.families(last) {
		if m, ok := merged[f.GetName()]; ok {
			m.Metric = append(m.Metric, f.Metric...)
		} else {
			merged[f.GetName()] = f
		}
	}
	names := make([]string, 0, len(merged))
	for name := range merged {
		names = append(names, name)
	}
	sort.Strings(names)
	err = atomicfile.Write(path, 0o644, func(w io.Writer) error {
		for _, name := range names {
			f := merged[name]
			sort.Slice(f.Metric, func(i, j int) bool { return labelValue(f.Metric[i], "command") < labelValue(f.Metric[j], "command") })
			if _, err := expfmt.MetricFamilyToText(w, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return prevSuccess, fmt.Errorf("writing %s: %w", path, err)
	}
	return prevSuccess, nil
}

// readMetricsFile parses a metrics file; a missing one is empty.
func readMetricsFile(path string) (map[string]*dto.MetricFamily, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]*dto.MetricFamily{}, nil
	}
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: not in the Prometheus text format: %w", path, err)
	}
	return fams, nil
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// seriesValue is the value of family name's series for command.
func seriesValue(fams map[string]*dto.MetricFamily, name, command string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.Metric {
		if labelValue(m, "command") == command {
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Untyped != nil:
				return m.Untyped.GetValue(), true
			}
		}
	}
	return 0, false
}

// lockFile takes an exclusive flock on path (created if missing), waiting
// up to 30 s for another command to write its outcome.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pushRunMetrics sends the run's series to a Pushgateway with POST: in the
// group job="tidstorage_backup", instance=<host name>, command=<command>,
// only the families pushed are replaced, so a failed run that does not know
// the last success time leaves the one pushed before.
func pushRunMetrics(url string, o runOutcome, lastSuccess time.Time) error {
	fams := o.families(lastSuccess)
	for _, f := range fams {
		for _, m := range f.Metric {
			m.Label = nil // the grouping key carries command
		}
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return push.New(url, "tidstorage_backup").Grouping("instance", host).Grouping("command", o.command).
		Client(&http.Client{Timeout: 30 * time.Second}).
		Gatherer(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return fams, nil })).AddContext(ctx)
}

// lastRuns reads the commands' last runs from a metrics file, for status.
type lastRun struct {
	command          string
	lastRun, success time.Time // zero if unknown
	ok               bool
}

func readLastRuns(path string) ([]lastRun, error) {
	fams, err := readMetricsFile(path)
	if err != nil {
		return nil, err
	}
	var runs []lastRun
	for _, cmd := range []string{"backup", "verify", "forget"} {
		r := lastRun{command: cmd}
		v, ok := seriesValue(fams, rmLastRun.name, cmd)
		if !ok {
			continue
		}
		r.lastRun = time.Unix(0, int64(v*1e9))
		if v, ok := seriesValue(fams, rmLastSuccess.name, cmd); ok {
			r.success = time.Unix(0, int64(v*1e9))
		}
		v, _ = seriesValue(fams, rmSuccess.name, cmd)
		r.ok = v == 1
		runs = append(runs, r)
	}
	return runs, nil
}

// printLastRuns is status's "Backups" line: the age of each command's last
// success, and its last run when that failed.
func printLastRuns(w io.Writer, path string, now time.Time) {
	runs, err := readLastRuns(path)
	if err != nil {
		fmt.Fprintf(w, "\nBackups: cannot read %s: %v\n", path, err)
		return
	}
	if len(runs) == 0 {
		fmt.Fprintf(w, "\nBackups (%s): no run recorded yet\n", path)
		return
	}
	fmt.Fprintf(w, "\nBackups (%s):\n", path)
	for _, r := range runs {
		var b strings.Builder
		fmt.Fprintf(&b, "  %-7s ", r.command)
		if r.success.IsZero() {
			b.WriteString("never succeeded")
		} else {
			fmt.Fprintf(&b, "last success %s ago (%s UTC)", now.Sub(r.success).Round(time.Second), r.success.UTC().Format("2006-01-02 15:04:05"))
		}
		if !r.ok {
			fmt.Fprintf(&b, "; !! last run FAILED %s ago", now.Sub(r.lastRun).Round(time.Second))
		}
		fmt.Fprintln(w, b.String())
	}
}
