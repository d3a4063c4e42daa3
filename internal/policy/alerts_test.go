package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/macaque-chaos/macaque/internal/alerts"
	"github.com/macaque-chaos/macaque/internal/kube"
)

// firing is an AlertSource that says these alerts fire, or fails with err.
type firing struct {
	alerts []alerts.Alert
	err    error
}

func (f firing) Firing(context.Context) ([]alerts.Alert, error) { return f.alerts, f.err }

// podIn is a pick of a pod in namespace.
func podIn(namespace string) *Pick {
	return &Pick{Name: namespace + "/web-1", Pod: kube.Pod{Namespace: namespace, Running: true}}
}

func TestAlertHold(t *testing.T) {
	errorRate := alerts.Alert{Name: "HighErrorRate", Namespace: "shop"}
	latency := alerts.Alert{Name: "HighLatency", Namespace: "shop"}
	apiDown := alerts.Alert{Name: "KubeAPIDown"}
	cartDown := alerts.Alert{Name: "CartDown", Namespace: "cart"}
	tests := []struct {
		name       string
		firing     []alerts.Alert
		namespaces []string
		all        bool
		whole      string            // why the whole tick is held; "" for none
		passed     map[string]string // namespace: the Why of a pick there ("" for let through); nil: no rule
	}{
		{name: "nothing firing", namespaces: []string{"shop"}},
		{name: "an alert without a namespace holds every namespace", firing: []alerts.Alert{apiDown, errorRate}, namespaces: []string{"shop", "cart"},
			whole: "alert KubeAPIDown firing in Alertmanager, with no namespace label: it holds every namespace"},
		{name: "an alert without a namespace holds *", firing: []alerts.Alert{apiDown}, all: true,
			whole: "alert KubeAPIDown firing in Alertmanager, with no namespace label"},
		{name: "the one namespace in scope", firing: []alerts.Alert{errorRate, latency}, namespaces: []string{"shop"},
			whole: "alerts HighErrorRate (namespace shop), HighLatency (namespace shop) firing in Alertmanager: it holds every namespace in scope"},
		{name: "every namespace in scope", firing: []alerts.Alert{cartDown, errorRate}, namespaces: []string{"shop", "cart"},
			whole: "alert HighErrorRate (namespace shop); alert CartDown (namespace cart) firing in Alertmanager: it holds every namespace in scope"},
		{name: "one namespace of two", firing: []alerts.Alert{errorRate}, namespaces: []string{"shop", "cart"},
			passed: map[string]string{"shop": "alert HighErrorRate (namespace shop) firing in Alertmanager", "cart": ""}},
		{name: "a namespace out of scope", firing: []alerts.Alert{cartDown}, namespaces: []string{"shop"}},
		{name: "a namespace under *", firing: []alerts.Alert{cartDown}, all: true,
			passed: map[string]string{"cart": "alert CartDown (namespace cart) firing in Alertmanager", "shop": ""}},
		// * is every namespace, whatever else is named: one namespace's alert holds only it.
		{name: "* with its one namespace named", firing: []alerts.Alert{cartDown}, namespaces: []string{"cart"}, all: true,
			passed: map[string]string{"cart": "alert CartDown (namespace cart) firing in Alertmanager", "shop": ""}},
		{name: "no namespace in scope", firing: []alerts.Alert{cartDown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &AlertGate{Source: firing{alerts: tt.firing}}
			h, err := g.ForTick(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			whole, rule := h.For(tt.namespaces, tt.all)
			if (whole == "") != (tt.whole == "") || !strings.HasPrefix(whole, tt.whole) {
				t.Errorf("whole tick held for %q, want %q", whole, tt.whole)
			}
			if (rule == nil) != (tt.passed == nil) {
				t.Fatalf("rule %v, want one: %v", rule, tt.passed != nil)
			}
			for ns, want := range tt.passed {
				pass, err := rule.Check(t.Context(), podIn(ns))
				if err != nil || (pass == nil) != (want == "") || (pass != nil && (pass.Why != want || pass.Gone || pass.Blame != nil)) {
					t.Errorf("a pick in %s: %+v, %v; want passed over for %q", ns, pass, err, want)
				}
			}
		})
	}
}

func TestAlertHoldNamesAFew(t *testing.T) {
	for _, tt := range []struct {
		name  string
		count int
		want  string
	}{
		{"as many as it names", 3, "alerts A0 (namespace shop), A1 (namespace shop), A2 (namespace shop) firing in Alertmanager"},
		{"more", 5, "alerts A0 (namespace shop), A1 (namespace shop), A2 (namespace shop) and 2 more firing in Alertmanager"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var many []alerts.Alert
			for i := range tt.count {
				many = append(many, alerts.Alert{Name: fmt.Sprintf("A%d", i), Namespace: "shop"})
			}
			h, _ := (&AlertGate{Source: firing{alerts: many}}).ForTick(t.Context())
			_, rule := h.For([]string{"shop", "cart"}, false)
			pass, _ := rule.Check(t.Context(), podIn("shop"))
			if pass == nil || pass.Why != tt.want {
				t.Errorf("passed %+v, want %q", pass, tt.want)
			}
		})
	}
}

func TestAlertGateFailsClosed(t *testing.T) {
	refused := errors.New("ask http://am:9093 for its alerts: HTTP 500 Internal Server Error")
	g := &AlertGate{Source: firing{err: refused}}
	h, err := g.ForTick(t.Context())
	if h != nil || !errors.Is(err, ErrAlertsUnread) || !errors.Is(err, refused) {
		t.Errorf("ForTick = %v, %v; want ErrAlertsUnread wrapping why", h, err)
	}
	var off *AlertGate
	h, err = off.ForTick(t.Context())
	if h != nil || err != nil {
		t.Fatalf("no gate: %v, %v; want nothing held", h, err)
	}
	if whole, rule := h.For([]string{"shop"}, false); whole != "" || rule != nil {
		t.Errorf("no gate holds %q, %v; want nothing", whole, rule)
	}
}
