package main

import (
	"regexp"
	"strings"
	"testing"
)

// clusterNamespace is where macaque-cluster.yml runs macaque: a ClusterRoleBinding's subject
// must name the ServiceAccount's namespace, so this manifest cannot take it from kubectl -n.
const clusterNamespace = "macaque"

// TestClusterManifest checks macaque-cluster.yml, the chart's render with scope cluster (make
// manifests; charttest's TestManifestsAreRendersOfTheChart fails when it drifts from the chart):
// its cluster-scoped objects in no namespace, the others in clusterNamespace, killing in "*".
func TestClusterManifest(t *testing.T) {
	manifest := readRepoFile(t, "macaque-cluster.yml")
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding", "Namespace"} {
		if !strings.Contains(manifest, "kind: "+kind+"\nmetadata:\n  name: macaque\n") {
			t.Errorf("macaque-cluster.yml has no %s macaque", kind)
		}
		if strings.Contains(manifest, "kind: "+kind+"\nmetadata:\n  name: macaque\n  namespace:") {
			t.Errorf("macaque-cluster.yml places the %s, which is cluster-scoped, in a namespace", kind)
		}
	}
	for _, obj := range []string{"ServiceAccount", "Deployment", "ConfigMap", "Role", "RoleBinding", "PodDisruptionBudget"} {
		if !regexp.MustCompile(`kind: ` + obj + `\nmetadata:\n  name: [a-z-]+\n  namespace: ` + clusterNamespace + `\n`).MatchString(manifest) {
			t.Errorf("macaque-cluster.yml does not place its %s in %s", obj, clusterNamespace)
		}
	}
	if !strings.Contains(manifest, "- name: MACAQUE_NAMESPACE\n              value: \"*\"\n") {
		t.Error("macaque-cluster.yml does not set MACAQUE_NAMESPACE to \"*\"")
	}
}
