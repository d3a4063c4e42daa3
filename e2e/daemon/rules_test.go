package daemon_test

// The rules that decide whether a pick may die, on a real control plane: one pod per workload
// per tick, keyed on the top workload (here a custom Rollout kind above two ReplicaSets), and a
// cooldown that holds for workloads of any valid name.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// rolloutCRD is a stand-in for Argo Rollouts' CRD: a kind macaque cannot read, that runs
// ReplicaSets (its stable and canary) as their controller.
const rolloutCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: rollouts.e2e.macaque.dev
spec:
  group: e2e.macaque.dev
  scope: Namespaced
  names: {plural: rollouts, singular: rollout, kind: Rollout}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// kubectlApply applies manifest (YAML text) in ns ("" for cluster-scoped objects).
func kubectlApply(t *testing.T, ns, manifest string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "manifest.yml")
	if err := os.WriteFile(file, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"apply", "-f", file}
	if ns != "" {
		args = append(args, "-n", ns)
	}
	if out, err := testCluster.Kubectl(args...); err != nil {
		t.Fatalf("kubectl apply %s: %v\n%s", manifest, err, out)
	}
}

// createRollout creates a Rollout named name in ns and returns a controller reference to it.
func createRollout(t *testing.T, ns, name string) metav1.OwnerReference {
	t.Helper()
	kubectlApply(t, "", rolloutCRD)
	if out, err := testCluster.Kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/rollouts.e2e.macaque.dev"); err != nil {
		t.Fatalf("wait for the Rollout CRD: %v\n%s", err, out)
	}
	kubectlApply(t, ns, "apiVersion: e2e.macaque.dev/v1\nkind: Rollout\nmetadata:\n  name: "+name+"\n")
	uid, err := testCluster.Kubectl("get", "-n", ns, "rollouts.e2e.macaque.dev", name, "-o", "jsonpath={.metadata.uid}")
	if err != nil || uid == "" {
		t.Fatalf("uid of Rollout %s: %q, %v", name, uid, err)
	}
	return metav1.OwnerReference{APIVersion: "e2e.macaque.dev/v1", Kind: "Rollout", Name: name, UID: types.UID(strings.TrimSpace(uid)), Controller: new(true)}
}

// createReplicaSet creates a ReplicaSet of n pods labelled app=app, track=track, controlled by
// owner, and waits until they are ready.
func createReplicaSet(t *testing.T, ns, app, track string, n int32, owner metav1.OwnerReference) {
	t.Helper()
	lbls := map[string]string{"app": app, "track": track}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: app + "-" + track, OwnerReferences: []metav1.OwnerReference{owner}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &n, Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbls}, Spec: podSpec()}},
	}
	sets := testCluster.Clientset.AppsV1().ReplicaSets(ns)
	if _, err := sets.Create(t.Context(), rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 60*time.Second, fmt.Sprintf("ReplicaSet %s: %d ready", rs.Name, n), func(ctx context.Context) error {
		got, err := sets.Get(ctx, rs.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status.ReadyReplicas != n {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
}

// TestOnePodPerRolloutPerTick: a Rollout (MACAQUE_OWNER_KINDS=Rollout) running a stable and a
// canary ReplicaSet is one workload: with MACAQUE_KILL_COUNT=2 it loses one pod in a tick, the
// other picks passed over as the Rollout's, and none again within MACAQUE_COOLDOWN.
func TestOnePodPerRolloutPerTick(t *testing.T) {
	ns, kubeconfig := deploy(t)
	web := createRollout(t, ns, "web")
	createReplicaSet(t, ns, "web", "stable", 2, web)
	createReplicaSet(t, ns, "web", "canary", 1, web)

	watcher := watchDeletions(t, []string{ns})
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_OWNER_KINDS=Rollout", "MACAQUE_KILL_COUNT=2", "MACAQUE_COOLDOWN=1h",
		"MACAQUE_SELECTOR=app=web", "POD_NAMESPACE="+ns)
	var lines []tickLine
	cluster.Eventually(t, guardTimeout, "a kill, then three ticks passing web over as cooling down", func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		lines = d.tickLines()
		if n, _ := cooling(lines); n < 3 {
			return fmt.Errorf("%d picks passed over as cooling down; last log line: %s", n, d.Tail(1))
		}
		return nil
	})
	d.stop(t)
	if del := watcher.Deleted(); len(del) != 1 {
		t.Fatalf("%d pods deleted, want 1 (one Rollout, KILL_COUNT=2, an hour's cooldown): %+v", len(del), del)
	}
	first := lines[0]
	if first.Outcome != "killed" || !strings.Contains(first.Note, "1 of 2 asked for") {
		t.Fatalf("first tick %s, want one kill of the two asked for", first.raw)
	}
	if !strings.Contains(strings.Join(first.Passed, "\n"), ": Rollout/web already lost a pod this tick") {
		t.Errorf("first tick passed %q, want the other picks passed over as Rollout/web's", first.Passed)
	}
}

// TestLongWorkloadNameIsCooledDown: a Deployment of a 239-character name (valid) is cooled down
// like any other, and its key does not cost another workload its cooldown: the ConfigMap write
// the API server validates holds both.
func TestLongWorkloadNameIsCooledDown(t *testing.T) {
	ns, kubeconfig := deploy(t)
	long := "long-" + strings.Repeat("a", 234)
	for name, app := range map[string]string{"web": "web", long: "long"} {
		createDeploymentWith(t, ns, name, 1, func(d *appsv1.Deployment) {
			lbls := map[string]string{"app": app, "chaos": "yes"}
			d.Spec.Selector.MatchLabels, d.Spec.Template.Labels = lbls, lbls
		})
		waitReady(t, ns, app, 1)
	}
	watcher := watchDeletions(t, []string{ns})
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_COOLDOWN=1h", "MACAQUE_SELECTOR=chaos=yes", "POD_NAMESPACE="+ns)
	cluster.Eventually(t, guardTimeout, "a kill of each Deployment, then three picks passed over as cooling down", func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		apps := map[string]bool{}
		for _, del := range watcher.Deleted() {
			apps[del.App] = true
		}
		if n, _ := cooling(d.tickLines()); !apps["web"] || !apps["long"] || n < 3 {
			return fmt.Errorf("deleted apps %v, %d picks passed over as cooling down; last log line: %s", apps, n, d.Tail(1))
		}
		return nil
	})
	d.stop(t)
	if del := watcher.Deleted(); len(del) != 2 {
		t.Fatalf("%d pods deleted, want 2: one of each Deployment, then none while they cool down: %+v", len(del), del)
	}
	cm, err := testCluster.Clientset.CoreV1().ConfigMaps(ns).Get(t.Context(), "macaque-cooldown", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cm.Data) != 2 || cm.Data[ns+".Deployment.web"] == "" {
		t.Errorf("the ConfigMap holds %v, want web's key and the long name's", cm.Data)
	}
}
