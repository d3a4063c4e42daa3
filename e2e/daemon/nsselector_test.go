package daemon_test

// MACAQUE_NAMESPACE_SELECTOR on a real control plane, with macaque-cluster.yml's ClusterRole:
// only the namespaces labelled lose pods, a namespace labelled while macaque runs joins from
// the next tick, and an excluded namespace stays out though labelled.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// applyClusterManifest applies macaque-cluster.yml (deleted when the test ends) and returns a
// kubeconfig of its ServiceAccount.
func applyClusterManifest(t *testing.T) string {
	t.Helper()
	manifest := filepath.Join(repoRoot, "macaque-cluster.yml")
	// Another test's delete of the same manifest may still be emptying the namespace macaque,
	// which refuses new content until it is gone.
	if out, err := testCluster.Kubectl("wait", "--for=delete", "namespace/macaque", "--timeout=90s"); err != nil {
		t.Fatalf("wait for the namespace macaque of an earlier test to go: %v\n%s", err, out)
	}
	if out, err := testCluster.Kubectl("apply", "-f", manifest); err != nil {
		t.Fatalf("kubectl apply -f macaque-cluster.yml: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		// Waited for, so that the next test to apply it (TestEveryNamespaceButTheExcluded)
		// does not find its namespace still terminating.
		if out, err := testCluster.Kubectl("delete", "--wait=true", "--timeout=90s", "-f", manifest); err != nil {
			t.Errorf("kubectl delete -f macaque-cluster.yml: %v\n%s", err, out)
		}
	})
	kubeconfig, err := testCluster.TokenKubeconfig(t.Context(), "macaque", "macaque")
	if err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}

// labelNamespace sets label (key=value) on namespace ns.
func labelNamespace(t *testing.T, ns, label string) {
	t.Helper()
	if out, err := testCluster.Kubectl("label", "namespace", ns, "--overwrite", label); err != nil {
		t.Fatalf("kubectl label namespace %s %s: %v\n%s", ns, label, err, out)
	}
}

// TestNamespaceSelector runs macaque with * and a namespace selector, as macaque-cluster.yml's
// ServiceAccount: of four namespaces holding pods of one app, the labelled one loses pods,
// the unlabelled one and the excluded one (labelled) never do; then a namespace labelled at
// run time loses pods too.
func TestNamespaceSelector(t *testing.T) {
	kubeconfig := applyClusterManifest(t)
	// A label and an app no other test uses, so that * reaches only this test's pods.
	const app = "nssel-e2e"
	in, out, excluded, later := testCluster.Namespace(t), testCluster.Namespace(t), testCluster.Namespace(t), testCluster.Namespace(t)
	label := "chaos-e2e=" + in
	for _, ns := range []string{in, excluded} {
		labelNamespace(t, ns, label)
	}
	all := []string{in, out, excluded, later}
	for _, ns := range all {
		createDeployment(t, ns, app, 2)
	}
	for _, ns := range all {
		waitReady(t, ns, app, 2)
	}
	watcher := watchDeletions(t, all)
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_NAMESPACE=*", "MACAQUE_NAMESPACE_SELECTOR="+label,
		"MACAQUE_EXCLUDE_NAMESPACES="+excluded, "MACAQUE_SELECTOR=app="+app, "POD_NAMESPACE=macaque")
	// Eight candidates by label, two in scope: three kills all landing in scope by chance
	// would happen 1 time in 64 if the selector were not applied.
	waitKillsIn(t, d, watcher, 3, "three kills", func([]deletion) bool { return true })
	for _, del := range watcher.Deleted() {
		if del.Namespace != in {
			t.Fatalf("deleted %s/%s before %s was labelled, want only pods in %s", del.Namespace, del.Name, later, in)
		}
	}
	labelNamespace(t, later, label)
	seen := waitKillsIn(t, d, watcher, 4, "a kill in the namespace labelled at run time", func(seen []deletion) bool {
		for _, del := range seen {
			if del.Namespace == later {
				return true
			}
		}
		return false
	})
	// The kill in the namespace that joined gets its verdict, as any kill does.
	cluster.Eventually(t, scopeTimeout, "a recovered verdict on a kill in "+later, func(context.Context) error {
		for _, l := range d.Logs() {
			for _, del := range seen {
				if del.Namespace == later && strings.Contains(l, `"msg":"recovery verdict"`) && strings.Contains(l, `"pod":"`+del.Name+`"`) &&
					strings.Contains(l, `"verdict":"recovered"`) {
					return nil
				}
			}
		}
		return fmt.Errorf("no recovered verdict yet on the kills %+v; last log line: %s", seen, d.Tail(1))
	})
	d.stop(t)
	for _, del := range seen {
		if del.Namespace == out || del.Namespace == excluded {
			t.Errorf("deleted %s/%s: %s is not labelled and %s is excluded", del.Namespace, del.Name, out, excluded)
		}
	}
	for _, l := range d.tickLines() {
		if l.Outcome == "killed" && ((l.Namespace != in && l.Namespace != later) || (l.Candidates != 2 && l.Candidates != 4)) {
			t.Errorf("tick report %s: want a kill in %s or %s among 2 or 4 candidates", l.raw, in, later)
		}
	}
	want := `"namespace":"* labelled chaos-e2e=` + in + ` except kube-system,kube-public,kube-node-lease,` + excluded + `"`
	if i := slices.IndexFunc(d.Logs(), func(l string) bool { return strings.Contains(l, "macaque started") }); i < 0 || !strings.Contains(d.Logs()[i], want) {
		t.Errorf("log %q, want macaque started with %s", d.Logs(), want)
	}
}

// namespacesRule is the index, in macaque-cluster.yml's ClusterRole, of its rule on namespaces.
func namespacesRule(t *testing.T) string {
	t.Helper()
	role, err := testCluster.Clientset.RbacV1().ClusterRoles().Get(t.Context(), "macaque", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range role.Rules {
		if slices.Equal(r.Resources, []string{"namespaces"}) && slices.Equal(r.Verbs, []string{"list"}) {
			return strconv.Itoa(i)
		}
	}
	t.Fatalf("macaque-cluster.yml's ClusterRole has no rule granting list on namespaces: %+v", role.Rules)
	return ""
}

// TestNamespaceSelectorNeedsItsClusterRole: a ClusterRole without list on namespaces (the
// rule removed from macaque-cluster.yml) stops macaque at start, naming the setting.
func TestNamespaceSelectorNeedsItsClusterRole(t *testing.T) {
	kubeconfig := applyClusterManifest(t)
	patch := `[{"op":"remove","path":"/rules/` + namespacesRule(t) + `"}]`
	if out, err := testCluster.Kubectl("patch", "clusterrole", "macaque", "--type=json", "-p", patch); err != nil {
		t.Fatalf("remove list on namespaces from the ClusterRole: %v\n%s", err, out)
	}
	waitCanI(t, kubeconfig, "list", "namespaces", "default", "no")
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_NAMESPACE=*", "MACAQUE_NAMESPACE_SELECTOR=chaos-e2e=none", "POD_NAMESPACE=macaque")
	d.wantRefusedAtStart(t, "macaque: MACAQUE_NAMESPACE_SELECTOR: needs list on namespaces, which macaque may not (apply macaque-cluster.yml")
}
