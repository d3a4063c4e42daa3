package daemon_test

// Scope on a real control plane: a list of namespaces pools their pods, and * (applied from
// macaque-cluster.yml, with its ClusterRole) kills in every namespace but the system's and the
// excluded ones, which it never touches.

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
)

// scopeTimeout bounds the waits for kills across namespaces: ticks every 2 seconds.
const scopeTimeout = 60 * time.Second

// waitKillsIn waits until the watcher has seen at least kills deletions, failing at once if
// macaque exits, and returns them.
func waitKillsIn(t *testing.T, d *daemon, watcher *podWatcher, kills int, what string, done func([]deletion) bool) []deletion {
	t.Helper()
	cluster.Eventually(t, scopeTimeout, what, func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		seen := watcher.Deleted()
		if len(seen) < kills || !done(seen) {
			return fmt.Errorf("deletions so far %+v; last log line: %s", seen, d.Tail(1))
		}
		return nil
	})
	return watcher.Deleted()
}

// TestEveryNamespaceButTheExcluded applies macaque-cluster.yml and runs macaque as its
// ServiceAccount with MACAQUE_NAMESPACE=*: pods of one app in a test namespace, in an excluded
// one and in kube-system are all candidates by label, and only the first namespace's die.
func TestEveryNamespaceButTheExcluded(t *testing.T) {
	manifest := filepath.Join(repoRoot, "macaque-cluster.yml")
	if out, err := testCluster.Kubectl("apply", "-f", manifest); err != nil {
		t.Fatalf("kubectl apply -f macaque-cluster.yml: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := testCluster.Kubectl("delete", "--wait=false", "-f", manifest); err != nil {
			t.Errorf("kubectl delete -f macaque-cluster.yml: %v\n%s", err, out)
		}
	})
	kubeconfig, err := testCluster.TokenKubeconfig(t.Context(), "macaque", "macaque")
	if err != nil {
		t.Fatal(err)
	}
	// A label no other test uses, so that * reaches only this test's pods.
	const app = "scope-e2e"
	in, excluded := testCluster.Namespace(t), testCluster.Namespace(t)
	for _, ns := range []string{in, excluded, "kube-system"} {
		createDeployment(t, ns, app, 2)
	}
	t.Cleanup(func() {
		if out, err := testCluster.Kubectl("-n", "kube-system", "delete", "deployment", app, "--wait=false"); err != nil {
			t.Errorf("delete kube-system/%s: %v\n%s", app, err, out)
		}
	})
	for _, ns := range []string{in, excluded, "kube-system"} {
		waitReady(t, ns, app, 2)
	}
	watcher := watchDeletions(t, []string{in, excluded, "kube-system"})
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_NAMESPACE=*", "MACAQUE_EXCLUDE_NAMESPACES="+excluded,
		"MACAQUE_SELECTOR=app="+app, "POD_NAMESPACE=macaque")
	// Six candidates by label, two in scope: three kills all landing in scope by chance
	// would happen 1 time in 27 if the exclusions were not applied.
	seen := waitKillsIn(t, d, watcher, 3, "three kills", func([]deletion) bool { return true })
	d.stop(t)
	for _, del := range seen {
		if del.Namespace != in {
			t.Errorf("deleted %s/%s, want only pods in %s: %s and kube-system are out of scope", del.Namespace, del.Name, in, excluded)
		}
	}
	killed := 0
	for _, l := range d.tickLines() {
		if l.Outcome != "killed" {
			continue
		}
		killed++
		if l.Namespace != in || l.Candidates != 2 {
			t.Errorf("tick report %s: want a kill in %s among its 2 candidates", l.raw, in)
		}
	}
	if killed < 3 {
		t.Errorf("%d kills reported, %d deletions seen", killed, len(seen))
	}
}

// TestNamespaceListKillsInEach runs macaque over two namespaces, its Role bound in both: both
// lose pods, and no other namespace does.
func TestNamespaceListKillsInEach(t *testing.T) {
	first, kubeconfig := deploy(t)
	second, outside := testCluster.Namespace(t), testCluster.Namespace(t)
	// The Role in the second namespace, bound to the first namespace's ServiceAccount.
	if out, err := testCluster.Kubectl("apply", "-n", second, "-f", filepath.Join(repoRoot, "macaque.yml")); err != nil {
		t.Fatalf("kubectl apply -f macaque.yml: %v\n%s", err, out)
	}
	if out, err := testCluster.Kubectl("-n", second, "create", "rolebinding", "macaque-from-"+first, "--role=macaque",
		"--serviceaccount="+first+":macaque"); err != nil {
		t.Fatalf("bind the Role: %v\n%s", err, out)
	}
	waitCanI(t, kubeconfig, "delete", "pods", second, "yes")
	for _, ns := range []string{first, second, outside} {
		createDeployment(t, ns, "web", 2)
	}
	for _, ns := range []string{first, second, outside} {
		waitReady(t, ns, "web", 2)
	}
	watcher := watchDeletions(t, []string{first, second, outside})
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_NAMESPACE="+first+","+second, "MACAQUE_SELECTOR=app=web")
	seen := waitKillsIn(t, d, watcher, 2, "kills in both namespaces", func(seen []deletion) bool {
		in := map[string]bool{}
		for _, del := range seen {
			in[del.Namespace] = true
		}
		return in[first] && in[second]
	})
	d.stop(t)
	for _, del := range seen {
		if del.Namespace == outside {
			t.Errorf("deleted %s/%s: %s is not in MACAQUE_NAMESPACE", del.Namespace, del.Name, outside)
		}
	}
	for _, l := range d.tickLines() {
		if l.Outcome == "killed" && l.Candidates != 4 {
			t.Errorf("tick report %s: want 4 candidates, the pods of both namespaces", l.raw)
		}
	}
}

// TestEveryNamespaceNeedsAClusterRole: macaque.yml's Role reaches one namespace, so * stops
// macaque at start with one line naming the setting and the manifest to apply.
func TestEveryNamespaceNeedsAClusterRole(t *testing.T) {
	_, kubeconfig := deploy(t)
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_NAMESPACE=*")
	d.wantRefusedAtStart(t, "macaque: MACAQUE_NAMESPACE: * needs list on pods in every namespace (apply macaque-cluster.yml")
	if logs := d.Logs(); len(logs) == 1 && !strings.Contains(logs[0], "forbidden") {
		t.Errorf("stderr %q, want the API server's refusal quoted", logs[0])
	}
}
