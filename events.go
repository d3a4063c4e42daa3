package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
	reportingController = "macaque" // a qualified name, as validation requires
	eventsAPI           = "/apis/events.k8s.io/v1"
	maxNote             = 1024 // the API server refuses a longer note
	maxInstance         = 128  // nor a longer reportingInstance
	maxName             = 253  // an object name is a DNS subdomain
)

// eventsTimeout bounds all of one tick's Events together (at most one per pick and one more),
// so that a slow API server delays the next tick by this much at most and a SIGTERM's
// in-flight kill still ends within shutdownGrace.
const eventsTimeout = 4 * time.Second

// eventAPI writes Events: create on events in group events.k8s.io, which the Role grants.
type eventAPI interface {
	// createEvent creates e; with dryRun the API server checks and authorizes it but stores nothing.
	createEvent(ctx context.Context, e event, dryRun bool) error
}

// event is the part of an events.k8s.io/v1 Event macaque writes.
type event struct {
	APIVersion          string           `json:"apiVersion"`
	Kind                string           `json:"kind"`
	Metadata            eventMeta        `json:"metadata"`
	EventTime           metav1.MicroTime `json:"eventTime"`
	ReportingController string           `json:"reportingController"`
	ReportingInstance   string           `json:"reportingInstance"`
	Action              string           `json:"action"`
	Reason              string           `json:"reason"`
	Regarding           objectRef        `json:"regarding"`
	Related             *objectRef       `json:"related,omitempty"`
	Note                string           `json:"note"`
	Type                string           `json:"type"`
}

// eventMeta is an Event's metadata: a name unique per Event, in the namespace of its objects.
type eventMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// objectRef is the object an Event is about (regarding) or mentions (related).
type objectRef struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Namespace  string    `json:"namespace"`
	Name       string    `json:"name"`
	UID        types.UID `json:"uid,omitempty"`
}

// eventRecorder writes the Events of each tick. A nil *eventRecorder writes none.
type eventRecorder struct {
	api      eventAPI
	instance string // reportingInstance: macaque's own pod
	// mode is how a kill is done, as the Events' notes say it: "delete" until an evict mode
	// is wired in here.
	mode    string
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
	var all []event
	for _, r := range reports {
		all = append(all, e.eventsOf(r)...)
	}
	for _, ev := range all {
		err := e.api.createEvent(ctx, ev, false)
		if err == nil {
			continue
		}
		e.failed++
		e.log.Warn("could not write an event", "namespace", ev.Metadata.Namespace, "regarding", ev.Regarding.Kind+"/"+ev.Regarding.Name,
			"reason", ev.Reason, "events_failed", e.failed, "err", err)
	}
}

// eventsOf builds the Events r calls for.
func (e *eventRecorder) eventsOf(r Result) []event {
	at := e.now()
	tick := r.Time.Format(time.RFC3339)
	if r.Outcome == OutcomeKilled {
		pod := objectRef{APIVersion: "v1", Kind: "Pod", Namespace: r.Namespace, Name: r.Pod}
		if r.top == nil {
			return []event{e.event(at, reasonKill, "Kill", pod, nil, fmt.Sprintf("macaque killed this pod (mode %s) at the tick of %s", e.mode, tick))}
		}
		top := refTo(*r.top, r.Namespace)
		return []event{
			e.event(at, reasonKill, "Kill", pod, &top, fmt.Sprintf("macaque killed this pod of %s (mode %s) at the tick of %s", r.top, e.mode, tick)),
			e.event(at, reasonKill, "Kill", top, &pod, fmt.Sprintf("macaque killed its pod %s (mode %s) at the tick of %s", r.Pod, e.mode, tick)),
		}
	}
	if r.Outcome != OutcomeSkipped && r.Outcome != OutcomeBlocked {
		return nil
	}
	var out []event
	for _, b := range r.blamed {
		pod := objectRef{APIVersion: "v1", Kind: "Pod", Namespace: b.namespace, Name: b.pod}
		note := fmt.Sprintf("macaque passed over its pod %s at the tick of %s: %s; the tick killed nothing", b.pod, tick, b.why)
		out = append(out, e.event(at, cmp.Or(b.reason, reasonSkipped), "Skip", refTo(b.workload, b.namespace), &pod, note))
	}
	return out
}

// event builds one Event about regarding, valid as events.k8s.io/v1 validates it.
func (e *eventRecorder) event(at time.Time, reason, action string, regarding objectRef, related *objectRef, note string) event {
	return event{
		APIVersion: "events.k8s.io/v1", Kind: "Event",
		Metadata:            eventMeta{Name: eventName(regarding, at), Namespace: regarding.Namespace},
		EventTime:           metav1.NewMicroTime(at),
		ReportingController: reportingController,
		ReportingInstance:   truncate(e.instance, maxInstance),
		Action:              action,
		Reason:              reason,
		Regarding:           regarding,
		Related:             related,
		Note:                truncate(note, maxNote),
		Type:                "Normal",
	}
}

// refTo is an Event's reference to the workload o in namespace.
func refTo(o ownerRef, namespace string) objectRef {
	return objectRef{APIVersion: o.APIVersion, Kind: o.Kind, Namespace: namespace, Name: o.Name, UID: o.UID}
}

// eventName is unique per Event: the object's name, its kind (a pod and an operator's
// resource may share a name) and the time to the nanosecond, as client-go names Events.
// A long object name is cut so that the whole stays a valid name.
func eventName(o objectRef, at time.Time) string {
	suffix := fmt.Sprintf(".%s.%x", strings.ToLower(o.Kind), at.UnixNano())
	// A valid name ends alphanumeric, so the trim only ever acts on a name that was cut.
	name := strings.TrimRight(o.Name[:min(len(o.Name), maxName-len(suffix))], "-.")
	return name + suffix
}

func (p *restPods) createEvent(ctx context.Context, e event, dryRun bool) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	req := p.client.Post().AbsPath(eventsAPI, "namespaces", e.Metadata.Namespace, "events").Body(body)
	if dryRun {
		req = req.Param("dryRun", "All")
	}
	return req.Do(ctx).Error()
}

// preflightEvents asks the API server, with a dry-run create that stores nothing, whether
// macaque may write Events in namespace. A Role without it only warns: Events record what
// macaque does, they are not part of doing it safely, and a Role fixed later is picked up
// without a restart since every Event is still tried.
func preflightEvents(ctx context.Context, rec *eventRecorder, namespace string) {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	probe := rec.event(rec.now(), reasonKill, "Kill", objectRef{APIVersion: "v1", Kind: "Pod", Namespace: namespace, Name: strings.ToLower(preflightPod)}, nil,
		"macaque's start-up check that it may write Events (a dry run: never stored)")
	err := rec.api.createEvent(ctx, probe, true)
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
