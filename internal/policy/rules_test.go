package policy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/kube"
)

// ruleFunc is a Rule made of a function, for tests that need a rule to say something.
type ruleFunc func(p *Pick) (*Pass, error)

func (f ruleFunc) Check(_ context.Context, p *Pick) (*Pass, error) { return f(p) }

// TestRulesStopAtTheFirstPass: the first rule that passes a pick over, or fails, answers for the
// list, and no later rule is asked.
func TestRulesStopAtTheFirstPass(t *testing.T) {
	failed := errors.New("read ReplicaSet web-7d9: etcdserver: leader changed")
	let := ruleFunc(func(*Pick) (*Pass, error) { return nil, nil })
	pass := func(why string) Rule { return ruleFunc(func(*Pick) (*Pass, error) { return &Pass{Why: why}, nil }) }
	fail := ruleFunc(func(*Pick) (*Pass, error) { return nil, failed })
	tests := []struct {
		name    string
		rules   Rules
		wantWhy string
		wantErr error
	}{
		{name: "none", rules: nil},
		{name: "all let it through", rules: Rules{let, let}},
		{name: "the first that passes it over", rules: Rules{let, pass("first"), pass("second"), fail}, wantWhy: "first"},
		{name: "a failure before any pass", rules: Rules{let, fail, pass("later")}, wantErr: failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.rules.Check(t.Context(), &Pick{Name: "shop/web-1"})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != nil {
				if why := got.Why; why != tt.wantWhy {
					t.Errorf("why = %q, want %q", why, tt.wantWhy)
				}
			} else if tt.wantWhy != "" {
				t.Errorf("let through, want passed over: %q", tt.wantWhy)
			}
		})
	}
}

// TestPodRules: the rules that read only the pod pass it over for its own state, and say whether
// it is gone (not found) or protected (skipped).
func TestPodRules(t *testing.T) {
	running := kube.Pod{Namespace: testNS, Running: true, Created: tick0.Add(-time.Hour)}
	tests := []struct {
		name     string
		rule     Rule
		edit     func(*kube.Pod)
		wantWhy  string
		wantGone bool
	}{
		{name: "running", rule: StillRunning{}},
		{name: "no longer running", rule: StillRunning{}, edit: func(p *kube.Pod) { p.Running = false }, wantWhy: "no longer running", wantGone: true},
		{name: "terminating", rule: StillRunning{}, edit: func(p *kube.Pod) { p.Terminating = true }, wantWhy: "no longer running", wantGone: true},
		{name: "old enough", rule: OldEnough{MinAge: time.Hour, Now: func() time.Time { return tick0 }}},
		{name: "too young", rule: OldEnough{MinAge: 2 * time.Hour, Now: func() time.Time { return tick0 }},
			wantWhy: "1h old, younger than MACAQUE_MIN_POD_AGE (2h)"},
		{name: "not opted out", rule: OptedOut{}, edit: func(p *kube.Pod) { p.Annotations = map[string]string{ExcludeAnnotation: "false"} }},
		{name: "opted out", rule: OptedOut{}, edit: func(p *kube.Pod) { p.Annotations = map[string]string{ExcludeAnnotation: "true"} },
			wantWhy: "excluded by chaos.macaque.dev/exclude on the pod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := running
			if tt.edit != nil {
				tt.edit(&pod)
			}
			got, err := tt.rule.Check(t.Context(), &Pick{Name: "shop/web-1", Pod: pod})
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				if tt.wantWhy != "" {
					t.Errorf("let through, want passed over: %q", tt.wantWhy)
				}
				return
			}
			if got.Why != tt.wantWhy || got.Gone != tt.wantGone || got.Blame != nil {
				t.Errorf("pass = %+v, want why %q, gone %v, no blame", got, tt.wantWhy, tt.wantGone)
			}
		})
	}
}

// TestOncePerTick: a workload that lost a pod this tick, by its top controller when the guard
// read one, else by the pod's own controller, is passed over; a bare pod never is.
func TestOncePerTick(t *testing.T) {
	deploy := &kube.OwnerRef{Kind: "Deployment", Name: "web", UID: "d-1"}
	rsA := &kube.OwnerRef{Kind: "ReplicaSet", Name: "web-a", UID: "rs-a"}
	rsB := &kube.OwnerRef{Kind: "ReplicaSet", Name: "web-b", UID: "rs-b"}
	once := NewOncePerTick()
	once.Killed(&Pick{Pod: kube.Pod{Controller: rsA}, Top: deploy})
	once.Killed(&Pick{Pod: kube.Pod{}}) // a bare pod: nothing to remember
	tests := []struct {
		name    string
		pick    Pick
		wantWhy string
	}{
		{name: "another ReplicaSet of the same Deployment", pick: Pick{Pod: kube.Pod{Controller: rsB}, Top: deploy},
			wantWhy: "Deployment/web already lost a pod this tick"},
		{name: "no top read: keyed on its own controller", pick: Pick{Pod: kube.Pod{Controller: deploy}}, wantWhy: "Deployment/web already lost a pod this tick"},
		{name: "another workload", pick: Pick{Pod: kube.Pod{Controller: rsB}}},
		{name: "a bare pod", pick: Pick{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := once.Check(t.Context(), &tt.pick)
			if err != nil {
				t.Fatal(err)
			}
			if why := ""; got != nil || tt.wantWhy != "" {
				if got != nil {
					why = got.Why
				}
				if why != tt.wantWhy {
					t.Errorf("why = %q, want %q", why, tt.wantWhy)
				}
			}
		})
	}
}
