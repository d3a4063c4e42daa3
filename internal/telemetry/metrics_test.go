package telemetry

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/telemetry/telemetrytest"
)

// tick0 is a tick's scheduled time, from which the tests count.
var tick0 = time.Date(2026, 3, 29, 9, 0, 0, 0, time.UTC)

// scrape GETs /metrics from the real handler over m and returns every sample by series (see
// telemetrytest.Scrape).
func scrape(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	return telemetrytest.Scrape(t, NewHandler(m, NewHealth(time.Now), discardLogger()))
}

// wantSeries checks that got has every series of want with its value.
func wantSeries(t *testing.T, got, want map[string]float64) {
	t.Helper()
	telemetrytest.WantSeries(t, got, want)
}

// TestRecoveryMetrics checks the methods the recovery verdict calls: one observation per stage
// reached, in seconds, and a count of workloads not recovered, which starts at 0 for each
// named namespace so that an alert on its increase sees the first one.
func TestRecoveryMetrics(t *testing.T) {
	m := NewMetrics([]string{"shop", "web"})
	before := scrape(t, m)
	wantSeries(t, before, map[string]float64{`macaque_unrecovered_total{namespace="shop"}`: 0, `macaque_unrecovered_total{namespace="web"}`: 0})

	m.Recovered("shop", StageCreated, 300*time.Millisecond)
	m.Recovered("shop", StageReady, 4100*time.Millisecond)
	m.Recovered("shop", StageFullStrength, 4100*time.Millisecond)
	m.Recovered("shop", StageCreated, 700*time.Millisecond)
	m.NotRecovered("web")
	m.NotRecovered("other")
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

// TestTickedSucceeded checks what a tick records: it is counted whether or not it succeeded, and
// only a successful one moves the last successful tick's time.
func TestTickedSucceeded(t *testing.T) {
	at := func(i int) time.Time { return tick0.Add(time.Duration(i) * time.Hour) }
	tests := []struct {
		name      string
		succeeded []bool // one tick each, an hour apart
		lastGood  int    // index of the last successful tick, -1 for none
	}{
		{name: "a success", succeeded: []bool{true}, lastGood: 0},
		{name: "a failure", succeeded: []bool{false}, lastGood: -1},
		{name: "a failure after a success keeps its time", succeeded: []bool{true, false}, lastGood: 0},
		{name: "a success after a failure", succeeded: []bool{false, true}, lastGood: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics(nil)
			for i, ok := range tt.succeeded {
				m.Ticked(at(i), ok)
			}
			want := map[string]float64{"macaque_ticks_total": float64(len(tt.succeeded)), "macaque_last_successful_tick_timestamp_seconds": 0}
			if tt.lastGood >= 0 {
				want["macaque_last_successful_tick_timestamp_seconds"] = float64(at(tt.lastGood).Unix())
			}
			wantSeries(t, scrape(t, m), want)
		})
	}
}

// TestDropsAndGates checks the counters the alert gate and the webhook feed: each gated tick
// by its reason, each reason at 0 from the start so that an alert on its increase sees the
// first, and each event the webhook gave up.
func TestDropsAndGates(t *testing.T) {
	m := NewMetrics(nil)
	wantSeries(t, scrape(t, m), map[string]float64{
		`macaque_ticks_gated_total{reason="alert"}`: 0, `macaque_ticks_gated_total{reason="namespace_alert"}`: 0,
		`macaque_ticks_gated_total{reason="alertmanager_error"}`: 0, "macaque_webhook_events_dropped_total": 0,
	})
	m.Gated(GatedAlert)
	m.Gated(GatedAlertmanagerError)
	m.Gated(GatedAlertmanagerError)
	m.WebhookDropped()
	wantSeries(t, scrape(t, m), map[string]float64{
		`macaque_ticks_gated_total{reason="alert"}`: 1, `macaque_ticks_gated_total{reason="namespace_alert"}`: 0,
		`macaque_ticks_gated_total{reason="alertmanager_error"}`: 2, "macaque_webhook_events_dropped_total": 1,
	})
}

// TestNilMetricsRecordNothing checks that goroutines built without metrics (as most tests
// build them) can call every method.
func TestNilMetricsRecordNothing(_ *testing.T) {
	var m *Metrics
	m.Scheduled(tick0)
	m.Upcoming(tick0)
	m.Listed(3)
	m.Reported(tick0, "shop", "killed")
	m.Killed(tick0, "shop", tick0)
	m.Ticked(tick0, true)
	m.ReportDropped()
	m.SlackDropped()
	m.Recovered("shop", StageReady, time.Second)
	m.NotRecovered("shop")
	m.Gated(GatedAlert)
	m.WebhookDropped()
}

// updateMetrics rewrites deploy/metrics.txt from the registry: go test -run TestMetricsFile ./internal/telemetry -update-metrics
var updateMetrics = flag.Bool("update-metrics", false, "rewrite deploy/metrics.txt from the registry")

// metricsFile lists what macaque exports, for the deploy module's tests of the alert rules and
// the dashboard, which are a module of their own (go test runs this one in internal/telemetry).
const metricsFile = "../../deploy/metrics.txt"

// regenerate is how to rewrite metricsFile, from the repository's root.
const regenerate = "go test -run TestMetricsFile ./internal/telemetry -update-metrics"

// TestMetricsFile checks that deploy/metrics.txt lists every metric the real registry exports,
// as "name type" lines sorted by name (every labelled family given a series first, since a
// family without one is not exported).
func TestMetricsFile(t *testing.T) {
	m := NewMetrics([]string{"shop"})
	m.Reported(tick0, "shop", "killed")
	m.Killed(tick0, "shop", tick0)
	m.Recovered("shop", StageReady, time.Second)
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("# The metrics macaque exports, as name and type; generated by: " + regenerate + "\n")
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
		t.Fatalf("%v; generate it with: %s", err, regenerate)
	}
	if string(got) != b.String() {
		t.Errorf("%s is stale; regenerate it with: %s\nwant:\n%s", metricsFile, regenerate, b.String())
	}
	for _, name := range []string{"macaque_kills_total counter", "macaque_recovery_seconds histogram", "go_goroutines gauge", "process_resident_memory_bytes gauge"} {
		if !strings.Contains(b.String(), name+"\n") {
			t.Errorf("the registry does not export %s", name)
		}
	}
}

// seriesByNamespace gathers m's registry and counts macaque's series by their namespace label
// (a histogram is one series here, whatever its buckets).
func seriesByNamespace(t *testing.T, m *Metrics) map[string]int {
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
	m := NewMetrics([]string{"shop"})
	m.Reported(tick0, "shop", "killed")
	m.Killed(tick0, "shop", tick0)
	at := func(i int) time.Time { return tick0.Add(time.Duration(i+1) * time.Minute) }
	for i := range namespaces {
		ns := fmt.Sprintf("preview-%d", i)
		m.Reported(at(i), ns, "killed")
		m.Killed(at(i), ns, at(i))
		m.Ticked(at(i), true)
		m.Recovered(ns, StageCreated, time.Second) // a verdict, after its tick
		m.Recovered(ns, StageReady, time.Second)
		if i%2 == 0 {
			m.NotRecovered(ns)
		}
	}
	got := seriesByNamespace(t, m)
	last := at(namespaces - 1)
	for i := range namespaces {
		ns := fmt.Sprintf("preview-%d", i)
		want := 0
		if last.Sub(at(i)) < 24*time.Hour {
			want = 4 + (1 - i%2) // kills, last kill, created, ready, and not recovered for half of them
		}
		if got[ns] != want {
			t.Fatalf("namespace %s, used %v before the last tick: %d series, want %d", ns, last.Sub(at(i)), got[ns], want)
		}
	}
	if got["shop"] != 3 {
		t.Errorf("shop, named in the scope: %d series, want its kills, last kill and unrecovered kept", got["shop"])
	}
	if total := len(got); total != 24*60+1 {
		t.Errorf("%d namespaces have series, want a day's (%d) and shop", total, 24*60)
	}

	// A day later, only the scope's namespace and the one of a tick with no victim are left.
	later := last.Add(24 * time.Hour)
	m.Reported(later, "", "no candidates")
	m.Ticked(later, true)
	if got := seriesByNamespace(t, m); len(got) != 2 || got["shop"] != 3 || got[""] != 1 {
		t.Errorf("a day later, series by namespace %v; want shop's 3 and the tick's", got)
	}
	if n := len(m.seen); n > 1 {
		t.Errorf("%d namespaces still tracked, want the empty one only", n)
	}

	// A verdict comes after its tick: dated to the latest tick, its series are kept a day from then.
	m.NotRecovered("late")
	next := later.Add(23 * time.Hour)
	m.Ticked(next, true)
	if got := seriesByNamespace(t, m); got["late"] != 1 {
		t.Errorf("a late verdict's series dropped before a day: %v", got)
	}
	m.Ticked(later.Add(24*time.Hour), true)
	if got := seriesByNamespace(t, m); got["late"] != 0 || got["shop"] != 3 {
		t.Errorf("a day after the late verdict, series by namespace %v; want late's dropped, shop's kept", got)
	}
}

// TestMetricsNamespacesConcurrently: the killer, the notifier and the recovery verdicts record
// from goroutines of their own while ticks drop old namespaces (run with -race).
func TestMetricsNamespacesConcurrently(t *testing.T) {
	m := NewMetrics(nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				at := tick0.Add(time.Duration(i) * time.Hour)
				ns := fmt.Sprintf("ns-%d-%d", g, i%30)
				switch g {
				case 0:
					m.Reported(at, ns, "killed")
				case 1:
					m.Recovered(ns, StageReady, time.Second)
				case 2:
					m.NotRecovered(ns)
				default:
					m.Ticked(at, true)
				}
			}
		})
	}
	wg.Wait()
	m.Ticked(tick0.Add(1000*time.Hour), true)
	if got := seriesByNamespace(t, m); len(got) != 0 {
		t.Errorf("series by namespace %v, want none left 800 hours after the last use", got)
	}
}

// TestNamespaceSeriesKeptADayFromItsLastUse: a namespace's series are dropped a day after it was
// last used, not first: one that has a kill every few hours keeps them however long it lives.
func TestNamespaceSeriesKeptADayFromItsLastUse(t *testing.T) {
	at := func(h int) time.Time { return tick0.Add(time.Duration(h) * time.Hour) }
	for _, tt := range []struct {
		name    string
		kills   []int // the hours of its ticks' kills
		verdict bool  // a verdict after the last kill, dated to the latest tick
		tick    int   // the hour of the tick that drops what is a day old
		kept    bool
	}{
		{name: "used again 20h after its first kill: kept 25h after it", kills: []int{0, 20}, tick: 25, kept: true},
		{name: "used again 20h after its first kill: dropped a day after the second", kills: []int{0, 20}, tick: 44},
		{name: "a verdict after its last kill's tick: kept a day from that tick", kills: []int{0, 10}, verdict: true, tick: 30, kept: true},
		{name: "used once: dropped a day later", kills: []int{0}, tick: 24},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics([]string{"shop"})
			for _, h := range tt.kills {
				m.Reported(at(h), "preview", "killed")
				m.Ticked(at(h), true)
			}
			if tt.verdict {
				m.NotRecovered("preview")
			}
			m.Ticked(at(tt.tick), true)
			if got := seriesByNamespace(t, m)["preview"]; (got > 0) != tt.kept {
				t.Errorf("%d series of preview at +%dh, want them kept: %v", got, tt.tick, tt.kept)
			}
		})
	}
}
