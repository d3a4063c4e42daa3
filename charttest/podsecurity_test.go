package charttest

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// restrictedViolations evaluates the pod template of the Deployment in manifest against the
// restricted Pod Security Standard, at its latest version, with the checks the PodSecurity
// admission plugin runs; it returns each failed check's reason and detail.
func restrictedViolations(t *testing.T, manifest string) []string {
	t.Helper()
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	only(t, objectsOf(t, manifest), "Deployment", &d)
	level := psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}
	var violations []string
	for _, r := range evaluator.EvaluatePod(level, &d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec) {
		if !r.Allowed {
			violations = append(violations, r.ForbiddenReason+": "+r.ForbiddenDetail)
		}
	}
	return violations
}

// TestPodIsRestricted checks the pod of every value set, and of the plain manifests, against the
// restricted Pod Security Standard, as a namespace labelled
// pod-security.kubernetes.io/enforce=restricted admits pods.
func TestPodIsRestricted(t *testing.T) {
	ch := loadChart(t)
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			for _, v := range restrictedViolations(t, render(t, ch, vs.values)) {
				t.Error(v)
			}
		})
	}
	for _, m := range Manifests {
		t.Run(m.File, func(t *testing.T) {
			for _, v := range restrictedViolations(t, repoFile(t, m.File)) {
				t.Error(v)
			}
		})
	}
}

// TestRestrictedCheckBites checks that the check above sees a pod that breaks the standard: the
// chart's values can loosen the security contexts, and the standard must refuse each loosening.
func TestRestrictedCheckBites(t *testing.T) {
	ch := loadChart(t)
	cases := []struct {
		name   string
		values map[string]any
	}{
		{"privilege escalation", map[string]any{"securityContext": map[string]any{"allowPrivilegeEscalation": true}}},
		{"capabilities kept", map[string]any{"securityContext": map[string]any{"allowPrivilegeEscalation": false, "capabilities": map[string]any{"drop": []any{"NET_RAW"}}}}},
		{"root allowed", map[string]any{"podSecurityContext": map[string]any{"runAsNonRoot": false, "seccompProfile": map[string]any{"type": "RuntimeDefault"}}}},
		{"no seccomp profile", map[string]any{"podSecurityContext": map[string]any{"seccompProfile": nil}}}, // null removes a default
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if v := restrictedViolations(t, render(t, ch, c.values)); len(v) == 0 {
				t.Errorf("values %v: the pod passes the restricted standard, want it refused", c.values)
			} else {
				t.Logf("refused: %v", v)
			}
		})
	}
}
