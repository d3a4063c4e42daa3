package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/kube"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/robfig/cron/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// probe GETs path from the real handler over h and returns the status and the body.
func probe(t *testing.T, h *health, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	newHTTPHandler(newMetrics(nil), h, discardLogger()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// wantProbe checks that path answers code with a body containing every one of want.
func wantProbe(t *testing.T, h *health, path string, code int, want ...string) {
	t.Helper()
	got, body := probe(t, h, path)
	if got != code {
		t.Errorf("GET %s = %d %q, want %d", path, got, body, code)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("GET %s = %d %q, want it to say %q", path, got, body, w)
		}
	}
}

// fakeNow is a clock the test moves; safe for the goroutines that read it.
type fakeNow struct {
	mu sync.Mutex
	at time.Time
}

func (c *fakeNow) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *fakeNow) set(at time.Time) {
	c.mu.Lock()
	c.at = at
	c.mu.Unlock()
}

// TestHealthzHeartbeats checks /healthz against each goroutine's heartbeat at the edge of its
// deadline: the scheduler's every maxSleep, the killer's only while a kill runs.
func TestHealthzHeartbeats(t *testing.T) {
	killTime := defaultTimeouts.total() + heartbeatMargin
	schedTime := maxSleep + heartbeatMargin
	tests := []struct {
		name  string
		beats func(h *health)
		at    time.Duration // after tick0
		code  int
		say   string
	}{
		{name: "no beat yet", beats: func(*health) {}, at: time.Hour, code: http.StatusOK, say: "ok"},
		{name: "scheduler on time", beats: func(h *health) { h.scheduler.beat(tick0, schedTime) }, at: schedTime, code: http.StatusOK},
		{name: "scheduler overdue", beats: func(h *health) { h.scheduler.beat(tick0, schedTime) }, at: schedTime + time.Second,
			code: http.StatusServiceUnavailable, say: "the scheduler goroutine is stalled: last seen 2m1s ago"},
		{name: "a kill within its timeouts", beats: func(h *health) { h.killer.beat(tick0, killTime) }, at: killTime, code: http.StatusOK},
		{name: "a kill past its timeouts", beats: func(h *health) { h.killer.beat(tick0, killTime) }, at: killTime + time.Second,
			code: http.StatusServiceUnavailable, say: "the killer goroutine is stalled"},
		{name: "an idle killer owes no beat", beats: func(h *health) { h.killer.beat(tick0, killTime); h.killer.rest(tick0.Add(time.Second)) },
			at: 48 * time.Hour, code: http.StatusOK},
		{name: "the scheduler is named first", beats: func(h *health) { h.scheduler.beat(tick0, schedTime); h.killer.beat(tick0, killTime) },
			at: 24 * time.Hour, code: http.StatusServiceUnavailable, say: "scheduler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHealth(func() time.Time { return tick0.Add(tt.at) })
			tt.beats(h)
			wantProbe(t, h, "/healthz", tt.code, tt.say)
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
		h := newHealth(nil)
		sched := &scheduler{schedule: spec, location: time.UTC, now: clock.Now, after: clock.After, log: discardLogger(), alive: &h.scheduler}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { sched.run(ctx, make(chan time.Time, 1)); close(done) }()
		defer func() { cancel(); <-done }()

		probeAt := clock.Now()
		h.now = func() time.Time { return probeAt }
		clock.waitTimer(t) // asleep for maxSleep
		probeAt = tick0.Add(maxSleep + heartbeatMargin)
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
		h := newHealth(nil)
		k.alive = &h.killer
		ticks := make(chan time.Time, 1)
		done := make(chan struct{})
		go func() { k.run(t.Context(), ticks, make(chan []Result, 8)); close(done) }()
		defer func() { close(ticks); <-done }()

		h.now = func() time.Time { return tick0.Add(48 * time.Hour) }
		wantProbe(t, h, "/healthz", http.StatusOK) // idle: it waits for the scheduler, however long
		ticks <- tick0
		recvWithin(t, listing, "the kill to list")
		h.now = func() time.Time { return tick0.Add(k.timeouts.total() + heartbeatMargin) }
		wantProbe(t, h, "/healthz", http.StatusOK)
		h.now = func() time.Time { return tick0.Add(k.timeouts.total() + heartbeatMargin + time.Second) }
		wantProbe(t, h, "/healthz", http.StatusServiceUnavailable, "killer")
		close(release)
		waitProbe(t, h, "/healthz", http.StatusOK)
	})
}

// waitProbe waits (bounded) until path answers code, for a goroutine that gets there by itself.
func waitProbe(t *testing.T, h *health, path string, code int) {
	t.Helper()
	deadline := time.Now().Add(waitWithin)
	for {
		got, body := probe(t, h, path)
		if got == code {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s still %d %q after %v, want %d", path, got, body, waitWithin, code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReadyzFollowsTheAPI runs the access check against a fake API server that starts failing
// (RBAC forbids the list, then the server is down) and then recovers: /readyz fails with the
// reason and passes again by itself; the log has a line per change, not per check.
func TestReadyzFollowsTheAPI(t *testing.T) {
	srv := fakeapi.New(t, fakeapi.Pod(testNS, "web-0", nil))
	var failWith atomic.Pointer[metav1.Status]
	srv.Fail = func(r fakeapi.Request) *metav1.Status {
		if r.Method == http.MethodGet {
			return failWith.Load()
		}
		return nil
	}
	api, err := kube.NewClient(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	clock := newStepClock(tick0)
	var logs bytes.Buffer
	var logMu sync.Mutex
	h := newHealth(clock.Now)
	check := &accessCheck{api: api, scope: scope{namespaces: []string{testNS}}, mode: modeDelete, every: accessCheckEvery,
		now: clock.Now, after: clock.After, ready: &h.ready, log: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { check.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	logText := func() string { logMu.Lock(); defer logMu.Unlock(); return logs.String() }

	wantProbe(t, h, "/readyz", http.StatusServiceUnavailable, notStarted)
	h.ready.observe("the start-up checks", tick0, nil)
	wantProbe(t, h, "/readyz", http.StatusOK, "ok")

	steps := []struct {
		name  string
		fail  *metav1.Status
		code  int
		say   []string
		warns int // "access check failed" lines so far
		backs int // "passes again" lines so far
	}{
		{name: "passing", code: http.StatusOK},
		{name: "RBAC forbids the list", fail: fakeapi.Forbidden("list", testNS), code: http.StatusServiceUnavailable,
			say: []string{"not ready: the access check failed at ", `cannot list resource "pods"`, "MACAQUE_NAMESPACE"}, warns: 1},
		{name: "still forbidden: no new line", fail: fakeapi.Forbidden("list", testNS), code: http.StatusServiceUnavailable, warns: 1},
		{name: "a new reason: a new line", fail: fakeapi.InternalError("etcdserver: leader changed"), code: http.StatusServiceUnavailable,
			say: []string{"leader changed"}, warns: 2},
		{name: "fixed", code: http.StatusOK, say: []string{"ok"}, warns: 2, backs: 1},
		{name: "still fixed: no new line", code: http.StatusOK, warns: 2, backs: 1},
	}
	for _, st := range steps {
		failWith.Store(st.fail)
		if d := clock.waitTimer(t); d != accessCheckEvery {
			t.Fatalf("%s: the check waits %v, want %v", st.name, d, accessCheckEvery)
		}
		clock.fireTimer(t, 0)
		clock.waitTimer(t) // the check is done
		wantProbe(t, h, "/readyz", st.code, st.say...)
		log := logText()
		if n := strings.Count(log, "access check failed"); n != st.warns {
			t.Errorf("%s: %d warnings, want %d; log:\n%s", st.name, n, st.warns, log)
		}
		if n := strings.Count(log, "access check passes again"); n != st.backs {
			t.Errorf("%s: %d lines saying it passes again, want %d; log:\n%s", st.name, n, st.backs, log)
		}
	}
}

// lockedWriter serialises writes to w, for a log read while it is written.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
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
	h := newHealth(time.Now)
	k.ready = &h.ready
	h.ready.observe("the start-up checks", tick0, nil)

	forbid.Store(true)
	killOnce(t, k)
	wantProbe(t, h, "/readyz", http.StatusServiceUnavailable, "not ready: the list of pods failed at 2026-03-29T09:00:00Z", "forbidden")
	forbid.Store(false)
	killOnce(t, k)
	wantProbe(t, h, "/readyz", http.StatusOK)
	forbid.Store(true)
	killOnce(t, k)
	h.ready.observe("the access check", tick0, nil) // RBAC fixed since the tick
	wantProbe(t, h, "/readyz", http.StatusOK)
	h.ready.observe("the access check", tick0, errors.New("forbidden again"))
	forbid.Store(false)
	killOnce(t, k) // a list that passes after a failed check
	wantProbe(t, h, "/readyz", http.StatusOK)
}

// TestRunServesMetricsAndProbes runs the whole daemon in process: it logs the address it
// serves on, answers /healthz, /readyz and /metrics there, and has stopped serving when run
// returns.
func TestRunServesMetricsAndProbes(t *testing.T) {
	api := fakeapi.New(t, fakeapi.Pod(testNS, "web-1", nil))
	t.Setenv("KUBECONFIG", kubeconfigFor(t, api.URL))
	for k, v := range map[string]string{
		"MACAQUE_CRONTAB": "0 0 1 1 *", "MACAQUE_NAMESPACE": testNS, "MACAQUE_DRY_RUN": "true", "MACAQUE_REQUIRE_HEALTHY": "false",
		"MACAQUE_HTTP_ADDR": "127.0.0.1:0", "POD_NAME": "macaque-0", "MACAQUE_SLACK_TOKEN": "", "MACAQUE_SLACK_CHANNEL": "",
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
	case <-time.After(waitWithin):
		t.Fatalf("not started within %v; log:\n%s", waitWithin, logs)
	}
	m := regexp.MustCompile(`msg="serving metrics and probes" addr=(127\.0\.0\.1:\d+) paths="/metrics /healthz /readyz"`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no line saying where it serves; log:\n%s", logs)
	}
	// One client, whose idle connection only the server's shutdown closes: closing the listener
	// alone would leave it serving.
	client := &http.Client{Transport: &http.Transport{}, Timeout: waitWithin}
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
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("run = %v after stop, want nil", err)
		}
	case <-time.After(waitWithin):
		t.Fatalf("run still running %v after stop", waitWithin)
	}
	if conn, err := net.Dial("tcp", m[1]); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after run returned", m[1])
	}
	if res, err := client.Get("http://" + m[1] + "/healthz"); err == nil {
		res.Body.Close()
		t.Errorf("%s still answers on an open connection after run returned", m[1])
	}
}

// TestServeHTTPCutsAScrapeThatOutlastsTheGrace: at stop, a request still in flight after the
// grace is cut, so that a stuck scrape cannot hold up macaque's exit past its grace period.
func TestServeHTTPCutsAScrapeThatOutlastsTheGrace(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inFlight := make(chan struct{})
	stuck := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inFlight)
		<-r.Context().Done() // only a closed connection ends it
	})
	stop := serveHTTP(ln, stuck, 50*time.Millisecond, discardLogger())
	errc := make(chan error, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/metrics")
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	recvWithin(t, inFlight, "the scrape in flight")
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	recvWithin(t, stopped, "stop to return after its grace")
	if err, _ := recvWithin(t, errc, "the stuck scrape to be cut"); err == nil {
		t.Error("the stuck scrape got an answer, want its connection cut")
	}
}
