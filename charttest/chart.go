// Package charttest renders macaque's Helm chart (charts/macaque) with Helm's own Go packages, as
// `helm template` and `helm install` do, for the chart's tests and for make manifests: the plain
// manifests macaque.yml and macaque-cluster.yml are renders of the chart, so that the chart is
// the one source of what macaque is deployed with.
package charttest

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
)

// ChartDir is the chart, from this module's folder.
const ChartDir = "../charts/macaque"

// Release is what a render knows of its release.
type Release struct {
	Name string
	// Namespace is the release's; empty renders objects without one, for kubectl apply -n.
	Namespace string
	// Service is what the objects' app.kubernetes.io/managed-by names; empty is Helm.
	Service string
}

// Load reads the chart from dir as helm does (symbolic links followed: files/ links to deploy/).
func Load(dir string) (*chart.Chart, error) {
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	return ch, nil
}

// Render renders ch with vals (over its values.yaml, checked against its schema) for rel, and
// returns every object, one "---" document each, in Helm's install order, as `helm template`
// prints them but for its "# Source:" lines. The comments of the templates are kept.
func Render(ch *chart.Chart, vals map[string]any, rel Release) (string, error) {
	top, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: rel.Name, Namespace: rel.Namespace, IsInstall: true, Revision: 1}, nil)
	if err != nil {
		return "", fmt.Errorf("values: %w", err)
	}
	if rel.Service != "" {
		release, ok := top["Release"].(map[string]any)
		if !ok {
			return "", errors.New("helm's render values hold no Release table")
		}
		release["Service"] = rel.Service
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		return "", fmt.Errorf("render: %w", err)
	}
	return objects(files)
}

// Notes renders the chart's NOTES.txt for vals and rel.
func Notes(ch *chart.Chart, vals map[string]any, rel Release) (string, error) {
	top, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: rel.Name, Namespace: rel.Namespace, IsInstall: true, Revision: 1}, nil)
	if err != nil {
		return "", fmt.Errorf("values: %w", err)
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		return "", fmt.Errorf("render: %w", err)
	}
	return files[ch.Name()+"/templates/NOTES.txt"], nil
}

// objects joins the rendered templates' objects in Helm's install order (kind, then name): the
// order `helm template` prints and `helm install` applies.
func objects(files map[string]string) (string, error) {
	manifests := map[string]string{}
	for name, content := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		manifests[name] = content
	}
	hooks, sorted, err := releaseutil.SortManifests(maps.Clone(manifests), nil, releaseutil.InstallOrder)
	if err != nil {
		return "", fmt.Errorf("sort the rendered objects: %w", err)
	}
	if len(hooks) > 0 {
		return "", fmt.Errorf("the chart renders %d hooks: macaque's chart has none, and the plain manifests could not hold them", len(hooks))
	}
	var b strings.Builder
	for _, m := range sorted {
		b.WriteString("---\n")
		b.WriteString(strings.TrimSpace(m.Content))
		b.WriteString("\n")
	}
	return b.String(), nil
}
