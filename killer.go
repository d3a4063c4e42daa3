package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/macaque-chaos/macaque/internal/telemetry"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// Outcome is what became of one tick's kill. Each value is a distinct, truthful report:
// a pod is only ever reported as killed when the API server accepted its deletion.
type Outcome string

// The outcomes a tick can have.
const (
	OutcomeKilled       Outcome = "killed"
	OutcomeDryRun       Outcome = "dry-run"
	OutcomeNoCandidates Outcome = "no candidates"
	OutcomeNotFound     Outcome = "not found" // every pick was gone, out of scope or changed by the time we deleted it
	OutcomeSkipped      Outcome = "skipped"   // the steady-state guard passed over every pick: none was safe to kill
	OutcomeBlocked      Outcome = "blocked"   // evict mode: a PodDisruptionBudget refused the eviction of every pick the guard let through
	OutcomePaused       Outcome = "paused"    // the pause switch on macaque's Deployment is on: nothing was listed or killed
	OutcomeForbidden    Outcome = "forbidden" // RBAC denied macaque's ServiceAccount
	OutcomeDenied       Outcome = "denied"    // the API server refused for another reason: an admission webhook or policy
	OutcomeUnknown      Outcome = "unknown"   // the DELETE was sent but its result could not be learnt
	OutcomeError        Outcome = "error"
)

// Result is the report of one tick, sent from the killer to the notifier.
type Result struct {
	Time       time.Time // the tick's scheduled time, in the schedule's zone
	Scope      string    // the namespaces in scope, as scope.String names them
	Namespace  string    // the victim's namespace; for a tick with no victim, the scope's only namespace, if it has one
	Selector   string    // as the user wrote it; empty means every pod
	Pod        string
	Owner      string // "Kind/name" of the controlling owner, empty for a bare pod
	Node       string
	Candidates int // Running, non-terminating pods in scope when we listed
	Outcome    Outcome
	Mode       killMode // how the pod was, or was to be, killed: deleted or evicted
	// Deleted is when the API server was seen to accept the deletion (or eviction): its answer,
	// or the read-back that found the pod gone after the answer was lost. Zero unless killed.
	Deleted time.Time
	// Note is a fact the report must carry beside the outcome, e.g. that a kill was confirmed by
	// a read-back because the DELETE's own answer never came.
	Note string
	// Passed lists the picks that were rejected before this one (since the tick's previous
	// victim), each as "namespace/pod: why"; on the last report of a tick that killed fewer pods than
	// MACAQUE_KILL_COUNT asked for, also those rejected after it.
	Passed []string
	// KilledBefore counts the victims this tick killed before the pick this report is about,
	// on the report of a failure that ended a tick of several (MACAQUE_KILL_COUNT).
	KilledBefore int
	// Resumed, on the first tick after a pause, says how the pause ended.
	Resumed string
	// Quiet is a report that is logged but not posted: a paused tick after the one that
	// announced the pause.
	Quiet bool
	Err   error // why, for every outcome but killed, dry-run, no candidates and paused
	// top is the victim's top controller (see verdict.top), nil for a bare pod or without a
	// guard: a kill's Event goes on it as well as on the pod.
	top *ownerRef
	// controller is the victim's own controller (its ReplicaSet, for a Deployment's pod), nil
	// for a bare pod: the recovery verdict watches for the pod it recreates.
	controller *ownerRef
	// uid is the victim's UID, which tells its replacement from it and its verdict's thread.
	uid types.UID
	// killRV is the resourceVersion at which the kill was seen: the DELETE's answer, or (for an
	// eviction, whose answer is a Status) the read-back's list just before it, so that the
	// recovery's watches start there and miss no pod created after the kill.
	killRV string
	// reported is closed once the tick's reports are on their way to the notifier: the verdict
	// on this kill, followed from the moment of the kill, is sent only after it, so that Slack
	// has the kill's message before the verdict's reply. Nil: nothing to wait for.
	reported <-chan struct{}
	// blamed are the workloads whose annotation or state passed picks over, each once, in the
	// order first met: a skipped tick's Events go on them.
	blamed []blame
}

// blame is a workload that made the tick pass over a pick (the guard, or its
// PodDisruptionBudget), the first such pick and why, and the Event reason that says which.
type blame struct {
	workload            ownerRef
	namespace, pod, why string
	reason              string
}

// addBlame records that workload, in namespace, passed pod over for why, unless it already
// passed one over.
func (r *Result) addBlame(workload *ownerRef, namespace, pod, why, reason string) {
	if workload == nil || slices.ContainsFunc(r.blamed, func(b blame) bool { return b.workload.UID == workload.UID }) {
		return
	}
	r.blamed = append(r.blamed, blame{workload: *workload, namespace: namespace, pod: pod, why: why, reason: reason})
}

// victim is the pod chosen for a kill, as read back just before deleting it.
type victim struct {
	Namespace       string
	UID             types.UID
	ResourceVersion string
	Controller      *ownerRef // the controlling owner, nil for a bare pod; the guard reads up from it
	Node            string
	Running         bool
	Ready           bool // the pod's Ready condition is True
	Terminating     bool
	Annotations     map[string]string // read for the opt-out annotation
	Labels          map[string]string // matched against PodDisruptionBudgets that refuse an eviction together
	Created         time.Time         // creationTimestamp, for MACAQUE_MIN_POD_AGE
	// listRV is the resourceVersion of the list that read it back: the whole store's at that
	// moment, where a recovery's watches start when the kill's own answer carries none.
	listRV string
}

// owner is how a report names v's controlling owner ("Kind/name"), empty for a bare pod.
func (v victim) owner() string {
	if v.Controller == nil {
		return ""
	}
	return v.Controller.String()
}

// podAPI is the slice of the Kubernetes API the killer needs: list and delete (or evict) pods,
// nothing more, which is exactly what the Role in macaque.yml grants.
type podAPI interface {
	// listPage calls each with the name of every candidate on one page of q (a Running pod not
	// being deleted) and returns the continue token of the next page, empty after the last.
	listPage(ctx context.Context, q listQuery, each func(name string)) (next string, err error)
	// lookup reads one pod by name, among those matching selector (through list, so no "get"
	// permission is needed). A pod that does not exist or does not match is errGone.
	lookup(ctx context.Context, namespace, name, selector string) (victim, error)
	// locate reads the pods named name in every namespace q lists (a cluster-wide q: a row of
	// its table does not say its namespace, and the same name may be in several), among those
	// matching q's selector. None is errGone.
	locate(ctx context.Context, q listQuery, name string) ([]victim, error)
	// delete deletes the pod only if it still has the given UID and resourceVersion, with
	// grace seconds to terminate (nil: the pod's own terminationGracePeriodSeconds).
	// It returns the resourceVersion of the deletion, from the deleted pod the API server
	// answers with ("" when the answer carries none).
	delete(ctx context.Context, namespace, name string, v victim, grace *int64) (string, error)
	// evict evicts the pod through the Eviction API, with the same preconditions as delete.
	evict(ctx context.Context, namespace, name string, v victim, grace *int64) error
	// listPDBs reads the PodDisruptionBudgets of namespace, to name those that refused an
	// eviction together.
	listPDBs(ctx context.Context, namespace string) ([]pdb, error)
	// probeDelete asks the API server, without deleting anything, whether macaque may delete
	// pods in namespace: nil when it may.
	probeDelete(ctx context.Context, namespace string) error
	// probeEvict asks the same of evictions.
	probeEvict(ctx context.Context, namespace string) error
}

// listQuery selects one page of candidates: the Running pods in namespace (every namespace but
// excludeNamespaces when empty) that match selector, except the one named exclude.
type listQuery struct {
	namespace, selector, exclude string
	excludeNamespaces            []string
	limit                        int64 // rows per page
	continueToken                string
}

// candidate is one row of a candidates' list. Its namespace is empty when it came from a
// cluster-wide list, whose rows do not say it: the read-back finds it.
type candidate struct {
	namespace, name string
}

// String is how reports name the candidate.
func (c candidate) String() string {
	if c.namespace == "" {
		return c.name
	}
	return c.namespace + "/" + c.name
}

// Timeouts bounds each step of a kill on its own, so a slow list cannot eat the time of the
// delete, and a delete whose answer is late still leaves time to learn what became of it.
type Timeouts struct {
	// Pick bounds listing the candidates and every try of the tick together (read-backs, guard
	// reads and the kills between them): no try starts after it, so a tick of many victims
	// lasts no longer than one of a single victim.
	Pick     time.Duration
	Delete   time.Duration // one DELETE
	ReadBack time.Duration // reading the victim back when the DELETE's answer never came
}

// defaultTimeouts bound a kill to 25s in all, within shutdownGrace (see main.go).
var defaultTimeouts = Timeouts{Pick: 10 * time.Second, Delete: 10 * time.Second, ReadBack: 5 * time.Second}

// total is the longest a kill can take.
func (t Timeouts) total() time.Duration { return t.Pick + t.Delete + t.ReadBack }

// picksPerTick is how many candidates a tick may try when the pick is rejected at its read-back
// (gone, relabelled, terminating) or by the steady-state guard before it gives up: enough to
// ride out churn, bounded in calls. With the guard, a tick whose picks all land in unhealthy
// workloads kills nothing although a healthy one may be in scope: with a fraction f of the
// candidates unhealthy that happens f^picksPerTick of the time (at f = 1/2: 3% with 5, 12.5%
// with 3). Each try costs one read-back and, the first time its controller is seen in the
// tick, at most two workload GETs (a ReplicaSet and its Deployment), so a tick makes at most
// 3*picksPerTick small requests besides the list.
const picksPerTick = 5

// Killer picks and deletes (or evicts) MACAQUE_KILL_COUNT pods per tick.
type Killer struct {
	api      podAPI
	scope    scope
	selector string
	self     string // macaque's own pod, never a victim
	dryRun   bool
	timeouts Timeouts
	rng      *rand.Rand // only the killer goroutine uses it
	now      func() time.Time
	log      *slog.Logger
	pageRows int64          // rows one list request may ask for; zero means pageSize (tests page smaller)
	guard    *guard         // the steady-state guard; nil kills any pick in scope
	pause    *pauseSwitch   // the kill switch, read before anything else at each tick; nil: none
	minAge   time.Duration  // MACAQUE_MIN_POD_AGE: younger pods are passed over; 0 is off
	events   *eventRecorder // writes an Event for each kill and skipped tick; nil writes none
	cooldown *cooldown      // MACAQUE_COOLDOWN: workloads hit lately are passed over; nil: off
	// recover gets each kill the API server accepted, for its recovery verdict; nil: none.
	// run closes it when it ends.
	recover chan<- Result

	mode  killMode  // delete (the zero value) or evict
	grace *int64    // gracePeriodSeconds to send; nil: the victim's own
	count killCount // victims per tick; the zero value is one

	alive   *telemetry.Heartbeat // beaten when a kill starts, due again within its timeouts; nil: none
	ready   *telemetry.Readiness // told whether each tick's list succeeded; nil: none
	metrics *telemetry.Metrics   // nil: none
}

// run kills once per tick until ticks is closed, then closes results. A tick that fired while
// the previous kill was still running is skipped, so a slow API server never causes a burst.
// A kill is bounded by k.timeouts and is not cut short by ctx, so a SIGTERM lets an in-flight
// delete finish (but no further victim is started). Each tick's reports go on results as one
// value, never dropped: the notifier takes it at once into a queue of its own, so the send never
// waits on Slack.
func (k *Killer) run(ctx context.Context, ticks <-chan time.Time, results chan<- []Result) {
	defer close(results)
	if k.recover != nil {
		defer close(k.recover)
	}
	var busyUntil time.Time
	for at := range ticks {
		if at.Before(busyUntil) {
			k.log.Warn("skipping tick: the previous kill was still running", "tick", at, "previous_done", busyUntil)
			continue
		}
		k.alive.Beat(k.now(), k.timeouts.total()+telemetry.HeartbeatMargin)
		reported := make(chan struct{})
		reports := k.tick(ctx, at, reported)
		busyUntil = k.now()
		k.alive.Rest(busyUntil) // waiting for the scheduler, whose own heartbeat covers the wait
		k.metrics.Ticked(at, tickSucceeded(reports))
		results <- reports
		// After the kill and its reports, never before: Events are bounded by one timeout for
		// the tick, however many victims it had, and cannot change what the tick did.
		k.events.recordAll(context.WithoutCancel(ctx), reports)
		// The verdicts, followed since each kill, may now be posted: after their kill's report
		// and its Event.
		close(reported)
	}
}

// follow hands a kill to the recovery goroutine the moment the API server accepted it, so that
// its verdict's clock starts at the kill, not at the end of a tick of many victims. The
// recovery goroutine only ever starts a follow on receipt, so this never waits on Slack.
func (k *Killer) follow(r Result) {
	if k.recover != nil && r.Outcome == OutcomeKilled {
		k.recover <- r
	}
}

// kill is one tick whose verdicts wait for no report: the tests' entry to a tick.
func (k *Killer) kill(ctx context.Context, at time.Time) []Result {
	return k.tick(ctx, at, nil)
}

// tick lists the candidates, picks some of them in a uniformly random order and kills the
// first MACAQUE_KILL_COUNT that are still in scope and running when read back, that the
// steady-state guard (if any) finds safe to kill, and of whose top workload (the Deployment,
// not its ReplicaSet of the moment) no other pod was killed this tick. It returns one report per victim, in the order they were
// killed, or a single report when none was; a failure stops the tick, and its report comes
// last. ctx cancelled (SIGTERM) lets the kill in flight finish but starts no further one.
// reported is closed by the caller once the reports are on their way to the notifier: each
// kill carries it to its verdict, which waits for it (nil: waits for nothing).
func (k *Killer) tick(ctx context.Context, at time.Time, reported <-chan struct{}) []Result {
	stopping := ctx
	ctx = context.WithoutCancel(ctx)
	base := Result{Time: at, Scope: k.scope.String(), Selector: k.selector, Mode: k.mode, reported: reported}
	if !k.scope.all && len(k.scope.namespaces) == 1 {
		base.Namespace = k.scope.namespaces[0]
	}
	r := base
	pickCtx, cancel := context.WithTimeout(ctx, k.timeouts.Pick)
	defer cancel()
	sw, err := k.pause.check(pickCtx)
	if err != nil {
		return []Result{k.report(r, err)}
	}
	r.Resumed = sw.resumed
	if sw.paused {
		r.Outcome, r.Note, r.Quiet = OutcomePaused, sw.terms, !sw.announce
		return []Result{k.report(r, nil)}
	}
	recent, err := k.cooldown.load(pickCtx)
	if err != nil {
		return []Result{k.report(r, err)}
	}
	picks, n, err := k.pick(pickCtx)
	k.ready.Observe("the list of pods", k.now(), err)
	r.Candidates = n
	base.Candidates = n
	if err != nil {
		return []Result{k.report(r, err)}
	}
	k.metrics.Listed(n)
	if n == 0 {
		return []Result{k.report(r, nil)}
	}
	want, capped := k.count.victims(n)
	picks = picks[:min(len(picks), tries(want))]
	var done []Result // the victims' reports, not yet logged: the last may gain a note
	var lastErr error
	guarded, blocked := false, false // some pick was passed over by the guard, by a PDB
	short := ""                      // why the tick stopped trying before it ran out of picks
	seen := verdicts{}
	hit := map[types.UID]bool{} // the top workloads of this tick's victims
	tried := map[candidate]bool{}
	for _, c := range picks {
		if len(done) == want {
			break
		}
		if pickCtx.Err() != nil {
			// Out of time for another try; the kill of a later pick would start too late.
			short = fmt.Sprintf("the tick's %v for picking ran out", k.timeouts.Pick)
			break
		}
		if len(done) > 0 && stopping.Err() != nil {
			short = "macaque is stopping"
			break
		}
		r.Namespace, r.Pod, r.Owner, r.Node, r.Note, r.top = base.Namespace, c.name, "", "", "", nil
		name := c.String()
		v, err := k.readBack(pickCtx, c, tried)
		if errors.Is(err, errGone) {
			lastErr = fmt.Errorf("pod %q: %w", name, err)
			r.Passed = append(r.Passed, name+": gone, or no longer matches the selector")
			continue
		}
		if err != nil {
			return k.finish(ctx, done, r, fmt.Errorf("read pod %q: %w", name, err), want)
		}
		name = candidate{v.Namespace, c.name}.String()
		r.Namespace, r.Owner, r.Node = v.Namespace, v.owner(), v.Node
		if !v.Running || v.Terminating {
			// The pick changed between the list and now; deleting it would not test anything.
			lastErr = fmt.Errorf("pod %q is no longer running: %w", name, errGone)
			r.Passed = append(r.Passed, name+": no longer running")
			continue
		}
		if why := tooYoung(v.Created, k.now(), k.minAge); why != "" {
			guarded = true
			r.Passed = append(r.Passed, name+": "+why)
			continue
		}
		safe, err := k.guard.check(pickCtx, v.Namespace, v, seen)
		if err != nil {
			return k.finish(ctx, done, r, fmt.Errorf("check the workload of pod %q: %w", name, err), want)
		}
		if safe.why != "" {
			guarded = true
			r.Passed = append(r.Passed, name+": "+safe.why)
			r.addBlame(safe.cause, v.Namespace, c.name, safe.why, reasonSkipped)
			continue
		}
		workload := topOf(safe.top, v.Controller)
		if workload != nil && hit[workload.UID] {
			// Keyed on the top workload, as the cooldown is: two ReplicaSets of one Deployment
			// (mid-rollout) or of one Rollout (stable and canary) are one application.
			r.Passed = append(r.Passed, name+": "+workload.String()+" already lost a pod this tick")
			continue
		}
		if why := k.cooldown.check(recent, v.Namespace, safe.top, k.now()); why != "" {
			guarded = true
			r.Passed = append(r.Passed, name+": "+why)
			r.addBlame(safe.top, v.Namespace, c.name, why, reasonSkipped)
			continue
		}
		r.Note, r.top = joinNotes(safe.note, graceNote(k.grace)), safe.top
		if k.dryRun {
			r.Outcome = OutcomeDryRun
		} else {
			r, err = k.delete(ctx, r, v)
		}
		if errors.Is(err, errGone) {
			lastErr = err
			r.Passed = append(r.Passed, name+": changed or went away before the "+k.mode.request())
			continue
		}
		if errors.Is(err, errBlocked) {
			blocked = true
			r.Passed = append(r.Passed, name+": "+err.Error())
			r.addBlame(safe.top, v.Namespace, c.name, err.Error(), reasonBlocked)
			continue
		}
		if err != nil {
			return k.finish(ctx, done, r, err, want)
		}
		if workload != nil {
			hit[workload.UID] = true
		}
		k.follow(r)
		done = append(done, r)
		r = base
	}
	if len(done) > 0 {
		return k.finish(ctx, done, r, nil, want, shortfall(len(done), want, n, capped, k.count, short))
	}
	// Every pick was rejected; Passed names each and says why.
	r.Namespace, r.Pod, r.Owner, r.Node, r.Note, r.top = base.Namespace, "", "", "", "", nil
	if blocked {
		// Not an error: a PodDisruptionBudget did its job. Other rejections are listed beside it.
		r.Outcome = OutcomeBlocked
		return []Result{k.report(r, nil)}
	}
	if guarded {
		// Not an error: the guard did its job. Picks that vanished are listed beside it.
		r.Outcome = OutcomeSkipped
		return []Result{k.report(r, nil)}
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("listing took all the time for the pick, none left to read it back: %w", pickCtx.Err())
	}
	return []Result{k.report(r, lastErr)}
}

// readBack reads pick c back just before it may be deleted, and marks it tried. A pick from a
// cluster-wide list names no namespace: of the pods of its name in scope, one not yet tried
// this tick is taken at random, which keeps the pick uniform over pods when a name (a
// StatefulSet's web-0) is in several namespaces, each of them a row of its own in the list.
func (k *Killer) readBack(ctx context.Context, c candidate, tried map[candidate]bool) (victim, error) {
	if c.namespace != "" {
		tried[c] = true
		return k.api.lookup(ctx, c.namespace, c.name, k.selector)
	}
	q := k.scope.lists()[0]
	q.selector = k.selector
	found, err := k.api.locate(ctx, q, c.name)
	if err != nil {
		return victim{}, err
	}
	found = slices.DeleteFunc(found, func(v victim) bool { return tried[candidate{v.Namespace, c.name}] })
	if len(found) == 0 {
		return victim{}, fmt.Errorf("no pod named %q left in scope: %w", c.name, errGone)
	}
	v := found[k.rng.IntN(len(found))]
	tried[candidate{v.Namespace, c.name}] = true
	return v, nil
}

// finish logs a tick's reports and returns them: the victims' (done), then, when err is not
// nil, the report of the pick the tick failed on (r). A tick that killed fewer pods than want
// says so, with why, on its last report: the failure's, or the last victim's, which also lists
// the picks passed over after it. notes are added to that last report.
func (k *Killer) finish(ctx context.Context, done []Result, r Result, err error, want int, notes ...string) []Result {
	k.remember(ctx, done)
	if err != nil {
		if len(done) > 0 {
			r.KilledBefore = len(done)
			r.Note = joinNotes(r.Note, fmt.Sprintf("%d of %d asked for: this failure ended the tick", len(done), want))
		}
		done = append(done, r)
	} else {
		// r holds the picks passed over since the last kill: none when the tick got all it wanted.
		last := &done[len(done)-1]
		last.Passed = append(last.Passed, r.Passed...)
		for _, n := range notes {
			last.Note = joinNotes(last.Note, n)
		}
	}
	out := make([]Result, 0, len(done))
	for i, d := range done {
		var e error
		if i == len(done)-1 {
			e = err
		}
		out = append(out, k.report(d, e))
	}
	return out
}

// remember records in the cooldown state the workloads of the tick's victims, so that they are
// passed over until MACAQUE_COOLDOWN has passed, even across a restart. A write that fails is
// noted on the last victim's report: the kills happened, but their cooldown may not hold.
func (k *Killer) remember(ctx context.Context, done []Result) {
	if k.cooldown == nil {
		return
	}
	var keys []string
	for _, d := range done {
		if d.Outcome == OutcomeKilled && d.top != nil {
			keys = append(keys, cooldownKey(d.Namespace, *d.top))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cooldownTimeout)
	defer cancel()
	if err := k.cooldown.record(ctx, keys, k.now()); err != nil {
		last := &done[len(done)-1]
		last.Note = joinNotes(last.Note, cooldownNote(err))
	}
}

// shortfall is the note on the last report of a tick that killed got of the want pods asked
// for (among n candidates), saying why; with the count capped, it says that too.
func shortfall(got, want, n int, capped bool, count killCount, short string) string {
	note := ""
	if capped {
		note = fmt.Sprintf("MACAQUE_KILL_COUNT=%s of %d candidates is more than %d: capped at %d victims a tick", count, n, maxVictims, maxVictims)
	}
	if got == want {
		return note
	}
	why := short
	if why == "" {
		why = "no other pick could be killed"
		if n < want {
			why = fmt.Sprintf("only %d candidates", n)
		}
	}
	return joinNotes(note, fmt.Sprintf("%d of %d asked for: %s", got, want, why))
}

// request is the API request mode makes, as a report names it.
func (m killMode) request() string {
	if m == modeEvict {
		return "eviction"
	}
	return "delete"
}

// delete deletes (or evicts) v, the read-back of r.Pod, with a deadline of its own. When the
// API server's answer never comes, what it did is read back instead of guessed: the pod may be
// gone. An eviction a PodDisruptionBudget refused (or several together) is errBlocked, worded
// to name them.
func (k *Killer) delete(ctx context.Context, r Result, v victim) (Result, error) {
	delCtx, cancel := context.WithTimeout(ctx, k.timeouts.Delete)
	verb, rv := "delete", ""
	var err error
	if k.mode == modeEvict {
		verb, err = "evict", k.api.evict(delCtx, v.Namespace, r.Pod, v, k.grace)
	} else {
		rv, err = k.api.delete(delCtx, v.Namespace, r.Pod, v, k.grace)
	}
	cancel()
	r.controller, r.uid, r.killRV = v.Controller, v.UID, cmp.Or(rv, v.listRV)
	if err == nil {
		r.Outcome, r.Deleted = OutcomeKilled, k.now()
		return r, nil
	}
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// A UID or resourceVersion precondition that fails comes back as 409 Conflict: the pod
		// was replaced, changed (relabelled, or deleted by someone else) since it was read back.
		return r, fmt.Errorf("%s pod %q: %w: %w", verb, r.Pod, errGone, err)
	}
	if pdb := pdbCause(err); pdb != "" {
		// The eviction handler checks the budget before it touches the pod: nothing was done.
		return r, fmt.Errorf("%w %s", errBlocked, pdb)
	}
	if k.mode == modeEvict && coveredTwice(err) {
		// Refused before the pod was touched, though it is a 500: nothing to read back.
		listCtx, cancel := context.WithTimeout(ctx, k.timeouts.ReadBack)
		defer cancel()
		pdbs, listErr := k.api.listPDBs(listCtx, v.Namespace)
		return r, fmt.Errorf("%w %s", errBlocked, describeCoveredTwice(covering(pdbs, v.Labels), listErr))
	}
	// A 429 without a budget's cause is the API server's own throttling (priority and
	// fairness, max-in-flight), which answers before any handler runs: nothing was done, so it
	// is an error, and there is nothing to read back.
	if !answerUnknown(err) {
		return r, fmt.Errorf("%s pod %q: %w", verb, r.Pod, err)
	}

	readCtx, cancel := context.WithTimeout(ctx, k.timeouts.ReadBack)
	defer cancel()
	back, readErr := k.api.lookup(readCtx, v.Namespace, r.Pod, "")
	if readErr != nil && !errors.Is(readErr, errGone) {
		r.Outcome = OutcomeUnknown
		return r, fmt.Errorf("%s pod %q: no answer (%w), and the read-back failed: %w", verb, r.Pod, err, readErr)
	}
	if readErr == nil && back.UID == v.UID && !back.Terminating {
		return r, fmt.Errorf("%s pod %q: no answer (%w), and a read-back found it still running", verb, r.Pod, err)
	}
	state := "terminating"
	if readErr != nil || back.UID != v.UID {
		state = "gone"
	}
	r.Outcome, r.Deleted = OutcomeKilled, k.now()
	request := "DELETE"
	if k.mode == modeEvict {
		request = "eviction"
	}
	r.Note = joinNotes(r.Note, fmt.Sprintf("the %s's answer never came (%v); a read-back found the pod %s", request, err, state))
	return r, nil
}

// joinNotes puts the notes (or reasons) of one report in one line, in order; any may be empty.
func joinNotes(notes ...string) string {
	var out []string
	for _, n := range notes {
		if n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, "; ")
}

// answerUnknown says whether err leaves it open whether the API server carried the request out:
// no answer at all (a timeout, a broken connection), or a 5xx, which a proxy or the server's own
// timeout may send after the write was committed.
func answerUnknown(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Code >= http.StatusInternalServerError
	}
	return true
}

// errGone marks a pick that vanished, left the scope or changed identity before it could be deleted.
var errGone = errors.New("pod is gone")

// rbacDenial matches the message of a 403 from the RBAC authorizer, as opposed to one from an
// admission webhook or policy, which must not be blamed on macaque's Role.
var rbacDenial = regexp.MustCompile(`User ".*" cannot [a-z]+ resource "`)

// isRBACDenial says whether err is RBAC's Forbidden.
func isRBACDenial(err error) bool {
	return apierrors.IsForbidden(err) && rbacDenial.MatchString(err.Error())
}

// outcomeOf classifies a tick's error, given the outcome the kill path has already set: a delete
// that succeeded (killed, dry-run) or whose fate is unknown keeps it.
func outcomeOf(set Outcome, err error) Outcome {
	if set == OutcomeUnknown {
		return set // the read-back failed: err says why, but not what the API server did
	}
	if errors.Is(err, errPauseUnread) {
		return OutcomeError // even RBAC's 403: it was the switch that could not be read, not a pod
	}
	if err == nil && set == "" {
		return OutcomeNoCandidates
	}
	if err == nil {
		return set
	}
	if errors.Is(err, errGone) {
		return OutcomeNotFound
	}
	if isRBACDenial(err) {
		return OutcomeForbidden
	}
	if apierrors.IsForbidden(err) {
		return OutcomeDenied
	}
	return OutcomeError
}

// report classifies err into r's outcome and logs the result.
func (k *Killer) report(r Result, err error) Result {
	r.Err, r.Outcome = err, outcomeOf(r.Outcome, err)
	k.metrics.Reported(r.Time, r.Namespace, string(r.Outcome))
	log := k.log.With("tick", r.Time, "namespace", r.Namespace, "selector", r.Selector, "candidates", r.Candidates, "outcome", r.Outcome)
	if r.Pod != "" {
		log = log.With("pod", r.Pod, "owner", r.Owner, "node", r.Node, "mode", cmp.Or(r.Mode, modeDelete))
	}
	if !r.Deleted.IsZero() {
		log = log.With(r.Mode.pastTense(), r.Deleted)
	}
	if r.Note != "" {
		log = log.With("note", r.Note)
	}
	if len(r.Passed) > 0 {
		log = log.With("passed", r.Passed)
	}
	if r.Resumed != "" {
		log = log.With("resumed", r.Resumed)
	}
	if err != nil {
		log.Error("kill failed", "err", err)
	} else {
		log.Info("tick done")
	}
	return r
}

// pick pages through the candidates of every list of the scope and keeps up to
// k.count.reservoir() of them (picksPerTick for one victim) chosen uniformly at random
// (reservoir sampling), in a random order: the first is a uniform pick, and each next one is
// uniform among the rest, so the victims, the first picks that qualify, are drawn without
// replacement. Memory stays constant however many pods are in scope, and however many
// namespaces they are in.
func (k *Killer) pick(ctx context.Context) (picks []candidate, n int, err error) {
	size := k.count.reservoir()
	for _, q := range k.scope.lists() {
		q.selector, q.exclude, q.limit = k.selector, k.self, cmp.Or(k.pageRows, pageSize)
		keep := func(name string) {
			n++
			if len(picks) < size {
				picks = append(picks, candidate{q.namespace, name})
			} else if i := k.rng.IntN(n); i < size {
				picks[i] = candidate{q.namespace, name}
			}
		}
		for {
			next, err := k.api.listPage(ctx, q, keep)
			if err != nil {
				return nil, n, fmt.Errorf("list pods in %s: %w", listScope(q), err)
			}
			if next == "" {
				break
			}
			q.continueToken = next
		}
	}
	k.rng.Shuffle(len(picks), func(i, j int) { picks[i], picks[j] = picks[j], picks[i] })
	return picks, n, nil
}

// listScope is how an error names the namespaces a list covers.
func listScope(q listQuery) string {
	if q.namespace != "" {
		return strconv.Quote(q.namespace)
	}
	if len(q.excludeNamespaces) == 0 {
		return "every namespace"
	}
	return "every namespace except " + strings.Join(q.excludeNamespaces, ",")
}

// pageSize is the most rows one list request asks for, so a namespace of up to 50,000 pods in
// scope is listed in one request. Each request costs the API server a pass over the rest of the
// namespace in its watch cache and a fixed overhead whatever its limit, so fewer requests cost
// it less: at 50,000 Deployment-owned pods one request took 630 ms of kube-apiserver CPU, 10
// pages of 5,000 took 940 ms, for the same bytes (make bench, see README). The limit bounds what
// one request costs: 50,000 rows are ~7 MB of JSON (~0.6 MB gzipped); a larger namespace is
// paged by it. A small first page could not size the rest: the API server gives no
// remainingItemCount for a list with selectors. Rows are decoded one at a time, so the size of
// a response does not show in macaque's memory.
const pageSize = 50000

// tableAccept asks the API server for the printed table of pods instead of the pods themselves:
// a row's name and status are all the pick needs (owner and node come from the read-back of
// the one victim), at a few percent of the bytes.
const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io"

// restPods implements podAPI over client-go's REST client, without the generated clientset
// (which would triple the binary's size for the two calls we make).
type restPods struct {
	client rest.Interface
}

// newRESTPods builds the REST client for the core/v1 API from cfg.
func newRESTPods(cfg *rest.Config) (*restPods, error) {
	scheme := runtime.NewScheme()
	gv := schema.GroupVersion{Version: "v1"}
	metav1.AddToGroupVersion(scheme, gv)
	c := rest.CopyConfig(cfg)
	c.APIPath = "/api"
	c.GroupVersion = &gv
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	c.ContentType = "application/json"
	client, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("build API client: %w", err)
	}
	return &restPods{client: client}, nil
}

func (p *restPods) listPage(ctx context.Context, q listQuery, each func(name string)) (string, error) {
	terms := []fields.Selector{fields.OneTermEqualSelector("status.phase", "Running")}
	if q.exclude != "" {
		// In a cluster-wide list this also leaves out a pod of the same name in another
		// namespace: a generated name (macaque-7d9f8-x2x4q), so in practice never another.
		terms = append(terms, fields.OneTermNotEqualSelector("metadata.name", q.exclude))
	}
	sel := fields.AndSelectors(append(terms, notInNamespaces(q.excludeNamespaces)...)...)
	req := p.client.Get().Namespace(q.namespace).Resource("pods").
		SetHeader("Accept", tableAccept).
		Param("fieldSelector", sel.String()).
		Param("limit", strconv.FormatInt(q.limit, 10)).
		Param("includeObject", "None")
	if q.selector != "" {
		req = req.Param("labelSelector", q.selector)
	}
	if q.continueToken != "" {
		req = req.Param("continue", q.continueToken)
	}
	body, err := req.Stream(ctx)
	if err != nil {
		return "", err
	}
	defer func() {
		// Read the little that may follow the table (a newline) so that the connection is
		// reused: closing an unfinished body resets an HTTP/2 stream or drops an HTTP/1 connection.
		_, _ = io.Copy(io.Discard, io.LimitReader(body, drainLimit))
		_ = body.Close()
	}()
	next, err := decodeTable(body, each)
	if err != nil {
		return "", fmt.Errorf("decode pod table: %w", err)
	}
	return next, nil
}

// notInNamespaces are the terms selecting objects in none of namespaces: field selectors have
// no "notin", so one inequality each.
func notInNamespaces(namespaces []string) []fields.Selector {
	terms := make([]fields.Selector, 0, len(namespaces))
	for _, ns := range namespaces {
		terms = append(terms, fields.OneTermNotEqualSelector("metadata.namespace", ns))
	}
	return terms
}

// drainLimit bounds what is read past the end of a table before its response is closed.
const drainLimit = 64 << 10

// decodeTable reads a meta.k8s.io/v1 Table of pods from r one row at a time, so a page of any
// size costs one row's memory. It calls each with the name of every pod not printed as
// Terminating and returns the table's continue token. The API server writes columnDefinitions
// before rows (the field order of metav1.Table), which is what lets rows be read as they come.
func decodeTable(r io.Reader, each func(name string)) (next string, err error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return "", err
	}
	nameCol, statusCol := -1, -1
	kind := ""
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "", err
		}
		switch key {
		case "kind":
			if err := dec.Decode(&kind); err != nil {
				return "", fmt.Errorf("kind: %w", err)
			}
		case "metadata":
			var meta struct {
				Continue string `json:"continue"`
			}
			if err := dec.Decode(&meta); err != nil {
				return "", fmt.Errorf("metadata: %w", err)
			}
			next = meta.Continue
		case "columnDefinitions":
			var cols []struct {
				Name string `json:"name"`
			}
			if err := dec.Decode(&cols); err != nil {
				return "", fmt.Errorf("columnDefinitions: %w", err)
			}
			for i, c := range cols {
				switch c.Name {
				case "Name":
					nameCol = i
				case "Status":
					statusCol = i
				}
			}
			if nameCol < 0 || statusCol < 0 {
				return "", fmt.Errorf("no Name or Status column among %d columns", len(cols))
			}
		case "rows":
			if err := decodeRows(dec, nameCol, statusCol, each); err != nil {
				return "", err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", fmt.Errorf("%v: %w", key, err)
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return "", err
	}
	// A proxy that drops the Accept header gets a PodList, whose items this decoder would skip:
	// that must be an error, not a namespace with no candidates.
	if kind != "Table" || nameCol < 0 {
		return "", fmt.Errorf("%w: got kind %q (does a proxy between macaque and the API server drop the Accept header?)", errNotTable, kind)
	}
	return next, nil
}

// errNotTable is an answer to a pod list that is not the Table macaque asked for.
var errNotTable = errors.New("the API server's answer is not a pod Table")

// decodeRows reads the rows array (or null) of a pod table, reusing one row's buffers.
func decodeRows(dec *json.Decoder, nameCol, statusCol int, each func(name string)) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("rows: %w", err)
	}
	if tok == nil { // an empty table may print its rows as null
		return nil
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("rows: got %v, want an array", tok)
	}
	if dec.More() && nameCol < 0 { // columnDefinitions, once read, has set both columns or failed
		return errors.New("rows come before the column definitions")
	}
	var row struct {
		Cells []json.RawMessage `json:"cells"`
	}
	for dec.More() {
		row.Cells = row.Cells[:0]
		if err := dec.Decode(&row); err != nil {
			return fmt.Errorf("row: %w", err)
		}
		if len(row.Cells) <= max(nameCol, statusCol) {
			return fmt.Errorf("row has %d cells, want more than %d", len(row.Cells), max(nameCol, statusCol))
		}
		status, err := stringCell(row.Cells[statusCol])
		if err != nil {
			return fmt.Errorf("pod status: %w", err)
		}
		// A pod with a deletionTimestamp is printed as Terminating whatever its phase, or as
		// Unknown when its node is unreachable: either way it is already going away.
		if status == "Terminating" || status == "Unknown" {
			continue
		}
		name, err := stringCell(row.Cells[nameCol])
		if err != nil {
			return fmt.Errorf("pod name: %w", err)
		}
		each(name)
	}
	return expectDelim(dec, ']')
}

// stringCell decodes a cell that must be a string. A JSON null would decode into a string as
// "no change", so it is refused rather than read as the previous row's value.
func stringCell(cell json.RawMessage) (string, error) {
	var s *string
	if err := json.Unmarshal(cell, &s); err != nil {
		return "", err
	}
	if s == nil {
		return "", errors.New("null cell")
	}
	return *s, nil
}

// expectDelim reads the next token and fails unless it is want.
func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("got %v, want %v", tok, want)
	}
	return nil
}

// podObject is the part of a v1 Pod that a victim report and the steady-state guard need.
type podObject struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     struct {
		NodeName string `json:"nodeName"`
	} `json:"spec"`
	Status struct {
		Phase      string `json:"phase"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
	} `json:"status"`
}

// ready says whether the pod's Ready condition is True.
func (p podObject) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

func (p *restPods) lookup(ctx context.Context, namespace, name, selector string) (victim, error) {
	// A list by metadata.name is served from a single key, like a get, but needs only "list";
	// the label selector re-checks the scope, in case the pod was relabelled since it was listed.
	found, err := p.readPods(ctx, namespace, fields.OneTermEqualSelector("metadata.name", name), selector)
	if err != nil {
		return victim{}, err
	}
	if len(found) == 0 {
		return victim{}, fmt.Errorf("pod %q: %w", name, errGone)
	}
	return found[0], nil
}

func (p *restPods) locate(ctx context.Context, q listQuery, name string) ([]victim, error) {
	terms := append([]fields.Selector{fields.OneTermEqualSelector("metadata.name", name)}, notInNamespaces(q.excludeNamespaces)...)
	found, err := p.readPods(ctx, q.namespace, fields.AndSelectors(terms...), q.selector)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("pod %q: %w", name, errGone)
	}
	return found, nil
}

// readPods lists the pods in namespace (every namespace when empty) that match both selectors,
// as victims. Callers select by name, so the answer holds a pod, or a few in a cluster-wide list.
func (p *restPods) readPods(ctx context.Context, namespace string, fieldSel fields.Selector, selector string) ([]victim, error) {
	req := p.client.Get().Namespace(namespace).Resource("pods").Param("fieldSelector", fieldSel.String())
	if selector != "" {
		req = req.Param("labelSelector", selector)
	}
	body, err := req.DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	var list struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []podObject `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("decode pod list: %w", err)
	}
	out := make([]victim, 0, len(list.Items))
	for _, pod := range list.Items {
		v := victim{
			Namespace:       pod.Metadata.Namespace,
			UID:             pod.Metadata.UID,
			ResourceVersion: pod.Metadata.ResourceVersion,
			Node:            pod.Spec.NodeName,
			Running:         pod.Status.Phase == "Running",
			Ready:           pod.ready(),
			Terminating:     pod.Metadata.DeletionTimestamp != nil,
			Annotations:     pod.Metadata.Annotations,
			Labels:          pod.Metadata.Labels,
			Created:         pod.Metadata.CreationTimestamp.Time,
			listRV:          list.Metadata.ResourceVersion,
		}
		if ref := metav1.GetControllerOfNoCopy(&pod.Metadata); ref != nil {
			v.Controller = &ownerRef{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name, UID: ref.UID, Controller: ref.Controller}
		}
		out = append(out, v)
	}
	return out, nil
}

func (p *restPods) delete(ctx context.Context, namespace, name string, v victim, grace *int64) (string, error) {
	body, err := deleteOptions(preconditions(v), grace)
	if err != nil {
		return "", err
	}
	// Never resent: a second DELETE of a pod the first one killed answers 404, which would read
	// as "gone before we could delete it". client-go does not resend a request with a body
	// today; MaxRetries(0) keeps it so.
	res := p.client.Delete().Namespace(namespace).Resource("pods").Name(name).Body(body).MaxRetries(0).Do(ctx)
	if err := res.Error(); err != nil {
		return "", err
	}
	raw, _ := res.Raw()
	// The answer is the pod as deleted (a Status from an older server): its resourceVersion is
	// the kill's. One that does not decode leaves the read-back's.
	var gone struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(raw, &gone)
	return gone.Metadata.ResourceVersion, nil
}

// preconditions make a kill of v fail with 409 Conflict unless the pod still has v's UID and
// resourceVersion: it was not replaced nor changed since it was read back.
func preconditions(v victim) *metav1.Preconditions {
	pre := metav1.NewUIDPreconditions(string(v.UID))
	if v.ResourceVersion != "" {
		pre.ResourceVersion = &v.ResourceVersion
	}
	return pre
}

// preflightPod is a pod name that can never exist (names are lower case), so a dry-run delete
// of it tells whether delete is allowed without touching any pod: 404 if so, 403 if not.
const preflightPod = "MACAQUE-PREFLIGHT-CHECK"

func (p *restPods) probeDelete(ctx context.Context, namespace string) error {
	body, err := deleteOptions(nil, nil)
	if err != nil {
		return err
	}
	err = p.client.Delete().Namespace(namespace).Resource("pods").Name(preflightPod).Param("dryRun", "All").Body(body).Do(ctx).Error()
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		return fmt.Errorf("a dry-run delete of pod %q succeeded, which no API server should allow", preflightPod)
	}
	return err
}

// deleteOptions encodes the body of a DELETE; grace nil leaves the pod's own grace period.
func deleteOptions(pre *metav1.Preconditions, grace *int64) ([]byte, error) {
	opts := metav1.DeleteOptions{TypeMeta: metav1.TypeMeta{Kind: "DeleteOptions", APIVersion: "v1"}, Preconditions: pre, GracePeriodSeconds: grace}
	body, err := json.Marshal(opts)
	if err != nil {
		return nil, fmt.Errorf("encode delete options: %w", err)
	}
	return body, nil
}

// topOf is the workload a pick belongs to: its top controller as the guard read it (the
// Deployment above a ReplicaSet, a listed owner kind above its ReplicaSets), else its own
// controller; nil for a bare pod.
func topOf(top, controller *ownerRef) *ownerRef {
	if top != nil {
		return top
	}
	return controller
}
