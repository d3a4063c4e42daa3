package charttest

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// updateManifests rewrites the plain manifests from the chart: make manifests.
var updateManifests = flag.Bool("update-manifests", false, "rewrite macaque.yml and macaque-cluster.yml from the chart")

// TestManifestsAreRendersOfTheChart fails when macaque.yml or macaque-cluster.yml is not what
// the chart renders (someone edited the file, or the chart without make manifests): the chart is
// the one source, and the plain manifests only its renders.
func TestManifestsAreRendersOfTheChart(t *testing.T) {
	ch := loadChart(t)
	for _, m := range Manifests {
		t.Run(m.File, func(t *testing.T) {
			want, err := m.Render(ch)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("..", m.File)
			if *updateManifests {
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := repoFile(t, m.File)
			if got != want {
				line, g, w := firstDiff(got, want)
				t.Errorf("%s is not the chart's render: run make manifests (first difference at line %d: %q, want %q)", m.File, line, g, w)
			}
		})
	}
}

// firstDiff returns the 1-based number of the first line where got and want differ, and both
// lines there.
func firstDiff(got, want string) (int, string, string) {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return i + 1, gl, wl
		}
	}
	return 0, "", ""
}

// TestManifestsPlaceObjects checks where the plain manifests put each object: macaque.yml names
// no namespace (kubectl apply -n places everything), macaque-cluster.yml places every namespaced
// object in macaque and no cluster-scoped one, and binds its ClusterRole to the ServiceAccount
// there.
func TestManifestsPlaceObjects(t *testing.T) {
	ch := loadChart(t)
	clusterScoped := map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true}
	for _, m := range Manifests {
		t.Run(m.File, func(t *testing.T) {
			out, err := m.Render(ch)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]bool{}
			for _, o := range objectsOf(t, out) {
				kinds[o.Kind] = true
				want := m.Release.Namespace
				if clusterScoped[o.Kind] {
					want = ""
				}
				if o.Metadata.Namespace != want {
					t.Errorf("%s %s is in namespace %q, want %q", o.Kind, o.Metadata.Name, o.Metadata.Namespace, want)
				}
				if o.Kind == "RoleBinding" || o.Kind == "ClusterRoleBinding" {
					subject := "  - kind: ServiceAccount\n    name: macaque\n"
					if m.Release.Namespace != "" {
						subject += "    namespace: " + m.Release.Namespace + "\n"
					}
					if !strings.Contains(o.raw+"\n", "subjects:\n"+subject) {
						t.Errorf("%s %s does not bind the ServiceAccount macaque%s only:\n%s", o.Kind, o.Metadata.Name, m.Release.Namespace, o.raw)
					}
				}
			}
			for _, kind := range []string{"ServiceAccount", "ConfigMap", "Role", "RoleBinding", "Deployment", "PodDisruptionBudget"} {
				if !kinds[kind] {
					t.Errorf("no %s", kind)
				}
			}
		})
	}
}
