package daemon_test

// The steady-state guard on a real control plane: a Deployment below strength or mid-rollout
// is never hit while a healthy one in the same scope is, and a bare pod is hit only when
// MACAQUE_ALLOW_ORPHANS says so.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/macaque-chaos/macaque/e2e/slackstub"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// guardTimeout bounds how long a guard test waits for the kills and skips it needs: ticks
// every 2 seconds, so it is some 30 ticks.
const guardTimeout = 60 * time.Second

// waitGuarded waits until macaque has killed at least kills pods and passed over a pick for a
// reason containing why at least once, then stops it and returns its tick reports.
func waitGuarded(t *testing.T, d *daemon, kills int, why string) []tickLine {
	t.Helper()
	cluster.Eventually(t, guardTimeout, fmt.Sprintf("%d kills and a pick passed over for %q", kills, why), func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		killed, passed := 0, 0
		for _, l := range d.tickLines() {
			if l.Outcome == "killed" {
				killed++
			}
			for _, p := range l.Passed {
				if strings.Contains(p, why) {
					passed++
				}
			}
		}
		if killed < kills || passed == 0 {
			return fmt.Errorf("%d kills, %d picks passed over for %q; last log line: %s", killed, passed, why, d.Tail(1))
		}
		return nil
	})
	d.stop(t)
	return d.tickLines()
}

// checkOnlyAppKilled fails unless every deletion seen was of a pod labelled app, and every
// kill reported is one of them.
func checkOnlyAppKilled(t *testing.T, watcher *podWatcher, lines []tickLine, app string) {
	t.Helper()
	kills := 0
	for _, l := range lines {
		if l.Outcome == "killed" {
			kills++
			if !strings.HasPrefix(l.Pod, app+"-") {
				t.Errorf("killed %s, want only %s pods", l.Pod, app)
			}
		}
	}
	for _, del := range watcher.waitDeleted(t, kills) {
		if del.App != app {
			t.Errorf("deleted %s/%s (app=%s, owner %s), want only %s pods", del.Namespace, del.Name, del.App, del.Owner, app)
		}
	}
}

// TestGuardNeverHitsADeploymentBelowStrength holds a Deployment at 2 of 3 replicas with a
// ResourceQuota, beside a healthy Deployment in the same scope: macaque must kill only the
// healthy one's pods, and say why it passes over the other's.
func TestGuardNeverHitsADeploymentBelowStrength(t *testing.T) {
	ns, kubeconfig := deploy(t)
	// The quota counts only BestEffort pods (no resource requests): the weak Deployment's. The
	// healthy one asks for resources, so its replacements never compete for the two places.
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "two-best-effort-pods"},
		Spec: corev1.ResourceQuotaSpec{
			Hard:   corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")},
			Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort},
		},
	}
	if _, err := testCluster.Clientset.CoreV1().ResourceQuotas(ns).Create(t.Context(), quota, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, "the quota controller to count the namespace", func(ctx context.Context) error {
		q, err := testCluster.Clientset.CoreV1().ResourceQuotas(ns).Get(ctx, quota.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if _, ok := q.Status.Hard[corev1.ResourcePods]; !ok {
			return fmt.Errorf("status %+v", q.Status)
		}
		return nil
	})
	createDeployment(t, ns, "weak", 3)
	createDeploymentWith(t, ns, "strong", 2, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}
	})
	waitReady(t, ns, "strong", 2)
	waitReady(t, ns, "weak", 2)
	waitDeploymentStatus(t, ns, "weak", "2 of 3 ready", func(d *appsv1.Deployment) bool {
		return d.Status.ObservedGeneration == d.Generation && d.Status.ReadyReplicas == 2 && d.Status.Replicas == 2
	})

	watcher := watchDeletions(t, []string{ns})
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_SELECTOR=app in (weak,strong)")
	lines := waitGuarded(t, d, 2, "weak: 2/3 ready")
	checkOnlyAppKilled(t, watcher, lines, "strong")
	for _, p := range slack.Posts() {
		if killedRE.MatchString(p.Text) && !strings.Contains(p.Text, "`"+ns+"/strong-") {
			t.Errorf("Slack post %q, want kills of strong pods only", p.Text)
		}
	}
}

// TestGuardNeverHitsADeploymentMidRollout starts a rollout that cannot finish (the new pods
// have no node, and nothing schedules them here): the old ReplicaSet stays at full strength,
// but its Deployment is mid-rollout, so its pods must not be hit while a steady Deployment's are.
func TestGuardNeverHitsADeploymentMidRollout(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeploymentWith(t, ns, "rolling", 3, func(d *appsv1.Deployment) {
		zero, one := intstr.FromInt32(0), intstr.FromInt32(1)
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &one}}
	})
	createDeployment(t, ns, "steady", 2)
	waitReady(t, ns, "rolling", 3)
	waitReady(t, ns, "steady", 2)
	patch := []byte(`{"spec":{"template":{"spec":{"nodeName":null}}}}`)
	if _, err := testCluster.Clientset.AppsV1().Deployments(ns).Patch(t.Context(), "rolling", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDeploymentStatus(t, ns, "rolling", "a rollout stuck at 1 of 3 updated", func(d *appsv1.Deployment) bool {
		return d.Status.ObservedGeneration == d.Generation && d.Status.UpdatedReplicas == 1 && d.Status.ReadyReplicas == 3
	})

	watcher := watchDeletions(t, []string{ns})
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_SELECTOR=app in (rolling,steady)")
	lines := waitGuarded(t, d, 2, "rolling mid-rollout")
	checkOnlyAppKilled(t, watcher, lines, "steady")
}

// TestGuardSkipsBarePodsUnlessAllowed: a bare pod, which nothing would recreate, is never hit
// by default (each tick is skipped, saying why); with MACAQUE_ALLOW_ORPHANS=true it is.
func TestGuardSkipsBarePodsUnlessAllowed(t *testing.T) {
	ns, kubeconfig := deploy(t)
	solo := createPod(t, ns, "solo", "solo", true)
	waitReady(t, ns, "solo", 1)
	watcher := watchDeletions(t, []string{ns})
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_SELECTOR=app=solo")
	for _, l := range d.waitTicks(t, 3, guardTimeout) {
		if l.Outcome != "skipped" || len(l.Passed) != 1 || !strings.HasPrefix(l.Passed[0], ns+"/solo: bare pod") {
			t.Errorf("tick %s, want skipped, passing over solo as a bare pod", l.raw)
		}
	}
	d.stop(t)
	for _, p := range slack.Posts() {
		if !strings.HasPrefix(p.Text, ":shield: skipped: no pick among 1 candidates in namespace `"+ns+"`") || !strings.Contains(p.Text, "`"+ns+"/solo` (bare pod") {
			t.Errorf("Slack post %q, want a skip naming solo as a bare pod", p.Text)
		}
	}
	if del := watcher.Deleted(); len(del) != 0 {
		t.Fatalf("deleted %+v, a bare pod, by default", del)
	}

	d = startMacaque(t, kubeconfig, nil, "MACAQUE_SELECTOR=app=solo", allowOrphans)
	killed := d.waitOutcomes(t, 0, 1, "killed", guardTimeout)
	d.stop(t)
	if len(killed) == 0 || killed[0].Outcome != "killed" || killed[0].Pod != "solo" || !strings.Contains(killed[0].Note, "bare pod") {
		t.Errorf("ticks %+v, want solo killed at the first, with a note that it is a bare pod", killed)
	}
	if del := watcher.waitDeleted(t, 1); len(del) != 1 || del[0].UID != string(solo.UID) {
		t.Errorf("deleted %+v, want solo only", del)
	}
}

// waitDeploymentStatus waits until the Deployment's status satisfies ok (described by what).
func waitDeploymentStatus(t *testing.T, ns, name, what string, ok func(*appsv1.Deployment) bool) {
	t.Helper()
	cluster.Eventually(t, 60*time.Second, fmt.Sprintf("deployment %s: %s", name, what), func(ctx context.Context) error {
		d, err := testCluster.Clientset.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !ok(d) {
			return fmt.Errorf("generation %d, status %+v", d.Generation, d.Status)
		}
		return nil
	})
}

// TestRoleWithoutWorkloadGetStopsMacaqueAtStart removes the guard's rules from macaque's Role:
// the preflight's gets must stop macaque at once, exit 2, with one line naming the setting and
// the resource. With the guard turned off the chain is still read, for the opt-out annotation,
// so the same Role stops it too, with a line naming the namespace whose Role lacks the gets.
func TestRoleWithoutWorkloadGetStopsMacaqueAtStart(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createPod(t, ns, "solo", "solo", true)
	waitReady(t, ns, "solo", 1)
	setRoleVerbs(t, ns, "list", "delete")
	roles := testCluster.Clientset.RbacV1().Roles(ns)
	role, err := roles.Get(t.Context(), "macaque", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	role.Rules = role.Rules[:1] // setRoleVerbs puts the pods rule first
	if _, err := roles.Update(t.Context(), role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCanI(t, kubeconfig, "get", "replicasets.apps", ns, "no")
	watcher := watchDeletions(t, []string{ns})
	d := startMacaque(t, kubeconfig, nil)
	d.wantRefusedAtStart(t, `macaque: MACAQUE_REQUIRE_HEALTHY: cannot get replicasets in "`+ns+`"`)
	if del := watcher.Deleted(); len(del) != 0 {
		t.Errorf("deleted %+v", del)
	}

	d = startMacaque(t, kubeconfig, nil, "MACAQUE_REQUIRE_HEALTHY=false", "MACAQUE_SELECTOR=app=solo")
	d.wantRefusedAtStart(t, `macaque: MACAQUE_NAMESPACE: cannot get replicasets in "`+ns+`" (macaque reads the controllers above each pick for the chaos.macaque.dev/exclude annotation`)
	if del := watcher.Deleted(); len(del) != 0 {
		t.Errorf("deleted %+v", del)
	}
}
