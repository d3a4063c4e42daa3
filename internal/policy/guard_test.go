package policy

import (
	"net/http"
	"testing"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/testkit"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// owner is a controller reference to kind/name, with the UID the fixtures below give it.
func owner(kind, name string) *kube.OwnerRef {
	return &kube.OwnerRef{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: new(true)}
}

// deployment is Deployment web of 3 replicas, at full strength unless edit says otherwise.
func deployment(edit func(*appsv1.Deployment)) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "web", UID: "uid-web", Generation: 2},
		Spec:   appsv1.DeploymentSpec{Replicas: new(int32(3))},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}}
	if edit != nil {
		edit(d)
	}
	return d
}

// replicaSet is ReplicaSet web-7d9 of Deployment web, 3 ready replicas.
func replicaSet() *appsv1.ReplicaSet {
	up := owner("Deployment", "web")
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "web-7d9", UID: "uid-web-7d9", Generation: 1,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: up.APIVersion, Kind: up.Kind, Name: up.Name, UID: up.UID, Controller: up.Controller}}},
		Spec:   appsv1.ReplicaSetSpec{Replicas: new(int32(3))},
		Status: appsv1.ReplicaSetStatus{ObservedGeneration: 1, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}}
}

// TestGuardRule: the guard's rule for one tick passes a pick over, blaming the workload at fault,
// or lets it through with its top workload learnt; it reads each controller once a tick.
func TestGuardRule(t *testing.T) {
	tests := []struct {
		name      string
		guard     Guard
		pod       kube.Pod
		deploy    func(*appsv1.Deployment) // nil: a steady one; set: edited
		wantWhy   string
		wantBlame string // the workload blamed, "" for none
		wantTop   string // with no why: the top workload learnt
		wantNote  string
	}{
		{name: "a Ready pod of a steady Deployment", pod: kube.Pod{Ready: true, Controller: owner("ReplicaSet", "web-7d9")}, wantTop: "Deployment/web"},
		{name: "not Ready", pod: kube.Pod{Controller: owner("ReplicaSet", "web-7d9")}, wantWhy: "not Ready"},
		{name: "not Ready, guard off", guard: Guard{HealthOff: true}, pod: kube.Pod{Controller: owner("ReplicaSet", "web-7d9")}, wantTop: "Deployment/web"},
		{name: "the Deployment short", pod: kube.Pod{Ready: true, Controller: owner("ReplicaSet", "web-7d9")},
			deploy: func(d *appsv1.Deployment) { d.Status.ReadyReplicas = 2 }, wantWhy: "web: 2/3 ready", wantBlame: "Deployment/web"},
		{name: "the Deployment opted out", pod: kube.Pod{Ready: true, Controller: owner("ReplicaSet", "web-7d9")},
			deploy:  func(d *appsv1.Deployment) { d.Annotations = map[string]string{ExcludeAnnotation: "true"} },
			wantWhy: "excluded by chaos.macaque.dev/exclude on Deployment/web", wantBlame: "Deployment/web"},
		{name: "a bare pod", pod: kube.Pod{Ready: true}, wantWhy: "bare pod, nothing would recreate it"},
		{name: "a bare pod, orphans allowed", guard: Guard{AllowOrphans: true}, pod: kube.Pod{Ready: true},
			wantNote: "a bare pod (MACAQUE_ALLOW_ORPHANS): nothing will recreate it"},
		{name: "an owner kind not listed", pod: kube.Pod{Ready: true, Controller: owner("Rollout", "web")},
			wantWhy: "owned by a Rollout (web), which MACAQUE_OWNER_KINDS does not list", wantBlame: "Rollout/web"},
		{name: "an owner kind listed", guard: Guard{OwnerKinds: map[string]bool{"Rollout": true}}, pod: kube.Pod{Ready: true, Controller: owner("Rollout", "web")},
			wantTop: "Rollout/web", wantNote: "owned by Rollout/web, a kind listed in MACAQUE_OWNER_KINDS: its strength check could not be made"},
		{name: "its ReplicaSet gone", pod: kube.Pod{Ready: true, Controller: owner("ReplicaSet", "web-5c4")}, wantWhy: "ReplicaSet web-5c4 not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t)
			srv.AddWorkload(deployment(tt.deploy))
			srv.AddWorkload(replicaSet())
			api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
			if err != nil {
				t.Fatal(err)
			}
			tt.guard.API = api
			rule := tt.guard.ForTick()
			p := &Pick{Name: "shop/web-7d9-x", Pod: tt.pod}
			p.Pod.Namespace = testNS
			pass, err := rule.Check(testkit.Ctx(t), p)
			if err != nil {
				t.Fatal(err)
			}
			checkPass(t, pass, tt.wantWhy, tt.wantBlame)
			if tt.wantWhy == "" && (nameOf(p.Top) != tt.wantTop || p.Note != tt.wantNote) {
				t.Errorf("top %v, note %q; want %q, %q", p.Top, p.Note, tt.wantTop, tt.wantNote)
			}
			before := len(srv.Requests())
			if _, err := rule.Check(testkit.Ctx(t), &Pick{Name: "shop/web-7d9-y", Pod: p.Pod}); err != nil {
				t.Fatal(err)
			}
			if again := srv.Requests()[before:]; len(again) != 0 && again[0].Method == http.MethodGet {
				t.Errorf("a second pick of the same controller read it again: %s", again[0].Path)
			}
		})
	}
}

// checkPass fails t unless pass says why and blames the workload named blame (or none).
func checkPass(t *testing.T, pass *Pass, why, blame string) {
	t.Helper()
	if pass == nil {
		if why != "" {
			t.Errorf("let through, want passed over: %q", why)
		}
		return
	}
	gotBlame := nameOf(pass.Blame)
	if pass.Why != why || gotBlame != blame || pass.Gone {
		t.Errorf("pass %q blaming %q (gone %v); want %q blaming %q", pass.Why, gotBlame, pass.Gone, why, blame)
	}
}

// nameOf is how a report names o ("Kind/name"), "" for none.
func nameOf(o *kube.OwnerRef) string {
	if o == nil {
		return ""
	}
	return o.String()
}

// TestNilGuardHasNoRule: without a guard (tests only) a tick asks no rule of it.
func TestNilGuardHasNoRule(t *testing.T) {
	var g *Guard
	if r := g.ForTick(); r != nil {
		t.Errorf("rule %v, want none", r)
	}
}
