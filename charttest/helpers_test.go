package charttest

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	"sigs.k8s.io/yaml"
)

// TestMain quiets helm's informational logs (each symbolic link of files/ it follows to deploy/).
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(m.Run())
}

// valueSet is one way the chart is installed, over its values.yaml.
type valueSet struct {
	name   string
	values map[string]any
}

// valueSets are the installs the golden renders, the lint and the Pod Security check cover: the
// defaults, each switch that changes what is granted or made, and all the optional objects on.
var valueSets = []valueSet{
	{"default", nil},
	{"cluster", map[string]any{"scope": "cluster", "excludeNamespaces": []any{"payments", "vault"}}},
	{"evict", map[string]any{"mode": "evict"}},
	{"namespaces", map[string]any{"namespaces": []any{"shop", "cart"}, "slack": map[string]any{"channel": "C0123456789"}}},
	{"monitoring", map[string]any{
		"metrics": map[string]any{
			"podMonitor":     map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}},
			"serviceMonitor": map[string]any{"enabled": true, "interval": "1m"},
		},
		"prometheusRule":   map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}},
		"grafanaDashboard": map[string]any{"enabled": true, "annotations": map[string]any{"grafana_folder": "chaos"}},
		"networkPolicy": map[string]any{
			"enabled":        true,
			"metricsFrom":    []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}}}},
			"apiServerCIDRs": []any{"10.0.0.1/32"},
		},
		"slack":        map[string]any{"channel": "C0123456789"},
		"alertmanager": map[string]any{"url": "http://alertmanager-operated.monitoring:9093"},
	}},
	{"no server", map[string]any{"httpAddr": "", "resources": map[string]any{"limits": map[string]any{"memory": "1Gi"}}}},
	{"no election", map[string]any{"leaderElection": false, "replicas": 1}},
	{"webhook", map[string]any{"clusterName": "prod-eu", "networkPolicy": map[string]any{"enabled": true},
		"webhook": map[string]any{"url": "https://hooks.example.com:8443/macaque", "authSecret": "macaque-webhook"}}},
}

// testRelease is the release the tests render for.
var testRelease = Release{Name: "macaque", Namespace: "chaos"}

// loadChart loads the chart or fails the test.
func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := Load(ChartDir)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// render renders the chart for testRelease or fails the test.
func render(t *testing.T, ch *chart.Chart, values map[string]any) string {
	t.Helper()
	out, err := Render(ch, values, testRelease)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// object is the part of a rendered object the tests read first.
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	raw string
}

// objectsOf decodes every document of a render.
func objectsOf(t *testing.T, manifest string) []object {
	t.Helper()
	var objs []object
	for doc := range strings.SplitSeq(manifest, "\n---\n") {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("decode %q: %v", doc, err)
		}
		if o.Kind == "" {
			continue // a comment, or the header
		}
		o.raw = doc
		objs = append(objs, o)
	}
	return objs
}

// ofKind returns the objects of kind in objs.
func ofKind(objs []object, kind string) []object {
	var found []object
	for _, o := range objs {
		if o.Kind == kind {
			found = append(found, o)
		}
	}
	return found
}

// decode decodes the object o into out, or fails the test.
func decode(t *testing.T, o object, out any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(o.raw), out); err != nil {
		t.Fatalf("decode the %s %s: %v", o.Kind, o.Metadata.Name, err)
	}
}

// only returns the one object of kind in objs, decoded into out.
func only(t *testing.T, objs []object, kind string, out any) {
	t.Helper()
	found := ofKind(objs, kind)
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(found), kind)
	}
	decode(t, found[0], out)
}

// repoFile reads a file by its path from the repository's root.
func repoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
