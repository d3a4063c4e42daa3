package recovery

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/macaque-chaos/macaque/internal/text"

	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/policy"
	"k8s.io/apimachinery/pkg/types"
)

// missing says, at the timeout, what keeps the workload from full strength: its own state
// ("web: 2/3 ready after 5m0s"), then the replacement's ("web-7d9f-xyz is Pending: 0/1 nodes
// are available") or, when none was created, why the controller says it could not create one
// (a ReplicaFailure condition: a quota, an admission webhook).
func (f *tracker) missing(ctx context.Context, repl *newPod) string {
	rc, kill, shown := f.rc, f.kill, f.lastShown
	readCtx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	if f.latest == nil {
		if w, err := rc.API.GetWorkload(readCtx, kill.Namespace, f.tk, f.top.Name); err == nil {
			shown = w
		}
	}
	parts := []string{fmt.Sprintf("%s after %v", f.state(shown, repl), rc.Timeout)}
	if repl != nil {
		parts = append(parts, repl.why)
		if ev := rc.latestEvent(readCtx, kill.Namespace, repl.uid); ev != "" {
			parts = append(parts, ev)
		}
		return text.Join(parts...)
	}
	if rc.claims.blind(f.claim) {
		return text.Join(parts...) // whether one was created is not known: settle says why
	}
	parts = append(parts, "no replacement created")
	failed := false
	if w, err := rc.API.GetWorkload(readCtx, kill.Namespace, f.dk, f.direct.Name); err == nil {
		for _, c := range w.Status.Conditions {
			if c.Type == "ReplicaFailure" && c.Status == "True" {
				parts[len(parts)-1] += fmt.Sprintf(" (%s %s: %s)", f.dk.Kind, f.direct.Name, cmp.Or(c.Message, c.Reason))
				failed = true
			}
		}
	}
	// A StatefulSet (or a DaemonSet) has no ReplicaFailure condition: only its Events say why
	// it could not create the pod.
	if !failed {
		if ev := rc.latestEvent(readCtx, kill.Namespace, f.direct.UID); ev != "" {
			parts = append(parts, fmt.Sprintf("%s %s's %s", f.dk.Kind, f.direct.Name, ev))
		}
	}
	return strings.Join(parts, "; ")
}

// state is what shown, the workload as last known at the timeout, says of its strength:
// "web: 2/3 ready"; when it shows full strength, why that is not the recovery.
func (f *tracker) state(shown kube.Workload, repl *newPod) string {
	state := policy.Strength(f.tk, shown)
	switch {
	case shown.Metadata.Name == "":
		return f.top.Name + ": state unknown"
	case state != "":
		return state
	case repl != nil && repl.readySeen.IsZero():
		return f.top.Name + ": at full strength but its replacement is not Ready"
	case f.latest == nil:
		return f.top.Name + ": its status unchanged since the kill, which it does not count yet"
	default:
		return f.top.Name + ": at full strength only in a state that does not count the loss"
	}
}

// latestEvent is "latest event: Warning FailedScheduling: 0/1 nodes are available ..." for the
// object uid (its latest Warning, or its latest Event when none is a Warning, macaque's own
// left out), or "" when it has none or they cannot be read: macaque.yml's Role grants no list
// on events, so only an operator who adds it gets this, and a refusal is no failure.
func (rc *Follower) latestEvent(ctx context.Context, namespace string, uid types.UID) string {
	evs, err := rc.API.ListEvents(ctx, namespace, uid)
	if err != nil {
		rc.Log.Debug("could not read the events of a workload not recovered", "namespace", namespace, "uid", uid, "err", err)
		return ""
	}
	// macaque's own Events (a skipped tick's ChaosSkipped on the workload) say nothing of why
	// it is short; a Warning says more than a later Normal one ("Pulled" after "Failed").
	var latest *kube.SeenEvent
	for i := range evs {
		e := &evs[i]
		if e.ReportingController == kube.ReportingController {
			continue
		}
		warning, latestWarning := e.Type == "Warning", latest != nil && latest.Type == "Warning"
		if latest == nil || (warning && !latestWarning) || (warning == latestWarning && !e.Last().Before(latest.Last())) {
			latest = e
		}
	}
	if latest == nil {
		return ""
	}
	return fmt.Sprintf("latest event: %s %s: %s", cmp.Or(latest.Type, "Normal"), latest.Reason, latest.Note)
}
