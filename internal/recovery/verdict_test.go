package recovery

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/testkit"
)

// TestSummaryOfAVerdictWithoutMilestones: a verdict that reached no stage says who lost what and
// then why, with no empty list of milestones between them, and keeps its head whatever follows.
func TestSummaryOfAVerdictWithoutMilestones(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    Verdict
		want string
	}{
		{"unknown, saying why", Verdict{Workload: "Deployment/web", Pod: "web-7d9f-a", Status: Unknown, Why: "macaque stopped"},
			"web lost web-7d9f-a; macaque stopped"},
		{"not recovered, no replacement", Verdict{Workload: "Deployment/web", Pod: "web-7d9f-a", Status: NotRecovered,
			Why: "web: 2/3 ready after 5m0s; no replacement created"},
			"web lost web-7d9f-a; web: 2/3 ready after 5m0s; no replacement created"},
		{"unknown, nothing said", Verdict{Workload: "Deployment/web", Pod: "web-7d9f-a", Status: Unknown}, "web lost web-7d9f-a"},
		{"a milestone, then why", Verdict{Workload: "Deployment/web", Pod: "web-7d9f-a", Status: NotRecovered, Replacement: "web-7d9f-x",
			Created: Milestone{300 * time.Millisecond, true}, Why: "web-7d9f-x is Pending"},
			"web lost web-7d9f-a: replacement web-7d9f-x created in 0.3 s; web-7d9f-x is Pending"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.v.Summary(); got != tt.want {
				t.Errorf("summary %q\nwant    %q", got, tt.want)
			}
		})
	}
}

// TestVerdictEventRegardsItsWorkload: a verdict's Event is about the workload followed, by its
// API version and kind, so that kubectl describe shows it there; a workload of a kind macaque
// does not follow gets none.
func TestVerdictEventRegardsItsWorkload(t *testing.T) {
	for _, tt := range []struct {
		name, workload string
		want           string // "apiVersion kind/name" of the Event's regarding; "": no Event
	}{
		{"a Deployment, of group apps", "Deployment/web", "apps/v1 Deployment/web"},
		{"a StatefulSet", "StatefulSet/db", "apps/v1 StatefulSet/db"},
		{"a ReplicationController, of the core group", "ReplicationController/legacy", "v1 ReplicationController/legacy"},
		{"a kind macaque does not follow", "Job/batch", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t)
			rc := &Follower{Log: discardLogger(), Now: func() time.Time { return kill0 }, Events: clientOf(t, srv), NewEvent: testEvent}
			v := Verdict{Namespace: testNS, Pod: "web-1", Workload: tt.workload, Status: Recovered}
			verdicts := make(chan Verdict, 1)
			rc.finish(testkit.Ctx(t), verdicts, Kill{}, v)
			var got []string
			for _, e := range srv.Events() {
				got = append(got, fmt.Sprintf("%s %s/%s", e.Regarding.APIVersion, e.Regarding.Kind, e.Regarding.Name))
			}
			if want := []string{tt.want}; (tt.want == "" && len(got) != 0) || (tt.want != "" && !slices.Equal(got, want)) {
				t.Errorf("events regarding %q, want %q", got, tt.want)
			}
		})
	}
}

// heldEvents is an EventWriter whose writes wait for release, each telling on began when it
// starts and on ended what its context said when released.
type heldEvents struct {
	began   chan struct{}
	release chan struct{}
	ended   chan error
}

func (h *heldEvents) CreateEvent(ctx context.Context, _ kube.Event, _ bool) error {
	h.began <- struct{}{}
	<-h.release
	h.ended <- ctx.Err()
	return ctx.Err()
}

// TestVerdictEventOutlastsTheStop: a verdict's Event begun before macaque was stopping is
// written whole, not cut by the stop (bounded by its own timeout, within the shutdown's grace).
func TestVerdictEventOutlastsTheStop(t *testing.T) {
	h := &heldEvents{began: make(chan struct{}, 1), release: make(chan struct{}), ended: make(chan error, 1)}
	rc := &Follower{Log: discardLogger(), Now: func() time.Time { return kill0 }, Events: h, NewEvent: testEvent}
	ctx, stop := context.WithCancel(t.Context())
	go rc.record(ctx, Verdict{Namespace: testNS, Pod: "web-1", Workload: "Deployment/web", Status: Recovered})
	testkit.Recv(t, h.began, "the Event's write to begin")
	stop()
	close(h.release)
	if err, _ := testkit.Recv(t, h.ended, "the Event's write to end"); err != nil {
		t.Errorf("the Event's write ended with %v: cut by macaque's stop", err)
	}
}
