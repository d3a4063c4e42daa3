package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/alerts"
	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/policy"
	"github.com/macaque-chaos/macaque/internal/telemetry"
	"github.com/macaque-chaos/macaque/internal/testkit"
)

// alertmanager is a stub of Alertmanager's v2 API answering every GET with status and body.
type alertmanager struct {
	*httptest.Server
	status  atomic.Int32
	body    atomic.Value // string
	block   chan struct{}
	queries atomic.Int32
}

// newAlertmanager starts a stub answering 200 with the alerts of these label sets (each a
// JSON object's members, such as `"alertname":"A","namespace":"shop"`), every one active.
func newAlertmanager(t *testing.T, labelSets ...string) *alertmanager {
	t.Helper()
	am := &alertmanager{block: make(chan struct{})}
	am.firing(labelSets...)
	am.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		am.queries.Add(1)
		if am.status.Load() == 0 { // an Alertmanager that hangs
			select {
			case <-am.block:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(int(am.status.Load()))
		_, _ = w.Write([]byte(am.body.Load().(string)))
	}))
	t.Cleanup(func() { close(am.block); am.Close() })
	return am
}

// firing makes the stub answer 200 with the alerts of labelSets.
func (am *alertmanager) firing(labelSets ...string) {
	items := make([]string, 0, len(labelSets))
	for _, ls := range labelSets {
		items = append(items, `{"labels":{"severity":"critical",`+ls+`},"startsAt":"2026-03-29T08:50:00Z","endsAt":"2026-03-29T09:10:00Z",`+
			`"status":{"state":"active","silencedBy":[],"inhibitedBy":[]}}`)
	}
	am.answer(http.StatusOK, "["+strings.Join(items, ",")+"]")
}

// answer makes the stub answer status and body; status 0 hangs.
func (am *alertmanager) answer(status int, body string) {
	am.status.Store(int32(status))
	am.body.Store(body)
}

// gate is the alert gate of the stub, selecting severity="critical", with timeout.
func (am *alertmanager) gate(t *testing.T, timeout time.Duration) *policy.AlertGate {
	t.Helper()
	base, err := alerts.ParseURL(am.URL)
	if err != nil {
		t.Fatal(err)
	}
	m, err := alerts.ParseMatchers(`severity="critical"`)
	if err != nil {
		t.Fatal(err)
	}
	return &policy.AlertGate{Source: alerts.NewClient(base, m, timeout, nil, func() time.Time { return tick0 })}
}

// podsListed says whether the fake API server was asked for a list of pods.
func podsListed(srv *fakeapi.Server) bool {
	for _, r := range srv.Requests() {
		if r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/pods") {
			return true
		}
	}
	return false
}

func TestAlertGateHoldsTheKills(t *testing.T) {
	tests := []struct {
		name       string
		firing     []string
		answer     func(*alertmanager) // instead of firing
		cartPod    bool                // a pod in cart besides shop's three
		want       Outcome
		gated      bool   // the whole tick held, before any list
		wantText   string // in the Note, the Err and the passed picks, together
		wantSlack  string
		wantReason telemetry.GatedReason // the counter moved; "" for none
	}{
		{name: "nothing firing", firing: nil, want: OutcomeKilled},
		{name: "an alert of a namespace out of scope", firing: []string{`"alertname":"Other","namespace":"elsewhere"`}, want: OutcomeKilled},
		{name: "an alert in shop passes its pods over", firing: []string{`"alertname":"HighErrorRate","namespace":"shop"`},
			want: OutcomeSkipped, wantText: "shop/web-1: alert HighErrorRate (namespace shop) firing in Alertmanager", wantReason: telemetry.GatedNamespaceAlert},
		{name: "an alert in shop leaves cart's pods", firing: []string{`"alertname":"HighErrorRate","namespace":"shop"`}, cartPod: true,
			want: OutcomeKilled, wantReason: telemetry.GatedNamespaceAlert},
		{name: "an alert without a namespace holds the tick", firing: []string{`"alertname":"KubeAPIDown"`, `"alertname":"HighErrorRate","namespace":"shop"`},
			cartPod: true, want: OutcomeSkipped, gated: true,
			wantText:  "held by the alert gate: alert KubeAPIDown firing in Alertmanager, with no namespace label: it holds every namespace",
			wantSlack: ":rotating_light: gated: alerts firing in Alertmanager hold the kills in namespaces `shop,cart`; nothing was killed.", wantReason: telemetry.GatedAlert},
		{name: "alerts in every namespace in scope hold the tick", firing: []string{`"alertname":"CartDown","namespace":"cart"`, `"alertname":"HighErrorRate","namespace":"shop"`},
			cartPod: true, want: OutcomeSkipped, gated: true,
			wantText: "alert HighErrorRate (namespace shop); alert CartDown (namespace cart) firing in Alertmanager: it holds every namespace in scope", wantReason: telemetry.GatedAlert},
		{name: "a 500", answer: func(am *alertmanager) { am.answer(500, "boom") }, cartPod: true, want: OutcomeError,
			wantText: "nothing is killed while Alertmanager cannot say which alerts fire: ask http://", wantSlack: "HTTP 500 Internal Server Error: boom",
			wantReason: telemetry.GatedAlertmanagerError},
		{name: "bad JSON", answer: func(am *alertmanager) { am.answer(200, "<html>") }, cartPod: true, want: OutcomeError,
			wantText: "the answer is not a JSON list of alerts", wantReason: telemetry.GatedAlertmanagerError},
		{name: "no answer in time", answer: func(am *alertmanager) { am.answer(0, "") }, cartPod: true, want: OutcomeError,
			wantText: "Client.Timeout exceeded", wantReason: telemetry.GatedAlertmanagerError},
		{name: "unreachable", answer: func(am *alertmanager) { am.Close() }, cartPod: true, want: OutcomeError,
			wantText: "connection refused", wantReason: telemetry.GatedAlertmanagerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t, fakeapi.Pod(testNS, "web-1", nil), fakeapi.Pod(testNS, "web-2", nil), fakeapi.Pod(testNS, "web-3", nil))
			if tt.cartPod {
				srv.Add(fakeapi.Pod("cart", "api-1", nil))
			}
			am := newAlertmanager(t, tt.firing...)
			if tt.answer != nil {
				tt.answer(am)
			}
			k := newTestKiller(t, srv, "", false)
			k.scope = scope{namespaces: []string{testNS, "cart"}}
			k.alerts, k.metrics = am.gate(t, 100*time.Millisecond), telemetry.NewMetrics(nil)
			r := killOnce(t, k)
			text := strings.Join(append([]string{r.Note, fmt.Sprint(r.Err)}, r.Passed...), "\n")
			if r.Outcome != tt.want || r.Gated != tt.gated || !strings.Contains(text, tt.wantText) {
				t.Errorf("%s (gated %v): %s; want %s (gated %v) saying %q", r.Outcome, r.Gated, text, tt.want, tt.gated, tt.wantText)
			}
			checkHeld(t, srv, r, tt.want, tt.gated)
			if tt.want == OutcomeError && !errors.Is(r.Err, policy.ErrAlertsUnread) {
				t.Errorf("err %v, want ErrAlertsUnread", r.Err)
			}
			if msg := message(r); !strings.Contains(msg, tt.wantSlack) || (tt.gated && !strings.Contains(msg, "Note: held by the alert gate: alert")) {
				t.Errorf("Slack message %q, want %q and the alerts named", msg, tt.wantSlack)
			}
			wantGated(t, k.metrics, tt.wantReason)
		})
	}
}

// checkHeld checks what a tick of outcome want did at the API server: a tick held whole or
// failed before its list lists and kills nothing, and a kill is in cart, never in shop.
func checkHeld(t *testing.T, srv *fakeapi.Server, r Result, want Outcome, gated bool) {
	t.Helper()
	if early := gated || want == OutcomeError; early == podsListed(srv) {
		t.Errorf("pods listed: %v, want %v", podsListed(srv), !early)
	}
	deletes := srv.Deletes()
	if want != OutcomeKilled && len(deletes) != 0 {
		t.Errorf("%d deletes, want none", len(deletes))
	}
	if want == OutcomeKilled && (len(deletes) != 1 || (r.Namespace == testNS && len(r.Passed) > 0)) {
		t.Errorf("killed %s/%s (%d deletes), passed %q", r.Namespace, r.Pod, len(deletes), r.Passed)
	}
}

// wantGated checks macaque_ticks_gated_total: 1 for reason, 0 for the others.
func wantGated(t *testing.T, m *telemetry.Metrics, reason telemetry.GatedReason) {
	t.Helper()
	want := map[string]float64{}
	for _, r := range []telemetry.GatedReason{telemetry.GatedAlert, telemetry.GatedNamespaceAlert, telemetry.GatedAlertmanagerError} {
		want[`macaque_ticks_gated_total{reason="`+string(r)+`"}`] = map[bool]float64{true: 1}[r == reason]
	}
	wantSeries(t, scrape(t, m), want)
}

func TestAlertGateResumes(t *testing.T) {
	srv := fakeapi.New(t, fakeapi.Pod(testNS, "web-1", nil))
	am := newAlertmanager(t, `"alertname":"HighErrorRate","namespace":"shop"`)
	k := newTestKiller(t, srv, "", false)
	k.alerts = am.gate(t, time.Second)
	if r := killOnce(t, k); r.Outcome != OutcomeSkipped || !r.Gated {
		t.Fatalf("while the alert fires: %s, gated %v; want skipped", r.Outcome, r.Gated)
	}
	am.firing() // resolved
	if r := killOnce(t, k); r.Outcome != OutcomeKilled {
		t.Fatalf("once resolved: %s (%v), want killed", r.Outcome, r.Err)
	}
	if n := am.queries.Load(); n != 2 {
		t.Errorf("%d questions to Alertmanager, want one a tick", n)
	}
}

func TestStartAlertGate(t *testing.T) {
	tests := []struct {
		name    string
		answer  func(*alertmanager)
		wantVar string // a refused start names it
		wantLog string
	}{
		{name: "answers", answer: func(am *alertmanager) { am.firing(`"alertname":"A"`) }, wantLog: `msg="alertmanager answered: its blocking alerts hold the kills"`},
		{name: "not found", answer: func(am *alertmanager) { am.answer(404, "404 page not found") }, wantVar: "MACAQUE_ALERTMANAGER_URL"},
		{name: "not its API", answer: func(am *alertmanager) { am.answer(200, "<html>Grafana</html>") }, wantVar: "MACAQUE_ALERTMANAGER_URL"},
		{name: "failing", answer: func(am *alertmanager) { am.answer(503, "") }, wantLog: "alertmanager unreachable at start; starting anyway"},
		{name: "unreachable", answer: func(am *alertmanager) { am.Close() }, wantLog: "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			am := newAlertmanager(t)
			tt.answer(am)
			base, _ := alerts.ParseURL(am.URL)
			m, _ := alerts.ParseMatchers("{}")
			var logs bytes.Buffer
			g, err := startAlertGate(testkit.Ctx(t), alertSettings{url: base, matchers: m}, slog.New(slog.NewTextHandler(&logs, nil)))
			var bad *configError
			if tt.wantVar != "" {
				if !errors.As(err, &bad) || bad.variable != tt.wantVar || !strings.Contains(err.Error(), "not Alertmanager's v2 API") {
					t.Errorf("startAlertGate = %v, want a bad %s", err, tt.wantVar)
				}
				return
			}
			if err != nil || g == nil || !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("startAlertGate = %v, %v, logged %q; want a gate, logging %q", g, err, logs.String(), tt.wantLog)
			}
		})
	}
	if g, err := startAlertGate(t.Context(), alertSettings{}, discardLogger()); g != nil || err != nil {
		t.Errorf("no URL: %v, %v; want no gate", g, err)
	}
}

func TestConfigCheckAlerts(t *testing.T) {
	good := Config{Crontab: "@hourly", SlackAPIUrl: "https://slack.com/api", LogFormat: "text", LogLevel: "info",
		RecoveryTimeout: 5 * time.Minute, BlockingAlerts: `severity="critical"`}
	tests := []struct {
		name, url, matchers string
		wantURL, want       string // the gate's URL and matchers; "" for none
		wantVar, wantMsg    string // a refusal
	}{
		{name: "off", wantURL: ""},
		{name: "off, with a blank matcher", matchers: " "},
		{name: "on", url: "http://alertmanager.monitoring:9093", matchers: `severity="critical"`,
			wantURL: "http://alertmanager.monitoring:9093", want: `{severity="critical"}`},
		{name: "a route prefix and several matchers", url: " https://am.example/am/ ", matchers: `{severity="critical",team=~"pay.*"}`,
			wantURL: "https://am.example/am/", want: `{severity="critical",team=~"pay.*"}`},
		{name: "every alert", url: "http://127.0.0.1:9093", matchers: "{}", wantURL: "http://127.0.0.1:9093", want: "{}"},
		{name: "a bad matcher", url: "http://am:9093", matchers: `severity==critical`, wantVar: "MACAQUE_BLOCKING_ALERTS", wantMsg: "is not a list of Alertmanager matchers"},
		{name: "a bad matcher, gate off", matchers: `team=~"("`, wantVar: "MACAQUE_BLOCKING_ALERTS", wantMsg: "error parsing regexp"},
		{name: "no matcher", url: "http://am:9093", matchers: "", wantVar: "MACAQUE_BLOCKING_ALERTS", wantMsg: "empty: want Alertmanager matchers"},
		{name: "no scheme", url: "alertmanager:9093", matchers: "{}", wantVar: "MACAQUE_ALERTMANAGER_URL", wantMsg: "not an http(s) URL of Alertmanager"},
		{name: "the API's own URL", url: "http://am:9093/api/v2/alerts?active=true", matchers: "{}", wantVar: "MACAQUE_ALERTMANAGER_URL", wantMsg: "has a query"},
		{name: "a password in clear text", url: "http://macaque:s3cret@am.monitoring:9093", matchers: "{}", wantVar: "MACAQUE_ALERTMANAGER_URL", wantMsg: "would send its password in clear text"},
		{name: "a password over https", url: "https://macaque:s3cret@am.example", matchers: "{}", wantURL: "https://macaque:s3cret@am.example", want: "{}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			c.AlertmanagerURL, c.BlockingAlerts = tt.url, tt.matchers
			s, err := c.check()
			if tt.wantVar != "" {
				var bad *configError
				if !errors.As(err, &bad) || bad.variable != tt.wantVar || !strings.Contains(err.Error(), tt.wantMsg) || strings.ContainsAny(err.Error(), "\r\n") ||
					strings.Contains(err.Error(), "s3cret") {
					t.Errorf("check() = %v, want one line %s: ...%s... (no password)", err, tt.wantVar, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("check() = %v", err)
			}
			gotURL, got := "", ""
			if s.alerts.url != nil {
				gotURL, got = s.alerts.url.String(), s.alerts.matchers.String()
			}
			if gotURL != tt.wantURL || got != tt.want {
				t.Errorf("gate %q %q, want %q %q", gotURL, got, tt.wantURL, tt.want)
			}
		})
	}
}
