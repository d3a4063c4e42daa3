package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/policy"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// annotated sets the opt-out annotation to value on obj.
func annotated[T metav1.Object](obj T, value string) T {
	obj.SetAnnotations(map[string]string{policy.ExcludeAnnotation: value, "unrelated": "x"})
	return obj
}

// TestOptOut runs whole ticks against the fake API server, with the guard on and off: the
// exclude annotation on the pod or on any controller of its chain, and MACAQUE_MIN_POD_AGE,
// pass a pick over; a tick whose picks were all passed over is skipped and names why; the
// report carries the top controller (the kill's Events go on it) and the workloads to blame.
func TestOptOut(t *testing.T) {
	web := map[string]string{"app": "web"}
	rsRef := ctrl("apps/v1", "ReplicaSet", "web-7d9")
	depRef := ctrl("apps/v1", "Deployment", "web")
	pod := func(name string, ref *metav1.OwnerReference) *corev1.Pod {
		return ownedBy(fakeapi.Pod(testNS, name, web), ref)
	}
	webRS := steadyReplicaSet("web-7d9", 3, &depRef, nil)
	webDep := steadyDeployment("web", 3, nil)
	young := func(p *corev1.Pod, age time.Duration) *corev1.Pod {
		p.CreationTimestamp = metav1.NewTime(tick0.Add(-age))
		return p
	}
	otherRS := ctrl("apps/v1", "ReplicaSet", "api-5c4")
	otherDep := ctrl("apps/v1", "Deployment", "api")
	stsRef := ctrl("apps/v1", "StatefulSet", "db")
	tests := []struct {
		name      string
		pods      []*corev1.Pod
		workloads []metav1.Object
		healthOff bool
		minAge    time.Duration
		want      Outcome
		victim    string   // the pod killed, for OutcomeKilled
		passed    []string // substrings, one per pick passed over
		top       string   // the Result's top controller, "" for none
		blamed    []string // the workloads a skipped tick blames, in order (a kill's Events do not read them)
	}{
		{
			name: "an annotated pod is passed over without reading its controllers", pods: []*corev1.Pod{annotated(pod("web-1", &rsRef), "true")},
			workloads: []metav1.Object{webRS, webDep},
			want:      OutcomeSkipped, passed: []string{"web-1: excluded by chaos.macaque.dev/exclude on the pod"},
		},
		{
			name: "an annotated Deployment protects its pods", pods: []*corev1.Pod{pod("web-1", &rsRef), pod("web-2", &rsRef)},
			workloads: []metav1.Object{webRS, annotated(steadyDeployment("web", 3, nil), "true")},
			want:      OutcomeSkipped, passed: []string{"web-1: excluded by chaos.macaque.dev/exclude on Deployment/web", "web-2: excluded by chaos.macaque.dev/exclude on Deployment/web"},
			blamed: []string{"Deployment/web"},
		},
		{
			name: "an annotated Deployment protects its pods with the guard off", pods: []*corev1.Pod{pod("web-1", &rsRef)}, healthOff: true,
			workloads: []metav1.Object{webRS, annotated(steadyDeployment("web", 3, nil), "true")},
			want:      OutcomeSkipped, passed: []string{"web-1: excluded by chaos.macaque.dev/exclude on Deployment/web"}, blamed: []string{"Deployment/web"},
		},
		{
			name: "an annotated pod is passed over with the guard off", pods: []*corev1.Pod{annotated(pod("solo", nil), "true")}, healthOff: true,
			want: OutcomeSkipped, passed: []string{"solo: excluded by chaos.macaque.dev/exclude on the pod"},
		},
		{
			name: "an annotated ReplicaSet protects its pods", pods: []*corev1.Pod{pod("web-1", &rsRef)},
			workloads: []metav1.Object{annotated(steadyReplicaSet("web-7d9", 3, &depRef, nil), "true"), webDep},
			want:      OutcomeSkipped, passed: []string{"web-1: excluded by chaos.macaque.dev/exclude on ReplicaSet/web-7d9"}, blamed: []string{"ReplicaSet/web-7d9"},
		},
		{
			name: "an annotated ReplicaSet protects its pods with the guard off", pods: []*corev1.Pod{pod("web-1", &rsRef)}, healthOff: true,
			workloads: []metav1.Object{annotated(steadyReplicaSet("web-7d9", 3, &depRef, nil), "true"), webDep},
			want:      OutcomeSkipped, passed: []string{"web-1: excluded by chaos.macaque.dev/exclude on ReplicaSet/web-7d9"}, blamed: []string{"ReplicaSet/web-7d9"},
		},
		{
			name: "an annotated StatefulSet protects its pods", pods: []*corev1.Pod{pod("db-0", &stsRef)},
			workloads: []metav1.Object{annotated(steadyStatefulSet("db", 3, nil), "yes")},
			want:      OutcomeSkipped, passed: []string{`db-0: excluded by chaos.macaque.dev/exclude="yes" on StatefulSet/db (any value but "false" excludes)`}, blamed: []string{"StatefulSet/db"},
		},
		{
			name: "an annotated DaemonSet protects its pods with the guard off", pods: []*corev1.Pod{pod("agent-x", new(ctrl("apps/v1", "DaemonSet", "agent")))}, healthOff: true,
			workloads: []metav1.Object{annotated(steadyDaemonSet("agent", 3, nil), "true")},
			want:      OutcomeSkipped, passed: []string{"agent-x: excluded by chaos.macaque.dev/exclude on DaemonSet/agent"}, blamed: []string{"DaemonSet/agent"},
		},
		{
			name: "an annotated ReplicationController protects its pods", pods: []*corev1.Pod{pod("old-x", new(ctrl("v1", "ReplicationController", "old")))},
			workloads: []metav1.Object{annotated(steadyRC("old", 2, nil), "true")},
			want:      OutcomeSkipped, passed: []string{"old-x: excluded by chaos.macaque.dev/exclude on ReplicationController/old"}, blamed: []string{"ReplicationController/old"},
		},
		{
			name: "false opts back in", pods: []*corev1.Pod{annotated(pod("web-1", &rsRef), "false")},
			workloads: []metav1.Object{webRS, annotated(steadyDeployment("web", 3, nil), "false")},
			want:      OutcomeKilled, victim: "web-1", top: "Deployment/web",
		},
		{
			name: "an exclusion is named before the strength of the same Deployment", pods: []*corev1.Pod{pod("web-1", &rsRef)},
			workloads: []metav1.Object{webRS, annotated(steadyDeployment("web", 3, func(d *appsv1.Deployment) { d.Status.ReadyReplicas = 1 }), "true")},
			want:      OutcomeSkipped, passed: []string{"web-1: excluded by chaos.macaque.dev/exclude on Deployment/web"}, blamed: []string{"Deployment/web"},
		},
		{
			name: "a Deployment below strength is blamed for its pick", pods: []*corev1.Pod{pod("web-1", &rsRef)},
			workloads: []metav1.Object{webRS, steadyDeployment("web", 3, func(d *appsv1.Deployment) { d.Status.ReadyReplicas = 1 })},
			want:      OutcomeSkipped, passed: []string{"web-1: web: 1/3 ready"}, blamed: []string{"Deployment/web"},
		},
		{
			name: "a ReplicaSet below strength is blamed, not its steady Deployment", pods: []*corev1.Pod{pod("web-1", &rsRef)},
			workloads: []metav1.Object{steadyReplicaSet("web-7d9", 3, &depRef, func(rs *appsv1.ReplicaSet) { rs.Status.ReadyReplicas = 1 }), webDep},
			want:      OutcomeSkipped, passed: []string{"web-1: web-7d9: 1/3 ready"}, blamed: []string{"ReplicaSet/web-7d9"},
		},
		{
			name: "an excluded Deployment's pod is passed over and another Deployment's killed",
			pods: []*corev1.Pod{pod("web-1", &rsRef), pod("web-2", &rsRef), pod("web-3", &rsRef), pod("web-4", &rsRef), pod("api-1", &otherRS)},
			workloads: []metav1.Object{webRS, annotated(steadyDeployment("web", 3, nil), "true"),
				steadyReplicaSet("api-5c4", 1, &otherDep, nil), steadyDeployment("api", 1, nil)},
			want: OutcomeKilled, victim: "api-1", top: "Deployment/api",
		},
		{
			name: "a pick whose ReplicaSet is gone blames no workload", pods: []*corev1.Pod{pod("web-1", &rsRef)},
			want: OutcomeSkipped, passed: []string{"web-1: ReplicaSet web-7d9 not found"},
		},
		{
			name: "with the guard off, strength is not judged", pods: []*corev1.Pod{notReady(pod("web-1", &rsRef))}, healthOff: true,
			workloads: []metav1.Object{webRS, steadyDeployment("web", 3, func(d *appsv1.Deployment) { d.Status.ReadyReplicas = 1 })},
			want:      OutcomeKilled, victim: "web-1", top: "Deployment/web",
		},
		{
			name: "with the guard off, a pod whose ReplicaSet is gone is killed", pods: []*corev1.Pod{pod("web-1", &rsRef)}, healthOff: true,
			want: OutcomeKilled, victim: "web-1", top: "ReplicaSet/web-7d9",
		},
		{
			name: "with the guard off, a bare pod is killed and has no top", pods: []*corev1.Pod{notReady(pod("solo", nil))}, healthOff: true,
			want: OutcomeKilled, victim: "solo",
		},
		{
			name: "with the guard off, a Job's pod is killed and the Job is its top", pods: []*corev1.Pod{pod("cron-1", new(ctrl("batch/v1", "Job", "cron")))}, healthOff: true,
			want: OutcomeKilled, victim: "cron-1", top: "Job/cron",
		},
		{
			name: "a StatefulSet is its pod's top", pods: []*corev1.Pod{pod("db-0", &stsRef)}, workloads: []metav1.Object{steadyStatefulSet("db", 3, nil)},
			want: OutcomeKilled, victim: "db-0", top: "StatefulSet/db",
		},
		{
			name: "a ReplicaSet without a Deployment is its pod's top", pods: []*corev1.Pod{pod("web-1", &rsRef)}, workloads: []metav1.Object{steadyReplicaSet("web-7d9", 3, nil, nil)},
			want: OutcomeKilled, victim: "web-1", top: "ReplicaSet/web-7d9",
		},
		{
			name: "the owner of a ReplicaSet run by a listed kind is its pod's top", pods: []*corev1.Pod{pod("web-1", &rsRef)},
			workloads: []metav1.Object{steadyReplicaSet("web-7d9", 3, new(ctrl("argoproj.io/v1alpha1", "Rollout", "web")), nil)},
			want:      OutcomeKilled, victim: "web-1", top: "Rollout/web",
		},
		{
			name: "a pod younger than MACAQUE_MIN_POD_AGE is passed over", pods: []*corev1.Pod{young(pod("web-1", &rsRef), 3*time.Minute+12*time.Second)},
			workloads: []metav1.Object{webRS, webDep}, minAge: 10 * time.Minute,
			want: OutcomeSkipped, passed: []string{"web-1: 3m12s old, younger than MACAQUE_MIN_POD_AGE (10m)"},
		},
		{
			name: "a pod younger than MACAQUE_MIN_POD_AGE is passed over with the guard off", pods: []*corev1.Pod{young(pod("web-1", &rsRef), time.Minute)},
			workloads: []metav1.Object{webRS, webDep}, minAge: 10 * time.Minute, healthOff: true,
			want: OutcomeSkipped, passed: []string{"web-1: 1m old, younger than MACAQUE_MIN_POD_AGE (10m)"},
		},
		{
			name:      "a pod old enough is killed beside a young one",
			pods:      []*corev1.Pod{young(pod("web-1", &rsRef), time.Minute), young(pod("web-2", &rsRef), time.Minute), young(pod("web-3", &rsRef), 10*time.Minute)},
			workloads: []metav1.Object{webRS, webDep}, minAge: 10 * time.Minute,
			want: OutcomeKilled, victim: "web-3", top: "Deployment/web",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t, tt.pods...)
			for _, w := range tt.workloads {
				srv.AddWorkload(w)
			}
			k := newGuardedKiller(t, srv, "app=web", policy.Guard{HealthOff: tt.healthOff, OwnerKinds: map[string]bool{"Rollout": true}})
			k.minAge = tt.minAge
			r := killOnce(t, k)
			if r.Outcome != tt.want {
				t.Fatalf("outcome = %q (err %v, passed %q), want %q", r.Outcome, r.Err, r.Passed, tt.want)
			}
			if tt.want == OutcomeKilled && (r.Pod != tt.victim || srv.Pod(testNS, r.Pod) != nil) {
				t.Errorf("killed %q, want %q", r.Pod, tt.victim)
			}
			if tt.want == OutcomeSkipped {
				if len(srv.Deletes()) != 0 {
					t.Errorf("DELETEs %+v for a skipped tick", srv.Deletes())
				}
				assertPassed(t, r.Passed, tt.passed)
			}
			top := ""
			if r.top != nil {
				top = r.top.String()
			}
			if top != tt.top {
				t.Errorf("top = %q, want %q", top, tt.top)
			}
			var blamed []string
			for _, b := range r.blamed {
				blamed = append(blamed, b.workload.String())
				if !slices.ContainsFunc(r.Passed, func(p string) bool { return p == b.namespace+"/"+b.pod+": "+b.why }) {
					t.Errorf("blames %s for %s: %s, which Passed %q does not hold", b.workload, b.pod, b.why, r.Passed)
				}
			}
			if tt.want == OutcomeSkipped && !slices.Equal(blamed, tt.blamed) {
				t.Errorf("blamed = %q, want %q", blamed, tt.blamed)
			}
		})
	}
}

// TestAnnotationTakesEffectAtTheNextTick: an annotation added between two ticks protects the
// workload at the second (nothing is cached across ticks), and its removal lets it be hit again.
func TestAnnotationTakesEffectAtTheNextTick(t *testing.T) {
	rsRef := ctrl("apps/v1", "ReplicaSet", "web-7d9")
	depRef := ctrl("apps/v1", "Deployment", "web")
	var pods []*corev1.Pod
	for i := range 5 { // four kills in all
		pods = append(pods, ownedBy(fakeapi.Pod(testNS, fmt.Sprintf("web-%d", i), nil), &rsRef))
	}
	srv := fakeapi.New(t, pods...)
	srv.AddWorkload(steadyReplicaSet("web-7d9", 3, &depRef, nil))
	srv.AddWorkload(steadyDeployment("web", 3, nil))
	for _, healthOff := range []bool{false, true} {
		k := newGuardedKiller(t, srv, "", policy.Guard{HealthOff: healthOff})
		for i, step := range []struct {
			annotation string
			want       Outcome
		}{{"", OutcomeKilled}, {"true", OutcomeSkipped}, {"", OutcomeKilled}} {
			d := steadyDeployment("web", 3, nil)
			if step.annotation != "" {
				d = annotated(d, step.annotation)
			}
			srv.AddWorkload(d)
			if r := killOnce(t, k); r.Outcome != step.want {
				t.Errorf("guard off %v, tick %d: outcome %q (passed %q, err %v), want %q", healthOff, i, r.Outcome, r.Passed, r.Err, step.want)
			}
		}
	}
}

// TestLookupReadsAnnotationsAndCreation: the read-back gives the opt-outs the pod's
// annotations and creation time.
func TestLookupReadsAnnotationsAndCreation(t *testing.T) {
	p := annotated(fakeapi.Pod(testNS, "web-1", nil), "true")
	p.CreationTimestamp = metav1.NewTime(tick0.Add(-time.Minute))
	srv := fakeapi.New(t, p)
	api := newGuardedKiller(t, srv, "", policy.Guard{}).api
	v, err := api.Lookup(t.Context(), testNS, "web-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if v.Annotations[policy.ExcludeAnnotation] != "true" || v.Annotations["unrelated"] != "x" || !v.Created.Equal(tick0.Add(-time.Minute)) {
		t.Errorf("annotations %q, created %v; want the pod's, %v", v.Annotations, v.Created, tick0.Add(-time.Minute))
	}
}
