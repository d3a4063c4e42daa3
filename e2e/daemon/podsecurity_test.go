package daemon_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestManifestIsAdmittedUnderRestrictedPodSecurity applies macaque.yml in a namespace that
// enforces the restricted Pod Security Standard, as a locked-down production cluster does, and
// waits for the Deployment's pod to be created. The PodSecurity admission plugin rejects a pod
// that breaks the standard, and the ReplicaSet then reports FailedCreate and never makes one.
// No scheduler runs here, so the pod stays Pending: admission is what this test is about.
func TestManifestIsAdmittedUnderRestrictedPodSecurity(t *testing.T) {
	ns := testCluster.Namespace(t)
	cs := testCluster.Clientset
	labels := fmt.Sprintf(`{"metadata":{"labels":{%q:"restricted",%q:"latest"}}}`,
		"pod-security.kubernetes.io/enforce", "pod-security.kubernetes.io/enforce-version")
	if _, err := cs.CoreV1().Namespaces().Patch(t.Context(), ns, types.MergePatchType, []byte(labels), metav1.PatchOptions{}); err != nil {
		t.Fatalf("label namespace %s restricted: %v", ns, err)
	}
	if out, err := testCluster.Kubectl("apply", "-n", ns, "-f", filepath.Join(repoRoot, "macaque.yml")); err != nil {
		t.Fatalf("kubectl apply -f macaque.yml: %v\n%s", err, out)
	}

	selector := "app.kubernetes.io/name=macaque"
	var lastSeen string // every pass sets it before the deadline is checked
	deadline := time.Now().Add(30 * time.Second)
	for {
		pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
		switch {
		case err != nil:
			lastSeen = "list pods: " + err.Error()
		case len(pods.Items) > 0:
			t.Logf("pod %s admitted under the restricted standard", pods.Items[0].Name)
			return
		default:
			lastSeen = "no pod; " + replicaSetTrouble(t, ns, selector)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no macaque pod in %s (enforcing restricted) after 30s; last seen: %s", ns, lastSeen)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// replicaSetTrouble says why the ReplicaSets of selector have made no pod: their failure
// conditions (a PodSecurity rejection shows there) and the latest warning Events.
func replicaSetTrouble(t *testing.T, ns, selector string) string {
	t.Helper()
	cs := testCluster.Clientset
	var said []string
	sets, err := cs.AppsV1().ReplicaSets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "list replicasets: " + err.Error()
	}
	for _, rs := range sets.Items {
		for _, c := range rs.Status.Conditions {
			said = append(said, fmt.Sprintf("replicaset %s %s: %s", rs.Name, c.Type, c.Message))
		}
	}
	if events, err := cs.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "type=Warning"}); err == nil {
		for _, e := range events.Items {
			said = append(said, fmt.Sprintf("event %s on %s: %s", e.Reason, e.InvolvedObject.Name, e.Message))
		}
	}
	if len(said) == 0 {
		return fmt.Sprintf("%d replicasets, no failure reported", len(sets.Items))
	}
	return strings.Join(said, "; ")
}
