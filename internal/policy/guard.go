package policy

import (
	"context"
	"fmt"

	"github.com/macaque-chaos/macaque/internal/kube"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
)

// The steady-state guard: a pod is killed only when the whole chain of controllers above it is
// at full strength right now and not rolling out, and the pod itself is Ready, so that macaque
// never takes down the last healthy replica of an application that is already degraded, nor a
// bare pod that nothing would bring back.

// Guard decides whether a read-back pick may be killed. A nil *Guard lets every pick through
// (tests only: run always builds one, since the opt-out annotations are read whatever the
// setting). With healthOff (MACAQUE_REQUIRE_HEALTHY=false) it still reads the controller chain
// for chaos.macaque.dev/exclude, but judges neither their strength nor the pod's readiness.
type Guard struct {
	API          WorkloadAPI
	AllowOrphans bool            // bare pods are candidates too
	OwnerKinds   map[string]bool // owner kinds macaque cannot check, accepted unchecked
	HealthOff    bool            // MACAQUE_REQUIRE_HEALTHY=false: read the chain for opt-outs only
}

// WorkloadAPI reads the controllers above a pod: get on the workload kinds, nothing more,
// which is what the Role in macaque.yml grants.
type WorkloadAPI interface {
	// GetWorkload reads one controller of kind k; a 404 comes back as the API server's error.
	GetWorkload(ctx context.Context, namespace string, k kube.WorkloadKind, name string) (kube.Workload, error)
	// ProbeGet asks whether macaque may get objects of kind k in namespace: nil when it may.
	ProbeGet(ctx context.Context, namespace string, k kube.WorkloadKind) error
}

// run hands it the one API client; this keeps the two in step.
var _ WorkloadAPI = (*kube.Client)(nil)

// assessment is the guard's answer for one pick or controller: why it must not be killed
// (empty when it may), and a note the report must carry when it is killed.
type assessment struct {
	why  string
	note string
	// top is the highest controller of the pod macaque knows of (the Deployment above its
	// ReplicaSet, its StatefulSet, DaemonSet or ReplicationController, or an owner of a kind
	// the guard cannot read), nil for a bare pod: the workload a kill's Event is written on.
	top *kube.OwnerRef
	// topAnnotations are top's annotations, nil when they could not be read (an unchecked
	// kind, a workload gone): where the cooldown reads chaos.macaque.dev/cooldown.
	topAnnotations map[string]string
	// cause is the workload whose annotation or state made why, nil when it is the pod itself
	// or a workload that is gone: the workload a skipped tick's Event is written on.
	cause *kube.OwnerRef
}

// assessments caches, within one tick, the assessment of each controller by UID, so that picks of
// the same workload read it once. It holds at most two entries per pick (a ReplicaSet and its
// Deployment), and lives only as long as the tick.
type assessments map[types.UID]assessment

// ForTick is the guard's rule for one tick, which reads each controller once however many
// picks it has; nil for a nil *Guard.
func (g *Guard) ForTick() Rule {
	if g == nil {
		return nil
	}
	return steadyState{g: g, seen: assessments{}}
}

// assess says whether v, a pick just read back, may be killed. An error is a failure to read
// a controller (not a 404, which is a reason to pass the pick over) and fails the tick. The
// pod's own opt-out is the OptedOut rule's, asked before.
func (g *Guard) assess(ctx context.Context, namespace string, v kube.Pod, seen assessments) (assessment, error) {
	if !v.Ready && !g.HealthOff {
		return assessment{why: "not Ready"}, nil
	}
	if v.Controller == nil {
		if g.AllowOrphans || g.HealthOff {
			return assessment{note: "a bare pod (MACAQUE_ALLOW_ORPHANS): nothing will recreate it"}, nil
		}
		return assessment{why: "bare pod, nothing would recreate it"}, nil
	}
	ref := *v.Controller
	kind, ok := kube.CheckedKind(ref)
	if !ok {
		return g.uncheckedOwner(ref), nil
	}
	if cached, ok := seen[ref.UID]; ok {
		return cached, nil
	}
	out, err := g.chain(ctx, namespace, kind, ref, seen)
	if err != nil {
		return assessment{}, err
	}
	seen[ref.UID] = out
	return out, nil
}

// uncheckedOwner is the verdict on a pod whose controller is of a kind the guard cannot read:
// a Job, or an operator's custom resource. Those are skipped unless MACAQUE_OWNER_KINDS names
// the kind, and then the report says that nothing vouched for the workload's strength.
func (g *Guard) uncheckedOwner(ref kube.OwnerRef) assessment {
	if g.HealthOff {
		return assessment{top: &ref}
	}
	if g.OwnerKinds[ref.Kind] {
		return assessment{top: &ref, note: fmt.Sprintf("owned by %s, a kind listed in MACAQUE_OWNER_KINDS: its strength check could not be made", ref)}
	}
	return assessment{top: &ref, cause: &ref, why: fmt.Sprintf("owned by a %s (%s), which MACAQUE_OWNER_KINDS does not list", ref.Kind, ref.Name)}
}

// chain reads the pod's controller and, for a ReplicaSet, the Deployment above it, and
// judges them: each is first read for the opt-out annotation, then (unless healthOff) for its
// strength. The Deployment is judged first so that a report names the application (web: 2/3
// ready, excluded ... on Deployment/web) rather than its ReplicaSet of the moment.
func (g *Guard) chain(ctx context.Context, namespace string, kind kube.WorkloadKind, ref kube.OwnerRef, seen assessments) (assessment, error) {
	w, why, err := g.read(ctx, namespace, kind, ref)
	if err != nil {
		return assessment{}, err
	}
	if why != "" {
		return g.gone(why, ref), nil
	}
	self := g.judge(kind, ref, w)
	if kind != kube.KindReplicaSet {
		return self, nil
	}
	up, ok := w.Controller()
	if !ok {
		return self, nil
	}
	if upKind, _ := kube.CheckedKind(up); upKind != kube.KindDeployment { // the zero kind when unchecked
		// A ReplicaSet run by something else (an operator's rollout): its own strength is
		// known, the rollout above it is not.
		out := g.uncheckedOwner(up)
		if self.why != "" {
			out.why, out.cause, out.note = self.why, self.cause, ""
		}
		return out, nil
	}
	top, cached := seen[up.UID]
	if !cached {
		d, why, err := g.read(ctx, namespace, kube.KindDeployment, up)
		if err != nil {
			return assessment{}, err
		}
		top = g.gone(why, up)
		if why == "" {
			top = g.judge(kube.KindDeployment, up, d)
		}
		seen[up.UID] = top
	}
	if top.why != "" {
		return top, nil
	}
	self.top, self.topAnnotations = top.top, top.topAnnotations
	return self, nil
}

// judge is the verdict on one controller w of kind k, read through ref: excluded by its
// annotation, else (with the guard on) below strength, else safe; ref is its top either way.
func (g *Guard) judge(k kube.WorkloadKind, ref kube.OwnerRef, w kube.Workload) assessment {
	out := assessment{top: &ref, cause: &ref, topAnnotations: w.Metadata.Annotations}
	if out.why = excludedBy(w.Metadata.Annotations, ref.String()); out.why != "" {
		return out
	}
	if !g.HealthOff {
		out.why = Strength(k, w)
	}
	if out.why == "" {
		out.cause = nil
	}
	return out
}

// gone is the verdict on a controller read could not find as the pod names it (why, empty when
// it was found): a reason to pass the pick over with the guard on; with it off the pod may be
// killed, as before macaque read controllers at all, since nothing annotated is left to read.
func (g *Guard) gone(why string, ref kube.OwnerRef) assessment {
	if g.HealthOff {
		why = ""
	}
	return assessment{why: why, top: &ref}
}

// read gets the controller ref names. One that is gone, or replaced by another of the same
// name, is a reason to pass the pick over, not an error.
func (g *Guard) read(ctx context.Context, namespace string, kind kube.WorkloadKind, ref kube.OwnerRef) (kube.Workload, string, error) {
	w, err := g.API.GetWorkload(ctx, namespace, kind, ref.Name)
	if apierrors.IsNotFound(err) {
		return w, fmt.Sprintf("%s %s not found", kind.Kind, ref.Name), nil
	}
	if err != nil {
		return w, "", fmt.Errorf("read %s %q: %w", kind.Kind, ref.Name, err)
	}
	if w.Metadata.UID != ref.UID {
		return w, fmt.Sprintf("%s %s was replaced", kind.Kind, ref.Name), nil
	}
	return w, "", nil
}

// Strength says why w of kind k is not at full strength, or "" when it is: its controller has
// seen its latest spec, every desired replica is ready, and no rollout is under way. The
// rollout checks read the status as `kubectl rollout status` does.
func Strength(k kube.WorkloadKind, w kube.Workload) string {
	name, s := w.Metadata.Name, w.Status
	if s.ObservedGeneration < w.Metadata.Generation {
		return name + " mid-rollout: its latest change is not yet observed"
	}
	if k == kube.KindDaemonSet {
		return daemonSetStrength(w)
	}
	want := w.Desired()
	if s.ReadyReplicas < want {
		return fmt.Sprintf("%s: %d/%d ready", name, s.ReadyReplicas, want)
	}
	if k == kube.KindDeployment {
		return deploymentRollout(w)
	}
	if k == kube.KindStatefulSet {
		return statefulSetRollout(w)
	}
	if s.AvailableReplicas < want {
		return fmt.Sprintf("%s: %d/%d available", name, s.AvailableReplicas, want)
	}
	return ""
}

// deploymentRollout says why a Deployment with every desired replica ready is still not
// steady: pods not yet updated, old pods still running, updated pods not yet available, or a
// rollout stuck past its progress deadline.
func deploymentRollout(w kube.Workload) string {
	name, s, want := w.Metadata.Name, w.Status, w.Desired()
	for _, c := range w.Status.Conditions {
		if c.Type == "Progressing" && c.Reason == "ProgressDeadlineExceeded" {
			return name + " mid-rollout: stuck past its progress deadline"
		}
	}
	if s.UpdatedReplicas < want {
		return fmt.Sprintf("%s mid-rollout: %d/%d updated", name, s.UpdatedReplicas, want)
	}
	if s.Replicas > s.UpdatedReplicas {
		return fmt.Sprintf("%s mid-rollout: %d old pods still running", name, s.Replicas-s.UpdatedReplicas)
	}
	if s.AvailableReplicas < s.UpdatedReplicas {
		return fmt.Sprintf("%s: %d/%d available", name, s.AvailableReplicas, s.UpdatedReplicas)
	}
	if s.UnavailableReplicas > 0 {
		return fmt.Sprintf("%s: %d unavailable", name, s.UnavailableReplicas)
	}
	return ""
}

// statefulSetRollout says why a StatefulSet with every replica ready is still rolling out. A
// partitioned rolling update is done once the pods above the partition are updated; otherwise
// the current and update revisions must match. OnDelete updates a pod only when it is deleted,
// so a revision difference there is no rollout in progress.
func statefulSetRollout(w kube.Workload) string {
	name, s, strategy := w.Metadata.Name, w.Status, w.Spec.UpdateStrategy
	if strategy.Type == "OnDelete" {
		return ""
	}
	if strategy.RollingUpdate != nil && strategy.RollingUpdate.Partition != nil {
		if want := w.Desired() - *strategy.RollingUpdate.Partition; s.UpdatedReplicas < want {
			return fmt.Sprintf("%s mid-rollout: %d/%d updated", name, s.UpdatedReplicas, want)
		}
		return ""
	}
	if s.UpdateRevision != s.CurrentRevision {
		return fmt.Sprintf("%s mid-rollout: revision %s not yet on every pod", name, s.UpdateRevision)
	}
	return ""
}

// daemonSetStrength says why a DaemonSet is not steady: a node's pod not ready or not
// available, or (for a rolling update) not yet updated.
func daemonSetStrength(w kube.Workload) string {
	name, s := w.Metadata.Name, w.Status
	if s.NumberReady < s.DesiredNumberScheduled {
		return fmt.Sprintf("%s: %d/%d ready", name, s.NumberReady, s.DesiredNumberScheduled)
	}
	if w.Spec.UpdateStrategy.Type != "OnDelete" && s.UpdatedNumberScheduled < s.DesiredNumberScheduled {
		return fmt.Sprintf("%s mid-rollout: %d/%d updated", name, s.UpdatedNumberScheduled, s.DesiredNumberScheduled)
	}
	if s.NumberAvailable < s.DesiredNumberScheduled {
		return fmt.Sprintf("%s: %d/%d available", name, s.NumberAvailable, s.DesiredNumberScheduled)
	}
	if s.NumberUnavailable > 0 {
		return fmt.Sprintf("%s: %d unavailable", name, s.NumberUnavailable)
	}
	return ""
}
