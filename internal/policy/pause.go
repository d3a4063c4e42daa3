package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/macaque-chaos/macaque/internal/kube"
)

// The kill switch: the annotation chaos.macaque.dev/paused on macaque's own Deployment stops
// every kill from the next tick on, without a redeploy, and lets them resume when it is removed
// or its time has passed.

// PausedAnnotation is the kill switch's annotation on macaque's own Deployment.
const PausedAnnotation = "chaos.macaque.dev/paused"

// pauseState is what one value of the annotation means at one instant.
type pauseState struct {
	paused bool
	until  time.Time // zero while paused: until the annotation is removed
	bad    bool      // a value macaque does not understand, which pauses it to be safe
}

// readPause reads the annotation's value (present says whether it is set at all) at now:
// "true" pauses until it is removed, an RFC 3339 time pauses until then, "false" or no
// annotation does not pause. Any other value pauses too: a switch someone reached for but
// mistyped (True, yes, a date without a time) must not let kills go on.
func readPause(value string, present bool, now time.Time) pauseState {
	if !present || value == "false" {
		return pauseState{}
	}
	if value == "true" {
		return pauseState{paused: true}
	}
	until, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return pauseState{paused: true, bad: true}
	}
	return pauseState{paused: now.Before(until), until: until}
}

// WorkloadGetter reads one controller: all the pause switch needs at each tick.
type WorkloadGetter interface {
	GetWorkload(ctx context.Context, namespace string, k kube.WorkloadKind, name string) (kube.Workload, error)
}

// PauseSwitch reads the kill switch at each tick. It remembers what Slack was last told, so
// that Slack hears of a pause once when it starts (or its terms change) and once when it ends,
// not at every tick. Only the killer goroutine uses it.
type PauseSwitch struct {
	api        WorkloadGetter
	namespace  string // macaque's own namespace
	deployment string // macaque's own Deployment
	now        func() time.Time
	log        *slog.Logger
	announced  string // the terms of the pause Slack was last told of; empty when not paused
	lastValue  string // the annotation's value at the last paused tick, to say how the pause ended
}

// NewPauseSwitch is the switch on deployment, macaque's own, in namespace.
func NewPauseSwitch(api WorkloadGetter, namespace, deployment string, now func() time.Time, log *slog.Logger) *PauseSwitch {
	return &PauseSwitch{api: api, namespace: namespace, deployment: deployment, now: now, log: log}
}

// TickPause is the pause switch's answer for one tick.
type TickPause struct {
	Paused   bool
	Announce bool   // the pause started or changed its terms at this tick: Slack must hear of it
	Terms    string // while paused: until when, and how to lift it
	Resumed  string // on the first tick after a pause: how it ended
}

// ErrPauseUnread is a tick whose pause switch could not be read: it kills nothing, since the
// switch may be on.
var ErrPauseUnread = errors.New("the pause switch could not be read, so nothing was killed")

// Check reads the switch for one tick. A nil *pauseSwitch (macaque is not run by a
// Deployment) never pauses. An error means the Deployment could not be read; the caller must
// then kill nothing. What Slack was told is kept across such a tick.
func (p *PauseSwitch) Check(ctx context.Context) (TickPause, error) {
	if p == nil {
		return TickPause{}, nil
	}
	w, err := p.api.GetWorkload(ctx, p.namespace, kube.KindDeployment, p.deployment)
	if err != nil {
		return TickPause{}, fmt.Errorf("%w: get deployment %q in %q: %w", ErrPauseUnread, p.deployment, p.namespace, err)
	}
	value, present := w.Metadata.Annotations[PausedAnnotation]
	st := readPause(value, present, p.now())
	if !st.paused {
		if p.announced == "" {
			return TickPause{}, nil
		}
		out := TickPause{Resumed: p.howEnded(value, present)}
		p.announced, p.lastValue = "", ""
		return out, nil
	}
	terms := p.terms(st, value)
	out := TickPause{Paused: true, Terms: terms, Announce: terms != p.announced}
	if out.Announce && st.bad {
		p.log.Warn("the pause switch holds a value macaque does not understand: paused to be safe", "annotation", PausedAnnotation,
			"value", value, "deployment", p.namespace+"/"+p.deployment, "want", "true, false or an RFC 3339 time")
	}
	p.announced, p.lastValue = terms, value
	return out, nil
}

// terms says, for a report, until when macaque is paused and how to lift the pause.
func (p *PauseSwitch) terms(st pauseState, value string) string {
	lift := fmt.Sprintf("lift it with `kubectl -n %s annotate deploy %s %s-`", p.namespace, p.deployment, PausedAnnotation)
	if st.bad {
		return fmt.Sprintf("paused to be safe: the annotation %s on deployment %s/%s is %q, which is neither true, false nor an RFC 3339 time; %s",
			PausedAnnotation, p.namespace, p.deployment, value, lift)
	}
	if st.until.IsZero() {
		return fmt.Sprintf("paused until the annotation %s is removed from deployment %s/%s; %s", PausedAnnotation, p.namespace, p.deployment, lift)
	}
	return fmt.Sprintf("paused until %s by the annotation %s on deployment %s/%s; %s", value, PausedAnnotation, p.namespace, p.deployment, lift)
}

// howEnded says why the pause is over, for the first report after it.
func (p *PauseSwitch) howEnded(value string, present bool) string {
	if !present {
		return fmt.Sprintf("the pause is over: the annotation %s was removed; kills resume", PausedAnnotation)
	}
	if value == p.lastValue {
		return fmt.Sprintf("the pause until %s is over; kills resume", value)
	}
	return fmt.Sprintf("the pause is over: the annotation %s is now %q; kills resume", PausedAnnotation, value)
}

// Describe is what the start line says of the switch; why is the reason there is none.
func (p *PauseSwitch) Describe(why string) string {
	if p == nil {
		return "unavailable: " + why
	}
	return "annotation " + PausedAnnotation + " on deployment " + p.namespace + "/" + p.deployment
}
