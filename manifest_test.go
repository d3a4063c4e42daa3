package main

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/policy"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// TestShutdownFitsTheManifestsGracePeriod checks the timing promise of main.go against the
// shipped manifest: a kill in flight at SIGTERM ends before shutdownGrace, which ends before
// the kubelet's SIGKILL, with a few seconds to spare for the process to exit.
func TestShutdownFitsTheManifestsGracePeriod(t *testing.T) {
	manifest, err := os.ReadFile("macaque.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*terminationGracePeriodSeconds:\s*(\d+)`).FindSubmatch(manifest)
	if m == nil {
		t.Fatal("macaque.yml sets no terminationGracePeriodSeconds")
	}
	seconds, _ := strconv.Atoi(string(m[1]))
	grace := time.Duration(seconds) * time.Second
	if kill := defaultTimeouts.total(); kill >= shutdownGrace {
		t.Errorf("a kill may take %v, not less than the shutdown grace %v: its report would be lost", kill, shutdownGrace)
	}
	if kill := defaultTimeouts.total() + policy.CooldownTimeout + eventsTimeout; kill >= shutdownGrace {
		t.Errorf("a kill and its Events may take %v, not less than the shutdown grace %v: the killer would outlive it", kill, shutdownGrace)
	}
	if shutdownGrace+5*time.Second > grace {
		t.Errorf("shutdown grace %v leaves less than 5s before the manifest's terminationGracePeriodSeconds (%v)", shutdownGrace, grace)
	}
}

// forEvict is macaque.yml edited as its Role's comment tells a user of MACAQUE_MODE=evict to:
// "delete" removed from the pods rule, the eviction rules uncommented.
func forEvict(manifest string) string {
	out := strings.Replace(manifest, `verbs: ["list", "delete", "watch"]`, `verbs: ["list", "watch"]`, 1)
	return regexp.MustCompile(`(?m)^  # (- apiGroups|  resources|  verbs)`).ReplaceAllString(out, "  $1")
}

// manifestRole is the Role named macaque in manifest.
func manifestRole(t *testing.T, manifest string) rbacv1.Role {
	t.Helper()
	for doc := range strings.SplitSeq(manifest, "\n---\n") {
		var role rbacv1.Role
		if err := yaml.Unmarshal([]byte(doc), &role); err != nil {
			t.Fatalf("decode %q: %v", doc, err)
		}
		if role.Kind == "Role" && role.Name == "macaque" {
			return role
		}
	}
	t.Fatal("no Role macaque in the manifest")
	return rbacv1.Role{}
}

// grants says whether role allows verb on resource of group.
func grants(role rbacv1.Role, verb, group, resource string) bool {
	return slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb)
	})
}

// TestRoleGrantsTheModesVerbOnly: macaque.yml, as shipped for delete mode, grants delete on
// pods and no eviction; edited as its comment says for evict mode, it grants the eviction (and
// the list of budgets that names them) and no delete.
func TestRoleGrantsTheModesVerbOnly(t *testing.T) {
	raw, err := os.ReadFile("macaque.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		manifest string
		want     map[string]bool // "verb group/resource": granted
	}{
		{"as shipped: delete mode", string(raw), map[string]bool{"delete /pods": true, "create /pods/eviction": false, "list policy/poddisruptionbudgets": false, "list /pods": true, "watch /pods": true}},
		{"edited for evict mode", forEvict(string(raw)), map[string]bool{"delete /pods": false, "create /pods/eviction": true, "list policy/poddisruptionbudgets": true, "list /pods": true, "watch /pods": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role := manifestRole(t, tt.manifest)
			for perm, want := range tt.want {
				verb, what, _ := strings.Cut(perm, " ")
				group, resource, _ := strings.Cut(what, "/")
				if got := grants(role, verb, group, resource); got != want {
					t.Errorf("%s granted: %v, want %v", perm, got, want)
				}
			}
		})
	}
}
