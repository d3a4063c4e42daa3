package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/macaque-chaos/macaque/internal/text"

	"github.com/macaque-chaos/macaque/internal/kube"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kubernetes Events (events.k8s.io/v1) for what macaque did, so that `kubectl describe
// deployment web` and `kubectl get events` show it beside the rest of the workload's history.
// Events are a record, never a step of the kill: they are written after it, bounded by a
// timeout of their own, and a failure to write one is logged and counted, nothing more.

// The reasons macaque's Events carry: its own, not the kubelet's Killing, so that they can be
// told apart (kubectl get events --field-selector reason=ChaosKill).
const (
	reasonKill    = "ChaosKill"
	reasonSkipped = "ChaosSkipped"
	reasonBlocked = "ChaosBlocked"
)

// Fixed parts of every Event macaque writes; events.k8s.io/v1 requires each.
const (
	maxNote     = 1024 // the API server refuses a longer note
	maxInstance = 128  // nor a longer reportingInstance
	maxName     = 253  // an object name is a DNS subdomain
)

// eventsTimeout bounds all of one tick's Events together (at most one per pick and one more),
// so that a slow API server delays the next tick by this much at most and a SIGTERM's
// in-flight kill still ends within shutdownGrace.
const eventsTimeout = 4 * time.Second

// eventAPI writes Events: create on events in group events.k8s.io, which the Role grants.
type eventAPI interface {
	// CreateEvent creates e; with dryRun the API server checks and authorizes it but stores nothing.
	CreateEvent(ctx context.Context, e kube.Event, dryRun bool) error
}

// run hands it the one API client; this keeps the two in step.
var _ eventAPI = (*kube.Client)(nil)

// eventRecorder writes the Events of each tick. A nil *eventRecorder writes none.
type eventRecorder struct {
	api      eventAPI
	instance string // reportingInstance: macaque's own pod
	// mode is how a kill is done, as the Events' notes say it: "delete" until an evict mode
	// is wired in here.
	mode string
	// cluster is MACAQUE_CLUSTER_NAME, which starts every note when set: Events exported from
	// many clusters to one place still say whose they are.
	cluster string
	now     func() time.Time
	timeout time.Duration
	log     *slog.Logger
	failed  int // Events that could not be written since start; only the killer goroutine writes it
}

// record writes r's Events: on a kill, one on the pod and one on its top controller; on a
// skipped tick, one on each workload that passed a pick over. Other outcomes write none: a
// dry run did nothing, and a failed or unknown kill is not known to have been done.
func (e *eventRecorder) record(ctx context.Context, r Result) {
	e.recordAll(ctx, []Result{r})
}

// recordAll writes the Events of a tick's reports, all within one e.timeout.
func (e *eventRecorder) recordAll(ctx context.Context, reports []Result) {
	if e == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	var all []kube.Event
	for _, r := range reports {
		all = append(all, e.eventsOf(r)...)
	}
	for _, ev := range all {
		err := e.api.CreateEvent(ctx, ev, false)
		if err == nil {
			continue
		}
		e.failed++
		e.log.Warn("could not write an event", "namespace", ev.Metadata.Namespace, "regarding", ev.Regarding.Kind+"/"+ev.Regarding.Name,
			"reason", ev.Reason, "events_failed", e.failed, "err", err)
	}
}

// eventsOf builds the Events r calls for.
func (e *eventRecorder) eventsOf(r Result) []kube.Event {
	at := e.now()
	tick := r.Time.Format(time.RFC3339)
	if r.Outcome == OutcomeKilled {
		pod := kube.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: r.Namespace, Name: r.Pod}
		if r.top == nil {
			return []kube.Event{e.event(at, reasonKill, "Kill", pod, nil, fmt.Sprintf("macaque killed this pod (mode %s) at the tick of %s", e.mode, tick))}
		}
		top := refTo(*r.top, r.Namespace)
		return []kube.Event{
			e.event(at, reasonKill, "Kill", pod, &top, fmt.Sprintf("macaque killed this pod of %s (mode %s) at the tick of %s", r.top, e.mode, tick)),
			e.event(at, reasonKill, "Kill", top, &pod, fmt.Sprintf("macaque killed its pod %s (mode %s) at the tick of %s", r.Pod, e.mode, tick)),
		}
	}
	if r.Outcome != OutcomeSkipped && r.Outcome != OutcomeBlocked {
		return nil
	}
	var out []kube.Event
	for _, b := range r.blamed {
		pod := kube.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: b.namespace, Name: b.pod}
		note := fmt.Sprintf("macaque passed over its pod %s at the tick of %s: %s; the tick killed nothing", b.pod, tick, b.why)
		out = append(out, e.event(at, cmp.Or(b.reason, reasonSkipped), "Skip", refTo(b.workload, b.namespace), &pod, note))
	}
	return out
}

// event builds one Event about regarding, valid as events.k8s.io/v1 validates it.
func (e *eventRecorder) event(at time.Time, reason, action string, regarding kube.ObjectRef, related *kube.ObjectRef, note string) kube.Event {
	if e.cluster != "" {
		note = "[" + e.cluster + "] " + note
	}
	return kube.Event{
		APIVersion: "events.k8s.io/v1", Kind: "Event",
		Metadata:            kube.EventMeta{Name: eventName(regarding, at), Namespace: regarding.Namespace},
		EventTime:           metav1.NewMicroTime(at),
		ReportingController: kube.ReportingController,
		ReportingInstance:   text.Truncate(e.instance, maxInstance),
		Action:              action,
		Reason:              reason,
		Regarding:           regarding,
		Related:             related,
		Note:                text.Truncate(note, maxNote),
		Type:                "Normal",
	}
}

// refTo is an Event's reference to the workload o in namespace.
func refTo(o kube.OwnerRef, namespace string) kube.ObjectRef {
	return kube.ObjectRef{APIVersion: o.APIVersion, Kind: o.Kind, Namespace: namespace, Name: o.Name, UID: o.UID}
}

// eventName is unique per Event: the object's name, its kind (a pod and an operator's
// resource may share a name) and the time to the nanosecond, as client-go names Events.
// A long object name is cut so that the whole stays a valid name.
func eventName(o kube.ObjectRef, at time.Time) string {
	suffix := fmt.Sprintf(".%s.%x", strings.ToLower(o.Kind), at.UnixNano())
	// A valid name ends alphanumeric, so the trim only ever acts on a name that was cut.
	name := strings.TrimRight(o.Name[:min(len(o.Name), maxName-len(suffix))], "-.")
	return name + suffix
}

// preflightEvents asks the API server, with a dry-run create that stores nothing, whether
// macaque may write Events in namespace. A Role without it only warns: Events record what
// macaque does, they are not part of doing it safely, and a Role fixed later is picked up
// without a restart since every Event is still tried.
func preflightEvents(ctx context.Context, rec *eventRecorder, namespace string) {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	probe := rec.event(rec.now(), reasonKill, "Kill", kube.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: namespace, Name: strings.ToLower(kube.PreflightPod)}, nil,
		"macaque's start-up check that it may write Events (a dry run: never stored)")
	err := rec.api.CreateEvent(ctx, probe, true)
	if err == nil {
		return
	}
	if apierrors.IsForbidden(err) {
		rec.log.Warn("macaque may not write Events: kills and skipped ticks will not show in kubectl get events (grant create on events in group events.k8s.io in macaque's Role)",
			"namespace", namespace, "err", err)
		return
	}
	rec.log.Warn("could not check that macaque may write Events", "namespace", namespace, "err", err)
}
