package charttest

import (
	"fmt"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// grants says whether rules allow verb on resource of group.
func grants(rules []rbacv1.PolicyRule, verb, group, resource string) bool {
	return slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb)
	})
}

// TestRoleGrantsTheModesVerbOnly checks, for each scope and mode, that every Role or ClusterRole
// that lets macaque kill grants that mode's verb and not the other's (a delete-mode macaque
// must not be able to evict, nor an evict-mode one to delete and so bypass the budgets), and
// what both modes need.
func TestRoleGrantsTheModesVerbOnly(t *testing.T) {
	ch := loadChart(t)
	for _, scope := range []string{"namespace", "cluster"} {
		for _, mode := range []string{"delete", "evict"} {
			t.Run(scope+" "+mode, func(t *testing.T) {
				values := map[string]any{"scope": scope, "mode": mode}
				wantKind := map[string]string{"namespace": "Role", "cluster": "ClusterRole"}[scope]
				if scope == "namespace" {
					values["namespaces"] = []any{testRelease.Namespace, "shop"}
				}
				evict := mode == "evict"
				want := map[string]bool{"delete /pods": !evict, "create /pods/eviction": evict, "list policy/poddisruptionbudgets": evict,
					"list /pods": true, "watch /pods": true, "get apps/deployments": true, "watch apps/replicasets": true, "create events.k8s.io/events": true,
					"create coordination.k8s.io/leases": false, "update coordination.k8s.io/leases": false} // the Lease's own Role grants those
				killers := 0
				for _, o := range objectsOf(t, render(t, ch, values)) {
					if (o.Kind != "Role" && o.Kind != "ClusterRole") || o.Metadata.Name != "macaque" {
						continue
					}
					killers++
					if o.Kind != wantKind {
						t.Errorf("%s %s in scope %s, want a %s", o.Kind, o.Metadata.Name, scope, wantKind)
					}
					var role rbacv1.Role
					if err := yaml.Unmarshal([]byte(o.raw), &role); err != nil {
						t.Fatal(err)
					}
					for perm, granted := range want {
						var verb, group, resource string
						if _, err := fmt.Sscanf(perm, "%s %s", &verb, &group); err != nil {
							t.Fatal(err)
						}
						group, resource = splitResource(group)
						if got := grants(role.Rules, verb, group, resource); got != granted {
							t.Errorf("%s in %q grants %s: %v, want %v", o.Kind, o.Metadata.Namespace, perm, got, granted)
						}
					}
				}
				wantKillers := map[string]int{"namespace": 2, "cluster": 1}[scope] // the release's namespace and shop
				if killers != wantKillers {
					t.Errorf("%d Roles or ClusterRoles named macaque, want %d", killers, wantKillers)
				}
			})
		}
	}
}

// splitResource splits "group/resource" (group empty for the core group) at its first slash.
func splitResource(s string) (string, string) {
	for i := range len(s) {
		if s[i] == '/' {
			return s[:i], s[i+1:]
		}
	}
	return "", s
}
