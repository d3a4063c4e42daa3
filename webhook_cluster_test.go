package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/election"
	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/recovery"
	"github.com/macaque-chaos/macaque/internal/testkit"
	"k8s.io/client-go/rest"
)

// TestClusterNameInEverySlackMessage: with MACAQUE_CLUSTER_NAME, every kind of post the notifier
// makes starts with the name, escaped as the rest of the text is; without it, none changes.
func TestClusterNameInEverySlackMessage(t *testing.T) {
	second := killed
	second.Pod, second.uid = "web-2", "uid-web-2"
	first := killed
	first.uid = "uid-web-1"
	paused := Result{Time: tick0, Namespace: testNS, Outcome: OutcomePaused, Note: "until removed"}
	tests := []struct {
		name      string
		reports   [][]Result
		verdicts  []recovery.Verdict
		takeovers []election.Takeover
		first     string // the fixed words the post's text has after the name
	}{
		{name: "kill report", reports: [][]Result{{first}}, first: ":monkey_face: killed pod `shop/web-1`"},
		{name: "tick of several victims", reports: [][]Result{{first, second}}, first: ":monkey_face: killed 2 pods"},
		{name: "no candidates", reports: [][]Result{{{Time: tick0, Namespace: testNS, Outcome: OutcomeNoCandidates}}}, first: ":zzz: no Running pod"},
		{name: "failure", reports: [][]Result{{{Time: tick0, Namespace: testNS, Outcome: OutcomeError, Err: errors.New("boom")}}}, first: ":warning: failed to kill"},
		{name: "pause announcement", reports: [][]Result{{paused}}, first: ":double_vertical_bar: paused"},
		{name: "verdict", verdicts: []recovery.Verdict{{Time: tick0, Namespace: testNS, Pod: "web-1", Workload: "Deployment/web", Status: recovery.Recovered, UID: "uid-web-1"}},
			first: ":white_check_mark: recovered"},
		{name: "not recovered alarm", verdicts: []recovery.Verdict{{Time: tick0, Namespace: testNS, Pod: "web-1", Workload: "Deployment/web", Status: recovery.NotRecovered, UID: "uid-web-1"}},
			first: ":rotating_light: not recovered"},
		{name: "takeover", takeovers: []election.Takeover{{At: tick0, Identity: "macaque-b", From: "macaque-a", Expired: true}}, first: ":crown: leader:"},
	}
	for _, tt := range tests {
		for _, cluster := range []string{"prod-eu", ""} {
			t.Run(tt.name+"/cluster "+cluster, func(t *testing.T) {
				posts := postAll(t, cluster, tt.reports, tt.verdicts, tt.takeovers)
				if len(posts) != 1 {
					t.Fatalf("%d posts, want 1", len(posts))
				}
				want := tt.first
				if cluster != "" {
					want = "[" + cluster + "] " + want
				}
				if !strings.HasPrefix(posts[0]["text"], want) {
					t.Errorf("text %q, want it to start %q", posts[0]["text"], want)
				}
			})
		}
	}
	t.Run("escaped", func(t *testing.T) {
		// The setting allows nothing to escape; the notifier escapes it all the same.
		if posts := postAll(t, "<!channel>&", [][]Result{{first}}, nil, nil); !strings.HasPrefix(posts[0]["text"], "[&lt;!channel&gt;&amp;] :monkey_face:") {
			t.Errorf("text %q, want the name escaped", posts[0]["text"])
		}
	})
}

// postAll runs a notifier with cluster over reports, verdicts and takeovers, and returns what it posted.
func postAll(t *testing.T, cluster string, reports [][]Result, verdicts []recovery.Verdict, takeovers []election.Takeover) []map[string]string {
	t.Helper()
	stub := newSlackStub(t)
	n := newTestNotifier(stub, &testkit.Instant{})
	n.cluster = cluster
	results, vs, ts := make(chan []Result, len(reports)), make(chan recovery.Verdict, len(verdicts)), make(chan election.Takeover, len(takeovers))
	for _, r := range reports {
		results <- r
	}
	for _, v := range verdicts {
		vs <- v
	}
	for _, to := range takeovers {
		ts <- to
	}
	close(results)
	close(vs)
	close(ts)
	n.verdicts, n.takeovers = vs, ts
	done := make(chan struct{})
	go func() { n.run(t.Context(), results, time.Second); close(done) }()
	testkit.Recv(t, done, "the notifier to post")
	return stub.Posts()
}

// TestClusterNameInEventNotes: every Event macaque writes, the kills', the skipped ticks' and the
// verdicts' (which the recovery builds with the same recorder), starts its note with the name.
func TestClusterNameInEventNotes(t *testing.T) {
	top := kube.OwnerRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "uid-deploy"}
	kill := Result{Time: tick0, Namespace: testNS, Pod: "web-1", Outcome: OutcomeKilled, Deleted: tick0, top: &top}
	sts := kube.OwnerRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "uid-db"}
	skipped := Result{Time: tick0, Namespace: testNS, Outcome: OutcomeSkipped, blamed: []blame{{workload: sts, namespace: testNS, pod: "db-0", why: "db: 2/3 ready"}}}
	for _, cluster := range []string{"prod-eu", ""} {
		t.Run("cluster "+cluster, func(t *testing.T) {
			srv := fakeapi.New(t) // neither controller exists: the verdict is unknown at once
			var logs bytes.Buffer
			rec := newTestRecorder(t, srv, &logs)
			rec.cluster = cluster
			rec.recordAll(t.Context(), []Result{kill, skipped})
			runVerdict(t, srv, rec, discardLogger(), eventsAt.Add(time.Second)) // after the kills' Events: the verdict's has a name of its own
			events := srv.Events()
			if len(events) != 4 {
				t.Fatalf("%d Events, want the kill's 2, the skip's and the verdict's; log: %s", len(events), logs.String())
			}
			for _, e := range events {
				if strings.HasPrefix(e.Note, "[prod-eu] ") != (cluster != "") || (cluster == "" && strings.HasPrefix(e.Note, "[")) {
					t.Errorf("%s Event's note %q: want it to start [prod-eu] only with the name set", e.Reason, e.Note)
				}
			}
		})
	}
}

// runVerdict follows one kill (web-7d9f-a of Deployment web, which srv may not serve: then its
// verdict is unknown at once) through a real Follower against srv, with rec building its Event
// as run wires it, log the recovery's logger and now its clock, and returns the verdict once
// the Follower has ended, its Event written.
func runVerdict(t *testing.T, srv *fakeapi.Server, rec *eventRecorder, log *slog.Logger, now time.Time) recovery.Verdict {
	t.Helper()
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	f := &recovery.Follower{API: api, Timeout: time.Hour, Now: func() time.Time { return now }, After: time.After, Log: log,
		Events: api, NewEvent: rec.event, Grace: shutdownGrace}
	rs := kube.OwnerRef{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9f", UID: "uid-rs"}
	deploy := kube.OwnerRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "uid-deploy"}
	kills, verdicts := make(chan recovery.Kill, 1), make(chan recovery.Verdict, 1)
	kills <- recovery.Kill{Tick: tick0, Namespace: testNS, Pod: "web-7d9f-a", UID: "uid-web-a", Controller: &rs, Top: &deploy, RV: "1", Deleted: tick0}
	close(kills)
	go f.Run(testkit.Ctx(t), kills, verdicts)
	v, _ := testkit.Recv(t, verdicts, "the verdict")
	testkit.Recv(t, verdicts, "the verdicts to close, the Event written")
	return v
}

// TestClusterNameInLogLines: the logger run builds carries the name on every line, the
// verdicts' among them, in either format; without the name, no line has the field.
func TestClusterNameInLogLines(t *testing.T) {
	tests := []struct {
		name, format, cluster, want string
	}{
		{name: "text", format: "text", cluster: "prod-eu", want: "cluster=prod-eu"},
		{name: "json", format: "json", cluster: "prod-eu", want: `"cluster":"prod-eu"`},
		{name: "none", format: "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs testkit.SyncBuffer
			log := newLogger(&logs, settings{logFormat: tt.format, logLevel: slog.LevelInfo, cluster: tt.cluster})
			runVerdict(t, fakeapi.New(t), &eventRecorder{instance: "macaque-0", now: time.Now, log: log}, log, eventsAt.Add(time.Second))
			var verdict string
			for line := range strings.Lines(logs.String()) {
				if strings.Contains(line, "recovery verdict") {
					verdict = line
				}
			}
			if verdict == "" {
				t.Fatalf("no verdict line in:\n%s", logs.String())
			}
			if tt.want != "" && !strings.Contains(verdict, tt.want) {
				t.Errorf("verdict line %q, want %s", verdict, tt.want)
			}
			if tt.want == "" && strings.Contains(logs.String(), "cluster") {
				t.Errorf("log %q names a cluster, with none set", logs.String())
			}
		})
	}
}
