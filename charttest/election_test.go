package charttest

import (
	"maps"
	"reflect"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// leaseName is the Lease macaque elects its leader on, in its own namespace.
const leaseName = "macaque-leader"

// electionRules are what the binary needs on its Lease, and nothing more: create, which RBAC
// cannot restrict to a name; get and update on that Lease only.
var electionRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
	{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{leaseName}, Verbs: []string{"get", "update"}},
}

// TestReplicasFollowTheElection checks what the chart makes of leaderElection and replicas:
// with the election, the replicas asked for, rolling updates that keep a ready pod, a
// PodDisruptionBudget and a spread over nodes when there is more than one, and the Lease's Role;
// without, one replica recreated, and none of those.
func TestReplicasFollowTheElection(t *testing.T) {
	ch := loadChart(t)
	zoneSpread := map[string]any{"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
		"labelSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "macaque"}}}
	cases := []struct {
		name     string
		values   map[string]any
		replicas int32
		strategy appsv1.DeploymentStrategyType
		pdb      bool
		spread   string // the topologyKey of the one spread constraint; "" for none
		election bool   // the Lease's Role and RoleBinding, and MACAQUE_LEADER_ELECTION=true
	}{
		{"default", nil, 2, appsv1.RollingUpdateDeploymentStrategyType, true, "kubernetes.io/hostname", true},
		{"no election", map[string]any{"leaderElection": false, "replicas": 1}, 1, appsv1.RecreateDeploymentStrategyType, false, "", false},
		{"election, one replica", map[string]any{"replicas": 1}, 1, appsv1.RollingUpdateDeploymentStrategyType, false, "", true},
		{"election, three replicas", map[string]any{"replicas": 3}, 3, appsv1.RollingUpdateDeploymentStrategyType, true, "kubernetes.io/hostname", true},
		{"no PodDisruptionBudget", map[string]any{"podDisruptionBudget": map[string]any{"enabled": false}}, 2, appsv1.RollingUpdateDeploymentStrategyType, false, "kubernetes.io/hostname", true},
		{"own spread", map[string]any{"topologySpreadConstraints": []any{zoneSpread}}, 2, appsv1.RollingUpdateDeploymentStrategyType, true, "topology.kubernetes.io/zone", true},
		{"cluster scope", map[string]any{"scope": "cluster"}, 2, appsv1.RollingUpdateDeploymentStrategyType, true, "kubernetes.io/hostname", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			manifest := render(t, ch, c.values)
			objs := objectsOf(t, manifest)
			var d appsv1.Deployment
			only(t, objs, "Deployment", &d)
			selector := d.Spec.Selector.MatchLabels
			if !maps.Equal(selector, map[string]string{"app.kubernetes.io/name": "macaque", "app.kubernetes.io/instance": testRelease.Name}) {
				t.Fatalf("the Deployment selects %v, want the selector labels", selector)
			}

			if d.Spec.Replicas == nil {
				t.Errorf("no replicas, want %d", c.replicas)
			} else if *d.Spec.Replicas != c.replicas {
				t.Errorf("replicas %d, want %d", *d.Spec.Replicas, c.replicas)
			}
			checkStrategy(t, d.Spec.Strategy, c.strategy)
			checkSpread(t, d.Spec.Template.Spec.TopologySpreadConstraints, c.spread, selector)
			checkPDB(t, ofKind(objs, "PodDisruptionBudget"), c.pdb, selector)
			checkElectionRBAC(t, objs, c.election)
			want := map[bool]string{true: "true", false: "false"}[c.election]
			if got := envOf(t, manifest)["MACAQUE_LEADER_ELECTION"]; got != want {
				t.Errorf("MACAQUE_LEADER_ELECTION=%q, want %q", got, want)
			}
		})
	}
}

// checkStrategy checks the Deployment's strategy: a rolling update starts the new pod, ready,
// before an old one stops (maxSurge 1, maxUnavailable 0); Recreate has no such parameters.
func checkStrategy(t *testing.T, s appsv1.DeploymentStrategy, want appsv1.DeploymentStrategyType) {
	t.Helper()
	if s.Type != want {
		t.Errorf("strategy %q, want %q", s.Type, want)
	}
	switch {
	case want == appsv1.RecreateDeploymentStrategyType && s.RollingUpdate != nil:
		t.Errorf("Recreate with rollingUpdate %+v", s.RollingUpdate)
	case want == appsv1.RollingUpdateDeploymentStrategyType:
		if ru := s.RollingUpdate; ru == nil || ru.MaxSurge == nil || ru.MaxSurge.String() != "1" || ru.MaxUnavailable == nil || ru.MaxUnavailable.String() != "0" {
			t.Errorf("rollingUpdate %+v, want maxSurge 1 and maxUnavailable 0", ru)
		}
	}
}

// checkSpread checks the pod's spread constraints: none when wantKey is empty; the chart's soft
// spread over nodes of the pods of selector; or else the one the values gave, as given.
func checkSpread(t *testing.T, got []corev1.TopologySpreadConstraint, wantKey string, selector map[string]string) {
	t.Helper()
	switch {
	case wantKey == "":
		if len(got) != 0 {
			t.Errorf("topologySpreadConstraints %+v, want none", got)
		}
	case len(got) != 1:
		t.Errorf("%d topologySpreadConstraints, want 1: %+v", len(got), got)
	case wantKey == "kubernetes.io/hostname":
		c := got[0]
		if c.MaxSkew != 1 || c.TopologyKey != wantKey || c.WhenUnsatisfiable != corev1.ScheduleAnyway ||
			c.LabelSelector == nil || !maps.Equal(c.LabelSelector.MatchLabels, selector) || len(c.LabelSelector.MatchExpressions) != 0 {
			t.Errorf("topologySpreadConstraints %+v, want maxSkew 1 over %s, ScheduleAnyway, of the pods of %v", c, wantKey, selector)
		}
	default:
		if c := got[0]; c.TopologyKey != wantKey || c.MaxSkew != 2 || c.WhenUnsatisfiable != corev1.DoNotSchedule {
			t.Errorf("topologySpreadConstraints %+v, want the values' own (%s, maxSkew 2, DoNotSchedule)", c, wantKey)
		}
	}
}

// checkPDB checks the PodDisruptionBudgets rendered: none, or one letting a drain take one of
// the pods of selector at a time, in the release's namespace.
func checkPDB(t *testing.T, pdbs []object, want bool, selector map[string]string) {
	t.Helper()
	if !want {
		if len(pdbs) != 0 {
			t.Errorf("%d PodDisruptionBudgets, want none", len(pdbs))
		}
		return
	}
	if len(pdbs) != 1 {
		t.Fatalf("%d PodDisruptionBudgets, want 1", len(pdbs))
	}
	var pdb policyv1.PodDisruptionBudget
	decode(t, pdbs[0], &pdb)
	if pdb.APIVersion != "policy/v1" || pdb.Namespace != testRelease.Namespace {
		t.Errorf("PodDisruptionBudget %s in %q, want policy/v1 in %q", pdb.APIVersion, pdb.Namespace, testRelease.Namespace)
	}
	if s := pdb.Spec; s.MaxUnavailable == nil || s.MaxUnavailable.String() != "1" || s.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, minAvailable %v, want maxUnavailable 1 only", s.MaxUnavailable, s.MinAvailable)
	}
	if s := pdb.Spec.Selector; s == nil || !maps.Equal(s.MatchLabels, selector) || len(s.MatchExpressions) != 0 {
		t.Errorf("PodDisruptionBudget selects %+v, want macaque's pods: %v", s, selector)
	}
}

// checkElectionRBAC checks what may touch Leases: with the election exactly electionRules, in
// one Role of the release's namespace bound to macaque's ServiceAccount; without, nothing. No
// other Role or ClusterRole grants anything on Leases.
func checkElectionRBAC(t *testing.T, objs []object, want bool) {
	t.Helper()
	name := testRelease.Name + "-election"
	var roles, bindings int
	for _, o := range objs {
		switch o.Kind {
		case "Role", "ClusterRole":
			var role rbacv1.Role
			decode(t, o, &role)
			if o.Metadata.Name != name {
				if slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, "leases") }) {
					t.Errorf("%s %s grants on leases: only %s may", o.Kind, o.Metadata.Name, name)
				}
				continue
			}
			roles++
			if o.Kind != "Role" || o.Metadata.Namespace != testRelease.Namespace {
				t.Errorf("%s %s in %q, want a Role in %q, where the Lease is", o.Kind, name, o.Metadata.Namespace, testRelease.Namespace)
			}
			if !reflect.DeepEqual(role.Rules, electionRules) {
				t.Errorf("Role %s grants %+v, want exactly %+v", name, role.Rules, electionRules)
			}
		case "RoleBinding", "ClusterRoleBinding":
			if o.Metadata.Name != name {
				continue
			}
			bindings++
			var b rbacv1.RoleBinding
			decode(t, o, &b)
			wantSubject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "macaque", Namespace: testRelease.Namespace}}
			if o.Kind != "RoleBinding" || b.RoleRef.Kind != "Role" || b.RoleRef.Name != name || !reflect.DeepEqual(b.Subjects, wantSubject) {
				t.Errorf("%s %s binds %+v to %+v, want the Role %s to %+v", o.Kind, name, b.RoleRef, b.Subjects, name, wantSubject)
			}
		}
	}
	wantN := map[bool]int{true: 1, false: 0}[want]
	if roles != wantN || bindings != wantN {
		t.Errorf("%d Roles and %d RoleBindings %s, want %d of each", roles, bindings, name, wantN)
	}
}
