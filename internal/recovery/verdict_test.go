package recovery

import (
	"testing"
	"time"
)

// TestSummaryOfAVerdictWithoutMilestones: a verdict that reached no stage says who lost what and
// then why, with no empty list of milestones between them, and keeps its head whatever follows.
func TestSummaryOfAVerdictWithoutMilestones(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    Verdict
		want string
	}{
		{"unknown, saying why", Verdict{Workload: "Deployment/web", Pod: "web-7d9f-a", Status: Unknown, Why: "macaque stopped"},
			"web lost web-7d9f-a; macaque stopped"},
		{"not recovered, no replacement", Verdict{Workload: "Deployment/web", Pod: "web-7d9f-a", Status: NotRecovered,
			Why: "web: 2/3 ready after 5m0s; no replacement created"},
			"web lost web-7d9f-a; web: 2/3 ready after 5m0s; no replacement created"},
		{"unknown, nothing said", Verdict{Workload: "Deployment/web", Pod: "web-7d9f-a", Status: Unknown}, "web lost web-7d9f-a"},
		{"a milestone, then why", Verdict{Workload: "Deployment/web", Pod: "web-7d9f-a", Status: NotRecovered, Replacement: "web-7d9f-x",
			Created: Milestone{300 * time.Millisecond, true}, Why: "web-7d9f-x is Pending"},
			"web lost web-7d9f-a: replacement web-7d9f-x created in 0.3 s; web-7d9f-x is Pending"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.v.Summary(); got != tt.want {
				t.Errorf("summary %q\nwant    %q", got, tt.want)
			}
		})
	}
}
