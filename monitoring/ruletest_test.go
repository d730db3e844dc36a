package monitoring

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v3"
)

// A rule unit test file in promtool's format ("promtool test rules",
// Prometheus' docs, "Unit testing for rules"), evaluated here with the same
// parts promtool uses: promqltest's lazy loader for the input series, the
// rules manager for the groups, and each alerting rule's active alerts at
// every eval_time. So `promtool test rules monitoring/tests/*.yaml` gives
// the same verdicts where promtool is installed.
type ruleTestFile struct {
	RuleFiles          []string        `yaml:"rule_files"`
	EvaluationInterval model.Duration  `yaml:"evaluation_interval"`
	Tests              []ruleTestGroup `yaml:"tests"`
}

type ruleTestGroup struct {
	Name            string           `yaml:"name"`
	Interval        model.Duration   `yaml:"interval"`
	InputSeries     []inputSeries    `yaml:"input_series"`
	AlertRuleTests  []alertTestCase  `yaml:"alert_rule_test"`
	PromqlExprTests []promqlTestCase `yaml:"promql_expr_test"`
}

type inputSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type alertTestCase struct {
	EvalTime  model.Duration `yaml:"eval_time"`
	Alertname string         `yaml:"alertname"`
	ExpAlerts []expAlert     `yaml:"exp_alerts"`
}

type expAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

type promqlTestCase struct {
	Expr       string         `yaml:"expr"`
	EvalTime   model.Duration `yaml:"eval_time"`
	ExpSamples []expSample    `yaml:"exp_samples"`
}

type expSample struct {
	Labels string  `yaml:"labels"`
	Value  float64 `yaml:"value"`
}

// loadRuleTests reads a test file strictly (an unknown field is an error,
// as with promtool) and resolves its rule files beside it.
func loadRuleTests(path string) (*ruleTestFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	var f ruleTestFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.EvaluationInterval == 0 {
		f.EvaluationInterval = model.Duration(time.Minute)
	}
	for i, rf := range f.RuleFiles {
		if !filepath.IsAbs(rf) {
			f.RuleFiles[i] = filepath.Join(filepath.Dir(path), rf)
		}
	}
	return &f, nil
}

// firing is one alert as the test compares it: its labels and annotations.
type firing struct{ labels, annotations labels.Labels }

func (f firing) String() string { return f.labels.String() + " " + f.annotations.String() }

func sortFirings(fs []firing) {
	sort.Slice(fs, func(i, j int) bool {
		if c := labels.Compare(fs[i].labels, fs[j].labels); c != 0 {
			return c < 0
		}
		return labels.Compare(fs[i].annotations, fs[j].annotations) < 0
	})
}

// run evaluates one test group; it returns the failures.
func (tg *ruleTestGroup) run(f *ruleTestFile) []string {
	interval := tg.Interval
	if interval == 0 {
		interval = f.EvaluationInterval
	}
	evalInterval := time.Duration(f.EvaluationInterval)
	var load strings.Builder
	fmt.Fprintf(&load, "load %s\n", interval)
	for _, s := range tg.InputSeries {
		fmt.Fprintf(&load, "  %s %s\n", s.Series, s.Values)
	}
	suite, err := promqltest.NewLazyLoader(load.String(), promqltest.LazyLoaderOpts{EnableAtModifier: true, EnableNegativeOffset: true})
	if err != nil {
		return []string{"input series: " + err.Error()}
	}
	defer suite.Close()
	suite.SubqueryInterval = evalInterval

	m := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(suite.QueryEngine(), suite.Storage()),
		AppendableV2: suite.Storage(),
		Context:      context.Background(),
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
		Logger:       promslog.NewNopLogger(),
	})
	groupsMap, errs := m.LoadGroups(time.Duration(interval), labels.EmptyLabels(), "", nil, false, f.RuleFiles...)
	if errs != nil {
		var out []string
		for _, e := range errs {
			out = append(out, "rule files: "+e.Error())
		}
		return out
	}
	var groups []*rules.Group
	for _, g := range groupsMap {
		groups = append(groups, g)
		for _, r := range g.Rules() {
			if ar, ok := r.(*rules.AlertingRule); ok {
				ar.SetRestored(true) // as promtool: the ALERTS series exist from the start
			}
		}
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].Name() < groups[j].Name() })

	// The alert tests by eval_time, checked at the evaluation that covers
	// it (ts <= eval_time < ts + evaluation_interval), as promtool does.
	byTime := map[time.Duration][]alertTestCase{}
	var times []time.Duration
	var maxT time.Duration
	for _, a := range tg.AlertRuleTests {
		t := time.Duration(a.EvalTime)
		if _, ok := byTime[t]; !ok {
			times = append(times, t)
		}
		byTime[t] = append(byTime[t], a)
		maxT = max(maxT, t)
	}
	for _, p := range tg.PromqlExprTests {
		maxT = max(maxT, time.Duration(p.EvalTime))
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })

	var fails []string
	mint := time.Unix(0, 0).UTC()
	next := 0
	for ts := mint; !ts.After(mint.Add(maxT)); ts = ts.Add(evalInterval) {
		var evalErrs []string
		suite.WithSamplesTill(ts, func(err error) {
			if err != nil {
				evalErrs = append(evalErrs, err.Error())
				return
			}
			for _, g := range groups {
				g.Eval(suite.Context(), ts)
				for _, r := range g.Rules() {
					if r.LastError() != nil {
						evalErrs = append(evalErrs, fmt.Sprintf("rule %s at %s: %v", r.Name(), ts.Sub(mint), r.LastError()))
					}
				}
			}
		})
		if len(evalErrs) > 0 {
			return append(fails, evalErrs...)
		}
		for next < len(times) && ts.Sub(mint) <= times[next] && times[next] < ts.Add(evalInterval).Sub(mint) {
			for _, tc := range byTime[times[next]] {
				if msg := checkAlerts(groups, tc); msg != "" {
					fails = append(fails, msg)
				}
			}
			next++
		}
	}
	for _, tc := range tg.PromqlExprTests {
		if msg := checkExpr(suite, mint, tc); msg != "" {
			fails = append(fails, msg)
		}
	}
	return fails
}

// checkAlerts compares the firing alerts of tc.Alertname with tc's.
func checkAlerts(groups []*rules.Group, tc alertTestCase) string {
	var got, want []firing
	known := false
	for _, g := range groups {
		for _, r := range g.Rules() {
			ar, ok := r.(*rules.AlertingRule)
			if !ok || ar.Name() != tc.Alertname {
				continue
			}
			known = true
			for _, a := range ar.ActiveAlerts() {
				if a.State == rules.StateFiring {
					got = append(got, firing{a.Labels.Copy(), a.Annotations.Copy()})
				}
			}
		}
	}
	if !known {
		return fmt.Sprintf("alertname %s: no such alerting rule", tc.Alertname)
	}
	for _, a := range tc.ExpAlerts {
		l := map[string]string{labels.AlertName: tc.Alertname}
		for k, v := range a.ExpLabels {
			l[k] = v
		}
		want = append(want, firing{labels.FromMap(l), labels.FromMap(a.ExpAnnotations)})
	}
	sortFirings(got)
	sortFirings(want)
	if len(got) == len(want) {
		same := true
		for i := range got {
			same = same && labels.Equal(got[i].labels, want[i].labels) && labels.Equal(got[i].annotations, want[i].annotations)
		}
		if same {
			return ""
		}
	}
	return fmt.Sprintf("alertname %s at %s:\n  want %v\n  got  %v", tc.Alertname, time.Duration(tc.EvalTime), want, got)
}

// checkExpr evaluates tc.Expr at its eval_time and compares the samples.
func checkExpr(suite *promqltest.LazyLoader, mint time.Time, tc promqlTestCase) string {
	ctx := suite.Context()
	q, err := suite.QueryEngine().NewInstantQuery(ctx, suite.Queryable(), nil, tc.Expr, mint.Add(time.Duration(tc.EvalTime)))
	if err != nil {
		return fmt.Sprintf("expr %q: %v", tc.Expr, err)
	}
	res := q.Exec(ctx)
	if res.Err != nil {
		return fmt.Sprintf("expr %q: %v", tc.Expr, res.Err)
	}
	var got []string
	switch v := res.Value.(type) {
	case promql.Vector:
		for _, s := range v {
			got = append(got, fmt.Sprintf("%s %g", s.Metric.String(), s.F))
		}
	case promql.Scalar:
		got = append(got, fmt.Sprintf("{} %g", v.V))
	default:
		return fmt.Sprintf("expr %q: not a vector or scalar", tc.Expr)
	}
	var want []string
	for _, s := range tc.ExpSamples {
		l, err := parser.NewParser(parser.Options{}).ParseMetric(s.Labels)
		if err != nil {
			return fmt.Sprintf("expr %q: labels %q: %v", tc.Expr, s.Labels, err)
		}
		want = append(want, fmt.Sprintf("%s %g", l.String(), s.Value))
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		return fmt.Sprintf("expr %q at %s:\n  want %v\n  got  %v", tc.Expr, time.Duration(tc.EvalTime), want, got)
	}
	return ""
}
