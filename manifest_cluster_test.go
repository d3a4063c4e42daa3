package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

// updateManifests rewrites macaque-cluster.yml from macaque.yml: go test -run TestClusterManifest -update-manifests
var updateManifests = flag.Bool("update-manifests", false, "rewrite macaque-cluster.yml from macaque.yml")

// clusterNamespace is where macaque-cluster.yml runs macaque: a ClusterRoleBinding's subject
// must name the ServiceAccount's namespace, so this manifest cannot take it from kubectl -n.
const clusterNamespace = "macaque"

// clusterHeader replaces macaque.yml's header comment in macaque-cluster.yml.
const clusterHeader = `# macaque for a whole cluster: deletes one random Running pod on a schedule, in every namespace
# but the system's and those excluded, and reports it to Slack. Generated from macaque.yml (make
# manifests): every setting below is documented as there.
#
#   curl -LO https://github.com/macaque-chaos/macaque/releases/latest/download/macaque-cluster.yml
#   $EDITOR macaque-cluster.yml            # edit the env vars of the Deployment below
#   kubectl apply -f macaque-cluster.yml   # creates the namespace macaque and macaque in it
#
# macaque runs in its own namespace, macaque. Its ClusterRole lets it list and delete pods, and
# read (get) the workloads that own them, in every namespace, and nothing else; at start macaque
# checks each with an access review at cluster scope and will not start without them. The
# pick is uniform over the pods of every namespace in scope, listed in one cluster-wide request.
# kube-system, kube-public and kube-node-lease are never touched unless named beside the "*".
#
# Slack (optional): create the token Secret, then set MACAQUE_SLACK_CHANNEL below:
#   kubectl -n macaque create secret generic macaque-slack --from-literal=token=xoxb-...
---
apiVersion: v1
kind: Namespace
metadata:
  name: macaque
  labels:
    app.kubernetes.io/name: macaque
`

// clusterEdits turn macaque.yml's objects into macaque-cluster.yml's, each an exact
// replacement that must apply once: when macaque.yml changes under one, the test says which.
var clusterEdits = []struct{ old, new string }{
	{"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: macaque\n",
		"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: macaque\n  namespace: macaque\n"},
	{"\nkind: Role\nmetadata:\n", "\nkind: ClusterRole\nmetadata:\n"},
	{"\nkind: RoleBinding\nmetadata:\n", "\nkind: ClusterRoleBinding\nmetadata:\n"},
	{"  kind: Role\n  name: macaque\n", "  kind: ClusterRole\n  name: macaque\n"},
	{"  - kind: ServiceAccount\n    name: macaque\n", "  - kind: ServiceAccount\n    name: macaque\n    namespace: macaque\n"},
	{"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: macaque\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: macaque\n  namespace: macaque\n"},
	{`            # Namespace to kill in, or a comma-separated list of them ("shop,cart", one candidate
            # pool: the pick is uniform over their pods; apply the Role and RoleBinding in each).
            # Default: the namespace macaque runs in (POD_NAMESPACE below). For every namespace
            # ("*"), apply macaque-cluster.yml instead: this Role does not reach beyond one.
            # - name: MACAQUE_NAMESPACE
            #   value: "shop"
`, `            # Namespaces to kill in: "*" is every namespace but kube-system, kube-public,
            # kube-node-lease and those of MACAQUE_EXCLUDE_NAMESPACES; a system namespace named
            # beside it ("*,kube-system") is in. A comma-separated list ("shop,cart") works too.
            - name: MACAQUE_NAMESPACE
              value: "*"
            # With "*": comma-separated namespaces never to kill in ("payments,vault"). Default
            # empty.
            # - name: MACAQUE_EXCLUDE_NAMESPACES
            #   value: ""
`},
}

// clusterManifest derives macaque-cluster.yml from macaque.yml.
func clusterManifest(single string) (string, error) {
	_, objects, ok := strings.Cut(single, "\n---\n")
	if !ok {
		return "", fmt.Errorf("macaque.yml has no --- after its header")
	}
	for _, e := range clusterEdits {
		if n := strings.Count(objects, e.old); n != 1 {
			return "", fmt.Errorf("macaque.yml has %d of the text this edit replaces, want 1 (update clusterEdits):\n%s", n, e.old)
		}
		objects = strings.Replace(objects, e.old, e.new, 1)
	}
	return clusterHeader + "---\n" + objects, nil
}

// TestClusterManifest checks that macaque-cluster.yml is macaque.yml made cluster-wide, so that
// the two never drift apart: same settings and comments, same rules in a ClusterRole.
func TestClusterManifest(t *testing.T) {
	single, err := os.ReadFile("macaque.yml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := clusterManifest(string(single))
	if err != nil {
		t.Fatal(err)
	}
	if *updateManifests {
		if err := os.WriteFile("macaque-cluster.yml", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("macaque-cluster.yml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("macaque-cluster.yml is not macaque.yml made cluster-wide: run make manifests")
	}
	if strings.Count(want, "namespace: "+clusterNamespace+"\n") != 3 {
		t.Errorf("macaque-cluster.yml should place the ServiceAccount, the binding's subject and the Deployment in %s", clusterNamespace)
	}
}
