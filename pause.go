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

	"github.com/macaque-chaos/macaque/internal/kube"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// The kill switch: the annotation chaos.macaque.dev/paused on macaque's own Deployment stops
// every kill from the next tick on, without a redeploy, and lets them resume when it is removed
// or its time has passed.

// pausedAnnotation is the kill switch's annotation on macaque's own Deployment.
const pausedAnnotation = "chaos.macaque.dev/paused"

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

// workloadGetter reads one controller: all the pause switch needs at each tick.
type workloadGetter interface {
	GetWorkload(ctx context.Context, namespace string, k kube.WorkloadKind, name string) (kube.Workload, error)
}

// pauseSwitch reads the kill switch at each tick. It remembers what Slack was last told, so
// that Slack hears of a pause once when it starts (or its terms change) and once when it ends,
// not at every tick. Only the killer goroutine uses it.
type pauseSwitch struct {
	api        workloadGetter
	namespace  string // macaque's own namespace
	deployment string // macaque's own Deployment
	now        func() time.Time
	log        *slog.Logger
	announced  string // the terms of the pause Slack was last told of; empty when not paused
	lastValue  string // the annotation's value at the last paused tick, to say how the pause ended
}

// tickPause is the pause switch's answer for one tick.
type tickPause struct {
	paused   bool
	announce bool   // the pause started or changed its terms at this tick: Slack must hear of it
	terms    string // while paused: until when, and how to lift it
	resumed  string // on the first tick after a pause: how it ended
}

// errPauseUnread is a tick whose pause switch could not be read: it kills nothing, since the
// switch may be on.
var errPauseUnread = errors.New("the pause switch could not be read, so nothing was killed")

// check reads the switch for one tick. A nil *pauseSwitch (macaque is not run by a
// Deployment) never pauses. An error means the Deployment could not be read; the caller must
// then kill nothing. What Slack was told is kept across such a tick.
func (p *pauseSwitch) check(ctx context.Context) (tickPause, error) {
	if p == nil {
		return tickPause{}, nil
	}
	w, err := p.api.GetWorkload(ctx, p.namespace, kube.KindDeployment, p.deployment)
	if err != nil {
		return tickPause{}, fmt.Errorf("%w: get deployment %q in %q: %w", errPauseUnread, p.deployment, p.namespace, err)
	}
	value, present := w.Metadata.Annotations[pausedAnnotation]
	st := readPause(value, present, p.now())
	if !st.paused {
		if p.announced == "" {
			return tickPause{}, nil
		}
		out := tickPause{resumed: p.howEnded(value, present)}
		p.announced, p.lastValue = "", ""
		return out, nil
	}
	terms := p.terms(st, value)
	out := tickPause{paused: true, terms: terms, announce: terms != p.announced}
	if out.announce && st.bad {
		p.log.Warn("the pause switch holds a value macaque does not understand: paused to be safe", "annotation", pausedAnnotation,
			"value", value, "deployment", p.namespace+"/"+p.deployment, "want", "true, false or an RFC 3339 time")
	}
	p.announced, p.lastValue = terms, value
	return out, nil
}

// terms says, for a report, until when macaque is paused and how to lift the pause.
func (p *pauseSwitch) terms(st pauseState, value string) string {
	lift := fmt.Sprintf("lift it with `kubectl -n %s annotate deploy %s %s-`", p.namespace, p.deployment, pausedAnnotation)
	if st.bad {
		return fmt.Sprintf("paused to be safe: the annotation %s on deployment %s/%s is %q, which is neither true, false nor an RFC 3339 time; %s",
			pausedAnnotation, p.namespace, p.deployment, value, lift)
	}
	if st.until.IsZero() {
		return fmt.Sprintf("paused until the annotation %s is removed from deployment %s/%s; %s", pausedAnnotation, p.namespace, p.deployment, lift)
	}
	return fmt.Sprintf("paused until %s by the annotation %s on deployment %s/%s; %s", value, pausedAnnotation, p.namespace, p.deployment, lift)
}

// howEnded says why the pause is over, for the first report after it.
func (p *pauseSwitch) howEnded(value string, present bool) string {
	if !present {
		return fmt.Sprintf("the pause is over: the annotation %s was removed; kills resume", pausedAnnotation)
	}
	if value == p.lastValue {
		return fmt.Sprintf("the pause until %s is over; kills resume", value)
	}
	return fmt.Sprintf("the pause is over: the annotation %s is now %q; kills resume", pausedAnnotation, value)
}

// selfAPI reads macaque's own pod and the controllers above it, to find its Deployment.
type selfAPI interface {
	Lookup(ctx context.Context, namespace, name, selector string) (kube.Pod, error)
	workloadGetter
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
func startPauseSwitch(ctx context.Context, api selfAPI, podName, namespace string, log *slog.Logger) (*pauseSwitch, string, error) {
	name, why, err := findOwnDeployment(ctx, api, podName, namespace)
	if err != nil || name == "" {
		return nil, why, err
	}
	return &pauseSwitch{api: api, namespace: namespace, deployment: name, now: time.Now, log: log}, "", nil
}

// describe is what the start line says of the switch; why is the reason there is none.
func (p *pauseSwitch) describe(why string) string {
	if p == nil {
		return "unavailable: " + why
	}
	return "annotation " + pausedAnnotation + " on deployment " + p.namespace + "/" + p.deployment
}

// selfReadError words a failure to read macaque's own pod, ReplicaSet or Deployment: RBAC's
// refusal stops macaque at start with one line naming what the Role must grant.
func selfReadError(verb, name, namespace string, err error) error {
	if kube.IsRBACDenial(err) {
		return &configError{variable: "POD_NAMESPACE", problem: fmt.Sprintf(
			"cannot %s (%q) in %q, macaque's own namespace, to find its Deployment, whose annotation %s is the pause switch: macaque's Role there must grant list on pods and get on replicasets and deployments: %v",
			verb, name, namespace, pausedAnnotation, err)}
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
