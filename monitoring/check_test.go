package monitoring

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
)

var (
	ruleFiles  = []string{"alerts.yaml", "rules.yaml"}
	promParser = parser.NewParser(parser.Options{})
)

// loadRules parses the rule files as Prometheus does (strictly: unknown
// fields are errors), every expression with the PromQL parser.
func loadRules(t *testing.T) []rulefmt.Rule {
	t.Helper()
	var out []rulefmt.Rule
	for _, f := range ruleFiles {
		groups, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, promParser, slog.New(slog.DiscardHandler))
		require.Empty(t, errs, "%s", f)
		require.NotEmpty(t, groups.Groups, f)
		for _, g := range groups.Groups {
			out = append(out, g.Rules...)
		}
	}
	return out
}

// expression is one PromQL query of the mixin and where it comes from.
type expression struct{ where, expr string }

func ruleExpressions(t *testing.T) []expression {
	var out []expression
	for _, r := range loadRules(t) {
		name := r.Alert
		if name == "" {
			name = r.Record
		}
		out = append(out, expression{"rule " + name, r.Expr})
	}
	return out
}

// Every alert is documented and labelled the same way: a severity, a
// summary, and a runbook_url naming its paragraph of docs/admin.md.
func TestAlertsAreDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/admin.md")
	require.NoError(t, err)
	headings := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(doc)))
	for sc.Scan() {
		if h, ok := strings.CutPrefix(sc.Text(), "#### "); ok {
			headings[strings.ToLower(strings.TrimSpace(h))] = true
		}
	}
	n := 0
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			continue
		}
		n++
		require.Regexp(t, `^Tidstorage[A-Z][A-Za-z]+$`, r.Alert)
		require.Contains(t, []string{"warning", "critical"}, r.Labels["severity"], r.Alert)
		require.NotEmpty(t, r.Annotations["summary"], r.Alert)
		anchor := strings.ToLower(r.Alert)
		require.Equal(t, "docs/admin.md#"+anchor, r.Annotations["runbook_url"], r.Alert)
		require.True(t, headings[anchor], "docs/admin.md has no runbook heading \"#### %s\"", r.Alert)
		for _, k := range []string{"summary"} {
			require.NotContains(t, r.Annotations[k], "{{ $labels.client", "%s: no label identifies a client", r.Alert)
		}
	}
	require.GreaterOrEqual(t, n, 15)
}

// dashboard is the part of Grafana's JSON model the checks read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Inputs []json.RawMessage `json:"__inputs"`
}

type panel struct {
	ID         int                       `json:"id"`
	Type       string                    `json:"type"`
	Title      string                    `json:"title"`
	Datasource json.RawMessage           `json:"datasource"`
	GridPos    *struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("dashboard.json")
	require.NoError(t, err)
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	require.NoError(t, dec.Decode(&d))
	return d
}

func (d dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// grafanaVars are the dashboard's variables and Grafana's own, replaced by
// something PromQL parses before a query is checked.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
	"${instance:regex}", ".*", "$instance", ".*", "${instance}", ".*", "$job", ".*")

// labelValues reads Grafana's label_values(selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_]+)\)$`)

func dashboardExpressions(t *testing.T) []expression {
	d := loadDashboard(t)
	var out []expression
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out = append(out, expression{fmt.Sprintf("panel %d %q %s", p.ID, p.Title, tg.RefID), grafanaVars.Replace(tg.Expr)})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(v.Query, &q) != nil {
			_ = json.Unmarshal(v.Query, &q.Query)
		}
		m := labelValues.FindStringSubmatch(q.Query)
		require.NotNil(t, m, "variable %s: label_values(selector, label) expected, got %q", v.Name, q.Query)
		out = append(out, expression{"variable " + v.Name, grafanaVars.Replace(m[1])})
	}
	return out
}

// The dashboard imports as is: a uid, a datasource variable every panel
// uses (no __inputs to fill), unique panel ids, every panel placed, every
// query given, and every query parses as PromQL.
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	require.NotEmpty(t, d.UID)
	require.NotEmpty(t, d.Title)
	require.GreaterOrEqual(t, d.SchemaVersion, 36)
	require.Empty(t, d.Inputs, "no import-time inputs: the datasource is a variable")
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Name == "datasource" {
			hasDS = true
		}
	}
	require.True(t, hasDS, "a datasource variable named datasource")
	ids := map[int]bool{}
	titles := map[string]bool{}
	for _, p := range d.allPanels() {
		require.False(t, ids[p.ID], "panel id %d used twice", p.ID)
		ids[p.ID] = true
		titles[p.Title] = true
		require.NotNil(t, p.GridPos, "panel %d %q has no gridPos", p.ID, p.Title)
		if p.Type == "row" {
			continue
		}
		require.JSONEq(t, `{"type":"prometheus","uid":"${datasource}"}`, string(p.Datasource), "panel %d %q", p.ID, p.Title)
		require.NotEmpty(t, p.Targets, "panel %d %q has no query", p.ID, p.Title)
		for _, tg := range p.Targets {
			require.NotEmpty(t, tg.Expr, "panel %d %q", p.ID, p.Title)
		}
	}
	// What the dashboard must show (docs/admin.md, "Monitoring").
	for _, want := range []string{"Published point age", "Publication lag", "Commits per second", "In flight, held, partial, unaccounted",
		"Blind connections", "Fleet links", "Fleet lag", "History watchers", "Journal size", "Backup freshness", "Archive lag"} {
		require.True(t, titles[want], "no panel titled %q", want)
	}
	for _, e := range dashboardExpressions(t) {
		_, err := promParser.ParseExpr(e.expr)
		require.NoError(t, err, "%s: %s", e.where, e.expr)
	}
}

// metricNames are the metric names an expression selects.
func metricNames(t *testing.T, e expression) []string {
	t.Helper()
	expr, err := promParser.ParseExpr(e.expr)
	require.NoError(t, err, "%s: %s", e.where, e.expr)
	var names []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		require.NotEmpty(t, name, "%s: a selector without a metric name: %s", e.where, vs)
		names = append(names, name)
		return nil
	})
	return names
}

// optionalMetrics are the families a query may name although the daemon of
// the live test does not export them: each only exists when a feature is
// configured that the test does not set up (optional-metrics.txt).
func optionalMetrics(t *testing.T) map[string]string {
	b, err := os.ReadFile("optional-metrics.txt")
	require.NoError(t, err)
	out := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, why, ok := strings.Cut(line, " ")
		require.True(t, ok, "optional-metrics.txt: %q: a name, then why it is optional", line)
		out[name] = strings.TrimSpace(why)
	}
	return out
}

// builtinMetrics are series Prometheus makes itself.
var builtinMetrics = map[string]bool{"up": true, "ALERTS": true, "ALERTS_FOR_STATE": true}

// checkNames fails on any metric name of the mixin that is neither exported
// (exported: every family the live daemons and the backup commands
// export), nor recorded by rules.yaml, nor Prometheus' own, nor declared
// optional; and on an optional declaration the daemons do export (stale).
func checkNames(t *testing.T, exported map[string]bool) {
	recorded := map[string]bool{}
	for _, r := range loadRules(t) {
		if r.Record != "" {
			recorded[r.Record] = true
		}
	}
	optional := optionalMetrics(t)
	for name := range optional {
		require.False(t, exported[name], "optional-metrics.txt declares %s, which the daemon exports: remove the line", name)
	}
	used := map[string]bool{}
	for _, e := range append(ruleExpressions(t), dashboardExpressions(t)...) {
		for _, name := range metricNames(t, e) {
			used[name] = true
			if exported[name] || recorded[name] || builtinMetrics[name] {
				continue
			}
			_, ok := optional[name]
			require.True(t, ok, "%s names %s, which tidstorage does not export (and optional-metrics.txt does not declare)", e.where, name)
		}
	}
	for name := range recorded {
		require.True(t, used[name], "rules.yaml records %s, which no alert or panel uses", name)
	}
	var names []string
	for name := range used {
		names = append(names, name)
	}
	sort.Strings(names)
	t.Logf("the mixin names %d metrics: %s", len(names), strings.Join(names, " "))
}

// The rule unit tests: every file under tests/ runs, and every alert has
// a test where it fires and one where it stays silent.
func TestRuleUnitTests(t *testing.T) {
	files, err := filepath.Glob("tests/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, path := range files {
		f, err := loadRuleTests(path)
		require.NoError(t, err)
		for i := range f.Tests {
			tg := &f.Tests[i]
			t.Run(filepath.Base(path)+"/"+tg.Name, func(t *testing.T) {
				require.NotEmpty(t, tg.Name, "every test group has a name")
				for _, msg := range tg.run(f) {
					t.Error(msg)
				}
			})
			for _, a := range tg.AlertRuleTests {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	for _, r := range loadRules(t) {
		if r.Alert != "" {
			require.True(t, fires[r.Alert], "no test where %s fires", r.Alert)
			require.True(t, silent[r.Alert], "no test where %s stays silent", r.Alert)
		}
	}
}
