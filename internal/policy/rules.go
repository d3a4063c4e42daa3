package policy

import (
	"context"
	"fmt"
	"time"

	"github.com/macaque-chaos/macaque/internal/kube"

	"k8s.io/apimachinery/pkg/types"
)

// Pick is a pod picked for a kill, as read back just before it, with what the rules learn of it
// on the way: the workload it belongs to, and what its report must say if it dies.
type Pick struct {
	Name string // "namespace/name", as a report names it
	Pod  kube.Pod
	// Top is the pick's highest controller as the guard read it (the Deployment above its
	// ReplicaSet, a listed owner kind...), nil for a bare pod or before the guard: the workload
	// the cooldown is keyed on and a kill's Event goes on.
	Top *kube.OwnerRef
	// Note is a fact the report of the pick's kill must carry (a bare pod, an unchecked owner).
	Note string
	// TopAnnotations are Top's annotations as the guard read them, nil when it could not (an
	// owner of a kind it cannot read): the cooldown reads chaos.macaque.dev/cooldown there.
	TopAnnotations map[string]string
	// Cooldown is the period the cooldown rule found for the pick's workload, which its kill
	// records: MACAQUE_COOLDOWN's or its annotation's; 0 for none.
	Cooldown time.Duration
}

// Workload is the workload p belongs to: its top controller as the guard read it, else its own
// controller; nil for a bare pod. Two ReplicaSets of one Deployment (mid-rollout) or of one
// Rollout (stable and canary) are one workload.
func (p *Pick) Workload() *kube.OwnerRef {
	if p.Top != nil {
		return p.Top
	}
	return p.Pod.Controller
}

// Pass is a rule's reason to pass a pick over.
type Pass struct {
	Why string // as the report lists it after the pick's name
	// Blame is the workload whose annotation or state is Why, nil when it is the pod itself or
	// a workload that is gone: a skipped tick's Event goes on it.
	Blame *kube.OwnerRef
	// Gone marks a pick that changed since it was listed, which no rule protected: a tick
	// that found only such picks is "not found", not "skipped".
	Gone bool
}

// Rule is one reason a pick may not die now.
type Rule interface {
	// Check says why p must be passed over, or nil when this rule lets it through. It may
	// learn p's Top and Note on the way. An error (an API call that failed, not a refusal)
	// fails the tick.
	Check(ctx context.Context, p *Pick) (*Pass, error)
}

// Rules are a tick's rules in the order they are asked: cheap checks of the pod first, then
// those that read the API server, so that a pick the pod alone rules out costs no call.
type Rules []Rule

// Check asks each rule in turn and returns the first one's reason to pass p over, or nil when
// every rule lets it through.
func (rs Rules) Check(ctx context.Context, p *Pick) (*Pass, error) {
	for _, r := range rs {
		pass, err := r.Check(ctx, p)
		if pass != nil || err != nil {
			return pass, err
		}
	}
	return nil, nil
}

// StillRunning passes over a pick that stopped running or began terminating since it was listed:
// deleting it would test nothing.
type StillRunning struct{}

// Check implements Rule.
func (StillRunning) Check(_ context.Context, p *Pick) (*Pass, error) {
	if !p.Pod.Running || p.Pod.Terminating {
		return &Pass{Why: "no longer running", Gone: true}, nil
	}
	return nil, nil
}

// OldEnough passes over a pod younger than MACAQUE_MIN_POD_AGE: it may still be starting up, and
// killing it tests nothing but the rollout that made it.
type OldEnough struct {
	MinAge time.Duration // 0 is off
	Now    func() time.Time
}

// Check implements Rule.
func (o OldEnough) Check(_ context.Context, p *Pick) (*Pass, error) {
	if why := tooYoung(p.Pod.Created, o.Now(), o.MinAge); why != "" {
		return &Pass{Why: why}, nil
	}
	return nil, nil
}

// OptedOut passes over a pod annotated chaos.macaque.dev/exclude; the guard reads the same
// annotation on every controller above it.
type OptedOut struct{}

// Check implements Rule.
func (OptedOut) Check(_ context.Context, p *Pick) (*Pass, error) {
	if why := excludedBy(p.Pod.Annotations, "the pod"); why != "" {
		return &Pass{Why: why}, nil
	}
	return nil, nil
}

// OncePerTick passes over a pick of a workload that already lost a pod this tick, keyed on the
// top workload as the cooldown is. Its state lasts one tick: the killer makes one per tick and
// tells it of each kill.
type OncePerTick struct {
	hit map[types.UID]bool
}

// NewOncePerTick is the rule for a tick that has killed nothing yet.
func NewOncePerTick() *OncePerTick {
	return &OncePerTick{hit: map[types.UID]bool{}}
}

// Check implements Rule.
func (o *OncePerTick) Check(_ context.Context, p *Pick) (*Pass, error) {
	if w := p.Workload(); w != nil && o.hit[w.UID] {
		return &Pass{Why: w.String() + " already lost a pod this tick"}, nil
	}
	return nil, nil
}

// Killed records that p died this tick.
func (o *OncePerTick) Killed(p *Pick) {
	if w := p.Workload(); w != nil {
		o.hit[w.UID] = true
	}
}

// coolingDown is the cooldown's rule for one tick, over the state read once in the tick.
type coolingDown struct {
	c       *Cooldown
	hits    hits  // nil until read
	loadErr error // why the read failed, once it did
	now     func() time.Time
}

// load reads the state, once a tick: a failed read is not tried again in the same tick.
func (r *coolingDown) load(ctx context.Context) error {
	if r.hits == nil && r.loadErr == nil {
		r.hits, r.loadErr = r.c.load(ctx)
	}
	return r.loadErr
}

// Check implements Rule. The period is the workload's annotation's, else MACAQUE_COOLDOWN's; a
// workload whose annotation asks for a period the state cannot be read to honour (with
// MACAQUE_COOLDOWN=0, which does not fail the tick on it) is passed over, saying why.
func (r *coolingDown) Check(ctx context.Context, p *Pick) (*Pass, error) {
	if p.Top == nil {
		return nil, nil
	}
	period, source, bad := r.c.periodOf(p.Top, p.TopAnnotations)
	if bad != "" {
		return &Pass{Why: bad, Blame: p.Top}, nil
	}
	p.Cooldown = period
	if period == 0 {
		return nil, nil
	}
	if err := r.load(ctx); err != nil {
		return &Pass{Why: fmt.Sprintf("%s cannot be honoured: %v", source, err), Blame: p.Top}, nil
	}
	if why := r.c.checkFor(r.hits, p.Pod.Namespace, p.Top, period, source, r.now()); why != "" {
		return &Pass{Why: why, Blame: p.Top}, nil
	}
	return nil, nil
}

// steadyState is the guard's rule for one tick, with the tick's cache of what it read.
type steadyState struct {
	g    *Guard
	seen assessments
}

// Check implements Rule.
func (r steadyState) Check(ctx context.Context, p *Pick) (*Pass, error) {
	a, err := r.g.assess(ctx, p.Pod.Namespace, p.Pod, r.seen)
	if err != nil {
		return nil, fmt.Errorf("check the workload of pod %q: %w", p.Name, err)
	}
	if a.why != "" {
		return &Pass{Why: a.why, Blame: a.cause}, nil
	}
	p.Top, p.Note, p.TopAnnotations = a.top, a.note, a.topAnnotations
	return nil, nil
}
