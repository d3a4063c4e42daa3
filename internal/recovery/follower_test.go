package recovery

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/testkit"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/telemetry"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// syncClock is a clock each read of which the test answers: the follower reads it as it
// starts and once per watch event it handles, so the test, answering one read after each
// change it makes, knows which event each time is for. Its timer of the deadline fires when the
// test says; any other (a watch's backoff or pause) at once.
type syncClock struct {
	asks     chan chan time.Time
	fire     chan time.Time
	mu       sync.Mutex
	deadline time.Duration // the timer that waits for fire
	waits    []time.Duration
}

func newSyncClock() *syncClock {
	return &syncClock{asks: make(chan chan time.Time), fire: make(chan time.Time, 1)}
}

func (c *syncClock) now() time.Time {
	reply := make(chan time.Time)
	c.asks <- reply
	return <-reply
}

func (c *syncClock) after(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	if d == testGrace {
		return nil // the notifier takes every verdict in these tests
	}
	if d != c.deadline {
		now := make(chan time.Time, 1)
		now <- kill0
		return now
	}
	return c.fire
}

// tell answers the next read of the clock with kill0 + d: the follower has taken an event.
// asked is every timer asked for so far, in order.
func (c *syncClock) asked() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.waits)
}

func (c *syncClock) tell(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case reply := <-c.asks:
		reply <- kill0.Add(d)
	case <-time.After(testkit.Within):
		t.Fatalf("the follower read no clock within %v: it did not see the change made at +%v", testkit.Within, d)
	}
}

// answerAll answers every read of the clock from now on with kill0 + d, until the test ends.
func (c *syncClock) answerAll(t *testing.T, d time.Duration) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			select {
			case reply := <-c.asks:
				reply <- kill0.Add(d)
			case <-done:
				return
			}
		}
	}()
}

// kill0 is when the API server accepted the kill in these tests.
var kill0 = time.Date(2026, 3, 29, 9, 0, 1, 0, time.UTC)

// The workloads of the tests: Deployment web above ReplicaSet web-7d9f, StatefulSet db.
var (
	webDeploy = kube.OwnerRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "uid-deploy-web", Controller: new(true)}
	webRS     = kube.OwnerRef{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9f", UID: "uid-rs-web", Controller: new(true)}
	// web5c6d is the ReplicaSet of web's next template, which a rollout during a follow brings up.
	web5c6d = kube.OwnerRef{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5c6d", UID: "uid-rs-web-5c6d", Controller: new(true)}
	dbSTS   = kube.OwnerRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "uid-sts-db", Controller: new(true)}
)

// ownedPod is a Running pod of owner, Ready or not, with labels that owner's selector matches.
func ownedPod(name string, uid types.UID, owner kube.OwnerRef, ready bool) *corev1.Pod {
	app, hash, _ := strings.Cut(owner.Name, "-")
	p := fakeapi.Pod(testNS, name, map[string]string{"app": app, "pod-template-hash": cmp.Or(hash, "7d9f")})
	p.UID = uid
	// None: its milestones are when the follower saw it, as the test tells it. Tests of the
	// timestamps' evidence set them.
	p.CreationTimestamp = metav1.Time{}
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: owner.APIVersion, Kind: owner.Kind, Name: owner.Name, UID: owner.UID, Controller: new(true)}}
	if !ready {
		p.Status.Phase = corev1.PodPending
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}}
	}
	return p
}

// deployment is web at ready/3, its latest generation observed.
func deployment(ready int32) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "web", UID: webDeploy.UID, Generation: 1},
		Spec: appsv1.DeploymentSpec{Replicas: new(int32(3)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, ReadyReplicas: ready, AvailableReplicas: ready, UpdatedReplicas: 3, UnavailableReplicas: 3 - ready}
	return d
}

// replicaSet is web's ReplicaSet, its failure to create a pod (a quota) in why if not empty.
func replicaSet(why string) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: webRS.Name, UID: webRS.UID, Generation: 1,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: webDeploy.UID, Controller: new(true)}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: new(int32(3)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "pod-template-hash": "7d9f"}}}}
	if why != "" {
		rs.Status.Conditions = []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: why}}
	}
	return rs
}

// rolloutReplicaSet is web's ReplicaSet of its next template, web-5c6d.
func rolloutReplicaSet() *appsv1.ReplicaSet {
	rs := replicaSet("")
	rs.Name, rs.UID = web5c6d.Name, web5c6d.UID
	rs.Spec.Selector.MatchLabels["pod-template-hash"] = "5c6d"
	return rs
}

// statefulSet is db at ready/3.
func statefulSet(ready int32) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "db", UID: dbSTS.UID, Generation: 1},
		Spec: appsv1.StatefulSetSpec{Replicas: new(int32(3)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}
	s.Status = appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 3, ReadyReplicas: ready, CurrentRevision: "r1", UpdateRevision: "r1", UpdatedReplicas: 3}
	return s
}

// recoveryWorld is a fake API server with web (3 pods) and db (3 pods), at full strength.
func recoveryWorld(t *testing.T) (*fakeapi.Server, *kube.Client) {
	t.Helper()
	srv := fakeapi.New(t)
	for _, n := range []string{"a", "b", "c"} {
		srv.Add(ownedPod("web-7d9f-"+n, types.UID("uid-web-"+n), webRS, true))
	}
	for i := range 3 {
		srv.Add(ownedPod(fmt.Sprint("db-", i), types.UID(fmt.Sprint("uid-db-", i)), dbSTS, true))
	}
	srv.AddWorkload(deployment(3))
	srv.AddWorkload(replicaSet(""))
	srv.AddWorkload(statefulSet(3))
	return srv, clientOf(t, srv)
}

// killFor deletes pod (as the killer does, through the API) and returns its report.
func killFor(t *testing.T, api *kube.Client, pod string, uid types.UID, controller, top kube.OwnerRef) Kill {
	t.Helper()
	rv, err := api.Delete(testkit.Ctx(t), testNS, pod, kube.Pod{UID: uid}, nil)
	if err != nil {
		t.Fatalf("delete %s: %v", pod, err)
	}
	if rv == "" {
		t.Fatal("the DELETE's answer carried no resourceVersion")
	}
	return Kill{Tick: tick0, Namespace: testNS, Pod: pod, Deleted: kill0, UID: uid, RV: rv, Controller: &controller, Top: &top}
}

// startFollow runs rc on kills, returning the verdicts channel; ctx's cancel stops it.
func startFollow(ctx context.Context, t *testing.T, rc *Follower, kills ...Kill) <-chan Verdict {
	t.Helper()
	in := make(chan Kill, len(kills))
	for _, k := range kills {
		in <- k
	}
	close(in)
	out := make(chan Verdict, 8)
	go rc.Run(ctx, in, out)
	return out
}

// newTestRecoverer is a Follower on clock, whose follows start at the kill (the test tells
// clock 0 first): the timer of the timeout is of timeout.
func newTestRecoverer(api API, clock *syncClock, timeout time.Duration) *Follower {
	clock.deadline = timeout
	return &Follower{API: api, Timeout: timeout, Now: clock.now, After: clock.after, Log: discardLogger(), Grace: testGrace}
}

// seen is an Event about ref, last seen at kill0+at: written through events.k8s.io (eventTime,
// a series when repeated) or, as the scheduler and most controllers still do, through core/v1
// (deprecatedLastTimestamp only).
func seen(ref corev1.ObjectReference, typ, reason, note string, at time.Duration, series bool) eventsv1.Event {
	e := eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: fmt.Sprintf("%s.%s", ref.Name, reason)},
		Regarding: ref, Type: typ, Reason: reason, Note: note}
	if series {
		e.EventTime = metav1.NewMicroTime(kill0)
		e.Series = &eventsv1.EventSeries{Count: 3, LastObservedTime: metav1.NewMicroTime(kill0.Add(at))}
		return e
	}
	e.DeprecatedLastTimestamp = metav1.NewTime(kill0.Add(at))
	return e
}

// recordingObserver records what a Follower observes.
type recordingObserver struct {
	mu     sync.Mutex
	stages []string
	missed []string
}

func (o *recordingObserver) Recovered(ns string, stage telemetry.Stage, took time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stages = append(o.stages, fmt.Sprintf("%s %s %.1f", ns, stage, took.Seconds()))
}

func (o *recordingObserver) NotRecovered(ns string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.missed = append(o.missed, ns)
}

// TestRecoveryVerdict follows kills through a fake API server's watches, the test playing the
// controllers (each change, then the time the follower sees it at), and checks each verdict.
func TestRecoveryVerdict(t *testing.T) {
	second := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	tests := []verdictCase{
		{
			name: "deployment recovered: three milestones timed from the kill", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			play: func(t *testing.T, srv *fakeapi.Server, clock *syncClock) {
				srv.AddWorkload(deployment(2))
				clock.tell(t, second(0.1))
				srv.Add(ownedPod("web-7d9f-x", "uid-web-x", webRS, false))
				clock.tell(t, second(0.3))
				srv.Add(ownedPod("web-7d9f-x", "uid-web-x", webRS, true))
				clock.tell(t, second(4.1))
				srv.AddWorkload(deployment(3))
				clock.tell(t, second(4.1))
			},
			want: Recovered, created: second(0.3), ready: second(4.1), full: second(4.1), repl: "web-7d9f-x",
			summary: "web lost web-7d9f-a: replacement web-7d9f-x created in 0.3 s, Ready in 4.1 s, web back to 3/3 in 4.1 s",
		},
		{
			name: "a full strength shown before the replacement is Ready is not the recovery", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			play: func(t *testing.T, srv *fakeapi.Server, clock *syncClock) {
				srv.AddWorkload(deployment(3)) // not yet counting the loss
				clock.tell(t, second(0.1))
				srv.Add(ownedPod("web-7d9f-x", "uid-web-x", webRS, false))
				clock.tell(t, second(0.5))
				srv.Add(ownedPod("web-7d9f-x", "uid-web-x", webRS, true))
				clock.tell(t, second(2))
				srv.AddWorkload(deployment(3))
				clock.tell(t, second(2.5))
			},
			// Back when the replacement was Ready: the server's status says no more precisely.
			want: Recovered, created: second(0.5), ready: second(2), full: second(2), repl: "web-7d9f-x",
		},
		{
			name: "a sibling's change is no replacement", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			play: func(t *testing.T, srv *fakeapi.Server, clock *syncClock) {
				srv.Add(ownedPod("web-7d9f-b", "uid-web-b", webRS, true)) // MODIFIED, an old pod
				clock.tell(t, second(0.2))
				// Another controller's pod that web's selector matches too (overlapping selectors):
				// not web's replacement.
				other := ownedPod("other-1", "uid-other", kube.OwnerRef{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "other", UID: "uid-other-rs", Controller: new(true)}, true)
				other.Labels = map[string]string{"app": "web", "pod-template-hash": "7d9f"}
				srv.Add(other)
				clock.tell(t, second(0.5))
				srv.Add(ownedPod("web-7d9f-y", "uid-web-y", webRS, true))
				clock.tell(t, second(1))
				srv.AddWorkload(deployment(3))
				clock.tell(t, second(1.5))
			},
			want: Recovered, created: second(1), ready: second(1), full: second(1), repl: "web-7d9f-y",
		},
		{
			name: "replacement pending past the timeout: not recovered, saying why", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			play: func(t *testing.T, srv *fakeapi.Server, clock *syncClock) {
				srv.AddWorkload(deployment(2))
				clock.tell(t, second(0.1))
				p := ownedPod("web-7d9f-x", "uid-web-x", webRS, false)
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
					Message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."},
					{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}} // the first says it
				srv.Add(p)
				clock.tell(t, second(0.2))
			},
			timeout: true, want: NotRecovered, created: second(0.2), repl: "web-7d9f-x",
			why: []string{"web: 2/3 ready after 10s", "web-7d9f-x is Pending: 0/1 nodes are available: 1 node(s) didn't match"}, notWhy: []string{"ContainersNotReady"},
		},
		{
			name: "no replacement created past the timeout: the ReplicaSet's failure", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			play: func(t *testing.T, srv *fakeapi.Server, clock *syncClock) {
				srv.AddWorkload(replicaSet(`pods "web-7d9f-z" is forbidden: exceeded quota: none`))
				srv.AddWorkload(deployment(2))
				clock.tell(t, second(0.1))
			},
			timeout: true, want: NotRecovered,
			why: []string{"web: 2/3 ready after 10s", "no replacement created (ReplicaSet web-7d9f: pods \"web-7d9f-z\" is forbidden: exceeded quota"},
		},
		{
			name: "replacement crash-looping past the timeout: its container and its latest event say why", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			play: func(t *testing.T, srv *fakeapi.Server, clock *syncClock) {
				p := ownedPod("web-7d9f-x", "uid-web-x", webRS, false)
				p.Status.Phase = corev1.PodRunning
				p.Status.Conditions[0].Reason, p.Status.Conditions[0].Message = "", "containers with unready status: [app]" // a message alone
				p.Status.ContainerStatuses = []corev1.ContainerStatus{
					{Name: "sidecar", Ready: true, RestartCount: 9},
					{Name: "app", RestartCount: 4,
						State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container=app"}},
						LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}},
				}
				ref := corev1.ObjectReference{Kind: "Pod", Namespace: testNS, Name: "web-7d9f-x", UID: "uid-web-x"}
				ours := seen(ref, "Warning", "ChaosNotRecovered", "macaque's own", 10*time.Second, true)
				ours.ReportingController = kube.ReportingController
				srv.AddEvent(ours) // first in the list: passed over, and the rest still read
				srv.AddEvent(seen(ref, "Normal", "Started", "Started container app", 2*time.Second, false))
				srv.AddEvent(seen(ref, "Normal", "Pulled", "Container image already present", 9*time.Second, false)) // newer, but no Warning
				srv.AddEvent(seen(ref, "Warning", "BackOff", "Back-off restarting failed container app", 8*time.Second, true))
				other := ref
				other.UID = "uid-web-b"
				srv.AddEvent(seen(other, "Warning", "Unhealthy", "another pod's, newer", 9*time.Second, false))
				srv.Add(p)
				clock.tell(t, second(0.4))
			},
			timeout: true, want: NotRecovered, created: second(0.4), repl: "web-7d9f-x",
			why:    []string{"web-7d9f-x is Running: containers with unready status: [app]; app: CrashLoopBackOff (back-off 40s restarting failed container=app), restarted 4 times, last exit 1 (Error); latest event: Warning BackOff: Back-off restarting failed container app"},
			notWhy: []string{"sidecar", "Pulled", "macaque's own"},
		},
		{
			name: "events macaque may not read are left out of the why", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			play: func(t *testing.T, srv *fakeapi.Server, clock *syncClock) {
				srv.Fail = func(r fakeapi.Request) *metav1.Status {
					if strings.HasSuffix(r.Path, "/events") {
						return &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: "events is forbidden"}
					}
					return nil
				}
				srv.AddEvent(seen(corev1.ObjectReference{Namespace: testNS, UID: "uid-web-x"}, "Warning", "BackOff", "unreadable", time.Second, false))
				srv.Add(ownedPod("web-7d9f-x", "uid-web-x", webRS, false))
				clock.tell(t, second(0.4))
			},
			timeout: true, want: NotRecovered, created: second(0.4), repl: "web-7d9f-x",
			why: []string{"web: at full strength but its replacement is not Ready after 10s; web-7d9f-x is Pending: ContainersNotReady"}, notWhy: []string{"event", "forbidden"},
		},
		{
			name: "statefulset creating no pod past the timeout: its latest event says why", pod: "db-1", uid: "uid-db-1", ctl: dbSTS, top: dbSTS,
			play: func(t *testing.T, srv *fakeapi.Server, clock *syncClock) {
				ref := corev1.ObjectReference{Kind: "StatefulSet", Namespace: testNS, Name: "db", UID: dbSTS.UID}
				srv.AddEvent(seen(ref, "Warning", "FailedCreate", `create Pod db-1 in StatefulSet db failed error: pods "db-1" is forbidden: exceeded quota: none`, 3*time.Second, false))
				skipped := seen(ref, "Normal", "ChaosSkipped", "macaque passed over its pod db-2", 6*time.Second, true)
				skipped.ReportingController = kube.ReportingController
				srv.AddEvent(skipped)
				srv.AddWorkload(statefulSet(2))
				clock.tell(t, second(0.1))
			},
			timeout: true, want: NotRecovered,
			why:    []string{`db: 2/3 ready after 10s; no replacement created; StatefulSet db's latest event: Warning FailedCreate: create Pod db-1 in StatefulSet db failed error: pods "db-1" is forbidden: exceeded quota`},
			notWhy: []string{"ChaosSkipped"},
		},
		{
			name: "a workload its watch never showed and that cannot be read: its state unknown", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			setup: func(srv *fakeapi.Server) {
				srv.Fail = func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodGet && strings.Contains(r.Path, "/deployments/") {
						return fakeapi.InternalError("etcdserver: request timed out")
					}
					return nil
				}
			},
			play:    func(*testing.T, *fakeapi.Server, *syncClock) {},
			timeout: true, want: NotRecovered,
			why: []string{"web: state unknown after 10s; no replacement created"},
		},
		{
			name: "statefulset: the same name with a new UID, not another pod", pod: "db-1", uid: "uid-db-1", ctl: dbSTS, top: dbSTS,
			play: func(t *testing.T, srv *fakeapi.Server, clock *syncClock) {
				srv.Add(ownedPod("db-3", "uid-db-3", dbSTS, true)) // a scale-up, not the replacement
				clock.tell(t, second(0.5))
				srv.Add(ownedPod("db-1", "uid-db-1-new", dbSTS, false))
				clock.tell(t, second(1.5))
				srv.Add(ownedPod("db-1", "uid-db-1-new", dbSTS, true))
				clock.tell(t, second(3))
				srv.AddWorkload(statefulSet(3))
				clock.tell(t, second(3.2))
			},
			want: Recovered, created: second(1.5), ready: second(3), full: second(3), repl: "db-1",
		},
		{
			name: "a replacement deleted before it was Ready is replaced in turn", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			play: func(t *testing.T, srv *fakeapi.Server, clock *syncClock) {
				srv.Add(ownedPod("web-7d9f-x", "uid-web-x", webRS, false))
				clock.tell(t, second(0.3))
				srv.Remove(testNS, "web-7d9f-x")
				clock.tell(t, second(0.6))
				srv.Add(ownedPod("web-7d9f-y", "uid-web-y", webRS, true))
				clock.tell(t, second(2))
				srv.AddWorkload(deployment(3))
				clock.tell(t, second(2.1))
			},
			want: Recovered, created: second(2), ready: second(2), full: second(2), repl: "web-7d9f-y",
		},
		{
			name: "watches the API server closes are resumed from the last resourceVersion", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			play: func(t *testing.T, srv *fakeapi.Server, clock *syncClock) {
				srv.Add(ownedPod("web-7d9f-x", "uid-web-x", webRS, false))
				clock.tell(t, second(0.3))
				srv.CloseWatches()
				srv.Add(ownedPod("web-7d9f-x", "uid-web-x", webRS, true))
				clock.tell(t, second(1))
				srv.CloseWatches()
				srv.AddWorkload(deployment(3))
				clock.tell(t, second(1.2))
			},
			want: Recovered, created: second(0.3), ready: second(1), full: second(1), repl: "web-7d9f-x",
		},
		{
			name: "a rollout during the follow: recovered through the new ReplicaSet, whose pod is the replacement", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			play: func(t *testing.T, srv *fakeapi.Server, clock *syncClock) {
				srv.AddWorkload(rolloutReplicaSet())
				d := deployment(2)
				d.Generation = 2 // its new template, not yet observed
				srv.AddWorkload(d)
				clock.tell(t, second(0.1))
				srv.Add(ownedPod("web-5c6d-x", "uid-web-5c6d-x", web5c6d, true))
				clock.tell(t, second(0.8))
				d = deployment(3)
				d.Generation, d.Status.ObservedGeneration = 2, 2
				srv.AddWorkload(d)
				clock.tell(t, second(1.2))
			},
			want: Recovered, created: second(0.8), ready: second(0.8), full: second(0.8), repl: "web-5c6d-x",
			summary: "web lost web-7d9f-a: replacement web-5c6d-x created in 0.8 s, Ready in 0.8 s, web back to 3/3 in 0.8 s, through a rollout to web-5c6d",
		},
		{
			name: "a scale-down during the follow: recovered at the new size, no replacement", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			play: func(t *testing.T, srv *fakeapi.Server, clock *syncClock) {
				d := deployment(2)
				d.Generation, d.Spec.Replicas = 2, new(int32(2))
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, UpdatedReplicas: 2}
				srv.AddWorkload(d)
				clock.tell(t, second(0.5))
			},
			want: Recovered, full: second(0.5),
			summary: "web lost web-7d9f-a: web back to 2/2 in 0.5 s, through a scale from 3 to 2",
		},
		{
			name: "watches too old for the API server (410): the workload read again, which pod replaced the victim unknown", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			setup: func(srv *fakeapi.Server) {
				srv.AddWorkload(deployment(2))
				srv.Add(ownedPod("web-7d9f-x", "uid-web-x", webRS, true))
				srv.AddWorkload(deployment(3))
				srv.Compact() // the kill's resourceVersion is now too old
			},
			play: func(t *testing.T, _ *fakeapi.Server, clock *syncClock) {
				// The pods' watch expired, the workload read again (3/3, since the kill): the
				// verdict may come before the pods' end is taken.
				clock.answerAll(t, second(40))
			},
			// No replacement named: which one it was is not known. (Whether the verdict says
			// why depends on which watch's news it took first.)
			want: Recovered, full: second(40), compact: true,
		},
		{
			name: "a watch too old for the API server, past the timeout: not recovered, its replacement unknown", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			setup: func(srv *fakeapi.Server) {
				srv.AddWorkload(deployment(2))
				srv.Compact()
			},
			play: func(t *testing.T, _ *fakeapi.Server, clock *syncClock) {
				clock.tell(t, second(40)) // the workload read again
			},
			timeout: true, want: NotRecovered, why: []string{"web: 2/3 ready after 10s; the pods' watch expired (410 Gone): which pod replaced it is not known"},
			notWhy: []string{"no replacement created"}, compact: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// verdictCase is a case of TestRecoveryVerdict: the kill, the controllers' changes after it,
// and the verdict the follow must give and what it must tell its observer.
type verdictCase struct {
	name string
	pod  string
	uid  types.UID
	ctl  kube.OwnerRef
	top  kube.OwnerRef
	// setup changes the API server before the follow starts, if set.
	setup func(srv *fakeapi.Server)
	// play makes the controllers' changes after the kill, answering the follower's clock.
	play    func(t *testing.T, srv *fakeapi.Server, clock *syncClock)
	timeout bool // fire the timeout after play
	compact bool // the kill's resourceVersion too old for the API server by the time the follow starts (setup)
	want    Status
	created time.Duration // 0: not reached
	ready   time.Duration
	full    time.Duration
	repl    string
	why     []string // in the verdict's Why
	notWhy  []string // not in it
	summary string   // the verdict's summary, if not empty
}

// run kills the case's pod, follows it while play makes the controllers' changes, then checks
// the verdict, the follower's timers and watches, and what its observer was told.
func (tt verdictCase) run(t *testing.T) {
	srv, api := recoveryWorld(t)
	clock := newSyncClock()
	obs := &recordingObserver{}
	rc := newTestRecoverer(api, clock, 10*time.Second)
	rc.Observer = obs
	kill := killFor(t, api, tt.pod, tt.uid, tt.ctl, tt.top)
	if tt.setup != nil {
		tt.setup(srv)
	}
	verdicts := startFollow(testkit.Ctx(t), t, rc, kill)
	clock.tell(t, 0) // the follow starts at the kill
	// It reads the workload as it starts: play's changes come after.
	waitForWatches(t, srv, "the pods' and the workload's")
	waitForWorkloadRead(t, srv)
	tt.play(t, srv, clock)
	if tt.timeout {
		waitForWatches(t, srv, "the pods' and the workload's before the timeout")
		if tt.compact {
			waitForBlind(t, rc) // the pods' watch expired, which no clock read tells
		}
		clock.fire <- kill0.Add(10 * time.Second)
	}
	v, _ := testkit.Recv(t, verdicts, "the verdict")
	tt.checkVerdict(t, v)
	tt.checkWhy(t, v)
	if long := slices.DeleteFunc(clock.asked(), func(d time.Duration) bool { return d < 10*time.Second }); len(long) != 1 || long[0] != 10*time.Second {
		t.Errorf("timers %v, want one of the timeout, 10s from the kill, and only shorter ones besides", clock.asked())
	}
	checkWatchesOnly(t, srv, kill.RV, 2, tt.compact)
	tt.checkObserved(t, obs, v)
}

// waitForWorkloadRead waits until the follow has read a workload (the top one, as it starts),
// failing after testkit.Within.
func waitForWorkloadRead(t *testing.T, srv *fakeapi.Server) {
	t.Helper()
	read := func() bool {
		return slices.ContainsFunc(srv.Requests(), func(r fakeapi.Request) bool {
			return r.Method == http.MethodGet && strings.HasPrefix(r.Path, "/apis/") && r.Query.Get("watch") != "true"
		})
	}
	for deadline := time.Now().Add(testkit.Within); !read(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no workload read after %v; requests %v", testkit.Within, srv.Requests())
		}
	}
}

// waitForBlind waits until rc's follow has taken its pods' watch's expiry (its claim blind),
// failing after testkit.Within.
func waitForBlind(t *testing.T, rc *Follower) {
	t.Helper()
	blind := func() bool {
		rc.claims.mu.Lock()
		defer rc.claims.mu.Unlock()
		for _, w := range rc.claims.byTop {
			for _, c := range w.kills {
				if c.blind {
					return true
				}
			}
		}
		return false
	}
	for deadline := time.Now().Add(testkit.Within); !blind(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the follow's claim not blind after %v: the pods' watch expiry not taken", testkit.Within)
		}
	}
}

// waitForWatches waits for srv to serve two watches (the pods' and the workload's), failing
// with the watches it has, and want, after testkit.Within.
func waitForWatches(t *testing.T, srv *fakeapi.Server, want string) {
	t.Helper()
	for deadline := time.Now().Add(testkit.Within); len(srv.Watches()) < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("watches %v, want %s", srv.Watches(), want)
		}
	}
}

// checkVerdict checks v's status (ending the test when it is not the case's), its milestones,
// its replacement, and the kill and workload it is about.
func (tt verdictCase) checkVerdict(t *testing.T, v Verdict) {
	t.Helper()
	if v.Status != tt.want {
		t.Fatalf("verdict %q (%s), want %q", v.Status, v.Summary(), tt.want)
	}
	for _, m := range []struct {
		name string
		got  Milestone
		want time.Duration
	}{{"created", v.Created, tt.created}, {"ready", v.Ready, tt.ready}, {"full strength", v.Full, tt.full}} {
		if m.got.Reached != (m.want != 0) || m.got.After != m.want {
			t.Errorf("%s: %+v, want %v", m.name, m.got, m.want)
		}
	}
	if v.Replacement != tt.repl {
		t.Errorf("replacement %q, want %q", v.Replacement, tt.repl)
	}
	if v.UID != tt.uid || v.Workload != tt.top.String() {
		t.Errorf("verdict of kill %q on %q, want %q on %q", v.UID, v.Workload, tt.uid, tt.top)
	}
}

// checkWhy checks what v says: its why holds every one of the case's why and none of its
// notWhy, and its summary is the case's, when it has one.
func (tt verdictCase) checkWhy(t *testing.T, v Verdict) {
	t.Helper()
	for _, w := range tt.why {
		if !strings.Contains(v.Why, w) {
			t.Errorf("why %q, want it to say %q", v.Why, w)
		}
	}
	for _, w := range tt.notWhy {
		if strings.Contains(v.Why, w) {
			t.Errorf("why %q, want it not to say %q", v.Why, w)
		}
	}
	if tt.summary != "" && v.Summary() != tt.summary {
		t.Errorf("summary %q\nwant    %q", v.Summary(), tt.summary)
	}
}

// checkObserved checks obs was told of each milestone the case reaches, timed as it is, and of
// a verdict not recovered exactly when v is one.
func (tt verdictCase) checkObserved(t *testing.T, obs *recordingObserver, v Verdict) {
	t.Helper()
	var wantStages []string
	for _, s := range []struct {
		stage telemetry.Stage
		d     time.Duration
	}{{telemetry.StageCreated, tt.created}, {telemetry.StageReady, tt.ready}, {telemetry.StageFullStrength, tt.full}} {
		if s.d != 0 {
			wantStages = append(wantStages, fmt.Sprintf("%s %s %.1f", testNS, s.stage, s.d.Seconds()))
		}
	}
	if fmt.Sprint(obs.stages) != fmt.Sprint(wantStages) {
		t.Errorf("observed %q, want %q", obs.stages, wantStages)
	}
	if (len(obs.missed) == 1) != (tt.want == NotRecovered) {
		t.Errorf("unrecovered observed %q for a verdict %q", obs.missed, v.Status)
	}
}

// checkWatchesOnly checks that no pod was ever listed after the kill (the victim's is never
// read, every pod is watched), and that every watch started at the kill's resourceVersion or
// resumed after it (or, after it expired, from the present), of the namespace's pods and
// workloads, which every follow there shares.
func checkWatchesOnly(t *testing.T, srv *fakeapi.Server, killRV string, least int, expired bool) {
	t.Helper()
	watches := 0
	for _, r := range srv.Requests() {
		if r.Method != http.MethodGet {
			continue
		}
		if r.Query.Get("watch") != "true" {
			if strings.HasSuffix(r.Path, "/pods") {
				t.Errorf("pods listed: %s?%s", r.Path, r.Query.Encode())
			}
			continue
		}
		watches++
		if rv := r.Query.Get("resourceVersion"); (rv == "" && !expired) || kube.RVBefore(rv, killRV) {
			t.Errorf("watch %s from resourceVersion %q, want the kill's %s or later", r.Path, rv, killRV)
		}
		// Shared by every follow in the namespace: its pods, its workloads of the kind.
		if sel := r.Query.Get("labelSelector") + r.Query.Get("fieldSelector"); sel != "" || !strings.Contains(r.Path, "/namespaces/"+testNS+"/") {
			t.Errorf("watch of %s with selector %q, want the namespace's, none", r.Path, sel)
		}
	}
	if watches < least {
		t.Errorf("%d watches, want at least %d", watches, least)
	}
}

// TestRecoveryVerdictsOutsideTheFollow checks the verdicts given without following: a bare pod
// at once, a kill past the bound of those in flight, the kills in flight at SIGTERM, a watch
// RBAC refuses; and that dry runs and failures get none.
func TestRecoveryVerdictsOutsideTheFollow(t *testing.T) {
	t.Run("a bare pod is not replaced, at once; dry runs and failures get no verdict", func(t *testing.T) {
		_, api := recoveryWorld(t)
		rc := newTestRecoverer(api, newSyncClock(), time.Minute)
		bare := Kill{Namespace: testNS, Pod: "lonely", UID: "uid-lonely"}
		alone := bare
		alone.Pod, alone.UID = "alone", "uid-alone"
		verdicts := startFollow(testkit.Ctx(t), t, rc, bare, alone)
		got := map[string]Status{}
		for range 2 {
			v, _ := testkit.Recv(t, verdicts, "the bare pods' verdicts")
			got[v.Pod] = v.Status
		}
		if want := map[string]Status{"lonely": NotReplaced, "alone": NotReplaced}; !maps.Equal(got, want) {
			t.Errorf("verdicts %v, want %v", got, want)
		}
		if _, open := testkit.Recv(t, verdicts, "the verdicts to close"); open {
			t.Error("a second verdict, want none for the dry run and the failure")
		}
	})
	t.Run("past the bound in flight: unknown, saying so", func(t *testing.T) {
		_, api := recoveryWorld(t)
		rc := newTestRecoverer(api, newSyncClock(), time.Minute)
		rc.Now = func() time.Time { return kill0 } // the second kill is an event of the first's watch
		rc.max = 1
		ctx, cancel := context.WithCancel(testkit.Ctx(t))
		defer cancel()
		first := killFor(t, api, "web-7d9f-a", "uid-web-a", webRS, webDeploy)
		second := killFor(t, api, "web-7d9f-b", "uid-web-b", webRS, webDeploy)
		verdicts := startFollow(ctx, t, rc, first, second)
		v, _ := testkit.Recv(t, verdicts, "the second kill's verdict")
		if v.Status != Unknown || v.Pod != "web-7d9f-b" || !strings.Contains(v.Why, "1 verdicts already in flight") {
			t.Errorf("verdict %q on %s (%s), want unknown for web-7d9f-b, 1 in flight", v.Status, v.Pod, v.Why)
		}
		cancel()
		v, _ = testkit.Recv(t, verdicts, "the first kill's verdict at stop")
		if v.Status != Unknown || v.Pod != "web-7d9f-a" || v.Why != "macaque stopped" {
			t.Errorf("verdict %q on %s (%s), want unknown: macaque stopped for web-7d9f-a", v.Status, v.Pod, v.Why)
		}
		if _, open := testkit.Recv(t, verdicts, "the verdicts to close"); open {
			t.Error("verdicts still open after every kill had one")
		}
	})
	t.Run("a watch RBAC refuses is unknown, naming it", func(t *testing.T) {
		srv, api := recoveryWorld(t)
		srv.Fail = func(r fakeapi.Request) *metav1.Status {
			if r.Query.Get("watch") == "true" && strings.HasSuffix(r.Path, "/pods") {
				return fakeapi.Forbidden("watch", testNS)
			}
			return nil
		}
		clock := newSyncClock()
		rc := newTestRecoverer(api, clock, time.Hour)
		verdicts := startFollow(testkit.Ctx(t), t, rc, killFor(t, api, "web-7d9f-a", "uid-web-a", webRS, webDeploy))
		clock.tell(t, 0)
		v, _ := testkit.Recv(t, verdicts, "the verdict")
		if v.Status != Unknown || !strings.Contains(v.Why, `cannot watch resource "pods"`) {
			t.Errorf("verdict %q (%s), want unknown naming the refused watch", v.Status, v.Why)
		}
	})
}

// TestMilestoneString: a second or more to the tenth, under a second to the millisecond.
func TestMilestoneString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		4100 * time.Millisecond: "4.1 s", time.Second: "1.0 s", 999 * time.Millisecond: "0.999 s",
		31 * time.Millisecond: "0.031 s", 300*time.Millisecond + 400*time.Microsecond: "0.3 s", 0: "0 s",
	} {
		if got := (Milestone{After: d, Reached: true}).String(); got != want {
			t.Errorf("milestone %v = %q, want %q", d, got, want)
		}
	}
}

// TestVerdictLogEventAndMetrics checks what finish makes of each kind of verdict: one log line
// (INFO when recovered, WARN otherwise) with the three durations, -1 for a stage not reached,
// and why when there is one; the Event on the workload (Warning when not recovered, none for a
// bare pod); the stages observed.
func TestVerdictLogEventAndMetrics(t *testing.T) {
	second := func(s float64) Milestone { return Milestone{time.Duration(s * float64(time.Second)), true} }
	tests := []struct {
		name      string
		v         Verdict
		level     string
		fields    map[string]any
		absent    []string
		event     string // "Type Reason"; "": none
		stages    int
		unrecover int
	}{
		{name: "recovered", v: Verdict{Namespace: testNS, Pod: "web-1", Workload: "Deployment/web", Status: Recovered,
			Replacement: "web-2", Created: second(0.5), Ready: second(1.5), Full: second(2), Strength: "3/3"},
			level: "INFO", fields: map[string]any{"verdict": "recovered", "created_seconds": 0.5, "ready_seconds": 1.5, "full_strength_seconds": 2.0, "strength": "3/3"},
			absent: []string{"why"}, event: "Normal ChaosRecovered", stages: 3},
		{name: "not recovered", v: Verdict{Namespace: testNS, Pod: "web-1", Workload: "Deployment/web", Status: NotRecovered,
			Created: second(0.5), Strength: "2/3", Why: "web: 2/3 ready after 5m0s"},
			level: "WARN", fields: map[string]any{"verdict": "not recovered", "created_seconds": 0.5, "ready_seconds": -1.0, "full_strength_seconds": -1.0, "why": "web: 2/3 ready after 5m0s"},
			event: "Warning ChaosNotRecovered", stages: 1, unrecover: 1},
		{name: "unknown", v: Verdict{Namespace: testNS, Pod: "web-1", Workload: "Deployment/web", Status: Unknown, Why: "macaque stopped"},
			level: "WARN", fields: map[string]any{"verdict": "unknown", "created_seconds": -1.0, "why": "macaque stopped"},
			event: "Normal ChaosRecoveryUnknown"},
		{name: "a bare pod", v: Verdict{Namespace: testNS, Pod: "lonely", Status: NotReplaced},
			level: "WARN", fields: map[string]any{"verdict": "not replaced (no controller)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t)
			var logs bytes.Buffer
			obs := &recordingObserver{}
			rc := &Follower{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Now: func() time.Time { return kill0 },
				Events: clientOf(t, srv), NewEvent: testEvent, Observer: obs}
			verdicts := make(chan Verdict, 1)
			rc.finish(testkit.Ctx(t), verdicts, Kill{}, tt.v)
			if v, _ := testkit.Recv(t, verdicts, "the verdict for the notifier"); v.Status != tt.v.Status {
				t.Errorf("sent %q, want %q", v.Status, tt.v.Status)
			}
			checkVerdictLine(t, logs.Bytes(), tt.level, tt.fields, tt.absent)
			var got []string
			for _, e := range srv.Events() {
				got = append(got, e.Type+" "+e.Reason)
			}
			if want := []string{tt.event}; (tt.event == "" && len(got) != 0) || (tt.event != "" && fmt.Sprint(got) != fmt.Sprint(want)) {
				t.Errorf("events %q, want %q", got, tt.event)
			}
			if len(obs.stages) != tt.stages || len(obs.missed) != tt.unrecover {
				t.Errorf("observed %q and %q not recovered, want %d stages and %d", obs.stages, obs.missed, tt.stages, tt.unrecover)
			}
		})
	}
}

// checkVerdictLine checks the one log line of a verdict: its message at level, with fields and
// without the keys absent.
func checkVerdictLine(t *testing.T, log []byte, level string, fields map[string]any, absent []string) {
	t.Helper()
	var line map[string]any
	if err := json.Unmarshal(log, &line); err != nil {
		t.Fatalf("log %q: %v", log, err)
	}
	if line["msg"] != "recovery verdict" || line["level"] != level {
		t.Errorf("log %q at %v, want \"recovery verdict\" at %s", line["msg"], line["level"], level)
	}
	for k, want := range fields {
		if line[k] != want {
			t.Errorf("log field %s = %v, want %v", k, line[k], want)
		}
	}
	for _, k := range absent {
		if _, ok := line[k]; ok {
			t.Errorf("log field %s present, want none", k)
		}
	}
}

// TestPodSelector: the selector that tells a workload's pods on the namespace's pods' watch,
// from its spec.selector; never an empty one (it would take every pod of the namespace for its).
func TestPodSelector(t *testing.T) {
	for _, tt := range []struct {
		name     string
		kind     kube.WorkloadKind
		selector string
		want     string // "": an error
	}{
		{"match labels", kube.KindDeployment, `{"matchLabels":{"app":"web"}}`, "app=web"},
		{"an expression", kube.KindDeployment, `{"matchExpressions":[{"key":"tier","operator":"In","values":["a","b"]}]}`, "tier in (a,b)"},
		{"a replication controller's map", kube.KindRC, `{"app":"web"}`, "app=web"},
		{"a replication controller's null", kube.KindRC, `null`, ""},
		{"a replication controller's empty map", kube.KindRC, `{}`, ""},
		{"none", kube.KindDeployment, ``, ""},
		{"null", kube.KindDeployment, `null`, ""},
		{"empty: every pod", kube.KindDeployment, `{}`, ""},
		{"not a selector", kube.KindDeployment, `[1]`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var w kube.Workload
			w.Spec.Selector = json.RawMessage(tt.selector)
			sel, err := podSelector(tt.kind, w)
			got := ""
			if sel != nil {
				got = sel.String()
			}
			if got != tt.want || (err != nil) != (tt.want == "") {
				t.Errorf("podSelector = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestVerdictWaitsForItsTicksReports: a kill is followed from the moment it is accepted, but its
// verdict (here at once: a bare pod is not replaced) goes to the notifier only once its tick has
// handed its reports on, so Slack and the log never have a verdict before its kill's report.
func TestVerdictWaitsForItsTicksReports(t *testing.T) {
	rc := &Follower{Log: discardLogger(), Now: func() time.Time { return tick0 }, After: time.After}
	kills, verdicts := make(chan Kill, 1), make(chan Verdict, 1)
	reported := make(chan struct{})
	kills <- Kill{Namespace: testNS, Pod: "solo", UID: "uid-solo", Reported: reported}
	close(kills)
	done := make(chan struct{})
	go func() { rc.Run(t.Context(), kills, verdicts); close(done) }()
	select {
	case v := <-verdicts:
		t.Fatalf("verdict %+v sent before its tick's reports", v)
	case <-time.After(100 * time.Millisecond):
	}
	close(reported)
	select {
	case v := <-verdicts:
		if v.Pod != "solo" || v.Status != NotReplaced {
			t.Errorf("verdict %+v, want solo not replaced", v)
		}
	case <-time.After(testkit.Within):
		t.Fatalf("no verdict within %v of the tick's reports", testkit.Within)
	}
	<-done
}

// TestAKillItCannotFollowOpensNoWatch: a kill whose controller is of a kind macaque does not
// read gets its verdict (unknown, why) without a watch opened for it.
func TestAKillItCannotFollowOpensNoWatch(t *testing.T) {
	srv, api := recoveryWorld(t)
	rc := newTestRecoverer(api, newSyncClock(), time.Minute)
	job := kube.OwnerRef{Kind: "Job", Name: "backup", UID: "uid-job"}
	verdicts := startFollow(testkit.Ctx(t), t, rc, Kill{Tick: tick0, Namespace: testNS, Pod: "backup-x", UID: "uid-backup-x", RV: "5", Controller: &job})
	v, _ := testkit.Recv(t, verdicts, "the verdict")
	if v.Status != Unknown || !strings.Contains(v.Why, "cannot follow a Job") {
		t.Errorf("verdict %s (%s), want unknown: cannot follow a Job", v.Status, v.Why)
	}
	for _, r := range srv.Requests() {
		if r.Query.Get("watch") == "true" {
			t.Errorf("a watch opened for a kill it cannot follow: %s %s?%s", r.Method, r.Path, r.Query.Encode())
		}
	}
}
