package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/macaque-chaos/macaque/internal/election"
	"github.com/macaque-chaos/macaque/internal/recovery"

	"github.com/macaque-chaos/macaque/internal/policy"

	"github.com/macaque-chaos/macaque/internal/kube"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// preflightGuard checks that macaque may read every workload kind the guard reads, so that a
// Role without them stops macaque at start rather than failing every tick. The chain is read
// for the opt-out annotation even with the guard off (healthOff), so the check runs then too,
// and its message names the setting that needs it.
func preflightGuard(ctx context.Context, api policy.WorkloadAPI, namespace string, healthOff bool) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	for _, k := range kube.WorkloadKinds {
		err := api.ProbeGet(ctx, namespace, k)
		if kube.IsRBACDenial(err) && healthOff {
			return badSetting("NAMESPACE", "cannot get %s in %q (macaque reads the controllers above each pick for the %s annotation, even with MACAQUE_REQUIRE_HEALTHY=false, and needs get on %s: grant it in macaque's Role there): %v",
				k.Resource, namespace, policy.ExcludeAnnotation, strings.Join(kube.WorkloadResources(), ", "), err)
		}
		if kube.IsRBACDenial(err) {
			return badSetting("REQUIRE_HEALTHY", "cannot get %s in %q (the steady-state guard and the %s annotation need get on %s; grant it in macaque's Role): %v",
				k.Resource, namespace, policy.ExcludeAnnotation, strings.Join(kube.WorkloadResources(), ", "), err)
		}
		if err != nil {
			return fmt.Errorf("check that macaque may get %s in %q: %w", k.Resource, namespace, err)
		}
	}
	return nil
}

// preflightCooldown checks at start that the state's ConfigMap exists and that macaque may
// read and update it, so that a missing one stops macaque with one line instead of every tick.
func preflightCooldown(ctx context.Context, api policy.StateAPI, namespace string) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	cm, err := api.GetConfigMap(ctx, namespace, policy.CooldownConfigMap)
	if apierrors.IsNotFound(err) {
		return badSetting("COOLDOWN", "the ConfigMap %s that keeps the cooldown state is not in %q: macaque.yml creates it (an empty one will do), or unset MACAQUE_COOLDOWN", policy.CooldownConfigMap, namespace)
	}
	if kube.IsRBACDenial(err) {
		return badSetting("COOLDOWN", "cannot get ConfigMap %s in %q (macaque's Role must grant get and update on it): %v", policy.CooldownConfigMap, namespace, err)
	}
	if err != nil {
		return fmt.Errorf("read the cooldown state (ConfigMap %s/%s): %w", namespace, policy.CooldownConfigMap, err)
	}
	err = api.ProbeUpdateConfigMap(ctx, cm)
	if kube.IsRBACDenial(err) {
		return badSetting("COOLDOWN", "cannot update ConfigMap %s in %q (macaque's Role must grant get and update on it): %v", policy.CooldownConfigMap, namespace, err)
	}
	if err != nil {
		return fmt.Errorf("check that macaque may update ConfigMap %s/%s: %w", namespace, policy.CooldownConfigMap, err)
	}
	return nil
}

// startCooldown builds the cooldown for MACAQUE_COOLDOWN=period and checks its state, in
// namespace, macaque's own: where macaque.yml creates the ConfigMap. Out of a pod with no
// namespace of its own, the first namespace of a named scope stands in. With a period of 0 the
// cooldown is still built, for the workloads annotated chaos.macaque.dev/cooldown with a
// period of their own; a state it cannot keep then only warns, since macaque ran without one
// before such annotations existed, and passes those workloads over at each tick, saying why.
func startCooldown(ctx context.Context, api policy.StateAPI, period time.Duration, namespace string, sc scope, log *slog.Logger) (*policy.Cooldown, error) {
	if namespace == "" && len(sc.namespaces) > 0 {
		namespace = sc.namespaces[0]
	}
	if period == 0 {
		return annotatedCooldown(ctx, api, namespace, log), nil
	}
	if namespace == "" {
		return nil, badSetting("COOLDOWN", "macaque's own namespace, where the ConfigMap %s keeps the cooldown state, is unknown: set POD_NAMESPACE", policy.CooldownConfigMap)
	}
	if err := preflightCooldown(ctx, api, namespace); err != nil {
		return nil, err
	}
	return policy.NewCooldown(api, namespace, period), nil
}

// annotatedCooldown is the cooldown of MACAQUE_COOLDOWN=0, for annotated workloads only: their
// state in namespace, checked as for a period but only warned about.
func annotatedCooldown(ctx context.Context, api policy.StateAPI, namespace string, log *slog.Logger) *policy.Cooldown {
	const warning = "the cooldown state cannot be kept: a workload annotated " + policy.CooldownAnnotation + " with a period will be passed over"
	if namespace == "" {
		why := errors.New("macaque's own namespace is unknown: set POD_NAMESPACE")
		log.Warn(warning, "why", why)
		return policy.NoCooldownState(why)
	}
	if err := preflightCooldown(ctx, api, namespace); err != nil {
		log.Warn(warning, "why", err)
	}
	return policy.NewCooldown(api, namespace, 0)
}

// preflightRecoveryScope runs preflightRecovery in each named namespace, or, for *, asks for
// watch on pods and the workload kinds in every namespace with access reviews.
func preflightRecoveryScope(ctx context.Context, api interface {
	recovery.API
	scopeAPI
}, sc scope) error {
	if !sc.all {
		for _, ns := range sc.namespaces {
			if err := preflightRecovery(ctx, api, ns); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	need := append([]kube.Permission{{Verb: "watch", Resource: "pods"}}, kube.WorkloadPermissions("watch")...)
	for _, p := range need {
		why, err := api.MayI(ctx, p)
		if err != nil {
			return fmt.Errorf("check that macaque may %s in every namespace: %w", p, err)
		}
		if why != "" {
			return badSetting("RECOVERY_TIMEOUT", "* needs %s in every namespace for the recovery verdicts, which macaque may not (%s); apply macaque-cluster.yml, whose ClusterRole grants it", p, why)
		}
	}
	return nil
}

// preflightRecovery checks that macaque may watch pods and the workload kinds in namespace, as
// following a victim's controller needs: a watch of a name that cannot exist, closed at once.
func preflightRecovery(ctx context.Context, api recovery.API, namespace string) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	kinds := append([]kube.WorkloadKind{{Kind: "Pod", Prefix: "/api/v1", Resource: "pods"}}, kube.WorkloadKinds...)
	for _, k := range kinds {
		body, err := api.Watch(ctx, kube.WatchQuery{Prefix: k.Prefix, Namespace: namespace, Resource: k.Resource, FieldSelector: "metadata.name=" + kube.PreflightPod}, "")
		if kube.IsRBACDenial(err) {
			return badSetting("RECOVERY_TIMEOUT", "cannot watch %s in %q (the recovery verdict after each kill watches pods and %s; grant watch on them in macaque's Role): %v",
				k.Resource, namespace, strings.Join(kube.WorkloadResources(), ", "), err)
		}
		if err != nil {
			return fmt.Errorf("check that macaque may watch %s in %q: %w", k.Resource, namespace, err)
		}
		_ = body.Close()
	}
	return nil
}

// selfAPI reads macaque's own pod and the controllers above it, to find its Deployment.
type selfAPI interface {
	Lookup(ctx context.Context, namespace, name, selector string) (kube.Pod, error)
	policy.WorkloadGetter
}

// run hands it the one API client; this keeps the two in step.
var _ selfAPI = (*kube.Client)(nil)

// findOwnDeployment follows macaque's own pod (podName in namespace) to its ReplicaSet and
// that ReplicaSet's Deployment, whose annotation is the pause switch. When there is none to find
// (not in a pod, a pod not run by a Deployment) it returns "" and why, for a warning: macaque
// then runs without the switch. RBAC's refusal to read any of them is a configError (exit 2):
// the switch would be there but unreadable, and the Role must be fixed. Other failures are
// errors.
func findOwnDeployment(ctx context.Context, api selfAPI, podName, namespace string) (name, why string, err error) {
	if podName == "" || namespace == "" {
		return "", "not in a pod: POD_NAME or POD_NAMESPACE (and a mounted service account namespace) unset", nil
	}
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	pod, err := api.Lookup(ctx, namespace, podName, "")
	if errors.Is(err, kube.ErrGone) {
		return "", fmt.Sprintf("no pod %q in %q (is macaque running outside the cluster?)", podName, namespace), nil
	}
	if err != nil {
		return "", "", selfReadError("list pods", podName, namespace, err)
	}
	if pod.Controller == nil || pod.Controller.Kind != kube.KindReplicaSet.Kind {
		return "", fmt.Sprintf("pod %q is not run by a Deployment (its controller: %s)", podName, cmp.Or(pod.Owner(), "none")), nil
	}
	rs, err := api.GetWorkload(ctx, namespace, kube.KindReplicaSet, pod.Controller.Name)
	if apierrors.IsNotFound(err) {
		return "", fmt.Sprintf("the ReplicaSet %q of pod %q is gone", pod.Controller.Name, podName), nil
	}
	if err != nil {
		return "", "", selfReadError("get replicasets", pod.Controller.Name, namespace, err)
	}
	up, ok := rs.Controller()
	if !ok || up.Kind != kube.KindDeployment.Kind {
		return "", fmt.Sprintf("the ReplicaSet %q of pod %q is not run by a Deployment", pod.Controller.Name, podName), nil
	}
	if _, err := api.GetWorkload(ctx, namespace, kube.KindDeployment, up.Name); err != nil {
		return "", "", selfReadError("get deployments", up.Name, namespace, err)
	}
	return up.Name, "", nil
}

// startPauseSwitch finds macaque's own Deployment and returns the switch on it. Without one to
// find (run from a laptop, or not by a Deployment) it returns a nil switch and why: macaque then
// runs, but cannot be paused by annotation, which run warns of (after the other start checks,
// so that one of them refusing to start is still the only line).
func startPauseSwitch(ctx context.Context, api selfAPI, podName, namespace string, log *slog.Logger) (*policy.PauseSwitch, string, error) {
	name, why, err := findOwnDeployment(ctx, api, podName, namespace)
	if err != nil || name == "" {
		return nil, why, err
	}
	return policy.NewPauseSwitch(api, namespace, name, time.Now, log), "", nil
}

// selfReadError words a failure to read macaque's own pod, ReplicaSet or Deployment: RBAC's
// refusal stops macaque at start with one line naming what the Role must grant.
func selfReadError(verb, name, namespace string, err error) error {
	if kube.IsRBACDenial(err) {
		return &configError{variable: "POD_NAMESPACE", problem: fmt.Sprintf(
			"cannot %s (%q) in %q, macaque's own namespace, to find its Deployment, whose annotation %s is the pause switch: macaque's Role there must grant list on pods and get on replicasets and deployments: %v",
			verb, name, namespace, policy.PausedAnnotation, err)}
	}
	return fmt.Errorf("find macaque's own Deployment for the pause switch: %s %q in %q: %w", verb, name, namespace, err)
}

// ownNamespace is the namespace macaque runs in: POD_NAMESPACE, else the mounted service
// account's, else "" (not in a pod). Unlike defaultNamespace it never reads the kubeconfig:
// a laptop's context says where to kill, not where macaque's own Deployment is.
func ownNamespace(saNamespace string) string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	b, err := os.ReadFile(saNamespace)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// leaseAPI is what the start-up check of the election needs: the Lease read, and a create or
// update asked for in a dry run.
type leaseAPI interface {
	election.API
	ProbeCreateLease(ctx context.Context, l kube.Lease) error
	ProbeUpdateLease(ctx context.Context, l kube.Lease) error
}

// macaque hands it the one API client; this keeps the two in step.
var _ leaseAPI = (*kube.Client)(nil)

// preflightElection checks, in macaque's own namespace (own), that its Role grants what the
// election does with the Lease: get, and create when there is none yet or update when there
// is, each asked in a dry run. A refusal is a configError naming MACAQUE_LEADER_ELECTION, so a
// missing Role stops macaque at start instead of leaving it a standby for ever.
func preflightElection(ctx context.Context, api leaseAPI, own string) error {
	if own == "" {
		return badSetting("LEADER_ELECTION", "macaque's own namespace, where its Lease %s is kept, is unknown (not in a pod, and POD_NAMESPACE unset): set POD_NAMESPACE, or MACAQUE_LEADER_ELECTION=false to run one replica", election.LeaseName)
	}
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	verb := "get"
	l, err := api.GetLease(ctx, own, election.LeaseName)
	switch {
	case apierrors.IsNotFound(err):
		verb, err = "create", api.ProbeCreateLease(ctx, kube.Lease{Metadata: kube.LeaseMetadata{Name: election.LeaseName, Namespace: own}})
	case err == nil:
		verb, err = "update", api.ProbeUpdateLease(ctx, l)
	}
	// A conflict (the leader renewed it between the read and the dry run, or another replica
	// created it) comes after authorization: the Role allowed the write.
	if err == nil || apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		return nil
	}
	if kube.IsRBACDenial(err) {
		return badSetting("LEADER_ELECTION", "cannot %s the Lease %s in %q, macaque's own namespace: its Role there must grant get, create and update on leases (macaque.yml does), or set MACAQUE_LEADER_ELECTION=false to run one replica: %v",
			verb, election.LeaseName, own, err)
	}
	return fmt.Errorf("check that macaque may %s the Lease %s in %q: %w", verb, election.LeaseName, own, err)
}
