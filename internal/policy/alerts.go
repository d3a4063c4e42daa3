package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/macaque-chaos/macaque/internal/alerts"
)

// The alert gate (MACAQUE_ALERTMANAGER_URL): at each tick, before anything is listed, the alerts
// firing in Alertmanager that MACAQUE_BLOCKING_ALERTS selects hold the kills. An alert with a
// namespace label holds that namespace's pods, one without holds the whole tick, and a tick
// that cannot learn which alerts fire kills nothing.

// AlertSource says which blocking alerts fire now; *alerts.Client is one.
type AlertSource interface {
	Firing(ctx context.Context) ([]alerts.Alert, error)
}

// run hands it the one client; this keeps the two in step.
var _ AlertSource = (*alerts.Client)(nil)

// ErrAlertsUnread is a tick that could not learn from Alertmanager which alerts fire: it kills
// nothing, since an incident it cannot see may be going on.
var ErrAlertsUnread = errors.New("nothing is killed while Alertmanager cannot say which alerts fire")

// AlertGate asks its source once per tick. A nil *AlertGate holds nothing.
type AlertGate struct {
	Source AlertSource
}

// AlertHold is what the alerts firing at one tick hold.
type AlertHold struct {
	whole []alerts.Alert            // without a namespace label: every namespace
	byNS  map[string][]alerts.Alert // by their namespace label
}

// ForTick asks which blocking alerts fire; nil for a nil gate.
func (g *AlertGate) ForTick(ctx context.Context) (*AlertHold, error) {
	if g == nil {
		return nil, nil
	}
	firing, err := g.Source.Firing(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAlertsUnread, err)
	}
	h := &AlertHold{byNS: map[string][]alerts.Alert{}}
	for _, a := range firing {
		if a.Namespace == "" {
			h.whole = append(h.whole, a)
		} else {
			h.byNS[a.Namespace] = append(h.byNS[a.Namespace], a)
		}
	}
	return h, nil
}

// For is what h holds of a scope: the named namespaces, or every namespace (all). whole says
// why the whole tick is held: an alert with no namespace label fires, or one fires in each
// namespace named (so nothing need be listed); "" when it is not. Otherwise rule passes over
// the pods of the namespaces alerts hold, nil when none in scope is.
func (h *AlertHold) For(namespaces []string, all bool) (whole string, rule Rule) {
	if h == nil {
		return "", nil
	}
	if len(h.whole) > 0 {
		return fmt.Sprintf("%s firing in Alertmanager, with no namespace label: it holds every namespace", named(h.whole)), nil
	}
	held := slices.DeleteFunc(slices.Clone(namespaces), func(ns string) bool { return len(h.byNS[ns]) == 0 })
	if !all && len(namespaces) > 0 && len(held) == len(namespaces) {
		why := make([]string, 0, len(held))
		for _, ns := range held {
			why = append(why, named(h.byNS[ns]))
		}
		return strings.Join(why, "; ") + " firing in Alertmanager: it holds every namespace in scope", nil
	}
	if (all && len(h.byNS) == 0) || (!all && len(held) == 0) {
		return "", nil
	}
	return "", alertHeld{byNS: h.byNS}
}

// maxNamed bounds how many alerts a reason names.
const maxNamed = 3

// named names alerts, at most maxNamed of them: "alert A (namespace shop)", "alerts A, B and 2 more".
func named(as []alerts.Alert) string {
	names := make([]string, 0, min(len(as), maxNamed))
	for _, a := range as[:min(len(as), maxNamed)] {
		names = append(names, a.String())
	}
	text := strings.Join(names, ", ")
	if more := len(as) - maxNamed; more > 0 {
		text += fmt.Sprintf(" and %d more", more)
	}
	if len(as) == 1 {
		return "alert " + text
	}
	return "alerts " + text
}

// alertHeld is the gate's rule for one tick: it passes over the pods of the namespaces alerts hold.
type alertHeld struct {
	byNS map[string][]alerts.Alert
}

// Check implements Rule.
func (r alertHeld) Check(_ context.Context, p *Pick) (*Pass, error) {
	if as := r.byNS[p.Pod.Namespace]; len(as) > 0 {
		return &Pass{Why: named(as) + " firing in Alertmanager"}, nil
	}
	return nil, nil
}
