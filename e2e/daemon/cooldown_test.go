package daemon_test

// The cooldown on a real control plane: a workload that lost a pod is passed over until
// MACAQUE_COOLDOWN has passed, and a restart of macaque does not forget it, since the state is
// in the ConfigMap macaque.yml ships.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// cooling counts the tick reports that passed a pick over because its workload is cooling down.
func cooling(lines []tickLine) (skipped int, last string) {
	for _, l := range lines {
		for _, p := range l.Passed {
			if strings.Contains(p, "cooling down until") {
				skipped, last = skipped+1, l.raw
			}
		}
	}
	return skipped, last
}

// TestCooldownHoldsAcrossARestart: with an hour's cooldown, each of two Deployments loses one
// pod and is then passed over; a new macaque process (a restart) keeps passing both over.
func TestCooldownHoldsAcrossARestart(t *testing.T) {
	ns, kubeconfig := deploy(t)
	for _, app := range []string{"web", "api"} {
		createDeployment(t, ns, app, 2)
	}
	for _, app := range []string{"web", "api"} {
		waitReady(t, ns, app, 2)
	}
	watcher := watchDeletions(t, []string{ns})
	env := []string{"MACAQUE_COOLDOWN=1h", "MACAQUE_SELECTOR=app in (web,api)", "POD_NAMESPACE=" + ns}
	d := startMacaque(t, kubeconfig, nil, env...)
	cluster.Eventually(t, guardTimeout, "a kill of each Deployment, then a pick passed over as cooling down", func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		apps := map[string]bool{}
		for _, del := range watcher.Deleted() {
			apps[del.App] = true
		}
		if n, _ := cooling(d.tickLines()); !apps["web"] || !apps["api"] || n == 0 {
			return fmt.Errorf("deleted apps %v, %d picks passed over as cooling down; last log line: %s", apps, n, d.Tail(1))
		}
		return nil
	})
	d.stop(t)
	if n := len(watcher.Deleted()); n != 2 {
		t.Fatalf("%d pods deleted, want 2: one of each Deployment, then none while they cool down: %+v", n, watcher.Deleted())
	}
	cm, err := testCluster.Clientset.CoreV1().ConfigMaps(ns).Get(t.Context(), "macaque-cooldown", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{ns + ".Deployment.web", ns + ".Deployment.api"} {
		if _, err := time.Parse(time.RFC3339, cm.Data[key]); err != nil {
			t.Errorf("the ConfigMap holds %v, want a time for %s", cm.Data, key)
		}
	}

	restarted := startMacaque(t, kubeconfig, nil, env...)
	cluster.Eventually(t, guardTimeout, "three ticks after the restart passing picks over as cooling down", func(context.Context) error {
		if !restarted.running() {
			t.Fatalf("macaque exited (%v):\n%s", restarted.State(), restarted.Tail(20))
		}
		if n, _ := cooling(restarted.tickLines()); n < 3 {
			return fmt.Errorf("%d picks passed over as cooling down; last log line: %s", n, restarted.Tail(1))
		}
		return nil
	})
	restarted.stop(t)
	if n := len(watcher.Deleted()); n != 2 {
		t.Errorf("%d pods deleted in all, want still 2: the restart forgot the cooldown: %+v", n, watcher.Deleted())
	}
	for _, l := range restarted.tickLines() {
		if l.Outcome != "skipped" {
			t.Errorf("tick after the restart: %s, want skipped (both Deployments cooling down)", l.raw)
		}
	}
}

// TestCooldownWithoutItsConfigMapStopsMacaqueAtStart: the state's ConfigMap deleted, macaque
// refuses to start with one line naming MACAQUE_COOLDOWN, rather than killing without it.
func TestCooldownWithoutItsConfigMapStopsMacaqueAtStart(t *testing.T) {
	ns, kubeconfig := deploy(t)
	if err := testCluster.Clientset.CoreV1().ConfigMaps(ns).Delete(t.Context(), "macaque-cooldown", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_COOLDOWN=1h", "POD_NAMESPACE="+ns)
	d.wantRefusedAtStart(t, "macaque: MACAQUE_COOLDOWN: the ConfigMap macaque-cooldown that keeps the cooldown state is not in")
}
