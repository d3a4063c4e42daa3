package daemon_test

// The per-workload cooldown on a real control plane: chaos.macaque.dev/cooldown on a
// Deployment overrides MACAQUE_COOLDOWN for it, shorter (hit again once its own period has
// passed) or longer (hit once), also with MACAQUE_COOLDOWN=0.

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// cooldownAnnotated creates Deployments web, annotated chaos.macaque.dev/cooldown=period, and
// api, not annotated, of two replicas each in ns, and waits for them to be ready.
func cooldownAnnotated(t *testing.T, ns, period string) {
	t.Helper()
	createDeploymentWith(t, ns, "web", 2, func(d *appsv1.Deployment) {
		d.Annotations = map[string]string{"chaos.macaque.dev/cooldown": period}
	})
	createDeployment(t, ns, "api", 2)
	for _, app := range []string{"web", "api"} {
		waitReady(t, ns, app, 2)
	}
}

// deletedOf counts the deletions seen of each app's pods.
func deletedOf(seen []deletion) map[string]int {
	out := map[string]int{}
	for _, del := range seen {
		out[del.App]++
	}
	return out
}

// TestCooldownAnnotationShorter: with MACAQUE_COOLDOWN=1h, web annotated with 4s loses a pod
// again once its 4 s have passed (and is passed over before, naming its annotation), while api
// loses one and is then passed over for the hour.
func TestCooldownAnnotationShorter(t *testing.T) {
	ns, kubeconfig := deploy(t)
	cooldownAnnotated(t, ns, "4s")
	watcher := watchDeletions(t, []string{ns})
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_COOLDOWN=1h", "MACAQUE_SELECTOR=app in (web,api)", "POD_NAMESPACE="+ns)
	const reason = "(chaos.macaque.dev/cooldown=4s on Deployment/web)"
	cluster.Eventually(t, guardTimeout, "web hit twice, passed over once for its own period, and api hit", func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		if kills := deletedOf(watcher.Deleted()); kills["web"] < 2 || kills["api"] < 1 || passedFor(d.tickLines(), reason) == 0 {
			return fmt.Errorf("kills %v, a pick passed over %s: %v; last log line: %s", kills, reason, passedFor(d.tickLines(), reason) > 0, d.Tail(1))
		}
		return nil
	})
	d.stop(t)
	if kills := deletedOf(watcher.Deleted()); kills["api"] != 1 {
		t.Errorf("kills %v, want api hit once: MACAQUE_COOLDOWN=1h holds for it", kills)
	}
	if passedFor(d.tickLines(), "Deployment/api lost a pod") == 0 {
		t.Error("no pick of api passed over as cooling down")
	}
}

// TestCooldownAnnotationWithTheGlobalOff: with MACAQUE_COOLDOWN=0, web annotated with 1h loses
// one pod and is then passed over, naming its annotation, while api loses several; the state
// records web's hit with its period, and nothing of api.
func TestCooldownAnnotationWithTheGlobalOff(t *testing.T) {
	ns, kubeconfig := deploy(t)
	cooldownAnnotated(t, ns, "1h")
	watcher := watchDeletions(t, []string{ns})
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_SELECTOR=app in (web,api)", "POD_NAMESPACE="+ns)
	const reason = "(chaos.macaque.dev/cooldown=1h on Deployment/web)"
	cluster.Eventually(t, guardTimeout, "web hit once then passed over, api hit twice", func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		if kills := deletedOf(watcher.Deleted()); kills["web"] < 1 || kills["api"] < 2 || passedFor(d.tickLines(), reason) == 0 {
			return fmt.Errorf("kills %v, a pick passed over %s: %v; last log line: %s", kills, reason, passedFor(d.tickLines(), reason) > 0, d.Tail(1))
		}
		return nil
	})
	d.stop(t)
	if kills := deletedOf(watcher.Deleted()); kills["web"] != 1 {
		t.Errorf("kills %v, want web hit once: its annotation's hour holds", kills)
	}
	cm, err := testCluster.Clientset.CoreV1().ConfigMaps(ns).Get(t.Context(), "macaque-cooldown", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if web, api := cm.Data[ns+".Deployment.web"], cm.Data[ns+".Deployment.api"]; !strings.HasSuffix(web, " 1h0m0s") || api != "" {
		t.Errorf("the state holds %v, want web's hit with its period of 1h and nothing of api", cm.Data)
	}
}
