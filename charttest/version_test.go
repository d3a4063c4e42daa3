package charttest

import (
	"regexp"
	"strings"
	"testing"
)

// TestChartVersion keeps the chart at the Makefile's VERSION: the chart's version and
// appVersion, its default image (the Makefile's IMAGE, what the release pushes), and the image
// its Artifact Hub annotation lists. The release workflow packages the chart of the tag.
func TestChartVersion(t *testing.T) {
	ch := loadChart(t)
	makefile := repoFile(t, "Makefile")
	version := regexp.MustCompile(`(?m)^VERSION\s*\?=\s*(\S+)\s*$`).FindStringSubmatch(makefile)
	image := regexp.MustCompile(`(?m)^IMAGE\s*\?=\s*(\S+)\s*$`).FindStringSubmatch(makefile)
	if version == nil || image == nil {
		t.Fatal("Makefile: no VERSION ?= or IMAGE ?= line")
	}
	wantImage := strings.ReplaceAll(image[1], "$(VERSION)", version[1])
	if ch.Metadata.Version != version[1] || ch.Metadata.AppVersion != version[1] {
		t.Errorf("Chart.yaml: version %s, appVersion %s, want the Makefile's VERSION %s for both", ch.Metadata.Version, ch.Metadata.AppVersion, version[1])
	}
	if got := envImage(t, render(t, ch, nil)); got != wantImage {
		t.Errorf("the chart's default image is %s, want the Makefile's IMAGE %s", got, wantImage)
	}
	if annotation := ch.Metadata.Annotations["artifacthub.io/images"]; !strings.Contains(annotation, "image: "+wantImage+"\n") {
		t.Errorf("Chart.yaml's artifacthub.io/images lists %q, want image: %s", annotation, wantImage)
	}
}

// envImage is the image of the one container in a render.
func envImage(t *testing.T, manifest string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*image: (\S+)$`).FindAllStringSubmatch(manifest, -1)
	if len(m) != 1 {
		t.Fatalf("%d image: lines in the render, want 1", len(m))
	}
	return m[0][1]
}

// TestNotesSayHowToSeeTheFirstKill checks what helm install prints after installing: where
// macaque kills, and the commands that show its start and its first kill, for this release.
func TestNotesSayHowToSeeTheFirstKill(t *testing.T) {
	ch := loadChart(t)
	cases := []struct {
		name   string
		values map[string]any
		rel    Release
		want   []string
		not    []string // must not say
	}{
		{"default", nil, Release{Name: "macaque", Namespace: "shop"}, []string{
			"It kills in: shop (its own namespace)",
			"kubectl -n shop logs -l app.kubernetes.io/instance=macaque -f --prefix",
			"kubectl -n shop get lease macaque-leader",
			"kubectl get events -A --field-selector reason=ChaosKill",
			"Only pods matching: chaos.macaque.dev/enabled=true (label a workload's pod template to opt it in)",
			"kubectl -n shop annotate deploy macaque chaos.macaque.dev/paused=true",
		}, nil},
		{"cluster, another release name, Slack", map[string]any{"scope": "cluster", "selector": "", "slack": map[string]any{"channel": "C0123456789"}},
			Release{Name: "chaos", Namespace: "ops"}, []string{
				"installed as chaos-macaque in ops, with a ClusterRole",
				"It kills in: *",
				"kubectl -n ops logs -l app.kubernetes.io/instance=chaos -f --prefix",
				"kubectl -n ops create secret generic macaque-slack --from-literal=token=xoxb-...",
			}, nil},
		{"no election", map[string]any{"leaderElection": false, "replicas": 1}, Release{Name: "macaque", Namespace: "shop"},
			[]string{"kubectl -n shop logs -l app.kubernetes.io/instance=macaque -f --prefix"}, []string{"lease"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			notes, err := Notes(ch, c.values, c.rel)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(notes, w) {
					t.Errorf("NOTES.txt does not say %q:\n%s", w, notes)
				}
			}
			for _, n := range c.not {
				if strings.Contains(notes, n) {
					t.Errorf("NOTES.txt says %q:\n%s", n, notes)
				}
			}
		})
	}
}
