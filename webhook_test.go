package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/recovery"
	"github.com/macaque-chaos/macaque/internal/testkit"
	"github.com/macaque-chaos/macaque/internal/webhook"
)

// testFeed is a feed whose clock stands still at feedNow and whose ids count up.
func testFeed(cluster string, room int) *webhookFeed {
	n := 0
	return &webhookFeed{cluster: cluster, out: make(chan webhook.Event, room), now: func() time.Time { return feedNow },
		newID: func() string { n++; return fmt.Sprintf("id-%d", n) }}
}

var feedNow = tick0.Add(3 * time.Second)

// asJSON is e as the receiver reads it.
func asJSON(t *testing.T, e webhook.Event) map[string]any {
	t.Helper()
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestWebhookEvents: each report but a quiet one, and each verdict, is one event: a kill the
// server accepted is dev.macaque.kill at the time it was accepted, any other report
// dev.macaque.tick, a verdict dev.macaque.verdict; source names the cluster and namespace,
// subject the pod, data the report.
func TestWebhookEvents(t *testing.T) {
	kill := Result{Time: tick0, Scope: testNS, Namespace: testNS, Selector: "app=web", Pod: "web-1", Owner: "ReplicaSet/web-7d9", Node: "node-1",
		Candidates: 3, Outcome: OutcomeKilled, Mode: modeDelete, Deleted: tick0.Add(1200 * time.Millisecond), uid: "uid-web-1",
		Note: "confirmed by a read-back", Passed: []string{"shop/db-0: db: 2/3 ready"}}
	verdict := recovery.Verdict{Time: tick0, Namespace: testNS, Pod: "web-1", Workload: "Deployment/web", Status: recovery.Recovered, Replacement: "web-2",
		Created: recovery.Milestone{After: 300 * time.Millisecond, Reached: true}, Ready: recovery.Milestone{After: 4 * time.Second, Reached: true},
		Full: recovery.Milestone{After: 4 * time.Second, Reached: true}, Strength: "3/3", Timeout: 5 * time.Minute, UID: "uid-web-1"}
	tests := []struct {
		name    string
		cluster string
		tick    []Result
		verdict *recovery.Verdict
		want    []map[string]any // attributes and data fields of each event, in order
	}{
		{
			name: "a kill", cluster: "prod-eu", tick: []Result{kill},
			want: []map[string]any{{"type": "dev.macaque.kill", "source": "/macaque/clusters/prod-eu/namespaces/shop", "subject": "web-1", "id": "id-1",
				"time": "2026-03-29T09:00:01.2Z", "data.cluster": "prod-eu", "data.outcome": "killed", "data.mode": "delete", "data.pod": "web-1", "data.uid": "uid-web-1",
				"data.namespace": "shop", "data.owner": "ReplicaSet/web-7d9", "data.node": "node-1", "data.candidates": 3.0, "data.tick": "2026-03-29T09:00:00Z",
				"data.deleted": "2026-03-29T09:00:01.2Z", "data.note": "confirmed by a read-back", "data.passed": []any{"shop/db-0: db: 2/3 ready"}, "data.error": ""}},
		},
		{
			name: "a dry run is a tick, not a kill", tick: []Result{{Time: tick0, Namespace: testNS, Pod: "web-1", Outcome: OutcomeDryRun}},
			want: []map[string]any{{"type": "dev.macaque.tick", "source": "/macaque/namespaces/shop", "subject": "web-1", "time": "2026-03-29T09:00:03Z",
				"data.outcome": "dry-run", "data.deleted": nil, "data.cluster": "", "data.passed": []any{}}},
		},
		{
			name: "a kill whose fate is unknown is a tick", cluster: "c1", tick: []Result{{Time: tick0, Namespace: testNS, Pod: "web-1", Outcome: OutcomeUnknown, Err: errors.New("no answer")}},
			want: []map[string]any{{"type": "dev.macaque.tick", "data.outcome": "unknown", "data.error": "no answer", "data.deleted": nil}},
		},
		{
			name: "a tick over every namespace with nothing to kill", cluster: "prod-eu", tick: []Result{{Time: tick0, Scope: "*", Outcome: OutcomeNoCandidates}},
			want: []map[string]any{{"type": "dev.macaque.tick", "source": "/macaque/clusters/prod-eu", "subject": nil, "data.scope": "*", "data.pod": ""}},
		},
		{
			name: "a tick of two kills and a failure is three events", cluster: "prod-eu",
			tick: []Result{kill, func() Result { r := kill; r.Pod = "web-3"; return r }(), {Time: tick0, Namespace: testNS, Outcome: OutcomeError, Err: errors.New("boom"), KilledBefore: 2}},
			want: []map[string]any{{"type": "dev.macaque.kill", "subject": "web-1", "id": "id-1"}, {"type": "dev.macaque.kill", "subject": "web-3", "id": "id-2"},
				{"type": "dev.macaque.tick", "data.outcome": "error", "data.killed_before": 2.0, "id": "id-3"}},
		},
		{
			name: "a quiet paused tick sends none", tick: []Result{{Time: tick0, Namespace: testNS, Outcome: OutcomePaused, Quiet: true}},
		},
		{
			name: "a verdict", cluster: "prod-eu", verdict: &verdict,
			want: []map[string]any{{"type": "dev.macaque.verdict", "source": "/macaque/clusters/prod-eu/namespaces/shop", "subject": "web-1", "time": "2026-03-29T09:00:03Z",
				"data.cluster": "prod-eu", "data.verdict": "recovered", "data.workload": "Deployment/web", "data.replacement": "web-2", "data.uid": "uid-web-1",
				"data.created_seconds": 0.3, "data.ready_seconds": 4.0, "data.full_strength_seconds": 4.0, "data.strength": "3/3", "data.timeout_seconds": 300.0,
				"data.tick": "2026-03-29T09:00:00Z", "data.summary": verdict.Summary()}},
		},
		{
			name: "a verdict with stages not reached", verdict: &recovery.Verdict{Time: tick0, Namespace: testNS, Pod: "web-1", Status: recovery.Unknown, Why: "macaque stopped"},
			want: []map[string]any{{"type": "dev.macaque.verdict", "data.verdict": "unknown", "data.created_seconds": nil, "data.ready_seconds": nil,
				"data.full_strength_seconds": nil, "data.why": "macaque stopped"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testFeed(tt.cluster, 8)
			f.tick(tt.tick)
			if tt.verdict != nil {
				f.verdict(*tt.verdict)
			}
			f.close()
			var got []webhook.Event
			for e := range f.out {
				got = append(got, e)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d events, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, want := range tt.want {
				m := asJSON(t, got[i])
				if m["specversion"] != "1.0" || m["datacontenttype"] != "application/json" {
					t.Errorf("event %d: specversion %v, datacontenttype %v", i, m["specversion"], m["datacontenttype"])
				}
				data, _ := m["data"].(map[string]any)
				for k, v := range want {
					var have any
					if field, ok := strings.CutPrefix(k, "data."); ok {
						have = data[field]
					} else {
						have = m[k]
					}
					if fmt.Sprint(have) != fmt.Sprint(v) {
						t.Errorf("event %d: %s = %#v, want %#v", i, k, have, v)
					}
				}
			}
		})
	}
}

// hookReceiver is an httptest CloudEvents receiver that holds each POST until released, and
// records the events' types and subjects.
type hookReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []string // "type subject"
	release chan struct{}
	once    sync.Once
}

func newHookReceiver(t *testing.T, held bool) *hookReceiver {
	h := &hookReceiver{release: make(chan struct{})}
	if !held {
		close(h.release)
	}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-h.release
		var e webhook.Event
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &e)
		h.mu.Lock()
		h.got = append(h.got, e.Type+" "+e.Subject)
		h.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(h.Close)
	t.Cleanup(h.free) // before Close, which waits for the held requests
	return h
}

func (h *hookReceiver) free() {
	h.once.Do(func() {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
	})
}

func (h *hookReceiver) Got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

// withWebhook gives n a webhook to url, sending on the fake clock, and returns when its sender is done.
func withWebhook(t *testing.T, n *Notifier, url string) <-chan struct{} {
	t.Helper()
	n.webhook = testFeed("prod-eu", reportBuffer)
	s := &webhook.Sender{URL: url, Client: webhook.Client(), After: (&testkit.Instant{}).After, Now: time.Now, Backoff: defaultBackoff,
		Log: slog.New(slog.DiscardHandler)}
	done := make(chan struct{})
	go func() { s.Run(t.Context(), n.webhook.out, time.Second); close(done) }()
	return done
}

// TestWebhookOutageNeverDelaysKills runs the killer, the notifier and the webhook as run wires
// them, over more ticks than the channels between them have room for, with the receiver
// holding every POST: the killer finishes every tick and Slack gets every message while the
// receiver holds them all; once it answers, it gets one event per kill, in order.
func TestWebhookOutageNeverDelaysKills(t *testing.T) {
	const tickCount, perTick = reportBuffer + 6, 2
	srv := fakeapi.New(t, barePods(tickCount*perTick)...)
	k := newBurstKiller(t, srv, perTick)
	hook := newHookReceiver(t, true)
	stub := newSlackStub(t)
	n := newTestNotifier(stub, &testkit.Instant{})
	sent := withWebhook(t, n, hook.URL)
	ticks := make(chan time.Time, tickCount)
	for i := range tickCount {
		ticks <- tick0.Add(time.Duration(i) * time.Minute)
	}
	close(ticks)
	killed, posted := runPipeline(t, k, n, ticks)
	testkit.Recv(t, killed, "the killer to finish its ticks while the receiver holds the first event")
	testkit.Recv(t, posted, "Slack to get every tick while the receiver holds the first event")
	if got := len(srv.Deletes()); got != tickCount*perTick {
		t.Errorf("%d pods deleted, want %d", got, tickCount*perTick)
	}
	if got := len(stub.Posts()); got != tickCount {
		t.Errorf("%d Slack posts, want %d", got, tickCount)
	}
	if got := len(hook.Got()); got != 0 {
		t.Fatalf("the receiver has %d events while holding the first", got)
	}
	hook.free()
	testkit.Recv(t, sent, "the webhook to send every event once the receiver answers")
	got := hook.Got()
	if len(got) != tickCount*perTick {
		t.Fatalf("%d events, want one per kill, %d", len(got), tickCount*perTick)
	}
	for _, g := range got {
		if !strings.HasPrefix(g, "dev.macaque.kill web-") {
			t.Errorf("event %q, want a kill of a web pod", g)
		}
	}
}

// TestWebhookWithoutSlack: with no Slack configured, the notifier only drains, and the webhook
// still gets every report and verdict, the verdict after its kill.
func TestWebhookWithoutSlack(t *testing.T) {
	hook := newHookReceiver(t, false)
	n := &Notifier{after: (&testkit.Instant{}).After, backoff: defaultBackoff, log: discardLogger()}
	sent := withWebhook(t, n, hook.URL)
	results, verdicts := make(chan []Result, 1), make(chan recovery.Verdict, 1)
	results <- []Result{killed}
	verdicts <- recovery.Verdict{Time: tick0, Namespace: testNS, Pod: "web-1", Status: recovery.Recovered}
	close(results)
	close(verdicts)
	n.verdicts = verdicts
	done := make(chan struct{})
	go func() { n.run(t.Context(), results, time.Second); close(done) }()
	testkit.Recv(t, done, "the notifier to drain")
	testkit.Recv(t, sent, "the webhook to send")
	if got := strings.Join(hook.Got(), ", "); got != "dev.macaque.kill web-1, dev.macaque.verdict web-1" {
		t.Errorf("events %q, want the kill then its verdict", got)
	}
}

// TestNewWebhook: run gets no webhook without MACAQUE_WEBHOOK_URL; with it, a feed naming the
// cluster and a sender to the URL that sends the Authorization header from the file, if any,
// read at each send.
func TestNewWebhook(t *testing.T) {
	if feed, sender := newWebhook(settings{}, discardLogger(), nil); feed != nil || sender != nil {
		t.Fatalf("no URL: %v, %v; want no webhook", feed, sender)
	}
	auth := t.TempDir() + "/authorization"
	for _, tt := range []struct {
		name, authFile, want string
	}{
		{name: "no auth file"},
		{name: "an auth file", authFile: auth, want: "Bearer rotated"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			headers := make(chan string, 1)
			rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				headers <- r.Header.Get("Authorization")
				w.WriteHeader(http.StatusAccepted)
			}))
			t.Cleanup(rc.Close)
			if err := os.WriteFile(auth, []byte("Bearer first\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			s := settings{cluster: "prod-eu", webhook: webhookSettings{url: rc.URL, authFile: tt.authFile}}
			feed, sender := newWebhook(s, discardLogger(), nil)
			if feed == nil || sender == nil || feed.cluster != "prod-eu" || sender.URL != rc.URL {
				t.Fatalf("newWebhook = %+v, %+v; want a feed of prod-eu and a sender to %s", feed, sender, rc.URL)
			}
			if err := os.WriteFile(auth, []byte("Bearer rotated\n"), 0o600); err != nil { // read at the send
				t.Fatal(err)
			}
			feed.tick([]Result{killed})
			e, _ := testkit.Recv(t, feed.out, "the kill's event")
			if err := sender.Send(testkit.Ctx(t), e); err != nil {
				t.Fatal(err)
			}
			if got, _ := testkit.Recv(t, headers, "the POST"); got != tt.want {
				t.Errorf("Authorization %q, want %q", got, tt.want)
			}
		})
	}
}
