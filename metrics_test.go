package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/robfig/cron/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// scrape GETs /metrics from the real handler over m and returns every sample by series, as
// `name{label="value",...}` with the labels sorted; a histogram gives name_count, name_sum and
// name_bucket{...,le="x"}.
func scrape(t *testing.T, m *metrics) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	newHTTPHandler(m, newHealth(time.Now), discardLogger()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, s := range f.GetMetric() {
			labels := []string{}
			for _, l := range s.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := func(suffix string, extra ...string) string {
				all := append(slices.Clone(labels), extra...)
				slices.Sort(all)
				if len(all) == 0 {
					return name + suffix
				}
				return name + suffix + "{" + strings.Join(all, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key("")] = s.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key("")] = s.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := s.GetHistogram()
				out[key("_count")] = float64(h.GetSampleCount())
				out[key("_sum")] = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					out[key("_bucket", fmt.Sprintf("le=%q", fmt.Sprint(b.GetUpperBound())))] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out
}

// wantSeries checks that got has every series of want with its value.
func wantSeries(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for series, v := range want {
		g, ok := got[series]
		if !ok {
			t.Errorf("no series %s; have %v", series, macaqueSeries(got))
			continue
		}
		if g != v {
			t.Errorf("%s = %v, want %v", series, g, v)
		}
	}
}

// macaqueSeries lists macaque's own series of a scrape, to explain a failure.
func macaqueSeries(got map[string]float64) []string {
	var out []string
	for s, v := range got {
		if strings.HasPrefix(s, "macaque_") && !strings.Contains(s, "_bucket") {
			out = append(out, fmt.Sprintf("%s=%v", s, v))
		}
	}
	slices.Sort(out)
	return out
}

// TestKillerMetrics runs the killer's ticks against the fake API server and checks what
// /metrics says of them: one kills_total per report by namespace and outcome, the ticks, the
// last count of candidates, the last successful tick and the reports dropped.
func TestKillerMetrics(t *testing.T) {
	forbidden := func(r fakeapi.Request) *metav1.Status {
		if r.Method == http.MethodGet {
			return fakeapi.Forbidden("list", testNS)
		}
		return nil
	}
	broken := func(r fakeapi.Request) *metav1.Status {
		if r.Method == http.MethodGet {
			return fakeapi.InternalError("etcdserver: leader changed")
		}
		return nil
	}
	var deleted atomic.Bool // the DELETE's answer is lost, and so is the read-back after it
	deleteUnknown := func(r fakeapi.Request) *metav1.Status {
		if r.Method == http.MethodDelete {
			deleted.Store(true)
			return fakeapi.InternalError("etcdserver: request timed out")
		}
		if deleted.Load() {
			return fakeapi.InternalError("etcdserver: request timed out")
		}
		return nil
	}
	type tick struct {
		fail func(fakeapi.Request) *metav1.Status
	}
	at := func(i int) time.Time { return tick0.Add(time.Duration(i) * time.Hour) }
	tests := []struct {
		name     string
		pods     int
		dryRun   bool
		count    killCount
		ticks    []tick
		want     map[string]float64
		lastGood int // index of the last successful tick, -1 for none
	}{
		{name: "a kill", pods: 3, ticks: []tick{{}}, lastGood: 0, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="killed"}`: 1, "macaque_ticks_total": 1, "macaque_candidates": 3,
		}},
		{name: "several victims: one report each", pods: 3, count: killCount{n: 2}, ticks: []tick{{}}, lastGood: 0, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="killed"}`: 2, "macaque_ticks_total": 1, "macaque_candidates": 3,
		}},
		{name: "dry run", pods: 2, dryRun: true, ticks: []tick{{}}, lastGood: 0, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="dry-run"}`: 1, "macaque_candidates": 2,
		}},
		{name: "no candidates is a success", ticks: []tick{{}}, lastGood: 0, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="no candidates"}`: 1, "macaque_candidates": 0,
		}},
		{name: "a forbidden list is no success and keeps the last count", pods: 3, ticks: []tick{{}, {fail: forbidden}}, lastGood: 0, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="killed"}`: 1, `macaque_kills_total{namespace="shop",outcome="forbidden"}`: 1,
			"macaque_ticks_total": 2, "macaque_candidates": 3,
		}},
		{name: "an error, then a success", pods: 3, ticks: []tick{{fail: broken}, {}}, lastGood: 1, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="error"}`: 1, `macaque_kills_total{namespace="shop",outcome="killed"}`: 1,
			"macaque_ticks_total": 2,
		}},
		{name: "only errors: never a success", pods: 3, ticks: []tick{{fail: broken}, {fail: broken}}, lastGood: -1, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="error"}`: 2, "macaque_ticks_total": 2, "macaque_candidates": 0,
		}},
		{name: "unknown is no success", pods: 1, ticks: []tick{{fail: deleteUnknown}}, lastGood: -1, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="unknown"}`: 1,
		}},
		{name: "nothing dropped when the notifier keeps up", pods: 3, count: killCount{n: 2}, ticks: []tick{{}}, lastGood: 0, want: map[string]float64{
			"macaque_reports_dropped_total": 0,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t)
			for i := range tt.pods {
				srv.Add(fakeapi.Pod(testNS, fmt.Sprintf("web-%d", i), nil))
			}
			var current atomic.Pointer[func(fakeapi.Request) *metav1.Status]
			srv.Fail = func(r fakeapi.Request) *metav1.Status {
				if f := current.Load(); f != nil && *f != nil {
					return (*f)(r)
				}
				return nil
			}
			k := newTestKiller(t, srv, "", tt.dryRun)
			k.count = tt.count
			k.metrics = newMetrics([]string{testNS})
			results := make(chan []Result, 64)
			for i, tk := range tt.ticks {
				current.Store(&tk.fail)
				ticks := make(chan time.Time, 1)
				ticks <- at(i)
				close(ticks)
				done := make(chan struct{})
				go func() { k.run(t.Context(), ticks, results); close(done) }()
				recvWithin(t, done, "the killer to run its tick")
				results = make(chan []Result, cap(results))
			}
			want := map[string]float64{"macaque_ticks_total": float64(len(tt.ticks)), "macaque_last_successful_tick_timestamp_seconds": 0}
			if tt.lastGood >= 0 {
				want["macaque_last_successful_tick_timestamp_seconds"] = float64(at(tt.lastGood).Unix())
			}
			for s, v := range tt.want {
				want[s] = v
			}
			wantSeries(t, scrape(t, k.metrics), want)
		})
	}
}

// TestNamespaceOfATickWithNoVictim checks the namespace label of a report with no pod: the
// scope's namespace when it has one, empty when it has several.
func TestNamespaceOfATickWithNoVictim(t *testing.T) {
	tests := []struct {
		name  string
		scope scope
		want  string
	}{
		{"one namespace", scope{namespaces: []string{"shop"}}, `macaque_kills_total{namespace="shop",outcome="no candidates"}`},
		{"a list", scope{namespaces: []string{"shop", "web"}}, `macaque_kills_total{namespace="",outcome="no candidates"}`},
		{"every namespace", scope{all: true}, `macaque_kills_total{namespace="",outcome="no candidates"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newTestKiller(t, fakeapi.New(t), "", false)
			k.scope, k.metrics = tt.scope, newMetrics(nil)
			killOnce(t, k)
			got := scrape(t, k.metrics)
			if got[tt.want] != 1 {
				t.Errorf("%s = %v, want 1; have %v", tt.want, got[tt.want], macaqueSeries(got))
			}
		})
	}
}

// TestSchedulerMetrics checks the scheduler's timestamps: the next tick it waits for, and the
// last one it handed to the killer.
func TestSchedulerMetrics(t *testing.T) {
	start := time.Date(2026, 3, 27, 12, 0, 30, 0, time.UTC)
	clock := newStepClock(start)
	spec, err := cron.ParseStandard("*/5 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	sched := &scheduler{schedule: spec, location: time.UTC, now: clock.Now, after: clock.After,
		log: discardLogger(), metrics: newMetrics(nil)}
	ticks := make(chan time.Time, 1)
	done := make(chan struct{})
	go func() { sched.run(boundedCtx(t), ticks); close(done) }()
	defer func() { <-done }()

	first := time.Date(2026, 3, 27, 12, 5, 0, 0, time.UTC)
	clock.waitTimer(t)
	wantSeries(t, scrape(t, sched.metrics), map[string]float64{
		"macaque_next_tick_timestamp_seconds": float64(first.Unix()), "macaque_last_tick_timestamp_seconds": 0,
	})
	clock.elapse(t, first.Sub(start), 0)
	nextTickWithin(t, ticks)
	clock.waitTimer(t)
	wantSeries(t, scrape(t, sched.metrics), map[string]float64{
		"macaque_next_tick_timestamp_seconds": float64(first.Add(5 * time.Minute).Unix()), "macaque_last_tick_timestamp_seconds": float64(first.Unix()),
	})
	// The next tick waits in the slot, nobody taking it; the one after is dropped, not handed over.
	clock.elapse(t, 5*time.Minute, 0)
	clock.waitTimer(t)
	clock.elapse(t, 5*time.Minute, 0)
	clock.waitTimer(t)
	wantSeries(t, scrape(t, sched.metrics), map[string]float64{
		"macaque_last_tick_timestamp_seconds": float64(first.Add(5 * time.Minute).Unix()),
		"macaque_next_tick_timestamp_seconds": float64(first.Add(15 * time.Minute).Unix()),
	})
}

// TestNotifierCountsDrops checks that a report Slack refused is counted, and a posted one is not.
func TestNotifierCountsDrops(t *testing.T) {
	tests := []struct {
		name  string
		reply func(http.ResponseWriter)
		want  float64
	}{
		{"posted", slackOK, 0},
		{"refused", slackError("channel_not_found"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := newSlackStub(t, tt.reply)
			n := newTestNotifier(stub, &fakeAfter{})
			n.metrics = newMetrics(nil)
			results := make(chan []Result, 1)
			results <- []Result{killed}
			close(results)
			done := make(chan struct{})
			go func() { n.run(t.Context(), results, time.Second); close(done) }()
			recvWithin(t, done, "the notifier to post")
			wantSeries(t, scrape(t, n.metrics), map[string]float64{"macaque_slack_messages_dropped_total": tt.want})
		})
	}
}

// TestRecoveryMetrics checks the methods the recovery verdict calls: one observation per stage
// reached, in seconds, and a count of workloads not recovered, which starts at 0 for each
// named namespace so that an alert on its increase sees the first one.
func TestRecoveryMetrics(t *testing.T) {
	m := newMetrics([]string{"shop", "web"})
	before := scrape(t, m)
	wantSeries(t, before, map[string]float64{`macaque_unrecovered_total{namespace="shop"}`: 0, `macaque_unrecovered_total{namespace="web"}`: 0})

	m.recovered("shop", stageCreated, 300*time.Millisecond)
	m.recovered("shop", stageReady, 4100*time.Millisecond)
	m.recovered("shop", stageFullStrength, 4100*time.Millisecond)
	m.recovered("shop", stageCreated, 700*time.Millisecond)
	m.notRecovered("web")
	m.notRecovered("other")
	wantSeries(t, scrape(t, m), map[string]float64{
		`macaque_recovery_seconds_count{namespace="shop",stage="created"}`:                 2,
		`macaque_recovery_seconds_sum{namespace="shop",stage="created"}`:                   1,
		`macaque_recovery_seconds_bucket{le="0.5",namespace="shop",stage="created"}`:       1,
		`macaque_recovery_seconds_bucket{le="1",namespace="shop",stage="created"}`:         2,
		`macaque_recovery_seconds_count{namespace="shop",stage="ready"}`:                   1,
		`macaque_recovery_seconds_bucket{le="2.5",namespace="shop",stage="ready"}`:         0,
		`macaque_recovery_seconds_bucket{le="5",namespace="shop",stage="ready"}`:           1,
		`macaque_recovery_seconds_sum{namespace="shop",stage="full_strength"}`:             4.1,
		`macaque_recovery_seconds_bucket{le="600",namespace="shop",stage="full_strength"}`: 1,
		`macaque_unrecovered_total{namespace="shop"}`:                                      0,
		`macaque_unrecovered_total{namespace="web"}`:                                       1,
		`macaque_unrecovered_total{namespace="other"}`:                                     1,
	})
}

// TestNilMetricsRecordNothing checks that goroutines built without metrics (as most tests
// build them) can call every method.
func TestNilMetricsRecordNothing(t *testing.T) {
	var m *metrics
	m.scheduled(tick0)
	m.upcoming(tick0)
	m.listed(3)
	m.reported(killed)
	m.ticked(tick0, []Result{killed})
	m.reportDropped()
	m.slackDropped()
	m.recovered("shop", stageReady, time.Second)
	m.notRecovered("shop")
}

// updateMetrics rewrites deploy/metrics.txt from the registry: go test -run TestMetricsFile . -update-metrics
var updateMetrics = flag.Bool("update-metrics", false, "rewrite deploy/metrics.txt from the registry")

// metricsFile lists what macaque exports, for the deploy module's tests of the alert rules and
// the dashboard, which cannot import package main.
const metricsFile = "deploy/metrics.txt"

// TestMetricsFile checks that deploy/metrics.txt lists every metric the real registry exports,
// as "name type" lines sorted by name (every labelled family given a series first, since a
// family without one is not exported).
func TestMetricsFile(t *testing.T) {
	m := newMetrics([]string{"shop"})
	m.reported(killed)
	m.recovered("shop", stageReady, time.Second)
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("# The metrics macaque exports, as name and type; generated by: go test -run TestMetricsFile . -update-metrics\n")
	for _, f := range families {
		fmt.Fprintf(&b, "%s %s\n", f.GetName(), strings.ToLower(f.GetType().String()))
	}
	if *updateMetrics {
		if err := os.WriteFile(filepath.FromSlash(metricsFile), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(filepath.FromSlash(metricsFile))
	if err != nil {
		t.Fatalf("%v; generate it with: go test -run TestMetricsFile . -update-metrics", err)
	}
	if string(got) != b.String() {
		t.Errorf("%s is stale; regenerate it with: go test -run TestMetricsFile . -update-metrics\nwant:\n%s", metricsFile, b.String())
	}
	for _, name := range []string{"macaque_kills_total counter", "macaque_recovery_seconds histogram", "go_goroutines gauge", "process_resident_memory_bytes gauge"} {
		if !strings.Contains(b.String(), name+"\n") {
			t.Errorf("the registry does not export %s", name)
		}
	}
}

// seriesByNamespace gathers m's registry and counts macaque's series by their namespace label
// (a histogram is one series here, whatever its buckets).
func seriesByNamespace(t *testing.T, m *metrics) map[string]int {
	t.Helper()
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "namespace" {
					out[l.GetValue()]++
				}
			}
		}
	}
	return out
}

// TestMetricSeriesStayBounded churns 5,000 short-lived namespaces (preview environments under
// MACAQUE_NAMESPACE=*), one a minute, each with a kill and its verdict: only those used within
// the last day keep their series, and the named namespaces of the scope keep theirs forever.
func TestMetricSeriesStayBounded(t *testing.T) {
	const namespaces = 5000
	m := newMetrics([]string{"shop"})
	m.reported(Result{Time: tick0, Namespace: "shop", Outcome: OutcomeKilled})
	at := func(i int) time.Time { return tick0.Add(time.Duration(i+1) * time.Minute) }
	for i := range namespaces {
		ns := fmt.Sprintf("preview-%d", i)
		r := Result{Time: at(i), Namespace: ns, Outcome: OutcomeKilled}
		m.reported(r)
		m.ticked(at(i), []Result{r})
		m.recovered(ns, stageCreated, time.Second) // a verdict, after its tick
		m.recovered(ns, stageReady, time.Second)
		if i%2 == 0 {
			m.notRecovered(ns)
		}
	}
	got := seriesByNamespace(t, m)
	last := at(namespaces - 1)
	for i := range namespaces {
		ns := fmt.Sprintf("preview-%d", i)
		want := 0
		if last.Sub(at(i)) < 24*time.Hour {
			want = 3 + (1 - i%2) // kills, created, ready, and not recovered for half of them
		}
		if got[ns] != want {
			t.Fatalf("namespace %s, used %v before the last tick: %d series, want %d", ns, last.Sub(at(i)), got[ns], want)
		}
	}
	if got["shop"] != 2 {
		t.Errorf("shop, named in the scope: %d series, want its kills and unrecovered kept", got["shop"])
	}
	if total := len(got); total != 24*60+1 {
		t.Errorf("%d namespaces have series, want a day's (%d) and shop", total, 24*60)
	}

	// A day later, only the scope's namespace and the one of a tick with no victim are left.
	r := Result{Time: last.Add(24 * time.Hour), Outcome: OutcomeNoCandidates}
	m.reported(r)
	m.ticked(r.Time, []Result{r})
	if got := seriesByNamespace(t, m); len(got) != 2 || got["shop"] != 2 || got[""] != 1 {
		t.Errorf("a day later, series by namespace %v; want shop's 2 and the tick's", got)
	}
	if n := len(m.seen); n > 1 {
		t.Errorf("%d namespaces still tracked, want the empty one only", n)
	}

	// A verdict comes after its tick: dated to the latest tick, its series are kept a day from then.
	m.notRecovered("late")
	next := r.Time.Add(23 * time.Hour)
	m.ticked(next, nil)
	if got := seriesByNamespace(t, m); got["late"] != 1 {
		t.Errorf("a late verdict's series dropped before a day: %v", got)
	}
	m.ticked(r.Time.Add(24*time.Hour), nil)
	if got := seriesByNamespace(t, m); got["late"] != 0 || got["shop"] != 2 {
		t.Errorf("a day after the late verdict, series by namespace %v; want late's dropped, shop's kept", got)
	}
}

// TestMetricsNamespacesConcurrently: the killer, the notifier and the recovery verdicts record
// from goroutines of their own while ticks drop old namespaces (run with -race).
func TestMetricsNamespacesConcurrently(t *testing.T) {
	m := newMetrics(nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				at := tick0.Add(time.Duration(i) * time.Hour)
				ns := fmt.Sprintf("ns-%d-%d", g, i%30)
				switch g {
				case 0:
					m.reported(Result{Time: at, Namespace: ns, Outcome: OutcomeKilled})
				case 1:
					m.recovered(ns, stageReady, time.Second)
				case 2:
					m.notRecovered(ns)
				default:
					m.ticked(at, nil)
				}
			}
		})
	}
	wg.Wait()
	m.ticked(tick0.Add(1000*time.Hour), nil)
	if got := seriesByNamespace(t, m); len(got) != 0 {
		t.Errorf("series by namespace %v, want none left 800 hours after the last use", got)
	}
}
