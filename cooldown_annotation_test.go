package main

import (
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/policy"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestCooldownAnnotation: chaos.macaque.dev/cooldown on a workload's top controller overrides
// MACAQUE_COOLDOWN for it, longer or shorter, also when MACAQUE_COOLDOWN is 0; "0" is no
// cooldown for it; a value that does not parse passes its pods over, naming it; on a ReplicaSet
// below a Deployment it is not read. With MACAQUE_COOLDOWN=0, a tick reads the state only for
// an annotated workload, and passes it over when the state cannot be read.
func TestCooldownAnnotation(t *testing.T) {
	ago := func(d time.Duration) string { return tick0.Add(-d).Format(time.RFC3339) }
	tests := []struct {
		name        string
		global      time.Duration
		annotation  string // on Deployment/web; "" for none
		onRS        bool   // on its ReplicaSet instead
		hit         string // web's entry in the state; "" for none
		noState     bool   // the state cannot be read
		want        Outcome
		wantPassed  string // the reason web-1 was passed over
		wantState   string // web's entry after the tick
		wantNoReads bool   // the tick never read the state
	}{
		{name: "longer than MACAQUE_COOLDOWN", global: time.Hour, annotation: "3h", hit: ago(2 * time.Hour), want: OutcomeSkipped,
			wantPassed: "Deployment/web lost a pod 2h0m0s ago: cooling down until 2026-03-29T10:00:00Z (chaos.macaque.dev/cooldown=3h on Deployment/web)",
			wantState:  ago(2 * time.Hour)},
		{name: "shorter than MACAQUE_COOLDOWN, past", global: time.Hour, annotation: "10m", hit: ago(20 * time.Minute), want: OutcomeKilled,
			wantState: "2026-03-29T09:00:00Z 10m0s"},
		{name: "shorter than MACAQUE_COOLDOWN, not yet past", global: time.Hour, annotation: " 10m ", hit: ago(5 * time.Minute), want: OutcomeSkipped,
			wantPassed: "Deployment/web lost a pod 5m0s ago: cooling down until 2026-03-29T09:05:00Z (chaos.macaque.dev/cooldown=10m on Deployment/web)",
			wantState:  ago(5 * time.Minute)},
		{name: "the same as MACAQUE_COOLDOWN is stored as MACAQUE_COOLDOWN's", global: time.Hour, annotation: "1h", want: OutcomeKilled,
			wantState: "2026-03-29T09:00:00Z"},
		{name: "0 is no cooldown, and nothing recorded", global: time.Hour, annotation: "0", hit: ago(time.Minute), want: OutcomeKilled,
			wantState: ago(time.Minute)},
		{name: "a bad value passes the pod over", global: time.Hour, annotation: "2 hours", want: OutcomeSkipped,
			wantPassed: `bad chaos.macaque.dev/cooldown annotation on Deployment/web: "2 hours" is not a duration of whole seconds`},
		{name: "a negative value is bad", global: time.Hour, annotation: "-1h", want: OutcomeSkipped,
			wantPassed: `bad chaos.macaque.dev/cooldown annotation on Deployment/web: "-1h"`},
		{name: "a fraction of a second is bad", global: time.Hour, annotation: "1.5s", want: OutcomeSkipped,
			wantPassed: `bad chaos.macaque.dev/cooldown annotation on Deployment/web: "1.5s"`},
		{name: "a bad value with MACAQUE_COOLDOWN=0", annotation: "soon", want: OutcomeSkipped, wantNoReads: true,
			wantPassed: `bad chaos.macaque.dev/cooldown annotation on Deployment/web: "soon"`},
		{name: "on the ReplicaSet, not the workload: MACAQUE_COOLDOWN holds", global: time.Hour, annotation: "0", onRS: true, hit: ago(time.Minute),
			want: OutcomeSkipped, wantPassed: "Deployment/web lost a pod 1m0s ago: cooling down until 2026-03-29T09:59:00Z (MACAQUE_COOLDOWN=1h0m0s)", wantState: ago(time.Minute)},
		{name: "with MACAQUE_COOLDOWN=0, cooling down", annotation: "1h", hit: ago(10 * time.Minute), want: OutcomeSkipped,
			wantPassed: "Deployment/web lost a pod 10m0s ago: cooling down until 2026-03-29T09:50:00Z (chaos.macaque.dev/cooldown=1h on Deployment/web)",
			wantState:  ago(10 * time.Minute)},
		{name: "with MACAQUE_COOLDOWN=0, recorded with its period", annotation: "1h", want: OutcomeKilled,
			wantState: "2026-03-29T09:00:00Z 1h0m0s"},
		{name: "with MACAQUE_COOLDOWN=0 and no annotation: the state is not read", want: OutcomeKilled, wantNoReads: true},
		{name: "with MACAQUE_COOLDOWN=0 and no annotation, no state: killed", noState: true, want: OutcomeKilled, wantNoReads: true},
		{name: "with MACAQUE_COOLDOWN=0, annotated, no state: passed over", annotation: "1h", noState: true, want: OutcomeSkipped,
			wantPassed: "chaos.macaque.dev/cooldown=1h on Deployment/web cannot be honoured: read the cooldown state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := map[string]string{}
			if tt.hit != "" {
				data["shop.Deployment.web"] = tt.hit
			}
			srv, k := cooldownWorldOf(t, data, "web")
			annotate := func(m *metav1.ObjectMeta) {
				if tt.annotation != "" {
					m.Annotations = map[string]string{policy.CooldownAnnotation: tt.annotation}
				}
			}
			if tt.onRS {
				d := ctrl("apps/v1", "Deployment", "web")
				srv.AddWorkload(steadyReplicaSet("web-7d9", 1, &d, func(rs *appsv1.ReplicaSet) { annotate(&rs.ObjectMeta) }))
			} else {
				srv.AddWorkload(steadyDeployment("web", 1, func(d *appsv1.Deployment) { annotate(&d.ObjectMeta) }))
			}
			k.cooldown = policy.NewCooldown(k.api.(*kube.Client), testNS, tt.global)
			if tt.noState {
				srv.Fail = func(r fakeapi.Request) *metav1.Status {
					if strings.Contains(r.Path, "/configmaps/") {
						return fakeapi.InternalError("etcdserver: leader changed")
					}
					return nil
				}
			}
			r := killOnce(t, k)
			if r.Outcome != tt.want {
				t.Fatalf("%s (%v), passed %q; want %s", r.Outcome, r.Err, r.Passed, tt.want)
			}
			if tt.wantPassed != "" {
				assertPassed(t, r.Passed, []string{"shop/web-1: " + tt.wantPassed})
				if len(r.blamed) != 1 || r.blamed[0].workload.Name != "web" {
					t.Errorf("blamed %+v, want Deployment/web (a skipped tick's Event goes on it)", r.blamed)
				}
			}
			if got := srv.ConfigMap(testNS, policy.CooldownConfigMap).Data["shop.Deployment.web"]; !tt.noState && got != tt.wantState {
				t.Errorf("web's entry %q, want %q", got, tt.wantState)
			}
			if reads := configMapRequests(srv); tt.wantNoReads && reads > 0 {
				t.Errorf("%d requests for the state, want none", reads)
			}
		})
	}
}

// configMapRequests counts the requests srv received for a ConfigMap.
func configMapRequests(srv *fakeapi.Server) int {
	n := 0
	for _, r := range srv.Requests() {
		if strings.Contains(r.Path, "/configmaps/") {
			n++
		}
	}
	return n
}
