package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
)

// The steady-state guard: a pod is killed only when the whole chain of controllers above it is
// at full strength right now and not rolling out, and the pod itself is Ready, so that macaque
// never takes down the last healthy replica of an application that is already degraded, nor a
// bare pod that nothing would bring back.

// guard decides whether a read-back pick may be killed. A nil *guard lets every pick through
// (tests only: run always builds one, since the opt-out annotations are read whatever the
// setting). With healthOff (MACAQUE_REQUIRE_HEALTHY=false) it still reads the controller chain
// for chaos.macaque.dev/exclude, but judges neither their strength nor the pod's readiness.
type guard struct {
	api          workloadAPI
	allowOrphans bool            // bare pods are candidates too
	ownerKinds   map[string]bool // owner kinds macaque cannot check, accepted unchecked
	healthOff    bool            // MACAQUE_REQUIRE_HEALTHY=false: read the chain for opt-outs only
}

// workloadAPI reads the controllers above a pod: get on the workload kinds, nothing more,
// which is what the Role in macaque.yml grants.
type workloadAPI interface {
	// getWorkload reads one controller of kind k; a 404 comes back as the API server's error.
	getWorkload(ctx context.Context, namespace string, k workloadKind, name string) (workload, error)
	// probeGet asks whether macaque may get objects of kind k in namespace: nil when it may.
	probeGet(ctx context.Context, namespace string, k workloadKind) error
}

// ownerRef is the controller reference of a pod or a workload: what the guard reads next.
type ownerRef struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Name       string    `json:"name"`
	UID        types.UID `json:"uid"`
	Controller *bool     `json:"controller"`
}

// String is how a report names the owner: "Kind/name".
func (o ownerRef) String() string { return o.Kind + "/" + o.Name }

// workloadKind is a controller kind whose strength the guard can read.
type workloadKind struct {
	Kind     string
	group    string // API group; "" for core
	prefix   string // API path prefix: /apis/apps/v1 or /api/v1
	resource string // plural resource name in the URL and in the Role
}

// The kinds the guard reads, as the API server serves them.
var (
	kindReplicaSet  = workloadKind{Kind: "ReplicaSet", group: "apps", prefix: "/apis/apps/v1", resource: "replicasets"}
	kindDeployment  = workloadKind{Kind: "Deployment", group: "apps", prefix: "/apis/apps/v1", resource: "deployments"}
	kindStatefulSet = workloadKind{Kind: "StatefulSet", group: "apps", prefix: "/apis/apps/v1", resource: "statefulsets"}
	kindDaemonSet   = workloadKind{Kind: "DaemonSet", group: "apps", prefix: "/apis/apps/v1", resource: "daemonsets"}
	kindRC          = workloadKind{Kind: "ReplicationController", prefix: "/api/v1", resource: "replicationcontrollers"}
)

// workloadKinds are the kinds whose get the preflight checks, in the order of macaque.yml's Role.
var workloadKinds = []workloadKind{kindReplicaSet, kindDeployment, kindStatefulSet, kindDaemonSet, kindRC}

// checkedKind is the workloadKind of ref, if the guard knows how to read it.
func checkedKind(ref ownerRef) (workloadKind, bool) {
	group, _, _ := strings.Cut(ref.APIVersion, "/")
	if !strings.Contains(ref.APIVersion, "/") {
		group = "" // "v1": the core group
	}
	for _, k := range workloadKinds {
		if k.Kind == ref.Kind && k.group == group {
			return k, true
		}
	}
	return workloadKind{}, false
}

// workload is the part of any of the workload kinds the guard reads: the fields of the five
// kinds' specs and statuses share one struct, each kind filling its own.
type workload struct {
	Metadata struct {
		Name            string            `json:"name"`
		UID             types.UID         `json:"uid"`
		Generation      int64             `json:"generation"`
		ResourceVersion string            `json:"resourceVersion"` // where a recovery's watch of it resumes
		OwnerReferences []ownerRef        `json:"ownerReferences"`
		Annotations     map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Replicas *int32 `json:"replicas"`
		// Selector finds its pods for a recovery's watch: a LabelSelector for the apps kinds, a
		// plain map of labels for a ReplicationController, so kept raw and read by kind.
		Selector       json.RawMessage `json:"selector"`
		UpdateStrategy struct {
			Type          string `json:"type"`
			RollingUpdate *struct {
				Partition *int32 `json:"partition"`
			} `json:"rollingUpdate"`
		} `json:"updateStrategy"`
	} `json:"spec"`
	Status struct {
		ObservedGeneration  int64  `json:"observedGeneration"`
		Replicas            int32  `json:"replicas"`
		ReadyReplicas       int32  `json:"readyReplicas"`
		AvailableReplicas   int32  `json:"availableReplicas"`
		UpdatedReplicas     int32  `json:"updatedReplicas"`
		UnavailableReplicas int32  `json:"unavailableReplicas"`
		CurrentRevision     string `json:"currentRevision"`
		UpdateRevision      string `json:"updateRevision"`
		// DaemonSets count nodes, not replicas.
		DesiredNumberScheduled int32 `json:"desiredNumberScheduled"`
		NumberReady            int32 `json:"numberReady"`
		NumberAvailable        int32 `json:"numberAvailable"`
		NumberUnavailable      int32 `json:"numberUnavailable"`
		UpdatedNumberScheduled int32 `json:"updatedNumberScheduled"`
		Conditions             []struct {
			Type    string `json:"type"`
			Status  string `json:"status"` // read by a recovery verdict that says what is missing
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"conditions"`
	} `json:"status"`
}

// controller is w's controlling owner, if it has one.
func (w workload) controller() (ownerRef, bool) {
	return controllerOf(w.Metadata.OwnerReferences)
}

// controllerOf finds the controller among refs: the one marked controller, as the API server
// allows at most one.
func controllerOf(refs []ownerRef) (ownerRef, bool) {
	for _, r := range refs {
		if r.Controller != nil && *r.Controller {
			return r, true
		}
	}
	return ownerRef{}, false
}

// desired is spec.replicas, which the API server defaults to 1 when it is left out.
func (w workload) desired() int32 {
	if w.Spec.Replicas == nil {
		return 1
	}
	return *w.Spec.Replicas
}

// verdict is the guard's answer for one pick: why it must not be killed (empty when it may),
// and a note the report must carry when it is killed.
type verdict struct {
	why  string
	note string
	// top is the highest controller of the pod macaque knows of (the Deployment above its
	// ReplicaSet, its StatefulSet, DaemonSet or ReplicationController, or an owner of a kind
	// the guard cannot read), nil for a bare pod: the workload a kill's Event is written on.
	top *ownerRef
	// cause is the workload whose annotation or state made why, nil when it is the pod itself
	// or a workload that is gone: the workload a skipped tick's Event is written on.
	cause *ownerRef
}

// verdicts caches, within one tick, the verdict on each controller by UID, so that picks of
// the same workload read it once. It holds at most two entries per pick (a ReplicaSet and its
// Deployment), and lives only as long as the tick.
type verdicts map[types.UID]verdict

// check says whether v, a pick just read back, may be killed. An error is a failure to read
// a controller (not a 404, which is a reason to pass the pick over) and fails the tick.
func (g *guard) check(ctx context.Context, namespace string, v victim, seen verdicts) (verdict, error) {
	if g == nil {
		return verdict{}, nil
	}
	if why := excludedBy(v.Annotations, "the pod"); why != "" {
		return verdict{why: why}, nil
	}
	if !v.Ready && !g.healthOff {
		return verdict{why: "not Ready"}, nil
	}
	if v.Controller == nil {
		if g.allowOrphans || g.healthOff {
			return verdict{note: "a bare pod (MACAQUE_ALLOW_ORPHANS): nothing will recreate it"}, nil
		}
		return verdict{why: "bare pod, nothing would recreate it"}, nil
	}
	ref := *v.Controller
	kind, ok := checkedKind(ref)
	if !ok {
		return g.uncheckedOwner(ref), nil
	}
	if cached, ok := seen[ref.UID]; ok {
		return cached, nil
	}
	out, err := g.chain(ctx, namespace, kind, ref, seen)
	if err != nil {
		return verdict{}, err
	}
	seen[ref.UID] = out
	return out, nil
}

// uncheckedOwner is the verdict on a pod whose controller is of a kind the guard cannot read:
// a Job, or an operator's custom resource. Those are skipped unless MACAQUE_OWNER_KINDS names
// the kind, and then the report says that nothing vouched for the workload's strength.
func (g *guard) uncheckedOwner(ref ownerRef) verdict {
	if g.healthOff {
		return verdict{top: &ref}
	}
	if g.ownerKinds[ref.Kind] {
		return verdict{top: &ref, note: fmt.Sprintf("owned by %s, a kind listed in MACAQUE_OWNER_KINDS: its strength check could not be made", ref)}
	}
	return verdict{top: &ref, cause: &ref, why: fmt.Sprintf("owned by a %s (%s), which MACAQUE_OWNER_KINDS does not list", ref.Kind, ref.Name)}
}

// chain reads the pod's controller and, for a ReplicaSet, the Deployment above it, and
// judges them: each is first read for the opt-out annotation, then (unless healthOff) for its
// strength. The Deployment is judged first so that a report names the application (web: 2/3
// ready, excluded ... on Deployment/web) rather than its ReplicaSet of the moment.
func (g *guard) chain(ctx context.Context, namespace string, kind workloadKind, ref ownerRef, seen verdicts) (verdict, error) {
	w, why, err := g.read(ctx, namespace, kind, ref)
	if err != nil {
		return verdict{}, err
	}
	if why != "" {
		return g.gone(why, ref), nil
	}
	self := g.judge(kind, ref, w)
	if kind != kindReplicaSet {
		return self, nil
	}
	up, ok := w.controller()
	if !ok {
		return self, nil
	}
	if upKind, _ := checkedKind(up); upKind != kindDeployment { // the zero kind when unchecked
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
		d, why, err := g.read(ctx, namespace, kindDeployment, up)
		if err != nil {
			return verdict{}, err
		}
		top = g.gone(why, up)
		if why == "" {
			top = g.judge(kindDeployment, up, d)
		}
		seen[up.UID] = top
	}
	if top.why != "" {
		return top, nil
	}
	self.top = top.top
	return self, nil
}

// judge is the verdict on one controller w of kind k, read through ref: excluded by its
// annotation, else (with the guard on) below strength, else safe; ref is its top either way.
func (g *guard) judge(k workloadKind, ref ownerRef, w workload) verdict {
	out := verdict{top: &ref, cause: &ref}
	if out.why = excludedBy(w.Metadata.Annotations, ref.String()); out.why != "" {
		return out
	}
	if !g.healthOff {
		out.why = strength(k, w)
	}
	if out.why == "" {
		out.cause = nil
	}
	return out
}

// gone is the verdict on a controller read could not find as the pod names it (why, empty when
// it was found): a reason to pass the pick over with the guard on; with it off the pod may be
// killed, as before macaque read controllers at all, since nothing annotated is left to read.
func (g *guard) gone(why string, ref ownerRef) verdict {
	if g.healthOff {
		why = ""
	}
	return verdict{why: why, top: &ref}
}

// read gets the controller ref names. One that is gone, or replaced by another of the same
// name, is a reason to pass the pick over, not an error.
func (g *guard) read(ctx context.Context, namespace string, kind workloadKind, ref ownerRef) (workload, string, error) {
	w, err := g.api.getWorkload(ctx, namespace, kind, ref.Name)
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

// strength says why w of kind k is not at full strength, or "" when it is: its controller has
// seen its latest spec, every desired replica is ready, and no rollout is under way. The
// rollout checks read the status as `kubectl rollout status` does.
func strength(k workloadKind, w workload) string {
	name, s := w.Metadata.Name, w.Status
	if s.ObservedGeneration < w.Metadata.Generation {
		return name + " mid-rollout: its latest change is not yet observed"
	}
	if k == kindDaemonSet {
		return daemonSetStrength(w)
	}
	want := w.desired()
	if s.ReadyReplicas < want {
		return fmt.Sprintf("%s: %d/%d ready", name, s.ReadyReplicas, want)
	}
	if k == kindDeployment {
		return deploymentRollout(w)
	}
	if k == kindStatefulSet {
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
func deploymentRollout(w workload) string {
	name, s, want := w.Metadata.Name, w.Status, w.desired()
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
func statefulSetRollout(w workload) string {
	name, s, strategy := w.Metadata.Name, w.Status, w.Spec.UpdateStrategy
	if strategy.Type == "OnDelete" {
		return ""
	}
	if strategy.RollingUpdate != nil && strategy.RollingUpdate.Partition != nil {
		if want := w.desired() - *strategy.RollingUpdate.Partition; s.UpdatedReplicas < want {
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
func daemonSetStrength(w workload) string {
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

func (p *restPods) getWorkload(ctx context.Context, namespace string, k workloadKind, name string) (workload, error) {
	var w workload
	// Result.Error, not Raw's error nor DoRaw's: only it decodes the API server's Status, and
	// RBAC's 403 is told from others by the Status's message.
	res := p.client.Get().AbsPath(k.prefix, "namespaces", namespace, k.resource, name).Do(ctx)
	body, err := res.Raw()
	if err != nil {
		return w, res.Error()
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return w, fmt.Errorf("decode %s %q: %w", k.Kind, name, err)
	}
	return w, nil
}

func (p *restPods) probeGet(ctx context.Context, namespace string, k workloadKind) error {
	// preflightPod is no valid name of any kind, so the answer is 404 when get is allowed.
	err := p.client.Get().AbsPath(k.prefix, "namespaces", namespace, k.resource, preflightPod).Do(ctx).Error()
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		return fmt.Errorf("a get of %s %q succeeded, which no API server should allow", k.resource, preflightPod)
	}
	return err
}

// preflightGuard checks that macaque may read every workload kind the guard reads, so that a
// Role without them stops macaque at start rather than failing every tick. The chain is read
// for the opt-out annotation even with the guard off (healthOff), so the check runs then too,
// and its message names the setting that needs it.
func preflightGuard(ctx context.Context, api workloadAPI, namespace string, healthOff bool) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	for _, k := range workloadKinds {
		err := api.probeGet(ctx, namespace, k)
		if isRBACDenial(err) && healthOff {
			return badSetting("NAMESPACE", "cannot get %s in %q (macaque reads the controllers above each pick for the %s annotation, even with MACAQUE_REQUIRE_HEALTHY=false, and needs get on %s: grant it in macaque's Role there): %v",
				k.resource, namespace, excludeAnnotation, strings.Join(workloadResources(), ", "), err)
		}
		if isRBACDenial(err) {
			return badSetting("REQUIRE_HEALTHY", "cannot get %s in %q (the steady-state guard and the %s annotation need get on %s; grant it in macaque's Role): %v",
				k.resource, namespace, excludeAnnotation, strings.Join(workloadResources(), ", "), err)
		}
		if err != nil {
			return fmt.Errorf("check that macaque may get %s in %q: %w", k.resource, namespace, err)
		}
	}
	return nil
}

// workloadResources are the resources the guard gets, as a Role names them.
func workloadResources() []string {
	out := make([]string, 0, len(workloadKinds))
	for _, k := range workloadKinds {
		out = append(out, k.resource)
	}
	return out
}
