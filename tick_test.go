package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/testkit"

	"github.com/macaque-chaos/macaque/internal/recovery"

	"github.com/macaque-chaos/macaque/internal/policy"

	"github.com/macaque-chaos/macaque/internal/kube"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
)

// TestOnePodPerWorkloadPerTick: "never two of one workload in a tick" keys on the top workload,
// as the cooldown does: two ReplicaSets of one Deployment mid-rollout (guard off), or the stable
// and canary ReplicaSets of a Rollout (a listed owner kind), lose one pod between them; two
// workloads lose one each. With a cooldown, the next tick passes the workload over.
func TestOnePodPerWorkloadPerTick(t *testing.T) {
	deploy := ctrl("apps/v1", "Deployment", "web")
	rollout := ctrl("argoproj.io/v1alpha1", "Rollout", "web")
	other := ctrl("apps/v1", "Deployment", "api")
	tests := []struct {
		name     string
		owners   [2]metav1.OwnerReference // of the two ReplicaSets, rs-a and rs-b
		guard    policy.Guard
		kills    int
		passed   string // a substring of a passed entry; empty: none
		cooledBy string // what the next tick's report must name as cooling down
	}{
		{name: "two ReplicaSets of a Deployment mid-rollout, guard off", owners: [2]metav1.OwnerReference{deploy, deploy},
			guard: policy.Guard{HealthOff: true}, kills: 1, passed: "Deployment/web already lost a pod this tick", cooledBy: "Deployment/web lost a pod"},
		{name: "stable and canary ReplicaSets of a Rollout, MACAQUE_OWNER_KINDS=Rollout", owners: [2]metav1.OwnerReference{rollout, rollout},
			guard: policy.Guard{OwnerKinds: map[string]bool{"Rollout": true}}, kills: 1, passed: "Rollout/web already lost a pod this tick", cooledBy: "Rollout/web lost a pod"},
		{name: "two Deployments: one pod each", owners: [2]metav1.OwnerReference{deploy, other},
			guard: policy.Guard{HealthOff: true}, kills: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := cooldownState(t, nil)
			for i, rs := range []string{"rs-a", "rs-b"} {
				owner := tt.owners[i]
				if owner.Kind == "Deployment" {
					srv.AddWorkload(steadyDeployment(owner.Name, 2, nil))
				}
				srv.AddWorkload(steadyReplicaSet(rs, 1, &owner, nil))
				srv.Add(ownedBy(fakeapi.Pod(testNS, rs+"-0", nil), new(ctrl("apps/v1", "ReplicaSet", rs))))
			}
			k := newGuardedKiller(t, srv, "", tt.guard)
			k.cooldown, k.count = policy.NewCooldown(k.api.(*kube.Client), testNS, time.Hour), killCount{n: 2}
			reports := killWithin(t.Context(), t, k, tick0)
			kills := 0
			for _, r := range reports {
				if r.Outcome == OutcomeKilled {
					kills++
				}
			}
			last := reports[len(reports)-1]
			if kills != tt.kills || len(srv.Deletes()) != tt.kills {
				t.Fatalf("%d kills, %d DELETEs, want %d (last report %s: %v, passed %q)", kills, len(srv.Deletes()), tt.kills, last.Outcome, last.Err, last.Passed)
			}
			if tt.passed != "" {
				assertPassed(t, last.Passed, []string{tt.passed})
			}
			if tt.cooledBy == "" {
				return
			}
			k.now = func() time.Time { return tick0.Add(time.Minute) }
			next := killOnce(t, k)
			if next.Outcome != OutcomeSkipped || len(srv.Deletes()) != tt.kills {
				t.Fatalf("a minute later: %s (%v), passed %q; want skipped, the workload cooling down", next.Outcome, next.Err, next.Passed)
			}
			assertPassed(t, next.Passed, []string{tt.cooledBy})
		})
	}
}

// TestEachKillIsFollowedWhenAccepted: a kill goes to the recovery goroutine as soon as the API
// server accepts it, before the tick tries its next pick, so that its verdict's clock starts at
// the kill; picks that were not killed are not followed.
func TestEachKillIsFollowedWhenAccepted(t *testing.T) {
	srv := fakeapi.New(t, fakeapi.Pod(testNS, "a-0", nil), fakeapi.Pod(testNS, "b-0", nil), fakeapi.Pod(testNS, "c-0", nil))
	follow := make(chan recovery.Kill, 3)
	var deletes atomic.Int32
	var followedBeforeSecond atomic.Int32
	srv.Fail = func(r fakeapi.Request) *metav1.Status {
		if r.Method != http.MethodDelete {
			return nil
		}
		switch deletes.Add(1) {
		case 2:
			followedBeforeSecond.Store(int32(len(follow)))
		case 3:
			return fakeapi.Forbidden("delete", testNS)
		}
		return nil
	}
	k := newTestKiller(t, srv, "", false)
	k.recover, k.count, k.timeouts = follow, killCount{n: 3}, defaultTimeouts
	reports := killWithin(t.Context(), t, k, tick0)
	if len(reports) != 3 || reports[2].Outcome != OutcomeForbidden {
		t.Fatalf("reports %+v, want two kills and the refusal", reports)
	}
	if got := followedBeforeSecond.Load(); got != 1 {
		t.Errorf("%d kills followed when the second DELETE was sent, want 1: the first, at once", got)
	}
	if len(follow) != 2 {
		t.Fatalf("%d kills followed, want the 2 the API server accepted", len(follow))
	}
	for i := range 2 {
		if r := <-follow; r.Pod != reports[i].Pod || r.Deleted.IsZero() || r.UID == "" {
			t.Errorf("followed %d: %s deleted at %v (uid %q), want %s with its kill's time and UID", i, r.Pod, r.Deleted, r.UID, reports[i].Pod)
		}
	}
	k.dryRun = true
	srv.Add(fakeapi.Pod(testNS, "d-0", nil))
	killWithin(t.Context(), t, k, tick0)
	if len(follow) != 0 {
		t.Errorf("a dry run handed %d picks to the recovery, want none", len(follow))
	}
}

// TestFollowHandsTheWholeKillOn: what the killer hands the recovery of a kill is all its verdict
// needs of the report (its tick, the victim, its controllers, where its watches start, when it
// was deleted, the gate of its tick's reports); a report of any other outcome is handed nothing.
func TestFollowHandsTheWholeKillOn(t *testing.T) {
	reported := make(chan struct{})
	ctl := kube.OwnerRef{Kind: "ReplicaSet", Name: "web-7d9f", UID: "uid-rs"}
	top := kube.OwnerRef{Kind: "Deployment", Name: "web", UID: "uid-deploy"}
	r := Result{Time: tick0, Namespace: testNS, Pod: "web-7d9f-a", Outcome: OutcomeKilled, Deleted: tick0.Add(time.Second),
		uid: "uid-web-a", controller: &ctl, top: &top, killRV: "42", reported: reported}
	follow := make(chan recovery.Kill, 1)
	k := &Killer{recover: follow}
	k.follow(r)
	want := recovery.Kill{Tick: tick0, Namespace: testNS, Pod: "web-7d9f-a", UID: "uid-web-a", Controller: &ctl, Top: &top, RV: "42",
		Deleted: tick0.Add(time.Second), Reported: reported}
	if got, _ := testkit.Recv(t, follow, "the kill"); got != want {
		t.Errorf("handed on %+v, want %+v", got, want)
	}
	for _, o := range []Outcome{OutcomeDryRun, OutcomeError, OutcomeUnknown, OutcomeForbidden} {
		r.Outcome = o
		k.follow(r)
		if len(follow) != 0 {
			t.Errorf("a report %s handed %+v to the recovery, want nothing", o, <-follow)
		}
	}
}

// TestPickTerminatingBeforeItsReadBackIsPassedOver: a pick that gets a deletionTimestamp (its
// phase still Running) between the list and its read-back is passed over, not deleted again and
// reported killed, whether the scope names its namespace or is every namespace.
func TestPickTerminatingBeforeItsReadBackIsPassedOver(t *testing.T) {
	for _, sc := range []scope{{namespaces: []string{testNS}}, {all: true}} {
		t.Run(sc.String(), func(t *testing.T) {
			srv := fakeapi.New(t, fakeapi.Pod(testNS, "web-1", nil))
			srv.Fail = func(r fakeapi.Request) *metav1.Status {
				if strings.HasPrefix(r.Query.Get("fieldSelector"), "metadata.name=web-1") && srv.Pod(testNS, "web-1").DeletionTimestamp == nil {
					srv.SetPodStatus(testNS, "web-1", func(p *corev1.Pod) { terminating(p) })
				}
				return nil
			}
			k := newTestKiller(t, srv, "", false)
			k.scope = sc
			r := killOnce(t, k)
			if r.Outcome != OutcomeNotFound || len(srv.Deletes()) != 0 {
				t.Fatalf("%s (%v), %d DELETEs; want not found and none sent", r.Outcome, r.Err, len(srv.Deletes()))
			}
			assertPassed(t, r.Passed, []string{"web-1: no longer running"})
		})
	}
}

// TestEvictionRefusedByTwoPDBsIsBlocked: the API server refuses with a 500 to evict a pod two
// PodDisruptionBudgets cover, before touching it. That is a PDB doing its job, not a lost
// answer: the pick is passed over naming both budgets, and the tick tries the next.
func TestEvictionRefusedByTwoPDBsIsBlocked(t *testing.T) {
	web, api := map[string]string{"app": "web", "tier": "fe"}, map[string]string{"app": "api"}
	budget := func(name string, match map[string]string) *policyv1.PodDisruptionBudget {
		return &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name},
			Spec: policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: match}}}
	}
	tests := []struct {
		name     string
		pods     []*corev1.Pod
		denyList bool // RBAC denies the list of budgets
		want     []Outcome
		passed   string
	}{
		{name: "the next pick is killed", pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-0", web), fakeapi.Pod(testNS, "api-0", api)},
			want: []Outcome{OutcomeKilled}, passed: "shop/web-0: eviction blocked by PodDisruptionBudgets web-app and web-fe (more than one covers the pod"},
		{name: "no other pick: blocked", pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-0", web)},
			want: []Outcome{OutcomeBlocked}, passed: "shop/web-0: eviction blocked by PodDisruptionBudgets web-app and web-fe"},
		{name: "budgets unreadable: blocked all the same, saying why they are not named", pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-0", web)},
			denyList: true, want: []Outcome{OutcomeBlocked}, passed: "more than one PodDisruptionBudget (more than one covers the pod, and the eviction API refuses to choose; they could not be named: list PodDisruptionBudgets in \"shop\": "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t, tt.pods...)
			srv.AddPDB(budget("web-app", map[string]string{"app": "web"}))
			srv.AddPDB(budget("web-fe", map[string]string{"tier": "fe"}))
			srv.AddPDB(budget("api", map[string]string{"app": "other"}))
			if tt.denyList {
				srv.Fail = func(r fakeapi.Request) *metav1.Status {
					if strings.HasSuffix(r.Path, "/poddisruptionbudgets") {
						return fakeapi.Forbidden("list", testNS)
					}
					return nil
				}
			}
			k := newTestKiller(t, srv, "", false)
			k.terminator, k.count = terminatorFor(modeEvict, k.api), killCount{n: 2}
			reports := killWithin(t.Context(), t, k, tick0)
			var got []Outcome
			for _, r := range reports {
				got = append(got, r.Outcome)
			}
			last := reports[len(reports)-1]
			if !slices.Equal(got, tt.want) || last.Err != nil {
				t.Fatalf("outcomes %q (last err %v, passed %q), want %q", got, last.Err, last.Passed, tt.want)
			}
			if srv.Pod(testNS, "web-0") == nil {
				t.Error("web-0 was evicted, though two budgets cover it")
			}
			assertPassed(t, last.Passed, []string{tt.passed})
		})
	}
}

// TestPickTimeRunningOutMidReadBackEndsTheTickShort: when the tick's own time for picking runs
// out while a later pick is read back, the API server failed at nothing: the tick reports its
// victims, saying it got fewer than asked for and why, and no report names the pick it was
// reading as a failed kill (the pod would then be named twice, as failed and as killed later).
func TestPickTimeRunningOutMidReadBackEndsTheTickShort(t *testing.T) {
	for _, tt := range []struct {
		name  string
		stall int32 // the read-back that outlasts the tick's time for picking
		check func(t *testing.T, reports []Result)
	}{
		{"after a victim: the tick ends short", 2, func(t *testing.T, reports []Result) {
			if len(reports) != 1 || reports[0].Outcome != OutcomeKilled || reports[0].Err != nil {
				t.Fatalf("reports %+v, want one kill and no failure", reports)
			}
			if want := "1 of 3 asked for: the tick's 300ms for picking ran out"; !strings.Contains(reports[0].Note, want) {
				t.Errorf("note %q, want it to say %q", reports[0].Note, want)
			}
		}},
		{"before any victim: the read-back failed", 1, func(t *testing.T, reports []Result) {
			if len(reports) != 1 || reports[0].Outcome != OutcomeError || reports[0].Err == nil || !strings.Contains(reports[0].Err.Error(), "read pod") {
				t.Fatalf("reports %+v, want the tick's failure: the read-back's", reports)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t)
			for _, name := range []string{"web-0", "web-1", "web-2"} {
				srv.Add(fakeapi.Pod(testNS, name, nil))
			}
			var readBacks atomic.Int32
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			srv.Fail = func(r fakeapi.Request) *metav1.Status {
				if r.Method == http.MethodGet && strings.HasPrefix(r.Query.Get("fieldSelector"), "metadata.name=") && readBacks.Add(1) == tt.stall {
					<-release
				}
				return nil
			}
			k := newTestKiller(t, srv, "", false)
			k.timeouts.Pick, k.count = 300*time.Millisecond, killCount{n: 3}
			tt.check(t, killWithin(t.Context(), t, k, tick0))
		})
	}
}

// killWithin runs one tick of k whose verdicts wait for no report, failing t if it has not
// ended within testkit.Within: a bug that makes a tick hang (a send nobody takes, a wait nobody
// ends) fails its test instead of stalling the suite.
func killWithin(ctx context.Context, t *testing.T, k *Killer, at time.Time) []Result {
	t.Helper()
	done := make(chan []Result, 1)
	go func() { done <- k.tick(ctx, at, nil) }()
	reports, _ := testkit.Recv(t, done, "the tick to end")
	return reports
}

// runOneTick runs k's loop on one tick at tick0 until it ends, and returns what it sent.
func runOneTick(t *testing.T, k *Killer) chan []Result {
	t.Helper()
	ticks := make(chan time.Time, 1)
	results := make(chan []Result, 1)
	ticks <- tick0
	close(ticks)
	done := make(chan struct{})
	go func() { k.run(t.Context(), ticks, results); close(done) }()
	testkit.Recv(t, done, "the killer to return after its ticks were closed")
	return results
}
