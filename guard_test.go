package main

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/macaque-chaos/macaque/internal/policy"

	"github.com/macaque-chaos/macaque/internal/kube"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// ctrl is a controller reference to kind/name, with the UID the builders below give it.
func ctrl(apiVersion, kind, name string) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("uid-" + kind + "-" + name), Controller: new(true)}
}

// ownedBy makes p's controller ref, or makes it a bare pod when ref is nil.
func ownedBy(p *corev1.Pod, ref *metav1.OwnerReference) *corev1.Pod {
	p.OwnerReferences = nil
	if ref != nil {
		p.OwnerReferences = []metav1.OwnerReference{*ref}
	}
	return p
}

// notReady marks p's Ready condition False, as the kubelet does when a readiness probe fails.
func notReady(p *corev1.Pod) *corev1.Pod {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			p.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	return p
}

// objMeta is the metadata of a workload at generation 2, with the UID ctrl gives it.
func objMeta(kind, name string, owner *metav1.OwnerReference) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Namespace: testNS, Name: name, UID: types.UID("uid-" + kind + "-" + name), Generation: 2}
	if owner != nil {
		m.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return m
}

// steadyDeployment is a Deployment of n replicas, fully rolled out and ready.
func steadyDeployment(name string, n int32, edit func(*appsv1.Deployment)) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: objMeta("Deployment", name, nil), Spec: appsv1.DeploymentSpec{Replicas: new(n)},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"}}}}
	if edit != nil {
		edit(d)
	}
	return d
}

// steadyReplicaSet is a ReplicaSet of n ready replicas, controlled by owner (if any).
func steadyReplicaSet(name string, n int32, owner *metav1.OwnerReference, edit func(*appsv1.ReplicaSet)) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{ObjectMeta: objMeta("ReplicaSet", name, owner), Spec: appsv1.ReplicaSetSpec{Replicas: new(n)},
		Status: appsv1.ReplicaSetStatus{ObservedGeneration: 2, Replicas: n, ReadyReplicas: n, AvailableReplicas: n}}
	if edit != nil {
		edit(rs)
	}
	return rs
}

// steadyStatefulSet is a StatefulSet of n ready replicas, every pod at the current revision.
func steadyStatefulSet(name string, n int32, edit func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{ObjectMeta: objMeta("StatefulSet", name, nil), Spec: appsv1.StatefulSetSpec{Replicas: new(n),
		UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType}},
		Status: appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: n, ReadyReplicas: n, AvailableReplicas: n, UpdatedReplicas: n,
			CurrentRevision: name + "-1", UpdateRevision: name + "-1"}}
	if edit != nil {
		edit(s)
	}
	return s
}

// steadyDaemonSet is a DaemonSet ready and up to date on n nodes.
func steadyDaemonSet(name string, n int32, edit func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	d := &appsv1.DaemonSet{ObjectMeta: objMeta("DaemonSet", name, nil),
		Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType}},
		Status: appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: n, CurrentNumberScheduled: n, NumberReady: n,
			NumberAvailable: n, UpdatedNumberScheduled: n}}
	if edit != nil {
		edit(d)
	}
	return d
}

// steadyRC is a ReplicationController of n ready replicas.
func steadyRC(name string, n int32, edit func(*corev1.ReplicationController)) *corev1.ReplicationController {
	rc := &corev1.ReplicationController{ObjectMeta: objMeta("ReplicationController", name, nil), Spec: corev1.ReplicationControllerSpec{Replicas: new(n)},
		Status: corev1.ReplicationControllerStatus{ObservedGeneration: 2, Replicas: n, ReadyReplicas: n, AvailableReplicas: n}}
	if edit != nil {
		edit(rc)
	}
	return rc
}

// TestGuard runs whole ticks through the real HTTP client against the fake API server, with
// the pods' controllers served, and checks what the guard lets through, why it passes picks
// over, and which workloads it reads.
func TestGuard(t *testing.T) {
	web := map[string]string{"app": "web"}
	rsRef := ctrl("apps/v1", "ReplicaSet", "web-7d9")
	depRef := ctrl("apps/v1", "Deployment", "web")
	pod := func(name string, ref metav1.OwnerReference) *corev1.Pod {
		return ownedBy(fakeapi.Pod(testNS, name, web), &ref)
	}
	webPods := func(n int) []*corev1.Pod {
		var out []*corev1.Pod
		for i := range n {
			out = append(out, pod(fmt.Sprintf("web-%d", i+1), rsRef))
		}
		return out
	}
	webRS := steadyReplicaSet("web-7d9", 3, &depRef, nil)
	const (
		rsPath  = "/apis/apps/v1/namespaces/" + testNS + "/replicasets/web-7d9"
		depPath = "/apis/apps/v1/namespaces/" + testNS + "/deployments/web"
	)
	tests := []guardCase{
		{
			name:  "a pod of a steady Deployment is killed after reading its ReplicaSet and Deployment",
			world: guardWorld{webPods(1), []metav1.Object{webRS, steadyDeployment("web", 3, nil)}},
			want:  OutcomeKilled, victims: []string{"web-1"}, gets: []string{rsPath, depPath},
		},
		{
			name:  "a Deployment below strength is not hit, and the report names it",
			world: guardWorld{webPods(2), []metav1.Object{webRS, steadyDeployment("web", 3, func(d *appsv1.Deployment) { d.Status.ReadyReplicas, d.Status.AvailableReplicas = 2, 2 })}},
			want:  OutcomeSkipped, passed: []string{"web: 2/3 ready", "web: 2/3 ready"}, gets: []string{rsPath, depPath},
		},
		{
			name: "an owner reference that is not the controller's is not followed up the chain",
			world: guardWorld{webPods(1), []metav1.Object{steadyReplicaSet("web-7d9", 3, func() *metav1.OwnerReference {
				ref := depRef
				ref.Controller = new(false) // an adopter's mark, not the Deployment that runs it
				return &ref
			}(), nil)}},
			want: OutcomeKilled, victims: []string{"web-1"}, gets: []string{rsPath},
		},
		{
			name: "a ReplicaSet below strength is not hit even when its Deployment looks steady",
			world: guardWorld{webPods(1), []metav1.Object{steadyReplicaSet("web-7d9", 3, &depRef, func(rs *appsv1.ReplicaSet) { rs.Status.ReadyReplicas = 2 }),
				steadyDeployment("web", 3, nil)}},
			want: OutcomeSkipped, passed: []string{"web-7d9: 2/3 ready"}, gets: []string{rsPath, depPath},
		},
		{
			name: "a ReplicaSet whose controller has not seen its latest spec is not hit",
			world: guardWorld{webPods(1), []metav1.Object{steadyReplicaSet("web-7d9", 3, &depRef, func(rs *appsv1.ReplicaSet) { rs.Generation = 3 }),
				steadyDeployment("web", 3, nil)}},
			want: OutcomeSkipped, passed: []string{"web-7d9 mid-rollout: its latest change is not yet observed"}, gets: []string{rsPath, depPath},
		},
		{
			name: "a ReplicaSet with ready but not yet available replicas is not hit",
			world: guardWorld{webPods(1), []metav1.Object{steadyReplicaSet("web-7d9", 3, &depRef, func(rs *appsv1.ReplicaSet) { rs.Status.AvailableReplicas = 2 }),
				steadyDeployment("web", 3, nil)}},
			want: OutcomeSkipped, passed: []string{"web-7d9: 2/3 available"}, gets: []string{rsPath, depPath},
		},
		{
			name: "a Deployment mid-rollout, old pods still running, is not hit though the old ReplicaSet is full",
			world: guardWorld{webPods(1), []metav1.Object{webRS, steadyDeployment("web", 3, func(d *appsv1.Deployment) {
				d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.AvailableReplicas = 4, 1, 3
			})}},
			want: OutcomeSkipped, passed: []string{"web mid-rollout: 1/3 updated"}, gets: []string{rsPath, depPath},
		},
		{
			name:  "a Deployment with every pod updated but old ones not yet gone is not hit",
			world: guardWorld{webPods(1), []metav1.Object{webRS, steadyDeployment("web", 3, func(d *appsv1.Deployment) { d.Status.Replicas = 4 })}},
			want:  OutcomeSkipped, passed: []string{"web mid-rollout: 1 old pods still running"}, gets: []string{rsPath, depPath},
		},
		{
			name:  "a Deployment whose new spec is not yet observed is not hit",
			world: guardWorld{webPods(1), []metav1.Object{webRS, steadyDeployment("web", 3, func(d *appsv1.Deployment) { d.Generation = 3 })}},
			want:  OutcomeSkipped, passed: []string{"web mid-rollout: its latest change is not yet observed"}, gets: []string{rsPath, depPath},
		},
		{
			name: "a Deployment past its progress deadline is not hit",
			world: guardWorld{webPods(1), []metav1.Object{webRS, steadyDeployment("web", 3, func(d *appsv1.Deployment) {
				d.Status.Conditions[0].Status, d.Status.Conditions[0].Reason = corev1.ConditionFalse, "ProgressDeadlineExceeded"
			})}},
			want: OutcomeSkipped, passed: []string{"web mid-rollout: stuck past its progress deadline"}, gets: []string{rsPath, depPath},
		},
		{
			name:  "a Deployment with updated pods not yet available is not hit",
			world: guardWorld{webPods(1), []metav1.Object{webRS, steadyDeployment("web", 3, func(d *appsv1.Deployment) { d.Status.AvailableReplicas = 2 })}},
			want:  OutcomeSkipped, passed: []string{"web: 2/3 available"}, gets: []string{rsPath, depPath},
		},
		{
			name:  "a Deployment counting unavailable replicas is not hit",
			world: guardWorld{webPods(1), []metav1.Object{webRS, steadyDeployment("web", 3, func(d *appsv1.Deployment) { d.Status.UnavailableReplicas = 1 })}},
			want:  OutcomeSkipped, passed: []string{"web: 1 unavailable"}, gets: []string{rsPath, depPath},
		},
		{
			name:  "a pod that is not Ready is not hit, and no workload is read",
			world: guardWorld{[]*corev1.Pod{notReady(pod("web-1", rsRef))}, []metav1.Object{webRS, steadyDeployment("web", 3, nil)}},
			want:  OutcomeSkipped, passed: []string{"web-1: not Ready"},
		},
		{
			name: "the guard passes over an unhealthy workload's picks and kills the healthy one, reading each workload once",
			world: guardWorld{append(webPods(4), pod("api-1", ctrl("apps/v1", "StatefulSet", "api"))), []metav1.Object{
				webRS, steadyDeployment("web", 3, func(d *appsv1.Deployment) { d.Status.ReadyReplicas = 2 }), steadyStatefulSet("api", 1, nil)}},
			want: OutcomeKilled, victims: []string{"api-1"}, anyGets: true, eachWhy: "web: 2/3 ready",
		},
		{
			name:  "tries are bounded: picksPerTick picks of a degraded Deployment, its workloads read once",
			world: guardWorld{webPods(picksPerTick + 3), []metav1.Object{webRS, steadyDeployment("web", 3, func(d *appsv1.Deployment) { d.Status.ReadyReplicas = 1 })}},
			want:  OutcomeSkipped, passed: slices.Repeat([]string{"web: 1/3 ready"}, picksPerTick), gets: []string{rsPath, depPath}, maxPicks: picksPerTick,
		},
		{
			name:  "a ReplicaSet of its own, with no Deployment, is judged alone",
			world: guardWorld{[]*corev1.Pod{pod("web-1", rsRef)}, []metav1.Object{steadyReplicaSet("web-7d9", 3, nil, nil)}},
			want:  OutcomeKilled, victims: []string{"web-1"}, gets: []string{rsPath},
		},
		{
			name:  "a ReplicaSet that is gone passes the pick over",
			world: guardWorld{webPods(1), nil},
			want:  OutcomeSkipped, passed: []string{"ReplicaSet web-7d9 not found"}, gets: []string{rsPath},
		},
		{
			name: "a ReplicaSet replaced under the same name passes the pick over",
			world: guardWorld{webPods(1), []metav1.Object{steadyReplicaSet("web-7d9", 3, &depRef, func(rs *appsv1.ReplicaSet) { rs.UID = "uid-new" }),
				steadyDeployment("web", 3, nil)}},
			want: OutcomeSkipped, passed: []string{"ReplicaSet web-7d9 was replaced"}, gets: []string{rsPath},
		},
		{
			name:  "a Deployment that is gone passes the pick over",
			world: guardWorld{webPods(1), []metav1.Object{webRS}},
			want:  OutcomeSkipped, passed: []string{"Deployment web not found"}, gets: []string{rsPath, depPath},
		},
		{
			name:  "a ReplicaSet run by an unlisted kind is not hit",
			world: guardWorld{webPods(1), []metav1.Object{steadyReplicaSet("web-7d9", 3, new(ctrl("argoproj.io/v1alpha1", "Rollout", "web")), nil)}},
			want:  OutcomeSkipped, passed: []string{"owned by a Rollout (web), which MACAQUE_OWNER_KINDS does not list"}, gets: []string{rsPath},
		},
		{
			name:  "a ReplicaSet run by a listed kind is judged alone, and the kill says the rest was not checked",
			world: guardWorld{webPods(1), []metav1.Object{steadyReplicaSet("web-7d9", 3, new(ctrl("argoproj.io/v1alpha1", "Rollout", "web")), nil)}},
			guard: policy.Guard{OwnerKinds: map[string]bool{"Rollout": true}},
			want:  OutcomeKilled, victims: []string{"web-1"}, note: "Rollout/web, a kind listed in MACAQUE_OWNER_KINDS: its strength check could not be made", gets: []string{rsPath},
		},
		{
			name: "a ReplicaSet below strength under a listed kind is not hit",
			world: guardWorld{webPods(1), []metav1.Object{steadyReplicaSet("web-7d9", 3, new(ctrl("argoproj.io/v1alpha1", "Rollout", "web")),
				func(rs *appsv1.ReplicaSet) { rs.Status.ReadyReplicas = 1 })}},
			guard: policy.Guard{OwnerKinds: map[string]bool{"Rollout": true}},
			want:  OutcomeSkipped, passed: []string{"web-7d9: 1/3 ready"}, gets: []string{rsPath},
		},
		{
			name:  "a steady StatefulSet's pod is killed",
			world: guardWorld{[]*corev1.Pod{pod("db-0", ctrl("apps/v1", "StatefulSet", "db"))}, []metav1.Object{steadyStatefulSet("db", 3, nil)}},
			want:  OutcomeKilled, victims: []string{"db-0"}, gets: []string{"/apis/apps/v1/namespaces/shop/statefulsets/db"},
		},
		{
			name: "a StatefulSet below strength is not hit",
			world: guardWorld{[]*corev1.Pod{pod("db-0", ctrl("apps/v1", "StatefulSet", "db"))},
				[]metav1.Object{steadyStatefulSet("db", 3, func(s *appsv1.StatefulSet) { s.Status.ReadyReplicas = 2 })}},
			want: OutcomeSkipped, passed: []string{"db: 2/3 ready"}, gets: []string{"/apis/apps/v1/namespaces/shop/statefulsets/db"},
		},
		{
			name: "a StatefulSet whose new spec is not yet observed is not hit",
			world: guardWorld{[]*corev1.Pod{pod("db-0", ctrl("apps/v1", "StatefulSet", "db"))},
				[]metav1.Object{steadyStatefulSet("db", 3, func(s *appsv1.StatefulSet) { s.Status.ObservedGeneration = 1 })}},
			want: OutcomeSkipped, passed: []string{"db mid-rollout: its latest change is not yet observed"}, gets: []string{"/apis/apps/v1/namespaces/shop/statefulsets/db"},
		},
		{
			name: "a StatefulSet rolling to a new revision is not hit",
			world: guardWorld{[]*corev1.Pod{pod("db-0", ctrl("apps/v1", "StatefulSet", "db"))},
				[]metav1.Object{steadyStatefulSet("db", 3, func(s *appsv1.StatefulSet) { s.Status.UpdateRevision = "db-2" })}},
			want: OutcomeSkipped, passed: []string{"db mid-rollout: revision db-2 not yet on every pod"}, gets: []string{"/apis/apps/v1/namespaces/shop/statefulsets/db"},
		},
		{
			name: "a StatefulSet with OnDelete updates is steady whatever its revisions",
			world: guardWorld{[]*corev1.Pod{pod("db-0", ctrl("apps/v1", "StatefulSet", "db"))},
				[]metav1.Object{steadyStatefulSet("db", 3, func(s *appsv1.StatefulSet) {
					s.Spec.UpdateStrategy.Type, s.Status.UpdateRevision = appsv1.OnDeleteStatefulSetStrategyType, "db-2"
				})}},
			want: OutcomeKilled, victims: []string{"db-0"}, gets: []string{"/apis/apps/v1/namespaces/shop/statefulsets/db"},
		},
		{
			name: "a partitioned StatefulSet update is done once the pods above the partition are updated",
			world: guardWorld{[]*corev1.Pod{pod("db-0", ctrl("apps/v1", "StatefulSet", "db"))},
				[]metav1.Object{steadyStatefulSet("db", 3, func(s *appsv1.StatefulSet) {
					s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: new(int32(2))}
					s.Status.UpdateRevision, s.Status.UpdatedReplicas = "db-2", 1
				})}},
			want: OutcomeKilled, victims: []string{"db-0"}, gets: []string{"/apis/apps/v1/namespaces/shop/statefulsets/db"},
		},
		{
			name: "a partitioned StatefulSet update still under way is not hit",
			world: guardWorld{[]*corev1.Pod{pod("db-0", ctrl("apps/v1", "StatefulSet", "db"))},
				[]metav1.Object{steadyStatefulSet("db", 3, func(s *appsv1.StatefulSet) {
					s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: new(int32(1))}
					s.Status.UpdateRevision, s.Status.UpdatedReplicas = "db-2", 1
				})}},
			want: OutcomeSkipped, passed: []string{"db mid-rollout: 1/2 updated"}, gets: []string{"/apis/apps/v1/namespaces/shop/statefulsets/db"},
		},
		{
			name:  "a steady DaemonSet's pod is killed",
			world: guardWorld{[]*corev1.Pod{pod("agent-x", ctrl("apps/v1", "DaemonSet", "agent"))}, []metav1.Object{steadyDaemonSet("agent", 3, nil)}},
			want:  OutcomeKilled, victims: []string{"agent-x"}, gets: []string{"/apis/apps/v1/namespaces/shop/daemonsets/agent"},
		},
		{
			name: "a DaemonSet not ready on every node is not hit",
			world: guardWorld{[]*corev1.Pod{pod("agent-x", ctrl("apps/v1", "DaemonSet", "agent"))},
				[]metav1.Object{steadyDaemonSet("agent", 3, func(d *appsv1.DaemonSet) { d.Status.NumberReady = 2 })}},
			want: OutcomeSkipped, passed: []string{"agent: 2/3 ready"}, gets: []string{"/apis/apps/v1/namespaces/shop/daemonsets/agent"},
		},
		{
			name: "a DaemonSet mid-rollout is not hit",
			world: guardWorld{[]*corev1.Pod{pod("agent-x", ctrl("apps/v1", "DaemonSet", "agent"))},
				[]metav1.Object{steadyDaemonSet("agent", 3, func(d *appsv1.DaemonSet) { d.Status.UpdatedNumberScheduled = 1 })}},
			want: OutcomeSkipped, passed: []string{"agent mid-rollout: 1/3 updated"}, gets: []string{"/apis/apps/v1/namespaces/shop/daemonsets/agent"},
		},
		{
			name: "a DaemonSet with OnDelete updates is steady whatever was updated",
			world: guardWorld{[]*corev1.Pod{pod("agent-x", ctrl("apps/v1", "DaemonSet", "agent"))},
				[]metav1.Object{steadyDaemonSet("agent", 3, func(d *appsv1.DaemonSet) {
					d.Spec.UpdateStrategy.Type, d.Status.UpdatedNumberScheduled = appsv1.OnDeleteDaemonSetStrategyType, 1
				})}},
			want: OutcomeKilled, victims: []string{"agent-x"}, gets: []string{"/apis/apps/v1/namespaces/shop/daemonsets/agent"},
		},
		{
			name: "a DaemonSet with a pod not yet available is not hit",
			world: guardWorld{[]*corev1.Pod{pod("agent-x", ctrl("apps/v1", "DaemonSet", "agent"))},
				[]metav1.Object{steadyDaemonSet("agent", 3, func(d *appsv1.DaemonSet) { d.Status.NumberAvailable, d.Status.NumberUnavailable = 2, 1 })}},
			want: OutcomeSkipped, passed: []string{"agent: 2/3 available"}, gets: []string{"/apis/apps/v1/namespaces/shop/daemonsets/agent"},
		},
		{
			name: "a DaemonSet short of available pods is not hit, even before it counts one unavailable",
			world: guardWorld{[]*corev1.Pod{pod("agent-x", ctrl("apps/v1", "DaemonSet", "agent"))},
				[]metav1.Object{steadyDaemonSet("agent", 3, func(d *appsv1.DaemonSet) { d.Status.NumberAvailable = 2 })}},
			want: OutcomeSkipped, passed: []string{"agent: 2/3 available"}, gets: []string{"/apis/apps/v1/namespaces/shop/daemonsets/agent"},
		},
		{
			name: "a DaemonSet that counts a pod unavailable is not hit",
			world: guardWorld{[]*corev1.Pod{pod("agent-x", ctrl("apps/v1", "DaemonSet", "agent"))},
				[]metav1.Object{steadyDaemonSet("agent", 3, func(d *appsv1.DaemonSet) { d.Status.NumberUnavailable = 1 })}},
			want: OutcomeSkipped, passed: []string{"agent: 1 unavailable"}, gets: []string{"/apis/apps/v1/namespaces/shop/daemonsets/agent"},
		},
		{
			name: "a DaemonSet whose new spec is not yet observed is not hit",
			world: guardWorld{[]*corev1.Pod{pod("agent-x", ctrl("apps/v1", "DaemonSet", "agent"))},
				[]metav1.Object{steadyDaemonSet("agent", 3, func(d *appsv1.DaemonSet) { d.Status.ObservedGeneration = 1 })}},
			want: OutcomeSkipped, passed: []string{"agent mid-rollout: its latest change is not yet observed"}, gets: []string{"/apis/apps/v1/namespaces/shop/daemonsets/agent"},
		},
		{
			name:  "a steady ReplicationController's pod is killed",
			world: guardWorld{[]*corev1.Pod{pod("old-x", ctrl("v1", "ReplicationController", "old"))}, []metav1.Object{steadyRC("old", 2, nil)}},
			want:  OutcomeKilled, victims: []string{"old-x"}, gets: []string{"/api/v1/namespaces/shop/replicationcontrollers/old"},
		},
		{
			name: "a ReplicationController below strength is not hit",
			world: guardWorld{[]*corev1.Pod{pod("old-x", ctrl("v1", "ReplicationController", "old"))},
				[]metav1.Object{steadyRC("old", 2, func(rc *corev1.ReplicationController) { rc.Status.ReadyReplicas = 1 })}},
			want: OutcomeSkipped, passed: []string{"old: 1/2 ready"}, gets: []string{"/api/v1/namespaces/shop/replicationcontrollers/old"},
		},
		{
			name:  "a bare pod is not hit by default",
			world: guardWorld{[]*corev1.Pod{ownedBy(fakeapi.Pod(testNS, "solo", web), nil)}, nil},
			want:  OutcomeSkipped, passed: []string{"solo: bare pod"},
		},
		{
			name:  "a bare pod is hit with MACAQUE_ALLOW_ORPHANS, and the report says nothing recreates it",
			world: guardWorld{[]*corev1.Pod{ownedBy(fakeapi.Pod(testNS, "solo", web), nil)}, nil},
			guard: policy.Guard{AllowOrphans: true},
			want:  OutcomeKilled, victims: []string{"solo"}, note: "a bare pod (MACAQUE_ALLOW_ORPHANS): nothing will recreate it",
		},
		{
			name:  "a Job's pod is not hit unless asked for",
			world: guardWorld{[]*corev1.Pod{pod("cron-abc", ctrl("batch/v1", "Job", "cron"))}, nil},
			want:  OutcomeSkipped, passed: []string{"cron-abc: owned by a Job (cron)"},
		},
		{
			name:  "a Job's pod is hit when Job is listed, unchecked, and the report says so",
			world: guardWorld{[]*corev1.Pod{pod("cron-abc", ctrl("batch/v1", "Job", "cron"))}, nil},
			guard: policy.Guard{OwnerKinds: map[string]bool{"Job": true}},
			want:  OutcomeKilled, victims: []string{"cron-abc"}, note: "owned by Job/cron, a kind listed in MACAQUE_OWNER_KINDS: its strength check could not be made",
		},
		{
			name:  "a kind named like a checked one in another API group is not read as it",
			world: guardWorld{[]*corev1.Pod{pod("x-1", ctrl("example.com/v1", "ReplicaSet", "x"))}, []metav1.Object{steadyReplicaSet("x", 1, nil, nil)}},
			want:  OutcomeSkipped, passed: []string{"owned by a ReplicaSet (x)"},
		},
		{
			name:  "a pick gone and a pick guarded: skipped, with both reasons",
			world: guardWorld{[]*corev1.Pod{ownedBy(fakeapi.Pod(testNS, "solo", web), nil), pod("web-1", rsRef)}, []metav1.Object{webRS, steadyDeployment("web", 3, nil)}},
			fail: func(r fakeapi.Request) *metav1.Status {
				if r.Query.Get("fieldSelector") == "metadata.name=web-1" {
					return &metav1.Status{Code: http.StatusOK} // not a failure: see below
				}
				return nil
			},
			want: OutcomeSkipped, passed: []string{"solo: bare pod", "web-1: gone"},
		},
		{
			name:  "a Role without get on replicasets fails the tick as forbidden",
			world: guardWorld{webPods(1), []metav1.Object{webRS, steadyDeployment("web", 3, nil)}},
			fail: func(r fakeapi.Request) *metav1.Status {
				if strings.Contains(r.Path, "/replicasets/") {
					return workloadForbidden("replicasets")
				}
				return nil
			},
			want: OutcomeForbidden, errText: `cannot get resource "replicasets"`, gets: []string{rsPath},
		},
		{
			name:  "a server error reading a Deployment fails the tick",
			world: guardWorld{webPods(1), []metav1.Object{webRS, steadyDeployment("web", 3, nil)}},
			fail: func(r fakeapi.Request) *metav1.Status {
				if strings.Contains(r.Path, "/deployments/") {
					return fakeapi.InternalError("etcd leader changed")
				}
				return nil
			},
			want: OutcomeError, errText: `read Deployment "web"`, gets: []string{rsPath, depPath},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// guardWorld is what the API server of a case of TestGuard holds: pods and their workloads.
type guardWorld struct {
	pods      []*corev1.Pod
	workloads []metav1.Object
}

// guardCase is a case of TestGuard: the world served, the guard, how the API server
// misbehaves, and what the tick must report and read.
type guardCase struct {
	name     string
	world    guardWorld
	guard    policy.Guard // api is set by the test
	fail     func(fakeapi.Request) *metav1.Status
	want     Outcome
	victims  []string // pods that may be killed
	passed   []string // substrings, one for each pick passed over, in any order
	note     string   // substring of the kill's note; empty when there must be none
	gets     []string // the workload GETs made, each path once, in order
	errText  string
	maxPicks int    // the picks tried, when fewer than the candidates
	anyGets  bool   // the workloads read depend on the order of the picks
	eachWhy  string // for a kill: every pick passed over first says this
}

// run runs one guarded tick over the case's world, then checks its report and what it read.
func (tt guardCase) run(t *testing.T) {
	srv := tt.serve(t)
	k := newGuardedKiller(t, srv, "app=web", tt.guard)
	r := killOnce(t, k)

	tt.checkOutcome(t, srv, r)
	tt.checkPassed(t, r)
	tt.checkReads(t, srv)
}

// serve is a fake API server holding the case's world and failing as its fail says; a fail
// answering 200 to a read-back makes the pick vanish just before it instead.
func (tt guardCase) serve(t *testing.T) *fakeapi.Server {
	t.Helper()
	srv := fakeapi.New(t, tt.world.pods...)
	for _, w := range tt.world.workloads {
		srv.AddWorkload(w)
	}
	srv.Fail = func(r fakeapi.Request) *metav1.Status {
		if tt.fail == nil {
			return nil
		}
		st := tt.fail(r)
		if st != nil && st.Code == http.StatusOK { // the pick vanishes just before its read-back
			srv.Remove(testNS, strings.TrimPrefix(r.Query.Get("fieldSelector"), "metadata.name="))
			return nil
		}
		return st
	}
	return srv
}

// checkOutcome checks r's outcome (ending the test when it is not the case's), then what goes
// with it: a kill of one of the victims, no DELETE otherwise, nothing named by a skip, and the
// error of a failure.
func (tt guardCase) checkOutcome(t *testing.T, srv *fakeapi.Server, r Result) {
	t.Helper()
	if r.Outcome != tt.want {
		t.Fatalf("outcome = %q (err %v, passed %q), want %q", r.Outcome, r.Err, r.Passed, tt.want)
	}
	if tt.want == OutcomeKilled && (!slices.Contains(tt.victims, r.Pod) || srv.Pod(testNS, r.Pod) != nil) {
		t.Errorf("killed %q (still there: %v), want one of %q", r.Pod, srv.Pod(testNS, r.Pod) != nil, tt.victims)
	}
	if tt.want != OutcomeKilled && len(srv.Deletes()) != 0 {
		t.Errorf("DELETEs %+v for outcome %q", srv.Deletes(), r.Outcome)
	}
	if tt.want == OutcomeSkipped && (r.Pod != "" || r.Err != nil || r.Note != "") {
		t.Errorf("skipped report names pod %q, err %v, note %q; want none", r.Pod, r.Err, r.Note)
	}
	if tt.want != OutcomeKilled && tt.want != OutcomeSkipped && (r.Err == nil || !strings.Contains(r.Err.Error(), tt.errText)) {
		t.Errorf("err = %v, want one containing %q", r.Err, tt.errText)
	}
}

// checkPassed checks why r passed picks over (before a kill, only for the case's eachWhy;
// otherwise one entry per passed) and its note.
func (tt guardCase) checkPassed(t *testing.T, r Result) {
	t.Helper()
	for _, p := range r.Passed {
		if tt.want == OutcomeKilled && (tt.eachWhy == "" || !strings.Contains(p, tt.eachWhy)) {
			t.Errorf("passed over %q before the kill, want only picks that say %q", p, tt.eachWhy)
		}
	}
	if tt.want != OutcomeKilled {
		assertPassed(t, r.Passed, tt.passed)
	}
	if (tt.note == "") != (r.Note == "") || !strings.Contains(r.Note, tt.note) {
		t.Errorf("note = %q, want one containing %q", r.Note, tt.note)
	}
}

// checkReads checks the workloads the tick read from srv, each at most once, and the number of
// picks it read back.
func (tt guardCase) checkReads(t *testing.T, srv *fakeapi.Server) {
	t.Helper()
	var gets, lookups []string
	for _, req := range srv.Requests() {
		if strings.HasPrefix(req.Path, "/apis/") || strings.Contains(req.Path, "/replicationcontrollers/") {
			gets = append(gets, req.Path)
		}
		if strings.HasPrefix(req.Query.Get("fieldSelector"), "metadata.name=") {
			lookups = append(lookups, req.Path)
		}
	}
	if tt.gets != nil && !slices.Equal(gets, tt.gets) {
		t.Errorf("workload GETs = %q, want %q", gets, tt.gets)
	}
	if tt.gets == nil && !tt.anyGets && len(gets) != 0 {
		t.Errorf("workload GETs = %q, want none", gets)
	}
	if tt.maxPicks > 0 && len(lookups) != tt.maxPicks {
		t.Errorf("%d read-backs, want %d: tries must be bounded", len(lookups), tt.maxPicks)
	}
	if len(gets) > len(slices.Compact(slices.Sorted(slices.Values(gets)))) {
		t.Errorf("workload GETs %q read a workload twice in one tick", gets)
	}
}

// newGuardedKiller is newTestKiller with g as its guard, reading workloads from srv. Its client
// has no rate limit: a tick of many picks must not wait on the client and outlast testTimeouts.
func newGuardedKiller(t *testing.T, srv *fakeapi.Server, selector string, g policy.Guard) *Killer {
	t.Helper()
	k := newTestKiller(t, srv, selector, false)
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	g.API, k.api, k.guard = api, api, &g
	return k
}

// assertPassed checks that passed holds one entry per want, each entry containing its want,
// in any order.
func assertPassed(t *testing.T, passed, want []string) {
	t.Helper()
	if len(passed) != len(want) {
		t.Fatalf("passed = %q, want %d entries like %q", passed, len(want), want)
	}
	left := slices.Clone(passed)
	for _, w := range want {
		i := slices.IndexFunc(left, func(p string) bool { return strings.Contains(p, w) })
		if i < 0 {
			t.Fatalf("passed = %q, want an entry containing %q", passed, w)
		}
		left = slices.Delete(left, i, i+1)
	}
}

// workloadForbidden is RBAC's 403 to a get of resource in testNS.
func workloadForbidden(resource string) *metav1.Status {
	return &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
		Message: fmt.Sprintf(`%s.apps "x" is forbidden: User "system:serviceaccount:%s:macaque" cannot get resource "%s" in API group "apps" in the namespace %q`,
			resource, testNS, resource, testNS)}
}

// TestGuardCachesVerdictsWithinATick checks that the guard reads a workload once per tick
// however many picks share it, and again at the next tick, when it may have changed.
func TestGuardCachesVerdictsWithinATick(t *testing.T) {
	rsRef := ctrl("apps/v1", "ReplicaSet", "web-7d9")
	var pods []*corev1.Pod
	for i := range picksPerTick {
		pods = append(pods, ownedBy(fakeapi.Pod(testNS, fmt.Sprintf("web-%d", i), nil), &rsRef))
	}
	srv := fakeapi.New(t, pods...)
	srv.AddWorkload(steadyReplicaSet("web-7d9", 3, new(ctrl("apps/v1", "Deployment", "web")), nil))
	srv.AddWorkload(steadyDeployment("web", 3, func(d *appsv1.Deployment) { d.Status.ReadyReplicas = 2 }))
	k := newGuardedKiller(t, srv, "", policy.Guard{})
	countGets := func() int {
		n := 0
		for _, r := range srv.Requests() {
			if strings.HasPrefix(r.Path, "/apis/") {
				n++
			}
		}
		return n
	}
	for tick := range 2 {
		if r := killOnce(t, k); r.Outcome != OutcomeSkipped || len(r.Passed) != picksPerTick {
			t.Fatalf("tick %d: outcome %q, passed %q; want skipped after %d picks", tick, r.Outcome, r.Passed, picksPerTick)
		}
		if got := countGets(); got != 2*(tick+1) {
			t.Errorf("after tick %d: %d workload GETs, want %d (the ReplicaSet and Deployment once a tick)", tick, got, 2*(tick+1))
		}
	}
	// The Deployment recovers: the next tick sees it.
	srv.AddWorkload(steadyDeployment("web", 3, nil))
	if r := killOnce(t, k); r.Outcome != OutcomeKilled {
		t.Errorf("outcome %q (passed %q, err %v) once the Deployment recovered, want killed", r.Outcome, r.Passed, r.Err)
	}
}

// TestNilGuardChecksNothing: without a guard (MACAQUE_REQUIRE_HEALTHY=false) a bare, unready
// pod is killed and no workload is read.
func TestNilGuardChecksNothing(t *testing.T) {
	srv := fakeapi.New(t, notReady(ownedBy(fakeapi.Pod(testNS, "solo", nil), nil)))
	k := newTestKiller(t, srv, "", false)
	if r := killOnce(t, k); r.Outcome != OutcomeKilled || r.Note != "" {
		t.Fatalf("outcome %q, note %q; want killed with no note", r.Outcome, r.Note)
	}
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r.Path, "/apis/") {
			t.Errorf("read %s without a guard", r.Path)
		}
	}
}

// TestLookupReadsReadinessAndController checks the read-back gives the guard the pod's Ready
// condition and its controller reference.
func TestLookupReadsReadinessAndController(t *testing.T) {
	ref := ctrl("apps/v1", "StatefulSet", "db")
	noConditions := fakeapi.Pod(testNS, "new", nil)
	noConditions.Status.Conditions = nil
	other := ownedBy(fakeapi.Pod(testNS, "other", nil), &metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "c", UID: "u"})
	tests := []struct {
		name      string
		pod       *corev1.Pod
		ready     bool
		ctrl      *kube.OwnerRef
		owner     string
		doesntOwn bool
	}{
		{name: "ready, controlled", pod: ownedBy(fakeapi.Pod(testNS, "db-0", nil), &ref), ready: true,
			ctrl: &kube.OwnerRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "uid-StatefulSet-db", Controller: new(true)}, owner: "StatefulSet/db"},
		{name: "not ready, bare", pod: notReady(ownedBy(fakeapi.Pod(testNS, "solo", nil), nil))},
		{name: "no conditions yet is not ready", pod: noConditions, ready: false,
			ctrl: &kube.OwnerRef{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs-new", UID: "rs-uid-new", Controller: new(true)}, owner: "ReplicaSet/rs-new"},
		{name: "an owner that is not the controller is no controller", pod: other, ready: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t, tt.pod)
			api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
			if err != nil {
				t.Fatal(err)
			}
			v, err := api.Lookup(t.Context(), testNS, tt.pod.Name, "")
			if err != nil {
				t.Fatal(err)
			}
			if v.Ready != tt.ready || v.Owner() != tt.owner || (v.Controller == nil) != (tt.ctrl == nil) ||
				(v.Controller != nil && (v.Controller.String() != tt.ctrl.String() || v.Controller.UID != tt.ctrl.UID || v.Controller.APIVersion != tt.ctrl.APIVersion)) {
				t.Errorf("ready %v, owner %q, controller %+v; want %v, %q, %+v", v.Ready, v.Owner(), v.Controller, tt.ready, tt.owner, tt.ctrl)
			}
		})
	}
}

// TestPreflightGuard checks the start-up probe of get on every workload kind: a 404 for a
// name that cannot exist means allowed; RBAC's 403 names the setting and exits 2.
func TestPreflightGuard(t *testing.T) {
	tests := []struct {
		name       string
		fail       func(fakeapi.Request) *metav1.Status
		wantErr    string
		wantConfig bool
		probes     int
		healthOff  bool // MACAQUE_REQUIRE_HEALTHY=false: the chain is still read, for the opt-out annotation
	}{
		{name: "every kind readable", probes: len(kube.WorkloadKinds)},
		{
			name: "a Role without get on statefulsets names the setting", wantErr: `cannot get statefulsets in "shop"`, wantConfig: true, probes: 3,
			fail: func(r fakeapi.Request) *metav1.Status {
				if strings.Contains(r.Path, "/statefulsets/") {
					return workloadForbidden("statefulsets")
				}
				return nil
			},
		},
		{
			name: "with the guard off, a Role without get on statefulsets still stops macaque, naming the Role's namespace and the annotation", healthOff: true,
			wantErr: `cannot get statefulsets in "shop" (macaque reads the controllers above each pick for the chaos.macaque.dev/exclude annotation`, wantConfig: true, probes: 3,
			fail: func(r fakeapi.Request) *metav1.Status {
				if strings.Contains(r.Path, "/statefulsets/") {
					return workloadForbidden("statefulsets")
				}
				return nil
			},
		},
		{name: "with the guard off, every kind readable", healthOff: true, probes: len(kube.WorkloadKinds)},
		{
			name: "a Role without get on replicationcontrollers names the setting", wantErr: "cannot get replicationcontrollers", wantConfig: true, probes: 5,
			fail: func(r fakeapi.Request) *metav1.Status {
				if strings.Contains(r.Path, "/replicationcontrollers/") {
					return workloadForbidden("replicationcontrollers")
				}
				return nil
			},
		},
		{
			name: "a server error is not a bad setting", wantErr: "check that macaque may get replicasets", probes: 1,
			fail: func(fakeapi.Request) *metav1.Status { return fakeapi.InternalError("etcd leader changed") },
		},
		{
			name: "a get that succeeds is an error", wantErr: "no API server should allow", probes: 1,
			fail: func(fakeapi.Request) *metav1.Status { return &metav1.Status{Code: http.StatusOK} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t)
			srv.Fail = func(r fakeapi.Request) *metav1.Status {
				if tt.fail == nil {
					return nil
				}
				st := tt.fail(r)
				if st != nil && st.Code == http.StatusOK {
					srv.AddWorkload(&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: kube.PreflightPod}})
					return nil
				}
				return st
			}
			api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
			if err != nil {
				t.Fatal(err)
			}
			err = preflightGuard(t.Context(), api, testNS, tt.healthOff)
			if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			var ce *configError
			variable := "MACAQUE_REQUIRE_HEALTHY"
			if tt.healthOff {
				variable = "MACAQUE_NAMESPACE" // the guard is off: the Role in that namespace is what needs fixing
			}
			if isConfig := errors.As(err, &ce) && ce.variable == variable; isConfig != tt.wantConfig {
				t.Errorf("err = %v; a %s setting error: %v, want %v", err, variable, isConfig, tt.wantConfig)
			}
			reqs := srv.Requests()
			if len(reqs) != tt.probes {
				t.Fatalf("%d requests, want %d probes: %+v", len(reqs), tt.probes, reqs)
			}
			for i, r := range reqs {
				k := kube.WorkloadKinds[i]
				if want := k.Prefix + "/namespaces/" + testNS + "/" + k.Resource + "/" + kube.PreflightPod; r.Method != http.MethodGet || r.Path != want {
					t.Errorf("probe %d = %s %s, want GET %s", i, r.Method, r.Path, want)
				}
			}
		})
	}
}

// TestJoinNotes: a guard's note and a read-back's note both reach the report, on one line.
