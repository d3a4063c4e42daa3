// Package deploy_test checks the alert rules and the Grafana dashboard shipped beside macaque.yml:
// every rule passes Prometheus's own rule checks (what promtool check rules does), and every
// query of both names only metrics macaque exports, as listed in metrics.txt (which a test of
// the root module keeps in step with the real registry). It is a module of its own so that the
// daemon does not depend on Prometheus itself.
package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	promqlengine "github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"
	"go.yaml.in/yaml/v3"
)

// exported reads metrics.txt: every metric macaque exports, by name, with its type.
func exported(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("metrics.txt")
	if err != nil {
		t.Fatalf("%v (generate it at the repository root: go test -run TestMetricsFile ./internal/telemetry -update-metrics)", err)
	}
	defer func() { _ = f.Close() }() // only read: nothing to lose
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, typ, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("metrics.txt: line %q is not \"name type\"", line)
		}
		out[name] = typ
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 || out["macaque_kills_total"] != "counter" {
		t.Fatalf("metrics.txt lists %d metrics, and not macaque_kills_total as a counter", len(out))
	}
	return out
}

// series says whether a query may select name: an exported metric, or a series a histogram or
// summary exports under its name plus a suffix.
func series(metrics map[string]string, name string) bool {
	if _, ok := metrics[name]; ok {
		return true
	}
	for suffix, types := range map[string][]string{"_bucket": {"histogram"}, "_sum": {"histogram", "summary"}, "_count": {"histogram", "summary"}} {
		if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(types, metrics[base]) {
			return true
		}
	}
	return false
}

// promql parses PromQL as Prometheus does.
var promql = parser.NewParser(parser.Options{})

// metricNames parses expr and returns the metric name of every selector in it; a selector
// without one is an error, since it could select anything.
func metricNames(expr string) ([]string, error) {
	node, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var bad error
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if vs.Name == "" {
			bad = fmt.Errorf("selector %s names no metric", vs)
			return nil
		}
		names = append(names, vs.Name)
		return nil
	})
	return names, bad
}

// checkQuery fails t unless expr parses and selects only metrics macaque exports.
func checkQuery(t *testing.T, metrics map[string]string, where, expr string) {
	t.Helper()
	names, err := metricNames(expr)
	if err != nil {
		t.Errorf("%s: %q: %v", where, expr, err)
		return
	}
	if len(names) == 0 {
		t.Errorf("%s: %q selects no metric", where, expr)
	}
	for _, n := range names {
		if !series(metrics, n) {
			t.Errorf("%s: %q selects %s, which macaque does not export (see metrics.txt)", where, expr, n)
		}
	}
}

// prometheusRule is the part of a monitoring.coreos.com/v1 PrometheusRule the test reads; its
// spec is a rule file's content.
type prometheusRule struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Spec       yaml.Node `yaml:"spec"`
}

// ruleGroups reads prometheusrule.yml and checks its spec as promtool check rules checks a
// rule file: known fields only, every expr valid PromQL, every template valid, no duplicate
// group, for/labels/annotations well formed.
func ruleGroups(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	raw, err := os.ReadFile("prometheusrule.yml")
	if err != nil {
		t.Fatal(err)
	}
	var pr prometheusRule
	if err := yaml.Unmarshal(raw, &pr); err != nil {
		t.Fatalf("prometheusrule.yml: %v", err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Fatalf("prometheusrule.yml is a %s %s, want a monitoring.coreos.com/v1 PrometheusRule", pr.APIVersion, pr.Kind)
	}
	spec, err := yaml.Marshal(&pr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(spec, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, e := range errs {
		t.Errorf("prometheusrule.yml: %v", e)
	}
	if groups == nil {
		t.FailNow()
	}
	return groups
}

// TestAlertRules checks the PrometheusRule: valid rules, queries on exported metrics only, the
// alerts the README promises, each with a severity and a summary.
func TestAlertRules(t *testing.T) {
	metrics := exported(t)
	groups := ruleGroups(t)
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			checkQuery(t, metrics, "rule "+name, r.Expr)
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: want a severity label and a summary annotation, got labels %v annotations %v", r.Alert, r.Labels, r.Annotations)
			}
		}
	}
	for _, want := range []struct{ alert, metric string }{
		{"MacaqueWorkloadNotRecovered", "macaque_unrecovered_total"},
		{"MacaqueTicksFailing", "macaque_last_successful_tick_timestamp_seconds"},
		{"MacaqueSchedulerStalled", "macaque_next_tick_timestamp_seconds"},
		{"MacaqueSlackMessagesDropped", "macaque_slack_messages_dropped_total"},
		{"MacaqueWebhookEventsDropped", "macaque_webhook_events_dropped_total"},
	} {
		found := false
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Alert == want.alert {
					found = true
					if names, _ := metricNames(r.Expr); !slices.Contains(names, want.metric) {
						t.Errorf("alert %s does not read %s: %q", want.alert, want.metric, r.Expr)
					}
				}
			}
		}
		if !found {
			t.Errorf("no alert %s among %v", want.alert, alerts)
		}
	}
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// panel is one panel of a dashboard; a row holds panels of its own.
type panel struct {
	ID      int     `json:"id"`
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// grafanaVariable matches what Grafana replaces in a query before Prometheus sees it.
var grafanaVariable = regexp.MustCompile(`\$\{?(__rate_interval|__interval|__range|[A-Za-z_][A-Za-z0-9_]*)\}?`)

// asPromQL replaces Grafana's variables in expr by what they may become: a duration for the
// built-in ranges, a regular expression for a template variable (always inside =~ "...").
func asPromQL(expr string) string {
	return grafanaVariable.ReplaceAllStringFunc(expr, func(v string) string {
		name := strings.Trim(v, "${}")
		if strings.HasPrefix(name, "__") {
			return "5m"
		}
		return ".*"
	})
}

// labelValues matches a Grafana query variable's label_values(metric, label).
var labelValues = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$`)

// TestDashboard parses dashboard.json and checks every query: valid PromQL once Grafana's
// variables are replaced, on exported metrics only; and that it shows what the README says.
func TestDashboard(t *testing.T) {
	metrics := exported(t)
	raw, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard.json: title %q, uid %q: want both", d.Title, d.UID)
	}
	var all []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	ids := map[int]bool{}
	var exprs []string
	for _, p := range all {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d is not unique", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			checkQuery(t, metrics, fmt.Sprintf("panel %q", p.Title), asPromQL(target.Expr))
			exprs = append(exprs, target.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Errorf("variable %s: query %s is neither a string nor an object", v.Name, v.Query)
			}
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: query %q: want label_values(metric, label)", v.Name, q.Query)
			continue
		}
		if !series(metrics, m[1]) {
			t.Errorf("variable %s: %q reads %s, which macaque does not export", v.Name, q.Query, m[1])
		}
	}
	for _, want := range []struct {
		what string
		re   *regexp.Regexp
	}{
		{"kills over time by outcome", regexp.MustCompile(`by \(outcome\) \(increase\(macaque_kills_total`)},
		{"recovery-time quantiles by namespace", regexp.MustCompile(`histogram_quantile\(0\.9, sum by \(namespace, le\) \(rate\(macaque_recovery_seconds_bucket`)},
		{"unrecovered workloads", regexp.MustCompile(`macaque_unrecovered_total`)},
	} {
		if !slices.ContainsFunc(exprs, want.re.MatchString) {
			t.Errorf("no panel shows %s (a query matching %s)", want.what, want.re)
		}
	}
}

// TestMetricNames checks the check itself: names a query may select, and names it may not.
func TestMetricNames(t *testing.T) {
	metrics := map[string]string{"a_total": "counter", "h_seconds": "histogram", "s_seconds": "summary"}
	tests := []struct {
		expr    string
		want    []string
		ok      bool
		invalid bool
	}{
		{expr: "rate(a_total[5m])", want: []string{"a_total"}, ok: true},
		{expr: "histogram_quantile(0.9, sum by (le) (rate(h_seconds_bucket[5m])))", want: []string{"h_seconds_bucket"}, ok: true},
		{expr: "s_seconds_sum / s_seconds_count", want: []string{"s_seconds_sum", "s_seconds_count"}, ok: true},
		{expr: "s_seconds_bucket", want: []string{"s_seconds_bucket"}}, // a summary has no buckets
		{expr: "rate(b_total[5m])", want: []string{"b_total"}},
		{expr: `{job="x"}`, invalid: true},
		{expr: "rate(a_total[5m]", invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			names, err := metricNames(tt.expr)
			if (err != nil) != tt.invalid {
				t.Fatalf("metricNames(%q) = %v, %v; want an error: %v", tt.expr, names, err, tt.invalid)
			}
			if tt.invalid {
				return
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("metricNames(%q) = %v, want %v", tt.expr, names, tt.want)
			}
			ok := true
			for _, n := range names {
				ok = ok && series(metrics, n)
			}
			if ok != tt.ok {
				t.Errorf("%q selects only exported metrics: %v, want %v", tt.expr, ok, tt.ok)
			}
		})
	}
	if got := asPromQL(`rate(x{namespace=~"$namespace",pod=~"${pod}"}[$__rate_interval])`); got != `rate(x{namespace=~".*",pod=~".*"}[5m])` {
		t.Errorf("asPromQL = %q", got)
	}
}

// annotation is one of a dashboard's annotation queries, as Grafana's Prometheus data source
// reads it.
type annotation struct {
	Name       string `json:"name"`
	Enable     bool   `json:"enable"`
	Datasource struct {
		Type string `json:"type"`
	} `json:"datasource"`
	Expr            string `json:"expr"`
	Step            string `json:"step"`
	UseValueForTime bool   `json:"useValueForTime"`
	TextFormat      string `json:"textFormat"`
}

// dashboardAnnotations reads dashboard.json's annotation queries.
func dashboardAnnotations(t *testing.T) []annotation {
	t.Helper()
	raw, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Annotations struct {
			List []annotation `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	return d.Annotations.List
}

// TestDashboardKillAnnotations checks that the dashboard marks each kill on its time series:
// an annotation query, on by default, valid on exported metrics, that Prometheus's own engine
// evaluates over scraped samples to exactly one time per kill, in milliseconds (Grafana's
// "series value as timestamp"), for the namespaces the $namespace variable selects.
func TestDashboardKillAnnotations(t *testing.T) {
	metrics := exported(t)
	var kills *annotation
	for i, a := range dashboardAnnotations(t) {
		if a.Datasource.Type != "prometheus" {
			continue
		}
		checkQuery(t, metrics, fmt.Sprintf("annotation %q", a.Name), asPromQL(a.Expr))
		if strings.Contains(a.Expr, "macaque_last_kill_timestamp_seconds") {
			kills = &dashboardAnnotations(t)[i]
		}
	}
	if kills == nil {
		t.Fatal("no annotation query reads macaque_last_kill_timestamp_seconds: the dashboard does not mark kills")
	}
	if !kills.Enable || !kills.UseValueForTime || kills.Step == "" {
		t.Errorf("annotation %q: enable %v, useValueForTime %v, step %q; want it on, placed at the value's time, with a step",
			kills.Name, kills.Enable, kills.UseValueForTime, kills.Step)
	}
	if !strings.Contains(kills.TextFormat, "{{namespace}}") {
		t.Errorf("annotation %q: text %q does not name the namespace", kills.Name, kills.TextFormat)
	}
	// Two replicas (one a former leader still exporting its last kill), scraped every 15 s:
	// shop lost pods at 90 s and 330 s, web at 200 s.
	db := promqltest.LoadedStorage(t, `
load 15s
	macaque_last_kill_timestamp_seconds{namespace="shop",pod="macaque-a"} _x5 90x9 330x20
	macaque_last_kill_timestamp_seconds{namespace="shop",pod="macaque-b"} _x10 _x5 90x20
	macaque_last_kill_timestamp_seconds{namespace="web",pod="macaque-a"} _x13 200x20
`)
	t.Cleanup(func() { _ = db.Close() })
	for _, tt := range []struct {
		namespace string // what $namespace selects, as Grafana expands it
		want      map[string][]float64
	}{
		{".*", map[string][]float64{"shop": {90e3, 330e3}, "web": {200e3}}},
		{"web", map[string][]float64{"web": {200e3}}},
	} {
		t.Run(tt.namespace, func(t *testing.T) {
			got := annotationTimes(t, db, strings.ReplaceAll(kills.Expr, "$namespace", tt.namespace))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("annotation times by namespace: %v, want %v", got, tt.want)
			}
		})
	}
}

// annotationTimes evaluates expr over the first 8 minutes of db at a step of one minute,
// as Grafana's annotation query does, and returns each series' distinct values by namespace:
// with "series value as timestamp", the times Grafana marks.
func annotationTimes(t *testing.T, db storage.Queryable, expr string) map[string][]float64 {
	t.Helper()
	engine := promqlengine.NewEngine(promqlengine.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute})
	start := time.Unix(0, 0)
	q, err := engine.NewRangeQuery(t.Context(), db, nil, expr, start, start.Add(8*time.Minute), time.Minute)
	if err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	defer q.Close()
	res := q.Exec(t.Context())
	if res.Err != nil {
		t.Fatalf("%q: %v", expr, res.Err)
	}
	m, err := res.Matrix()
	if err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	got := map[string][]float64{}
	for _, s := range m {
		ns := s.Metric.Get("namespace")
		for _, p := range s.Floats {
			if !slices.Contains(got[ns], p.F) {
				got[ns] = append(got[ns], p.F)
			}
		}
	}
	return got
}
