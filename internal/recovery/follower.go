package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/telemetry"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// Observer is told each verdict's measures: the seconds from the kill to each stage
// reached, and each workload not recovered. The metrics implement it; nil observes nothing.
type Observer interface {
	// Recovered records that a kill in namespace reached stage (telemetry.StageCreated,
	// StageReady, StageFullStrength) after took.
	Recovered(namespace string, stage telemetry.Stage, took time.Duration)
	// NotRecovered records a kill in namespace whose workload was not back by the timeout.
	NotRecovered(namespace string)
}

// The metrics are what macaque hands the Follower as its observer.
var _ Observer = (*telemetry.Metrics)(nil)

// Kill is a kill the API server accepted, as the killer hands it on the moment it was accepted:
// what its verdict follows, and what the verdict says it is about.
type Kill struct {
	Tick      time.Time // the kill's tick, as its report has it
	Namespace string
	Pod       string    // the victim
	UID       types.UID // the victim's: tells its replacement from it, and its verdict's Slack thread
	// Controller is the victim's own controller (its ReplicaSet, for a Deployment's pod), whose
	// new pod is the replacement; nil for a bare pod, which nothing recreates.
	Controller *kube.OwnerRef
	// Top is the workload whose full strength is the recovery: the one above Controller (the
	// Deployment), or Controller itself; nil without the guard, which reads it: Controller then.
	Top *kube.OwnerRef
	// RV is the resourceVersion at which the kill was seen: the DELETE's answer, or (for an
	// eviction, whose answer is a Status) the read-back's list just before it, so that the
	// watches start there and miss no pod created after the kill.
	RV string
	// Deleted is when the API server accepted the kill: every milestone is measured from it, and
	// the timeout runs from it. Zero: from when the follow starts.
	Deleted time.Time
	// Reported is closed once the kill's tick has handed its reports on to the notifier: the
	// verdict, followed from the moment of the kill, is sent only after it, so that Slack has
	// the kill's message before the verdict's reply. Nil: nothing to wait for.
	Reported <-chan struct{}
}

// API is what following a controller needs: get and watch on the workload kinds, watch
// on pods, which is what the Role in macaque.yml grants.
type API interface {
	// GetWorkload reads one controller of kind k; a 404 comes back as the API server's error.
	GetWorkload(ctx context.Context, namespace string, k kube.WorkloadKind, name string) (kube.Workload, error)
	// Watch opens a watch of q from resourceVersion rv: a stream of watch events, as JSON.
	Watch(ctx context.Context, q kube.WatchQuery, rv string) (io.ReadCloser, error)
	// ListEvents lists the Events about the object uid in namespace. macaque.yml does not
	// grant it (list on events): a not-recovered verdict quotes the latest when it may.
	ListEvents(ctx context.Context, namespace string, uid types.UID) ([]kube.SeenEvent, error)
}

// macaque hands it the one API client; this keeps the two in step.
var _ API = (*kube.Client)(nil)

// MaxFollowing bounds the kills followed at once: each holds a goroutine, what it knows of its
// workload and the events its namespace's shared watches hand it. Two ticks of the most
// victims a tick kills (the killer's maxVictims, 100) are all followed; a kill past it gets the
// verdict unknown at once, saying so, rather than a goroutine more.
const MaxFollowing = 200

// readTimeout bounds each read of a workload, as the killer's read-back of a pod is bounded.
const readTimeout = 5 * time.Second

// eventTimeout bounds the write of a verdict's Event, as the killer's Events of a tick are.
const eventTimeout = 4 * time.Second

// EventWriter writes the verdict's Event: create on events in group events.k8s.io, which the
// Role grants.
type EventWriter interface {
	// CreateEvent creates e; with dryRun the API server checks and authorizes it but stores nothing.
	CreateEvent(ctx context.Context, e kube.Event, dryRun bool) error
}

// macaque hands it the one API client; this keeps the two in step.
var _ EventWriter = (*kube.Client)(nil)

// EventBuilder builds an Event about regarding as macaque's other Events are built (the same
// reporting controller and instance, a name unique per Event, a note cut to fit), so that
// kubectl shows the verdict's beside the kill's.
type EventBuilder func(at time.Time, reason, action string, regarding kube.ObjectRef, related *kube.ObjectRef, note string) kube.Event

// Follower follows each killed pod's controller and sends a verdict on it. macaque runs one,
// on the kills its killer hands on.
type Follower struct {
	API      API
	Timeout  time.Duration // MACAQUE_RECOVERY_TIMEOUT
	Now      func() time.Time
	After    func(time.Duration) <-chan time.Time
	Log      *slog.Logger
	Events   EventWriter  // writes the verdict's Event on the workload; nil: none
	NewEvent EventBuilder // builds that Event; needed with Events
	Observer Observer     // the metrics; nil: none
	// Grace is how long a verdict waits for the notifier to take it once macaque is stopping
	// (macaque's shutdownGrace) before it is dropped; zero drops it at once.
	Grace time.Duration
	// Inherited gets, when this replica takes the election's lease over from one whose lease
	// ran out, the kills that one was following: each ends at once as unknown. Nil: none.
	Inherited <-chan Inheritance
	max       int // verdicts in flight at most; zero means MaxFollowing
	// following is the kills followed now, which Following gives the election for the Lease.
	following inFlight
	// claims matches the new pods of a workload to its kills followed at once.
	claims claims
	// feeds are the watches the follows share.
	feeds feeds
	// dropped counts the verdicts dropped because the notifier took none within Grace,
	// as macaque stopped.
	dropped atomic.Int64
}

// Run follows every kill that comes on kills, each in a goroutine of its own so that a verdict
// never delays a tick, another kill nor another verdict, and sends each verdict on verdicts,
// waiting for the notifier to take it. It registers each kill's claim in the order the kills
// come, which is theirs, before its follow starts. It ends the kills of each Inheritance on
// rc.Inherited at once, as unknown. When kills and rc.Inherited are closed, it waits for the
// verdicts in flight, which end at once with ctx done (unknown: macaque stopped), then closes
// verdicts.
func (rc *Follower) Run(ctx context.Context, kills <-chan Kill, verdicts chan<- Verdict) {
	defer close(verdicts)
	limit := rc.max
	if limit == 0 {
		limit = MaxFollowing
	}
	slots := make(chan struct{}, limit)
	var wg sync.WaitGroup
	inherited := rc.Inherited
	for kills != nil || inherited != nil {
		select {
		case kill, ok := <-kills:
			if !ok {
				kills = nil
				continue
			}
			rc.take(ctx, kill, slots, verdicts, &wg)
		case in, ok := <-inherited:
			if !ok {
				inherited = nil
				continue
			}
			for _, v := range rc.inherit(in) {
				wg.Go(func() { rc.finish(ctx, verdicts, Kill{}, v) })
			}
		}
	}
	wg.Wait()
	rc.feeds.wait()
}

// take starts following kill in a goroutine of wg, in one of slots, or ends it at once: a bare
// pod (not replaced), or past the slots.
func (rc *Follower) take(ctx context.Context, kill Kill, slots chan struct{}, verdicts chan<- Verdict, wg *sync.WaitGroup) {
	if kill.Controller == nil {
		wg.Go(func() { rc.finish(ctx, verdicts, kill, rc.base(kill, NotReplaced)) })
		return
	}
	select {
	case slots <- struct{}{}:
	default:
		v := rc.base(kill, Unknown)
		v.Why = fmt.Sprintf("%d verdicts already in flight (the most macaque follows at once): this kill is not followed", cap(slots))
		wg.Go(func() { rc.finish(ctx, verdicts, kill, v) })
		return
	}
	_, top, dk, tk, why := followed(kill)
	c := rc.claims.register(top.UID, kill, dk == kube.KindStatefulSet)
	var b begun
	if why == "" && ctx.Err() == nil {
		b = rc.begin(ctx, kill, tk)
	}
	rc.following.add(kill)
	wg.Go(func() {
		v := rc.follow(ctx, kill, c, b)
		<-slots // it has left its namespace's watches
		rc.finish(ctx, verdicts, kill, v)
		rc.following.done(kill)
	})
}

// begun is how a follow began: when, when the kill was accepted (the follow's start if the
// killer did not say), the timer of its timeout (which runs from the kill), and its places on
// its namespace's shared watches.
type begun struct {
	at, deleted time.Time
	deadline    <-chan time.Time
	on          watchedBy
}

// begin starts following kill, of a workload of kind tk: its timeout's timer, and its places on
// the watches, joined in kill order (as the claims are registered) so that a feed begins at
// the earliest kill's resourceVersion.
func (rc *Follower) begin(ctx context.Context, kill Kill, tk kube.WorkloadKind) begun {
	b := begun{at: rc.Now(), deleted: kill.Deleted}
	if b.deleted.IsZero() {
		b.deleted = b.at
	}
	b.deadline = rc.After(max(0, b.deleted.Add(rc.Timeout).Sub(b.at)))
	b.on = watchedBy{rc.feeds.join(ctx, rc, podsKey(kill.Namespace), kill.RV, b.at), rc.feeds.join(ctx, rc, kindKey(kill.Namespace, tk), kill.RV, b.at)}
	return b
}

// base is the verdict on kill with nothing measured yet.
func (rc *Follower) base(kill Kill, s Status) Verdict {
	v := Verdict{Time: kill.Tick, Namespace: kill.Namespace, Pod: kill.Pod, Status: s, Timeout: rc.Timeout, UID: kill.UID}
	if kill.Top != nil {
		v.Workload = kill.Top.String()
	}
	return v
}

// finish logs v, the verdict on kill, as one line, writes its Event, tells the observer and
// sends it to the notifier. It first waits for kill's tick to have handed its reports on (the
// killer does at the tick's end, however it ends): a kill is followed from the moment it
// was accepted, and a quick verdict must not reach Slack or the log before its kill's report.
func (rc *Follower) finish(ctx context.Context, verdicts chan<- Verdict, kill Kill, v Verdict) {
	if kill.Reported != nil {
		<-kill.Reported
	}
	log := rc.Log.With("namespace", v.Namespace, "pod", v.Pod, "workload", v.Workload, "verdict", v.Status,
		"replacement", v.Replacement, "created_seconds", milestoneSeconds(v.Created), "ready_seconds", milestoneSeconds(v.Ready),
		"full_strength_seconds", milestoneSeconds(v.Full), "strength", v.Strength)
	if v.Why != "" {
		log = log.With("why", v.Why)
	}
	if v.Status == Recovered {
		log.Info("recovery verdict")
	} else {
		log.Warn("recovery verdict")
	}
	if rc.Observer != nil {
		for _, m := range []struct {
			stage telemetry.Stage
			m     Milestone
		}{{telemetry.StageCreated, v.Created}, {telemetry.StageReady, v.Ready}, {telemetry.StageFullStrength, v.Full}} {
			if m.m.Reached {
				rc.Observer.Recovered(v.Namespace, m.stage, m.m.After)
			}
		}
		if v.Status == NotRecovered {
			rc.Observer.NotRecovered(v.Namespace)
		}
	}
	rc.send(ctx, verdicts, v)
	// After the notifier has it, and not once macaque is stopping: a SIGTERM's verdicts,
	// unknown, then reach Slack within the grace without waiting on an Event that would
	// only repeat the kill's own.
	if ctx.Err() == nil {
		rc.record(ctx, v)
	}
}

// send hands v to the notifier, waiting for it to take it: it reads its channels promptly.
// Once macaque is stopping, the notifier still takes verdicts until they are closed; v is
// dropped, logged and counted, only if it takes none within rc.Grace.
func (rc *Follower) send(ctx context.Context, verdicts chan<- Verdict, v Verdict) {
	select {
	case verdicts <- v:
		return
	case <-ctx.Done():
	}
	select {
	case verdicts <- v:
	case <-rc.After(rc.Grace):
		n := rc.dropped.Add(1)
		rc.Log.Error("notifier gone, dropping verdict", "namespace", v.Namespace, "pod", v.Pod, "verdict", v.Status, "dropped_total", n)
	}
}

// milestoneSeconds is a milestone as the log line gives it: -1 when it was not reached.
func milestoneSeconds(m Milestone) float64 {
	if !m.Reached {
		return -1
	}
	return m.After.Seconds()
}

// reasonRecovered and reasonNotRecovered are the reasons of a verdict's Event.
const (
	reasonRecovered    = "ChaosRecovered"
	reasonNotRecovered = "ChaosNotRecovered"
	reasonUnknown      = "ChaosRecoveryUnknown"
)

// record writes v's Event on the workload followed (Warning when it did not recover), bounded
// by eventTimeout. A bare pod's verdict has no workload to write it on, and the kill's own
// Event already says that nothing owns it.
func (rc *Follower) record(ctx context.Context, v Verdict) {
	if rc.Events == nil || v.Workload == "" || v.Status == NotReplaced {
		return
	}
	kind, name, _ := strings.Cut(v.Workload, "/")
	ref, ok := rc.workloadRef(kind, name, v.Namespace)
	if !ok {
		return
	}
	reason, typ := reasonRecovered, "Normal"
	if v.Status == NotRecovered {
		reason, typ = reasonNotRecovered, "Warning"
	}
	if v.Status == Unknown {
		reason = reasonUnknown
	}
	pod := kube.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: v.Namespace, Name: v.Pod}
	ev := rc.NewEvent(rc.Now(), reason, "Recover", ref, &pod, string(v.Status)+": "+v.Summary())
	ev.Type = typ
	// Begun before macaque was stopping, the write is not cut by the stop: bounded by
	// eventTimeout, it ends well within the shutdown's grace, as the kills' Events do.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
	defer cancel()
	if err := rc.Events.CreateEvent(ctx, ev, false); err != nil {
		rc.Log.Warn("could not write an event", "namespace", v.Namespace, "regarding", v.Workload, "reason", reason, "err", err)
	}
}

// workloadRef is an Event's reference to the workload kind/name, if it is one the guard knows.
func (rc *Follower) workloadRef(kind, name, namespace string) (kube.ObjectRef, bool) {
	for _, k := range kube.WorkloadKinds {
		if k.Kind == kind {
			api := "v1"
			if k.Group != "" {
				api = k.Group + "/v1"
			}
			return kube.ObjectRef{APIVersion: api, Kind: kind, Namespace: namespace, Name: name}, true
		}
	}
	return kube.ObjectRef{}, false
}

// stoppedOr is why, unless ctx is done: then macaque stopped, which is why the watch ended.
func stoppedOr(ctx context.Context, why string) string {
	if ctx.Err() != nil {
		return "macaque stopped"
	}
	return why
}

// strengthOf is "ready/desired" of w, a workload of kind k: 3/3.
func strengthOf(k kube.WorkloadKind, w kube.Workload) string {
	if k == kube.KindDaemonSet {
		return fmt.Sprintf("%d/%d", w.Status.NumberReady, w.Status.DesiredNumberScheduled)
	}
	return fmt.Sprintf("%d/%d", w.Status.ReadyReplicas, w.Desired())
}

// podSelector is the label selector of w's pods, which tells them on the namespace's pods'
// watch: from its spec.selector, a LabelSelector for the apps kinds, a map for a
// ReplicationController.
func podSelector(k kube.WorkloadKind, w kube.Workload) (labels.Selector, error) {
	if len(w.Spec.Selector) == 0 {
		return nil, errors.New("no spec.selector to find its pods by")
	}
	var sel labels.Selector
	if k == kube.KindRC {
		var set map[string]string
		if err := json.Unmarshal(w.Spec.Selector, &set); err != nil {
			return nil, fmt.Errorf("decode spec.selector: %w", err)
		}
		sel = labels.SelectorFromSet(set)
	} else {
		var ls metav1.LabelSelector
		if err := json.Unmarshal(w.Spec.Selector, &ls); err != nil {
			return nil, fmt.Errorf("decode spec.selector: %w", err)
		}
		var err error
		if sel, err = metav1.LabelSelectorAsSelector(&ls); err != nil {
			return nil, fmt.Errorf("spec.selector: %w", err)
		}
	}
	// A null or empty one too, of either kind.
	if sel.Empty() {
		return nil, errors.New("an empty spec.selector would take every pod in the namespace for its own")
	}
	return sel, nil
}
