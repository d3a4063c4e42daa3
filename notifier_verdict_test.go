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

	"github.com/macaque-chaos/macaque/internal/recovery"

	"k8s.io/apimachinery/pkg/types"
)

// TestVerdictsInTheKillsThread checks that the notifier posts each verdict as a reply in the
// thread of its kill's message, broadcasts a not recovered one to the channel too, and posts a
// verdict whose kill was never posted to the channel.
func TestVerdictsInTheKillsThread(t *testing.T) {
	ts := func(ts string) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"ok":true,"channel":"C123","ts":%q}`, ts)
		}
	}
	kill := func(pod string, uid types.UID) Result {
		r := killed
		r.Pod, r.uid = pod, uid
		return r
	}
	verdict := func(pod string, uid types.UID, s recovery.Status) recovery.Verdict {
		return recovery.Verdict{Namespace: "shop", Pod: pod, Workload: "Deployment/web", Status: s, UID: uid, Timeout: time.Minute,
			Created: recovery.Milestone{After: 300 * time.Millisecond, Reached: true}, Replacement: "web-x"}
	}
	stub := newSlackStub(t, ts("1.000001"), ts("1.000002"))
	n := newTestNotifier(stub, &testkit.Instant{})
	results, verdicts := make(chan []Result, 4), make(chan recovery.Verdict, 4)
	n.verdicts = verdicts
	results <- []Result{kill("web-1", "uid-1")}
	results <- []Result{kill("web-2", "uid-2")}
	verdicts <- verdict("web-2", "uid-2", recovery.NotRecovered)
	verdicts <- verdict("web-1", "uid-1", recovery.Recovered)
	verdicts <- verdict("web-3", "uid-never-posted", recovery.Recovered)
	close(results)
	close(verdicts)
	done := make(chan struct{})
	go func() { n.run(t.Context(), results, time.Second); close(done) }()
	testkit.Recv(t, done, "the notifier to end")
	posts := stub.Posts()
	if len(posts) != 5 {
		t.Fatalf("%d posts, want 5: %v", len(posts), posts)
	}
	want := []struct{ thread, broadcast, text string }{
		{"", "", ":monkey_face: killed"}, {"", "", ":monkey_face: killed"},
		{"1.000002", "true", ":rotating_light: not recovered: deployment `shop/web`"},
		{"1.000001", "", ":white_check_mark: recovered: deployment `shop/web`: web lost web-1: replacement web-x created in 0.3 s"},
		{"", "", ":white_check_mark: recovered"},
	}
	for i, w := range want {
		p := posts[i]
		if p["thread_ts"] != w.thread || p["reply_broadcast"] != w.broadcast || !strings.HasPrefix(p["text"], w.text) {
			t.Errorf("post %d: thread_ts %q, reply_broadcast %q, text %q; want %q, %q, %q", i, p["thread_ts"], p["reply_broadcast"], p["text"], w.thread, w.broadcast, w.text)
		}
	}
}

// TestThreadsAreBounded checks that the notifier forgets the oldest kills past maxThreads.
func TestThreadsAreBounded(t *testing.T) {
	var th threads
	for i := range maxThreads + 1 {
		th.remember(types.UID(fmt.Sprint(i)), fmt.Sprint(i))
	}
	if _, ok := th.take("0"); ok {
		t.Error("the oldest kill is remembered past maxThreads")
	}
	if ts, ok := th.take("1"); !ok || ts != "1" {
		t.Errorf("kill 1: %q, %v; want its ts", ts, ok)
	}
	if _, ok := th.take("1"); ok {
		t.Error("a kill's ts is taken twice")
	}
	if len(th.ts) != maxThreads-1 || len(th.order) != maxThreads {
		t.Errorf("%d ts and %d in order, want %d and %d", len(th.ts), len(th.order), maxThreads-1, maxThreads)
	}
}

// TestVerdictWaitsForItsKillsReport: a kill's report and its verdict queued together, the
// results still open, as the killer and the recovery goroutine leave them when the verdict is
// quick: the report is posted first, so the verdict is in its thread, whichever channel the
// notifier's select takes first (tried many times: it picks at random).
func TestVerdictWaitsForItsKillsReport(t *testing.T) {
	for i := range 20 {
		stub := newSlackStub(t)
		n := newTestNotifier(stub, &testkit.Instant{})
		results, verdicts := make(chan []Result, 1), make(chan recovery.Verdict, 1)
		n.verdicts = verdicts
		r := killed
		r.uid = "uid-1"
		results <- []Result{r}
		verdicts <- recovery.Verdict{Namespace: "shop", Pod: "web-1", Workload: "Deployment/web", Status: recovery.Recovered, UID: "uid-1"}
		done := make(chan struct{})
		go func() { n.run(t.Context(), results, time.Second); close(done) }()
		for deadline := time.Now().Add(testkit.Within); len(stub.Posts()) < 2; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: posts %v after %v, want the kill and its verdict", i, stub.Posts(), testkit.Within)
			}
		}
		close(results)
		close(verdicts)
		testkit.Recv(t, done, "the notifier to end")
		if posts := stub.Posts(); posts[1]["thread_ts"] == "" || !strings.HasPrefix(posts[1]["text"], ":white_check_mark:") {
			t.Fatalf("round %d: posts %v, want the verdict second, in the kill's thread", i, posts)
		}
	}
}

// TestVerdictPostFailures: a verdict Slack refuses is logged as dropped and counted with the
// reports dropped; one posted is not; without Slack, verdicts are only drained.
func TestVerdictPostFailures(t *testing.T) {
	var logs bytes.Buffer
	stub := newSlackStub(t, slackError("channel_not_found"), slackOK)
	n := newTestNotifier(stub, &testkit.Instant{})
	n.log = slog.New(slog.NewJSONHandler(&logs, nil))
	results, verdicts := make(chan []Result), make(chan recovery.Verdict, 2)
	n.verdicts = verdicts
	verdicts <- recovery.Verdict{Namespace: "shop", Pod: "web-1", Workload: "Deployment/web", Status: recovery.Recovered, UID: "uid-1"}
	verdicts <- recovery.Verdict{Namespace: "shop", Pod: "web-2", Workload: "Deployment/web", Status: recovery.Recovered, UID: "uid-2"}
	close(results)
	close(verdicts)
	done := make(chan struct{})
	go func() { n.run(t.Context(), results, time.Second); close(done) }()
	testkit.Recv(t, done, "the notifier to end")
	if got := strings.Count(logs.String(), `"msg":"slack verdict dropped"`); got != 1 || !strings.Contains(logs.String(), `"pod":"web-1","verdict":"recovered","dropped_total":1`) {
		t.Errorf("log %s, want one dropped verdict, web-1's, counted", logs.String())
	}
	if posts := stub.Posts(); len(posts) != 2 {
		t.Errorf("%d posts, want both tried", len(posts))
	}

	quiet := &Notifier{log: discardLogger(), after: (&testkit.Instant{}).After}
	verdicts = make(chan recovery.Verdict, 1)
	verdicts <- recovery.Verdict{Pod: "web-1", Status: recovery.Recovered}
	close(verdicts)
	quiet.verdicts = verdicts
	done = make(chan struct{})
	go func() { quiet.run(t.Context(), results, time.Second); close(done) }()
	testkit.Recv(t, done, "the notifier without Slack to end")
}

// TestVerdictMessage checks the verdict's Slack text: the timeout named only when the workload
// did not recover in it.
func TestVerdictMessage(t *testing.T) {
	v := recovery.Verdict{Time: tick0, Namespace: "shop", Pod: "web-1", Workload: "Deployment/web", Timeout: time.Minute,
		Strength: "2/3", Why: "web: 2/3 ready after 1m0s"}
	for _, tt := range []struct {
		status recovery.Status
		want   string
		not    string
	}{
		{recovery.NotRecovered, ":rotating_light: not recovered: deployment `shop/web`: web lost web-1; web: 2/3 ready after 1m0s. (MACAQUE_RECOVERY_TIMEOUT 1m0s)", ""},
		{recovery.Recovered, ":white_check_mark: recovered: deployment `shop/web`: web lost web-1", "MACAQUE_RECOVERY_TIMEOUT"},
		{recovery.Unknown, ":grey_question: unknown: deployment `shop/web`", "MACAQUE_RECOVERY_TIMEOUT"},
	} {
		v.Status = tt.status
		got := verdictMessage(v)
		if !strings.HasPrefix(got, tt.want) || (tt.not != "" && strings.Contains(got, tt.not)) {
			t.Errorf("verdictMessage(%s) = %q, want it to start %q and not say %q", tt.status, got, tt.want, tt.not)
		}
	}
}
