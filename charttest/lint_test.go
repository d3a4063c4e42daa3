package charttest

import (
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
)

// TestLintStrict runs helm's linter (what helm lint --strict runs) on the chart with each value
// set: it fails on any warning or error, as --strict does, and logs the informational messages.
func TestLintStrict(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			for _, problem := range lintProblems(t, ChartDir, vs.values) {
				t.Error(problem)
			}
		})
	}
}

// lintProblems lints the chart in dir with values and returns the messages --strict fails on.
func lintProblems(t *testing.T, dir string, values map[string]any) []string {
	t.Helper()
	linter := lint.RunAll(dir, values, testRelease.Namespace)
	var problems []string
	for _, m := range linter.Messages {
		if m.Severity >= support.WarningSev {
			problems = append(problems, m.Error())
			continue
		}
		t.Logf("lint: %s", m.Error())
	}
	return problems
}
