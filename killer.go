package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/macaque-chaos/macaque/internal/text"

	"github.com/macaque-chaos/macaque/internal/recovery"

	"github.com/macaque-chaos/macaque/internal/policy"

	"github.com/macaque-chaos/macaque/internal/kube"

	"github.com/macaque-chaos/macaque/internal/telemetry"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
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
	// Gated is a tick the alert gate held whole (skipped): Note names the alerts.
	Gated bool
	Err   error // why, for every outcome but killed, dry-run, no candidates and paused
	// top is the victim's top controller (see verdict.top), nil for a bare pod or without a
	// guard: a kill's Event goes on it as well as on the pod.
	top *kube.OwnerRef
	// cooldown is the period the cooldown rule found for the victim's workload (MACAQUE_COOLDOWN's
	// or its chaos.macaque.dev/cooldown annotation's), which its kill records; 0: none.
	cooldown time.Duration
	// controller is the victim's own controller (its ReplicaSet, for a Deployment's pod), nil
	// for a bare pod: the recovery verdict watches for the pod it recreates.
	controller *kube.OwnerRef
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
	workload            kube.OwnerRef
	namespace, pod, why string
	reason              string
}

// addBlame records that workload, in namespace, passed pod over for why, unless it already
// passed one over.
func (r *Result) addBlame(workload *kube.OwnerRef, namespace, pod, why, reason string) {
	if workload == nil || slices.ContainsFunc(r.blamed, func(b blame) bool { return b.workload.UID == workload.UID }) {
		return
	}
	r.blamed = append(r.blamed, blame{workload: *workload, namespace: namespace, pod: pod, why: why, reason: reason})
}

// podAPI is the slice of the Kubernetes API the killer needs: list and delete (or evict) pods,
// nothing more, which is exactly what the Role in macaque.yml grants.
type podAPI interface {
	// ListPage calls each with the name of every candidate on one page of q (a Running pod not
	// being deleted) and returns the continue token of the next page, empty after the last.
	ListPage(ctx context.Context, q kube.ListQuery, each func(name string)) (next string, err error)
	// Lookup reads one pod by name, among those matching selector (through list, so no "get"
	// permission is needed). A pod that does not exist or does not match is kube.ErrGone.
	Lookup(ctx context.Context, namespace, name, selector string) (kube.Pod, error)
	// Locate reads the pods named name in every namespace q lists (a cluster-wide q: a row of
	// its table does not say its namespace, and the same name may be in several), among those
	// matching q's selector. None is kube.ErrGone.
	Locate(ctx context.Context, q kube.ListQuery, name string) ([]kube.Pod, error)
	// Delete deletes the pod only if it still has the given UID and resourceVersion, with
	// grace seconds to terminate (nil: the pod's own terminationGracePeriodSeconds).
	// It returns the resourceVersion of the deletion, from the deleted pod the API server
	// answers with ("" when the answer carries none).
	Delete(ctx context.Context, namespace, name string, v kube.Pod, grace *int64) (string, error)
	// Evict evicts the pod through the Eviction API, with the same preconditions as delete.
	Evict(ctx context.Context, namespace, name string, v kube.Pod, grace *int64) error
	// ListPDBs reads the PodDisruptionBudgets of namespace, to name those that refused an
	// eviction together.
	ListPDBs(ctx context.Context, namespace string) ([]kube.PDB, error)
	// ProbeDelete asks the API server, without deleting anything, whether macaque may delete
	// pods in namespace: nil when it may.
	ProbeDelete(ctx context.Context, namespace string) error
	// ProbeEvict asks the same of evictions.
	ProbeEvict(ctx context.Context, namespace string) error
	// namespaceAPI lists the namespaces MACAQUE_NAMESPACE_SELECTOR selects, at each tick.
	namespaceAPI
}

// run hands it the one API client; this keeps the two in step.
var _ podAPI = (*kube.Client)(nil)

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
	pageRows int64               // rows one list request may ask for; zero means pageSize (tests page smaller)
	guard    *policy.Guard       // the steady-state guard; nil kills any pick in scope
	pause    *policy.PauseSwitch // the kill switch, read before anything else at each tick; nil: none
	minAge   time.Duration       // MACAQUE_MIN_POD_AGE: younger pods are passed over; 0 is off
	events   *eventRecorder      // writes an Event for each kill and skipped tick; nil writes none
	cooldown *policy.Cooldown    // MACAQUE_COOLDOWN: workloads hit lately are passed over; nil: off
	alerts   *policy.AlertGate   // MACAQUE_ALERTMANAGER_URL: asked before each list; nil: no gate
	// leader says whether this replica holds the election's lease, and for how long: a standby
	// runs no tick, and a leader kills only while its lease outlasts the kill. Nil: always
	// leads (MACAQUE_LEADER_ELECTION=false).
	leader leaderHold
	// recover gets each kill the API server accepted, for its recovery verdict; nil: none.
	// run closes it when it ends.
	recover chan<- recovery.Kill

	terminator terminator // how a pick dies, chosen in run from MACAQUE_MODE; nil: a DELETE
	grace      *int64     // gracePeriodSeconds to send; nil: the victim's own
	count      killCount  // victims per tick; the zero value is one

	alive   *telemetry.Heartbeat // beaten when a kill starts, due again within its timeouts; nil: none
	ready   *telemetry.Readiness // told whether each tick's list succeeded; nil: none
	metrics *telemetry.Metrics   // nil: none
}

// leaderHold is the election as the killer asks it; *election.Elector implements it.
type leaderHold interface {
	// Hold is nil when this replica leads, with its lease valid for longer than need.
	Hold(need time.Duration) error
}

// leads says whether this replica runs the tick at: with a lease of its own; a standby's tick
// is the leader's to run.
func (k *Killer) leads(at time.Time) bool {
	if k.leader == nil {
		return true
	}
	if err := k.leader.Hold(0); err != nil {
		k.log.Debug("standby: the leader runs this tick", "tick", at, "why", err)
		return false
	}
	return true
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
		if !k.leads(at) {
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
		k.recover <- recovery.Kill{Tick: r.Time, Namespace: r.Namespace, Pod: r.Pod, UID: r.uid, Controller: r.controller, Top: r.top,
			RV: r.killRV, Deleted: r.Deleted, Reported: r.reported}
	}
}

// tick lists the candidates, picks some of them in a uniformly random order and kills the
// first MACAQUE_KILL_COUNT that every rule of the tick lets through (see rules). It returns one
// report per victim, in the order they were killed, or a single report when none was; a
// failure stops the tick, and its report comes last. ctx cancelled (SIGTERM) lets the kill in
// flight finish but starts no further one. reported is closed by the caller once the reports
// are on their way to the notifier: each kill carries it to its verdict, which waits for it
// (nil: waits for nothing).
func (k *Killer) tick(ctx context.Context, at time.Time, reported <-chan struct{}) []Result {
	stopping := ctx
	ctx = context.WithoutCancel(ctx)
	pickCtx, cancel := context.WithTimeout(ctx, k.timeouts.Pick)
	defer cancel()
	rd, early := k.prepare(pickCtx, at, reported)
	if early != nil {
		return early
	}
	// Each pick in turn until the tick has enough (or may kill no more).
	for i := 0; i < len(rd.picks) && !k.enough(pickCtx, stopping, rd); i++ {
		if err := k.try(ctx, pickCtx, rd, rd.picks[i]); err != nil {
			return k.finish(ctx, rd.done, rd.r, err, rd.want)
		}
	}
	return k.conclude(ctx, pickCtx, rd)
}

// round is one tick's work in progress: its picks and rules, its victims so far, and what the
// picks passed over say about it.
type round struct {
	base    Result // what every report of the tick shares
	r       Result // the report of the pick being tried, with the picks passed over since the last victim
	scope   tickScope
	picks   []candidate
	n       int  // the candidates listed
	want    int  // the victims asked for
	capped  bool // want was capped at maxVictims
	rules   policy.Rules
	once    *policy.OncePerTick // the rule that must hear of each kill
	tried   map[candidate]bool
	done    []Result // the victims' reports, not yet logged: the last may gain a note
	lastErr error    // why the last pick that vanished or changed did
	guarded bool     // a rule passed some pick over
	blocked bool     // a PodDisruptionBudget refused some pick's eviction
	short   string   // why the tick stopped trying before it ran out of picks
}

// prepare reads the pause switch, asks the alert gate, reads the cooldown state, lists the
// candidates and picks among them. A tick that ends there (paused, held by alerts, a failure, no
// candidates) gets its one report instead.
func (k *Killer) prepare(ctx context.Context, at time.Time, reported <-chan struct{}) (*round, []Result) {
	base := Result{Time: at, Scope: k.scope.String(), Selector: k.selector, Mode: k.way().mode(), reported: reported}
	if !k.scope.all && len(k.scope.namespaces) == 1 {
		base.Namespace = k.scope.namespaces[0]
	}
	r := base
	sw, err := k.pause.Check(ctx)
	if err != nil {
		return nil, []Result{k.report(r, err)}
	}
	r.Resumed = sw.Resumed
	if sw.Paused {
		r.Outcome, r.Note, r.Quiet = OutcomePaused, sw.Terms, !sw.Announce
		return nil, []Result{k.report(r, nil)}
	}
	held, early := k.askAlerts(ctx, r)
	if early != nil {
		return nil, early
	}
	cooling, err := k.cooldown.ForTick(ctx, k.now)
	if err != nil {
		return nil, []Result{k.report(r, err)}
	}
	ts, err := k.scope.forTick(ctx, k.api)
	if err != nil {
		k.ready.Observe("the list of pods", k.now(), err)
		return nil, []Result{k.report(r, err)}
	}
	if ts.selected != nil && len(ts.selected) == 0 {
		r.Note = fmt.Sprintf("no namespace in scope is labelled %s (MACAQUE_NAMESPACE_SELECTOR)", k.scope.labelled)
	}
	picks, n, err := k.pick(ctx, ts)
	k.ready.Observe("the list of pods", k.now(), err)
	r.Candidates, base.Candidates = n, n
	if err != nil {
		return nil, []Result{k.report(r, err)}
	}
	k.metrics.Listed(n)
	if n == 0 {
		return nil, []Result{k.report(r, nil)}
	}
	want, capped := k.count.victims(n)
	rd := &round{base: base, r: r, scope: ts, picks: picks[:min(len(picks), tries(want))], n: n, want: want, capped: capped, tried: map[candidate]bool{}}
	rd.rules, rd.once = k.rules(held, cooling)
	return rd, nil
}

// rules are the tick's reasons to pass a pick over, in the order they are asked: the alerts
// firing in the pod's namespace first (they read nothing, and hold every pod there), the pod's
// own state, then its workload's (which the guard reads from the API server), then the tick's
// and the cooldown's memory of that workload. held is the alert gate's rule and cooling the
// cooldown's, each nil when it has none.
func (k *Killer) rules(held, cooling policy.Rule) (policy.Rules, *policy.OncePerTick) {
	once := policy.NewOncePerTick()
	var rules policy.Rules
	if held != nil {
		rules = append(rules, held)
	}
	rules = append(rules, policy.StillRunning{}, policy.OldEnough{MinAge: k.minAge, Now: k.now}, policy.OptedOut{})
	if guard := k.guard.ForTick(); guard != nil {
		rules = append(rules, guard)
	}
	rules = append(rules, once)
	if cooling != nil {
		rules = append(rules, cooling)
	}
	return rules, once
}

// enough says whether the tick tries no further pick: it has its victims, its time for picking
// ran out, or macaque is stopping (which never stops the first kill). Short of its victims, it
// notes why.
func (k *Killer) enough(pickCtx, stopping context.Context, rd *round) bool {
	// Early-return ifs, not a switch: gremlins counts a mutant in a case expression as not
	// covered (docs/testing.md).
	if len(rd.done) == rd.want {
		return true
	}
	if pickCtx.Err() != nil {
		// Out of time for another try; the kill of a later pick would start too late.
		rd.short = k.outOfTime()
		return true
	}
	if len(rd.done) > 0 && stopping.Err() != nil {
		rd.short = "macaque is stopping"
		return true
	}
	return false
}

// try reads pick c back, asks the tick's rules about it and kills it if they all let it through.
// A pick passed over, or gone before its kill, is noted in rd; an error fails the tick.
func (k *Killer) try(ctx, pickCtx context.Context, rd *round, c candidate) error {
	rd.r.Namespace, rd.r.Pod, rd.r.Owner, rd.r.Node, rd.r.Note, rd.r.top = rd.base.Namespace, c.name, "", "", "", nil
	v, err := k.readBack(pickCtx, rd.scope, c, rd.tried)
	if errors.Is(err, kube.ErrGone) {
		rd.lastErr = fmt.Errorf("pod %q: %w", c.String(), err)
		rd.r.Passed = append(rd.r.Passed, c.String()+": gone, or no longer matches the selector")
		return nil
	}
	if err != nil {
		return k.cutShort(pickCtx, rd, fmt.Errorf("read pod %q: %w", c.String(), err))
	}
	rd.r.Namespace, rd.r.Owner, rd.r.Node = v.Namespace, v.Owner(), v.Node
	p := &policy.Pick{Name: candidate{v.Namespace, c.name}.String(), Pod: v}
	pass, err := rd.rules.Check(pickCtx, p)
	if err != nil {
		return k.cutShort(pickCtx, rd, err)
	}
	if pass != nil {
		rd.passOver(p, c.name, pass)
		return nil
	}
	return k.killPick(ctx, rd, p, c.name)
}

// cutShort is err, a read of the try of a pick, unless the tick's own time for picking ran out
// under it once some victim was killed: then nothing failed at the API server, and the tick ends
// with the victims it has, saying why it has no more. A kill's own failure never comes here: it
// is not bounded by the time for picking, and what it did must be reported.
func (k *Killer) cutShort(pickCtx context.Context, rd *round, err error) error {
	if len(rd.done) == 0 || pickCtx.Err() == nil {
		return err
	}
	rd.short = k.outOfTime()
	return nil
}

// outOfTime is why a tick that ran out of its time for picking stopped short.
func (k *Killer) outOfTime() string {
	return fmt.Sprintf("the tick's %v for picking ran out", k.timeouts.Pick)
}

// passOver notes why a rule passed p (the pod named pod) over.
func (rd *round) passOver(p *policy.Pick, pod string, pass *policy.Pass) {
	rd.r.Passed = append(rd.r.Passed, p.Name+": "+pass.Why)
	if pass.Gone {
		rd.lastErr = fmt.Errorf("pod %q is %s: %w", p.Name, pass.Why, kube.ErrGone)
		return
	}
	rd.guarded = true
	rd.r.addBlame(pass.Blame, p.Pod.Namespace, pod, pass.Why, reasonSkipped)
}

// killPick kills p (the pod named pod), which every rule let through, or only reports it in a
// dry run. A pick that changed or went away before its kill, or whose eviction a
// PodDisruptionBudget refused, is noted in rd; any other failure is returned.
func (k *Killer) killPick(ctx context.Context, rd *round, p *policy.Pick, pod string) error {
	r := rd.r
	r.Note, r.top, r.cooldown = text.Join(p.Note, graceNote(k.grace)), p.Top, p.Cooldown
	var err error
	if k.dryRun {
		r.Outcome = OutcomeDryRun
	} else if err = k.stillLeads(); err == nil {
		r, err = k.delete(ctx, r, p.Pod)
	}
	rd.r = r
	if errors.Is(err, kube.ErrGone) {
		rd.lastErr = err
		rd.r.Passed = append(rd.r.Passed, p.Name+": changed or went away before the "+k.way().mode().request())
		return nil
	}
	if errors.Is(err, errBlocked) {
		rd.blocked = true
		rd.r.Passed = append(rd.r.Passed, p.Name+": "+err.Error())
		rd.r.addBlame(p.Top, p.Pod.Namespace, pod, err.Error(), reasonBlocked)
		return nil
	}
	if err != nil {
		return err
	}
	rd.once.Killed(p)
	k.follow(r)
	rd.done = append(rd.done, r)
	rd.r = rd.base
	return nil
}

// stillLeads is nil when this replica may kill now: its lease, unless renewed, outlasts the
// longest the kill may take (k.timeouts.Delete), so no other replica can take the lease and
// kill before this kill has ended. Otherwise the tick ends, saying why.
func (k *Killer) stillLeads() error {
	if k.leader == nil {
		return nil
	}
	if err := k.leader.Hold(k.timeouts.Delete); err != nil {
		return fmt.Errorf("kill nothing more this tick: %w", err)
	}
	return nil
}

// conclude is the tick's reports once it stops trying: its victims', or, when it killed none,
// one that says why, with every pick passed over and the reason for each.
func (k *Killer) conclude(ctx, pickCtx context.Context, rd *round) []Result {
	if len(rd.done) > 0 {
		return k.finish(ctx, rd.done, rd.r, nil, rd.want, shortfall(len(rd.done), rd.want, rd.n, rd.capped, k.count, rd.short))
	}
	r := rd.r
	r.Namespace, r.Pod, r.Owner, r.Node, r.Note, r.top = rd.base.Namespace, "", "", "", "", nil
	switch {
	case rd.blocked:
		// Not an error: a PodDisruptionBudget did its job. Other rejections are listed beside it.
		r.Outcome = OutcomeBlocked
		return []Result{k.report(r, nil)}
	case rd.guarded:
		// Not an error: the rules did their job. Picks that vanished are listed beside them.
		r.Outcome = OutcomeSkipped
		return []Result{k.report(r, nil)}
	}
	err := rd.lastErr
	if err == nil {
		err = fmt.Errorf("listing took all the time for the pick, none left to read it back: %w", pickCtx.Err())
	}
	return []Result{k.report(r, err)}
}

// readBack reads pick c back just before it may be deleted, and marks it tried. A pick from a
// cluster-wide list names no namespace: of the pods of its name in scope, one not yet tried
// this tick is taken at random, which keeps the pick uniform over pods when a name (a
// StatefulSet's web-0) is in several namespaces, each of them a row of its own in the list.
func (k *Killer) readBack(ctx context.Context, ts tickScope, c candidate, tried map[candidate]bool) (kube.Pod, error) {
	if c.namespace != "" {
		tried[c] = true
		return k.api.Lookup(ctx, c.namespace, c.name, k.selector)
	}
	q := ts.lists[0]
	q.Selector = k.selector
	found, err := k.api.Locate(ctx, q, c.name)
	if err != nil {
		return kube.Pod{}, err
	}
	// A namespace the selector did not select at the tick's start (created since) is not left
	// out by q: its pods are out of scope all the same.
	found = slices.DeleteFunc(found, func(v kube.Pod) bool { return tried[candidate{v.Namespace, c.name}] || !ts.admits(v.Namespace) })
	if len(found) == 0 {
		return kube.Pod{}, fmt.Errorf("no pod named %q left in scope: %w", c.name, kube.ErrGone)
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
			r.Note = text.Join(r.Note, fmt.Sprintf("%d of %d asked for: this failure ended the tick", len(done), want))
		}
		done = append(done, r)
	} else {
		// r holds the picks passed over since the last kill: none when the tick got all it wanted.
		last := &done[len(done)-1]
		last.Passed = append(last.Passed, r.Passed...)
		for _, n := range notes {
			last.Note = text.Join(last.Note, n)
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
// passed over until their period (MACAQUE_COOLDOWN, or their chaos.macaque.dev/cooldown
// annotation) has passed, even across a restart. A write that fails is
// noted on the last victim's report: the kills happened, but their cooldown may not hold.
func (k *Killer) remember(ctx context.Context, done []Result) {
	if k.cooldown == nil {
		return
	}
	var hits []policy.Hit
	for _, d := range done {
		if d.Outcome == OutcomeKilled && d.top != nil {
			hits = append(hits, policy.Hit{Key: policy.CooldownKey(d.Namespace, *d.top), Period: d.cooldown})
		}
	}
	ctx, cancel := context.WithTimeout(ctx, policy.CooldownTimeout)
	defer cancel()
	if err := k.cooldown.RecordHits(ctx, hits, k.now()); err != nil {
		last := &done[len(done)-1]
		last.Note = text.Join(last.Note, policy.CooldownNote(err))
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
	return text.Join(note, fmt.Sprintf("%d of %d asked for: %s", got, want, why))
}

// way is how the killer kills: the terminator run chose, or a DELETE (tests build Killers
// without one, as they did when delete was the zero mode).
func (k *Killer) way() terminator {
	if k.terminator == nil {
		return deleter{api: k.api}
	}
	return k.terminator
}

// delete deletes (or evicts) v, the read-back of r.Pod, with a deadline of its own. When the
// API server's answer never comes, what it did is read back instead of guessed: the pod may be
// gone. An eviction a PodDisruptionBudget refused (or several together) is errBlocked, worded
// to name them.
func (k *Killer) delete(ctx context.Context, r Result, v kube.Pod) (Result, error) {
	way := k.way()
	verb := way.mode().verb()
	delCtx, cancel := context.WithTimeout(ctx, k.timeouts.Delete)
	rv, err := way.terminate(delCtx, r.Pod, v, k.grace)
	cancel()
	r.controller, r.uid, r.killRV = v.Controller, v.UID, cmp.Or(rv, v.ListRV)
	if err == nil {
		r.Outcome, r.Deleted = OutcomeKilled, k.now()
		return r, nil
	}
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// A UID or resourceVersion precondition that fails comes back as 409 Conflict: the pod
		// was replaced, changed (relabelled, or deleted by someone else) since it was read back.
		return r, fmt.Errorf("%s pod %q: %w: %w", verb, r.Pod, kube.ErrGone, err)
	}
	listCtx, cancel := context.WithTimeout(ctx, k.timeouts.ReadBack)
	defer cancel()
	if refused := way.refusal(listCtx, err, v); refused != nil {
		return r, refused
	}
	// A 429 without a budget's cause is the API server's own throttling (priority and
	// fairness, max-in-flight), which answers before any handler runs: nothing was done, so it
	// is an error, and there is nothing to read back.
	if !kube.AnswerUnknown(err) {
		return r, fmt.Errorf("%s pod %q: %w", verb, r.Pod, err)
	}
	return k.unanswered(ctx, r, v, err)
}

// unanswered learns what became of a kill of v whose answer never came (err), by reading the
// pod back: gone or terminating is a kill, with a note that says how it was learnt.
func (k *Killer) unanswered(ctx context.Context, r Result, v kube.Pod, err error) (Result, error) {
	mode := k.way().mode()
	readCtx, cancel := context.WithTimeout(ctx, k.timeouts.ReadBack)
	defer cancel()
	back, readErr := k.api.Lookup(readCtx, v.Namespace, r.Pod, "")
	if readErr != nil && !errors.Is(readErr, kube.ErrGone) {
		r.Outcome = OutcomeUnknown
		return r, fmt.Errorf("%s pod %q: no answer (%w), and the read-back failed: %w", mode.verb(), r.Pod, err, readErr)
	}
	if readErr == nil && back.UID == v.UID && !back.Terminating {
		return r, fmt.Errorf("%s pod %q: no answer (%w), and a read-back found it still running", mode.verb(), r.Pod, err)
	}
	state := "terminating"
	if readErr != nil || back.UID != v.UID {
		state = "gone"
	}
	r.Outcome, r.Deleted = OutcomeKilled, k.now()
	r.Note = text.Join(r.Note, fmt.Sprintf("the %s's answer never came (%v); a read-back found the pod %s", mode.requestName(), err, state))
	return r, nil
}

// outcomeOf classifies a tick's error, given the outcome the kill path has already set: a delete
// that succeeded (killed, dry-run) or whose fate is unknown keeps it.
func outcomeOf(set Outcome, err error) Outcome {
	if set == OutcomeUnknown {
		return set // the read-back failed: err says why, but not what the API server did
	}
	if errors.Is(err, policy.ErrPauseUnread) {
		return OutcomeError // even RBAC's 403: it was the switch that could not be read, not a pod
	}
	if err == nil && set == "" {
		return OutcomeNoCandidates
	}
	if err == nil {
		return set
	}
	if errors.Is(err, kube.ErrGone) {
		return OutcomeNotFound
	}
	if kube.IsRBACDenial(err) {
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
	if r.Outcome == OutcomeKilled {
		k.metrics.Killed(r.Time, r.Namespace, r.Deleted)
	}
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

// pick pages through the candidates of every list of the tick's scope ts and keeps up to
// k.count.reservoir() of them (picksPerTick for one victim) chosen uniformly at random
// (reservoir sampling), in a random order: the first is a uniform pick, and each next one is
// uniform among the rest, so the victims, the first picks that qualify, are drawn without
// replacement. Memory stays constant however many pods are in scope, and however many
// namespaces they are in.
func (k *Killer) pick(ctx context.Context, ts tickScope) (picks []candidate, n int, err error) {
	size := k.count.reservoir()
	for _, q := range ts.lists {
		q.Selector, q.Exclude, q.Limit = k.selector, k.self, cmp.Or(k.pageRows, pageSize)
		keep := func(name string) {
			n++
			if len(picks) < size {
				picks = append(picks, candidate{q.Namespace, name})
			} else if i := k.rng.IntN(n); i < size {
				picks[i] = candidate{q.Namespace, name}
			}
		}
		for {
			next, err := k.api.ListPage(ctx, q, keep)
			if err != nil {
				return nil, n, fmt.Errorf("list pods in %s: %w", listScope(q), err)
			}
			if next == "" {
				break
			}
			q.ContinueToken = next
		}
	}
	k.rng.Shuffle(len(picks), func(i, j int) { picks[i], picks[j] = picks[j], picks[i] })
	return picks, n, nil
}

// listScope is how an error names the namespaces a list covers.
func listScope(q kube.ListQuery) string {
	if q.Namespace != "" {
		return strconv.Quote(q.Namespace)
	}
	if len(q.ExcludeNamespaces) == 0 {
		return "every namespace"
	}
	return "every namespace except " + strings.Join(q.ExcludeNamespaces, ",")
}

// pageSize is the most rows one list request asks for, so a namespace of up to 50,000 pods in
// scope is listed in one request. Each request costs the API server a pass over the rest of the
// namespace in its watch cache and a fixed overhead whatever its limit, so fewer requests cost
// it less: at 50,000 Deployment-owned pods one request took 630 ms of kube-apiserver CPU, 10
// pages of 5,000 took 940 ms, for the same bytes (make bench, see docs/performance.md). The limit bounds what
// one request costs: 50,000 rows are ~7 MB of JSON (~0.6 MB gzipped); a larger namespace is
// paged by it. A small first page could not size the rest: the API server gives no
// remainingItemCount for a list with selectors. Rows are decoded one at a time, so the size of
// a response does not show in macaque's memory.
const pageSize = 50000
