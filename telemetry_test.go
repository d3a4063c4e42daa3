package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/testkit"

	"github.com/macaque-chaos/macaque/internal/election"
	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/telemetry"
	"github.com/macaque-chaos/macaque/internal/telemetry/telemetrytest"
	"github.com/robfig/cron/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What the goroutines of package main tell telemetry: their metrics, heartbeats and readiness,
// read through the real handler. Telemetry's own tests are in internal/telemetry.

// scrape GETs /metrics from the real handler over m and returns every sample by series (see
// telemetrytest.Scrape).
func scrape(t *testing.T, m *telemetry.Metrics) map[string]float64 {
	t.Helper()
	return telemetrytest.Scrape(t, telemetry.NewHandler(m, telemetry.NewHealth(time.Now), discardLogger()))
}

// wantSeries checks that got has every series of want with its value.
func wantSeries(t *testing.T, got, want map[string]float64) {
	t.Helper()
	telemetrytest.WantSeries(t, got, want)
}

// probe GETs path from the real handler over h and returns the status and the body.
func probe(t *testing.T, h *telemetry.Health, path string) (int, string) {
	t.Helper()
	return telemetrytest.Probe(t, telemetry.NewHandler(telemetry.NewMetrics(nil), h, discardLogger()), path)
}

// wantProbe checks that path answers code with a body containing every one of want.
func wantProbe(t *testing.T, h *telemetry.Health, path string, code int, want ...string) {
	t.Helper()
	telemetrytest.WantProbe(t, telemetry.NewHandler(telemetry.NewMetrics(nil), h, discardLogger()), path, code, want...)
}

// failGets fails every GET (the list, the read-back) with what status makes.
func failGets(status func() *metav1.Status) func(fakeapi.Request) *metav1.Status {
	return func(r fakeapi.Request) *metav1.Status {
		if r.Method == http.MethodGet {
			return status()
		}
		return nil
	}
}

// deleteUnknown loses the DELETE's answer, and so the read-back after it.
func deleteUnknown() func(fakeapi.Request) *metav1.Status {
	var deleted atomic.Bool
	return func(r fakeapi.Request) *metav1.Status {
		if r.Method == http.MethodDelete {
			deleted.Store(true)
			return fakeapi.InternalError("etcdserver: request timed out")
		}
		if deleted.Load() {
			return fakeapi.InternalError("etcdserver: request timed out")
		}
		return nil
	}
}

// killerMetricsCase is a case of TestKillerMetrics: ticks an hour apart from tick0, each against
// the fake API server failing as its fail says (nil: not at all).
type killerMetricsCase struct {
	name     string
	pods     int
	dryRun   bool
	count    killCount
	ticks    []func(fakeapi.Request) *metav1.Status
	want     map[string]float64
	absent   []string // series that must not be exported
	lastGood int      // index of the last successful tick, -1 for none
}

// at is the scheduled time of the case's tick i.
func (tt killerMetricsCase) at(i int) time.Time { return tick0.Add(time.Duration(i) * time.Hour) }

// run runs the case's ticks through the killer and checks what /metrics says.
func (tt killerMetricsCase) run(t *testing.T) {
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
	k.metrics = telemetry.NewMetrics([]string{testNS})
	results := make(chan []Result, 64)
	for i, fail := range tt.ticks {
		current.Store(&fail)
		ticks := make(chan time.Time, 1)
		ticks <- tt.at(i)
		close(ticks)
		done := make(chan struct{})
		go func() { k.run(t.Context(), ticks, results); close(done) }()
		testkit.Recv(t, done, "the killer to run its tick")
		results = make(chan []Result, cap(results))
	}
	want := map[string]float64{"macaque_ticks_total": float64(len(tt.ticks)), "macaque_last_successful_tick_timestamp_seconds": 0}
	if tt.lastGood >= 0 {
		want["macaque_last_successful_tick_timestamp_seconds"] = float64(tt.at(tt.lastGood).Unix())
	}
	for s, v := range tt.want {
		want[s] = v
	}
	got := scrape(t, k.metrics)
	wantSeries(t, got, want)
	for _, s := range tt.absent {
		if v, ok := got[s]; ok {
			t.Errorf("%s = %v exported, want no such series", s, v)
		}
	}
}

// TestKillerMetrics runs the killer's ticks against the fake API server and checks what
// /metrics says of them: one kills_total per report by namespace and outcome, the ticks, the
// last count of candidates, the last successful tick and the reports dropped.
func TestKillerMetrics(t *testing.T) {
	forbidden := failGets(func() *metav1.Status { return fakeapi.Forbidden("list", testNS) })
	broken := failGets(func() *metav1.Status { return fakeapi.InternalError("etcdserver: leader changed") })
	type fails = []func(fakeapi.Request) *metav1.Status
	tests := []killerMetricsCase{
		{name: "a kill", pods: 3, ticks: fails{nil}, lastGood: 0, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="killed"}`: 1, "macaque_ticks_total": 1, "macaque_candidates": 3,
			`macaque_last_kill_timestamp_seconds{namespace="shop"}`: float64(tick0.Unix()),
		}},
		{name: "several victims: one report each", pods: 3, count: killCount{n: 2}, ticks: fails{nil}, lastGood: 0, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="killed"}`: 2, "macaque_ticks_total": 1, "macaque_candidates": 3,
		}},
		{name: "dry run", pods: 2, dryRun: true, ticks: fails{nil}, lastGood: 0, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="dry-run"}`: 1, "macaque_candidates": 2,
		}, absent: []string{`macaque_last_kill_timestamp_seconds{namespace="shop"}`}},
		{name: "no candidates is a success", ticks: fails{nil}, lastGood: 0, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="no candidates"}`: 1, "macaque_candidates": 0,
		}},
		{name: "a forbidden list is no success and keeps the last count", pods: 3, ticks: fails{nil, forbidden}, lastGood: 0, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="killed"}`: 1, `macaque_kills_total{namespace="shop",outcome="forbidden"}`: 1,
			"macaque_ticks_total": 2, "macaque_candidates": 3,
		}},
		{name: "an error, then a success", pods: 3, ticks: fails{broken, nil}, lastGood: 1, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="error"}`: 1, `macaque_kills_total{namespace="shop",outcome="killed"}`: 1,
			"macaque_ticks_total": 2,
			// The API server's acceptance, by the killer's clock (tick0), not the tick's time (an hour later).
			`macaque_last_kill_timestamp_seconds{namespace="shop"}`: float64(tick0.Unix()),
		}},
		{name: "only errors: never a success", pods: 3, ticks: fails{broken, broken}, lastGood: -1, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="error"}`: 2, "macaque_ticks_total": 2, "macaque_candidates": 0,
		}},
		{name: "unknown is no success", pods: 1, ticks: fails{deleteUnknown()}, lastGood: -1, want: map[string]float64{
			`macaque_kills_total{namespace="shop",outcome="unknown"}`: 1,
		}, absent: []string{`macaque_last_kill_timestamp_seconds{namespace="shop"}`}},
		{name: "nothing dropped when the notifier keeps up", pods: 3, count: killCount{n: 2}, ticks: fails{nil}, lastGood: 0, want: map[string]float64{
			"macaque_reports_dropped_total": 0,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
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
			k.scope, k.metrics = tt.scope, telemetry.NewMetrics(nil)
			killOnce(t, k)
			got := scrape(t, k.metrics)
			if got[tt.want] != 1 {
				t.Errorf("%s = %v, want 1; have %v", tt.want, got[tt.want], telemetrytest.MacaqueSeries(got))
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
		log: discardLogger(), metrics: telemetry.NewMetrics(nil)}
	ticks := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(testkit.Ctx(t))
	done := make(chan struct{})
	go func() { sched.run(ctx, ticks); close(done) }()
	defer func() { cancel(); <-done }()

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
			n := newTestNotifier(stub, &testkit.Instant{})
			n.metrics = telemetry.NewMetrics(nil)
			results := make(chan []Result, 1)
			results <- []Result{killed}
			close(results)
			done := make(chan struct{})
			go func() { n.run(t.Context(), results, time.Second); close(done) }()
			testkit.Recv(t, done, "the notifier to post")
			wantSeries(t, scrape(t, n.metrics), map[string]float64{"macaque_slack_messages_dropped_total": tt.want})
		})
	}
}

// TestHealthzFollowsTheGoroutines runs the real scheduler and killer: /healthz fails while the
// scheduler's timer does not fire for longer than it should, or a kill hangs past its
// timeouts, and passes again as soon as each goroutine moves on.
func TestHealthzFollowsTheGoroutines(t *testing.T) {
	t.Run("scheduler", func(t *testing.T) {
		clock := newStepClock(tick0)
		spec, err := cron.ParseStandard("0 9 * * *")
		if err != nil {
			t.Fatal(err)
		}
		var probeAt time.Time // the probes' clock, read only by this goroutine's probes
		h := telemetry.NewHealth(func() time.Time { return probeAt })
		sched := &scheduler{schedule: spec, location: time.UTC, now: clock.Now, after: clock.After, log: discardLogger(), alive: &h.Scheduler}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { sched.run(ctx, make(chan time.Time, 1)); close(done) }()
		defer func() { cancel(); <-done }()

		probeAt = clock.Now()
		clock.waitTimer(t) // asleep for maxSleep
		probeAt = tick0.Add(maxSleep + telemetry.HeartbeatMargin)
		wantProbe(t, h, "/healthz", http.StatusOK)
		probeAt = probeAt.Add(time.Second) // its timer should have fired long ago
		wantProbe(t, h, "/healthz", http.StatusServiceUnavailable, "scheduler")
		clock.fireTimer(t, 0)
		clock.waitTimer(t) // awake, beaten, asleep again
		wantProbe(t, h, "/healthz", http.StatusOK)
	})
	t.Run("killer", func(t *testing.T) {
		srv := fakeapi.New(t, fakeapi.Pod(testNS, "web-0", nil))
		listing, release := make(chan struct{}, 1), make(chan struct{})
		srv.Fail = func(r fakeapi.Request) *metav1.Status {
			if r.Method == http.MethodGet {
				listing <- struct{}{}
				<-release // a list that hangs, as an API server might
			}
			return nil
		}
		k := newTestKiller(t, srv, "", true)
		var probeAt time.Time // the probes' clock, read only by this goroutine's probes
		h := telemetry.NewHealth(func() time.Time { return probeAt })
		k.alive = &h.Killer
		ticks := make(chan time.Time, 1)
		done := make(chan struct{})
		go func() { k.run(t.Context(), ticks, make(chan []Result, 8)); close(done) }()
		defer func() { close(ticks); <-done }()

		probeAt = tick0.Add(48 * time.Hour)
		wantProbe(t, h, "/healthz", http.StatusOK) // idle: it waits for the scheduler, however long
		ticks <- tick0
		testkit.Recv(t, listing, "the kill to list")
		probeAt = tick0.Add(k.timeouts.total() + telemetry.HeartbeatMargin)
		wantProbe(t, h, "/healthz", http.StatusOK)
		probeAt = tick0.Add(k.timeouts.total() + telemetry.HeartbeatMargin + time.Second)
		wantProbe(t, h, "/healthz", http.StatusServiceUnavailable, "killer")
		close(release)
		waitProbe(t, h, "/healthz", http.StatusOK)
	})
}

// waitProbe waits (bounded) until path answers code, for a goroutine that gets there by itself.
func waitProbe(t *testing.T, h *telemetry.Health, path string, code int) {
	t.Helper()
	deadline := time.Now().Add(testkit.Within)
	for {
		got, body := probe(t, h, path)
		if got == code {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s still %d %q after %v, want %d", path, got, body, testkit.Within, code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReadyzFollowsTheKillersList checks that each tick's list moves /readyz, and that the
// latest of a list and an access check wins.
func TestReadyzFollowsTheKillersList(t *testing.T) {
	srv := fakeapi.New(t, fakeapi.Pod(testNS, "web-0", nil))
	var forbid atomic.Bool
	srv.Fail = func(r fakeapi.Request) *metav1.Status {
		if r.Method == http.MethodGet && forbid.Load() {
			return fakeapi.Forbidden("list", testNS)
		}
		return nil
	}
	k := newTestKiller(t, srv, "", true)
	h := telemetry.NewHealth(time.Now)
	k.ready = &h.Ready
	h.Ready.Observe("the start-up checks", tick0, nil)

	forbid.Store(true)
	killOnce(t, k)
	wantProbe(t, h, "/readyz", http.StatusServiceUnavailable, "not ready: the list of pods failed at 2026-03-29T09:00:00Z", "forbidden")
	forbid.Store(false)
	killOnce(t, k)
	wantProbe(t, h, "/readyz", http.StatusOK)
	forbid.Store(true)
	killOnce(t, k)
	h.Ready.Observe("the access check", tick0, nil) // RBAC fixed since the tick
	wantProbe(t, h, "/readyz", http.StatusOK)
	h.Ready.Observe("the access check", tick0, errors.New("forbidden again"))
	forbid.Store(false)
	killOnce(t, k) // a list that passes after a failed check
	wantProbe(t, h, "/readyz", http.StatusOK)
}

// TestRunServesMetricsAndProbes runs the whole daemon in process: it logs the address it
// serves on, answers /healthz, /readyz and /metrics there (the leader gauge at 1 once it took
// the Lease), and has stopped serving, and released the Lease, when run returns.
func TestRunServesMetricsAndProbes(t *testing.T) {
	api := fakeapi.New(t, fakeapi.Pod(testNS, "web-1", nil))
	t.Setenv("KUBECONFIG", kubeconfigFor(t, api.URL))
	for k, v := range map[string]string{
		"MACAQUE_CRONTAB": "0 0 1 1 *", "MACAQUE_NAMESPACE": testNS, "MACAQUE_DRY_RUN": "true", "MACAQUE_REQUIRE_HEALTHY": "false",
		"MACAQUE_HTTP_ADDR": "127.0.0.1:0", "POD_NAME": "macaque-0", "MACAQUE_SLACK_TOKEN": "", "MACAQUE_SLACK_CHANNEL": "",
		"POD_NAMESPACE": testNS, // where the Lease is
	} {
		t.Setenv(k, v)
	}
	logs := newLogBuffer(`msg="macaque started"`)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, io.Discard, logs) }()
	select {
	case <-logs.seen:
	case err := <-errc:
		t.Fatalf("run = %v; log:\n%s", err, logs)
	case <-time.After(testkit.Within):
		t.Fatalf("not started within %v; log:\n%s", testkit.Within, logs)
	}
	m := regexp.MustCompile(`msg="serving metrics and probes" addr=(127\.0\.0\.1:\d+) paths="/metrics /healthz /readyz"`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no line saying where it serves; log:\n%s", logs)
	}
	// One client, whose idle connection only the server's shutdown closes: closing the listener
	// alone would leave it serving.
	client := &http.Client{Transport: &http.Transport{}, Timeout: testkit.Within}
	defer client.CloseIdleConnections()
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ok", "/metrics": "macaque_ticks_total 0"} {
		res, err := client.Get("http://" + m[1] + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d %q, want 200 and %q", path, res.StatusCode, body, want)
		}
	}
	waitMetric(t, client, "http://"+m[1]+"/metrics", "macaque_leader 1")
	if l := api.Lease(testNS, election.LeaseName); l == nil || *l.Spec.HolderIdentity != "macaque-0" {
		t.Errorf("Lease = %+v, want held by macaque-0", l)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("run = %v after stop, want nil", err)
		}
	case <-time.After(testkit.Within):
		t.Fatalf("run still running %v after stop", testkit.Within)
	}
	if l := api.Lease(testNS, election.LeaseName); l == nil || *l.Spec.HolderIdentity != "" {
		t.Errorf("Lease after a clean stop = %+v, want released (no holder)", l)
	}
	if conn, err := net.Dial("tcp", m[1]); err == nil {
		_ = conn.Close() // the failure is that it connected at all
		t.Errorf("%s still accepts connections after run returned", m[1])
	}
	if res, err := client.Get("http://" + m[1] + "/healthz"); err == nil {
		res.Body.Close()
		t.Errorf("%s still answers on an open connection after run returned", m[1])
	}
}

// waitMetric reads url until its body has want, for at most testkit.Within.
func waitMetric(t *testing.T, client *http.Client, url, want string) {
	t.Helper()
	deadline := time.Now().Add(testkit.Within)
	var last string
	for time.Now().Before(deadline) {
		res, err := client.Get(url)
		if err != nil {
			last = err.Error()
		} else {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if strings.Contains(string(body), want) {
				return
			}
			last = string(body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s has no %q within %v; last:\n%s", url, want, testkit.Within, last)
}
