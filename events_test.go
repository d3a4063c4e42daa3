package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/testkit"

	"github.com/macaque-chaos/macaque/internal/kube"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
)

// eventsAt is when the test recorder writes its Events: after tick0, as a kill ends.
var eventsAt = tick0.Add(1500 * time.Millisecond)

// newTestRecorder is an eventRecorder writing to srv, logging into log.
func newTestRecorder(t *testing.T, srv *fakeapi.Server, log *bytes.Buffer) *eventRecorder {
	t.Helper()
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &eventRecorder{api: api, instance: "macaque-7f9c-x2k4", mode: "delete", now: func() time.Time { return eventsAt },
		timeout: testkit.Within, log: slog.New(slog.NewTextHandler(log, nil))}
}

// eventPosts are the requests srv got that create Events, dry runs included.
func eventPosts(srv *fakeapi.Server) []fakeapi.Request {
	var out []fakeapi.Request
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r.Path, kube.EventsAPI) {
			out = append(out, r)
		}
	}
	return out
}

// wantEvent is what a test expects of one Event.
type wantEvent struct {
	reason, action    string
	regarding         string // "Kind/name"
	related           string // "Kind/name", "" for none
	note              []string
	regardingAPIGroup string // the regarding object's apiVersion
}

// refString names an Event's object reference as Kind/name.
func refString(r *corev1.ObjectReference) string {
	if r == nil {
		return ""
	}
	return r.Kind + "/" + r.Name
}

// TestEventsOfEachOutcome checks the Events each outcome writes, through the real client
// against the fake API server, which validates them as kube-apiserver does: their path, their
// every field, and that other outcomes write none.
func TestEventsOfEachOutcome(t *testing.T) {
	depRef := ctrl("apps/v1", "Deployment", "web")
	top := kube.OwnerRef{APIVersion: depRef.APIVersion, Kind: depRef.Kind, Name: depRef.Name, UID: depRef.UID, Controller: depRef.Controller}
	sts := kube.OwnerRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "uid-db"}
	// A kill after a pick of db was passed over: its Events are the kill's alone.
	killed := Result{Time: tick0, Namespace: testNS, Pod: "web-1", Owner: "ReplicaSet/web-7d9", Outcome: OutcomeKilled, Deleted: tick0.Add(time.Second), top: &top,
		Passed: []string{"db-0: db: 2/3 ready"}, blamed: []blame{{workload: sts, namespace: testNS, pod: "db-0", why: "db: 2/3 ready"}}}
	tests := []struct {
		name string
		r    Result
		want []wantEvent
	}{
		{
			name: "a kill writes one Event on the pod and one on its top controller, each related to the other",
			r:    killed,
			want: []wantEvent{
				{reason: "ChaosKill", action: "Kill", regarding: "Pod/web-1", related: "Deployment/web", regardingAPIGroup: "v1",
					note: []string{"killed this pod of Deployment/web", "mode delete", "2026-03-29T09:00:00Z"}},
				{reason: "ChaosKill", action: "Kill", regarding: "Deployment/web", related: "Pod/web-1", regardingAPIGroup: "apps/v1",
					note: []string{"killed its pod web-1", "mode delete", "2026-03-29T09:00:00Z"}},
			},
		},
		{
			name: "a bare pod's kill writes one Event, on the pod",
			r:    Result{Time: tick0, Namespace: testNS, Pod: "solo", Outcome: OutcomeKilled},
			want: []wantEvent{{reason: "ChaosKill", action: "Kill", regarding: "Pod/solo", regardingAPIGroup: "v1", note: []string{"killed this pod (mode delete)", "2026-03-29T09:00:00Z"}}},
		},
		{
			name: "a skipped tick writes one Event on each workload blamed",
			r: Result{Time: tick0, Namespace: testNS, Outcome: OutcomeSkipped, Passed: []string{"web-1: excluded", "db-0: db: 2/3 ready", "solo: bare pod"},
				blamed: []blame{{workload: top, namespace: testNS, pod: "web-1", why: "excluded by chaos.macaque.dev/exclude on Deployment/web"}, {workload: sts, namespace: testNS, pod: "db-0", why: "db: 2/3 ready"}}},
			want: []wantEvent{
				{reason: "ChaosSkipped", action: "Skip", regarding: "Deployment/web", related: "Pod/web-1", regardingAPIGroup: "apps/v1",
					note: []string{"passed over its pod web-1", "2026-03-29T09:00:00Z", "excluded by chaos.macaque.dev/exclude on Deployment/web", "killed nothing"}},
				{reason: "ChaosSkipped", action: "Skip", regarding: "StatefulSet/db", related: "Pod/db-0", regardingAPIGroup: "apps/v1",
					note: []string{"passed over its pod db-0", "db: 2/3 ready"}},
			},
		},
		{name: "a skipped tick with no workload to blame writes none", r: Result{Time: tick0, Namespace: testNS, Outcome: OutcomeSkipped, Passed: []string{"solo: bare pod"}}},
		{name: "a dry run writes none", r: func() Result { r := killed; r.Outcome, r.Deleted = OutcomeDryRun, time.Time{}; return r }()},
		{name: "a kill whose fate is unknown writes none", r: func() Result { r := killed; r.Outcome = OutcomeUnknown; return r }()},
		{name: "a failed kill writes none", r: func() Result { r := killed; r.Outcome = OutcomeError; return r }()},
		{name: "a forbidden kill writes none", r: func() Result { r := killed; r.Outcome = OutcomeForbidden; return r }()},
		{name: "no candidates writes none", r: Result{Time: tick0, Namespace: testNS, Outcome: OutcomeNoCandidates}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t)
			var log bytes.Buffer
			rec := newTestRecorder(t, srv, &log)
			rec.record(t.Context(), tt.r)
			if rec.failed != 0 || log.Len() != 0 {
				t.Fatalf("%d Events failed: %s", rec.failed, log.String())
			}
			posts, events := eventPosts(srv), srv.Events()
			if len(posts) != len(tt.want) || len(events) != len(tt.want) {
				t.Fatalf("%d POSTs, %d Events stored, want %d: %+v", len(posts), len(events), len(tt.want), events)
			}
			for i, w := range tt.want {
				p, e := posts[i], events[i]
				if p.Method != http.MethodPost || p.Path != "/apis/events.k8s.io/v1/namespaces/"+testNS+"/events" || p.Query.Has("dryRun") {
					t.Errorf("request %d: %s %s?%s, want a POST to the namespace's events", i, p.Method, p.Path, p.Query.Encode())
				}
				checkEvent(t, e, w)
			}
		})
	}
}

// checkEvent fails unless e is the Event w describes, with macaque's fixed fields.
func checkEvent(t *testing.T, e eventsv1.Event, w wantEvent) {
	t.Helper()
	if e.Reason != w.reason || e.Action != w.action || e.Type != "Normal" {
		t.Errorf("Event reason %q action %q type %q, want %q %q Normal", e.Reason, e.Action, e.Type, w.reason, w.action)
	}
	if e.ReportingController != "macaque" || e.ReportingInstance != "macaque-7f9c-x2k4" {
		t.Errorf("Event reported by %q/%q, want macaque/macaque-7f9c-x2k4", e.ReportingController, e.ReportingInstance)
	}
	if !e.EventTime.Time.Equal(eventsAt) {
		t.Errorf("eventTime %v, want %v (the recorder's clock)", e.EventTime, eventsAt)
	}
	if got := refString(&e.Regarding); got != w.regarding || e.Regarding.APIVersion != w.regardingAPIGroup || e.Regarding.Namespace != testNS || e.Namespace != testNS {
		t.Errorf("Event in %q regarding %s (%s in %q), want %s (%s in %q)", e.Namespace, got, e.Regarding.APIVersion, e.Regarding.Namespace, w.regarding, w.regardingAPIGroup, testNS)
	}
	if e.Regarding.Kind != "Pod" && e.Regarding.UID == "" {
		t.Errorf("Event regarding %s has no UID: the workload's is known", refString(&e.Regarding))
	}
	if got := refString(e.Related); got != w.related || (e.Related != nil && e.Related.Namespace != testNS) {
		t.Errorf("Event related %s, want %q in %q", got, w.related, testNS)
	}
	for _, n := range w.note {
		if !strings.Contains(e.Note, n) {
			t.Errorf("Event note %q, want it to contain %q", e.Note, n)
		}
	}
	if !strings.HasPrefix(e.Name, e.Regarding.Name+".") {
		t.Errorf("Event name %q, want it to start with %q", e.Name, e.Regarding.Name+".")
	}
}

// TestEventsStayValidAtTheLimits: a long instance name, a long pod name and a long reason are
// cut so that the API server's validation (which the fake applies) still accepts every Event,
// and two Events at the same instant about a pod and a workload of the same name do not clash.
func TestEventsStayValidAtTheLimits(t *testing.T) {
	long := strings.Repeat("a", 240) + "-" + strings.Repeat("b", 12)
	twin := kube.OwnerRef{APIVersion: "example.com/v1", Kind: "Game", Name: long, UID: "uid-game"}
	srv := fakeapi.New(t)
	var log bytes.Buffer
	rec := newTestRecorder(t, srv, &log)
	rec.instance = strings.Repeat("i", 300)
	rec.record(t.Context(), Result{Time: tick0, Namespace: testNS, Pod: long, Outcome: OutcomeKilled, top: &twin})
	rec.now = func() time.Time { return eventsAt.Add(time.Minute) } // the next tick's
	rec.record(t.Context(), Result{Time: tick0, Namespace: testNS, Outcome: OutcomeSkipped,
		blamed: []blame{{workload: twin, namespace: testNS, pod: long, why: strings.Repeat("é", 2000)}}})
	if rec.failed != 0 {
		t.Fatalf("%d Events refused: %s", rec.failed, log.String())
	}
	events := srv.Events()
	if len(events) != 3 {
		t.Fatalf("%d Events stored, want 3", len(events))
	}
	for _, e := range events {
		if len(e.ReportingInstance) != maxInstance || len(e.Note) > maxNote || len(e.Name) > maxName || len(validation.IsDNS1123Subdomain(e.Name)) != 0 {
			t.Errorf("Event %q: instance %d bytes, note %d bytes", e.Name, len(e.ReportingInstance), len(e.Note))
		}
	}
}

// TestEventNames: unique per object, kind and instant, and valid for any object name.
func TestEventNames(t *testing.T) {
	pod := kube.ObjectRef{Kind: "Pod", Name: "web"}
	game := kube.ObjectRef{Kind: "Game", Name: "web"}
	if a, b := eventName(pod, eventsAt), eventName(game, eventsAt); a == b {
		t.Errorf("a pod and a Game named alike share Event name %q", a)
	}
	if a, b := eventName(pod, eventsAt), eventName(pod, eventsAt.Add(time.Nanosecond)); a == b {
		t.Errorf("two instants share Event name %q", a)
	}
	suffix := fmt.Sprintf(".pod.%x", eventsAt.UnixNano())
	for _, name := range []string{"web", "web.pod.a", strings.Repeat("a", 253), strings.Repeat("a", 230) + "-" + strings.Repeat("b", 22), strings.Repeat("a.", 126) + "a"} {
		got := eventName(kube.ObjectRef{Kind: "Pod", Name: name}, eventsAt)
		// The name kept is what comes before the suffix, which ends the Event's name: a pod's
		// own name may hold ".pod." too.
		kept, ok := strings.CutSuffix(got, suffix)
		if errs := validation.IsDNS1123Subdomain(got); len(errs) != 0 || !ok || !strings.HasPrefix(name, kept) {
			t.Errorf("eventName(%q) = %q, want a prefix of the name then %q: %v", name, got, suffix, errs)
		}
	}
	if got := eventName(pod, eventsAt); got != fmt.Sprintf("web.pod.%x", eventsAt.UnixNano()) {
		t.Errorf("eventName = %q", got)
	}
}

// TestEventFailuresAreWarnedAndCounted: a Role without events create (or any failure) costs a
// warning per Event, counted since start, and nothing else.
func TestEventFailuresAreWarnedAndCounted(t *testing.T) {
	tests := []struct {
		name   string
		status *metav1.Status
		want   string
	}{
		{name: "forbidden", status: &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
			Message: `events.events.k8s.io is forbidden: User "system:serviceaccount:shop:macaque" cannot create resource "events" in API group "events.k8s.io" in the namespace "shop"`},
			want: "cannot create resource"},
		{name: "server error", status: fakeapi.InternalError("etcd leader changed"), want: "etcd leader changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t)
			srv.Fail = func(fakeapi.Request) *metav1.Status { return tt.status }
			var log bytes.Buffer
			rec := newTestRecorder(t, srv, &log)
			top := kube.OwnerRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "u"}
			r := Result{Time: tick0, Namespace: testNS, Pod: "web-1", Outcome: OutcomeKilled, top: &top}
			rec.record(t.Context(), r)
			rec.record(t.Context(), r)
			if rec.failed != 4 {
				t.Errorf("failed = %d, want 4", rec.failed)
			}
			lines := strings.Split(strings.TrimSpace(log.String()), "\n")
			if len(lines) != 4 || !strings.Contains(lines[3], "level=WARN") || !strings.Contains(lines[3], "events_failed=4") ||
				!strings.Contains(lines[3], tt.want) || !strings.Contains(lines[3], "regarding=Deployment/web") {
				t.Errorf("log = %q, want 4 warnings, the last counting 4 and saying %q", lines, tt.want)
			}
		})
	}
}

// TestEventsNeverDelayTheKill holds every Event POST: the DELETE is sent and the report is
// out before the first Event is tried, and the Events give up after their own timeout, so the
// killer goes on to its next tick.
func TestEventsNeverDelayTheKill(t *testing.T) {
	for _, tt := range []struct {
		name    string
		timeout time.Duration // the Events' own
		ticks   int
		failed  int // Events given up
	}{
		{name: "the report goes out while the Events are held", timeout: time.Hour, ticks: 1, failed: 0},
		{name: "the Events give up after their timeout and the next tick runs", timeout: 50 * time.Millisecond, ticks: 2, failed: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t, fakeapi.Pod(testNS, "web-1", nil), fakeapi.Pod(testNS, "web-2", nil))
			release := make(chan struct{})
			srv.Fail = func(r fakeapi.Request) *metav1.Status {
				if strings.HasPrefix(r.Path, kube.EventsAPI) {
					<-release
				}
				return nil
			}
			k := newTestKiller(t, srv, "", false)
			var log bytes.Buffer
			k.events = newTestRecorder(t, srv, &log)
			k.events.timeout = tt.timeout
			ticks, results := make(chan time.Time, tt.ticks), make(chan []Result, tt.ticks)
			for i := range tt.ticks {
				ticks <- tick0.Add(time.Duration(i) * time.Minute)
			}
			close(ticks)
			done := make(chan struct{})
			go func() { k.run(t.Context(), ticks, results); close(done) }()
			for i := range tt.ticks {
				tick, _ := testkit.Recv(t, results, fmt.Sprintf("report %d while its Events are held", i))
				if len(tick) != 1 || tick[0].Outcome != OutcomeKilled {
					t.Errorf("tick %d: reports %+v, want one, killed whatever becomes of its Events", i, tick)
				}
			}
			if tt.ticks > 1 {
				testkit.Recv(t, done, "the killer to finish its ticks though no Event is ever answered")
			}
			close(release)
			testkit.Recv(t, done, "the killer to finish")
			var order []string
			for _, r := range srv.Requests() {
				if r.Method != http.MethodGet {
					order = append(order, r.Method)
				}
			}
			if want := strings.Repeat("DELETE POST ", tt.ticks); strings.Join(order, " ")+" " != want {
				t.Errorf("requests %q, want %q: each tick's DELETE before its Event (the second given up after the first's timeout)", order, want)
			}
			if k.events.failed != tt.failed {
				t.Errorf("failed = %d, want %d: %s", k.events.failed, tt.failed, log.String())
			}
		})
	}
}

// TestPreflightEvents: a dry-run create at start, which stores nothing; a Role without events
// create, or any other failure, only warns.
func TestPreflightEvents(t *testing.T) {
	tests := []struct {
		name   string
		status *metav1.Status
		want   string // in the one warning; "" for none
	}{
		{name: "allowed"},
		{name: "forbidden", status: &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
			Message: `events.events.k8s.io is forbidden: User "x" cannot create resource "events" in API group "events.k8s.io" in the namespace "shop"`},
			want: "macaque may not write Events"},
		{name: "server error", status: fakeapi.InternalError("etcd leader changed"), want: "could not check that macaque may write Events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t)
			srv.Fail = func(fakeapi.Request) *metav1.Status { return tt.status }
			var log bytes.Buffer
			preflightEvents(t.Context(), newTestRecorder(t, srv, &log), testNS)
			posts := eventPosts(srv)
			if len(posts) != 1 || posts[0].Query.Get("dryRun") != "All" || len(srv.Events()) != 0 {
				var queries []string
				for _, p := range posts {
					queries = append(queries, p.Path+"?"+p.Query.Encode())
				}
				t.Fatalf("POSTs %q, stored %d: want one dry run, nothing stored", queries, len(srv.Events()))
			}
			got := strings.TrimSpace(log.String())
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) || strings.Count(got, "\n") > 0 || (got != "" && !strings.Contains(got, "level=WARN")) {
				t.Errorf("log = %q, want one warning containing %q", got, tt.want)
			}
		})
	}
}
