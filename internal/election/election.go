package election

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/macaque-chaos/macaque/internal/kube"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LeaseName is the Lease the replicas compete for, in macaque's own namespace: one macaque
// per namespace, as for the cooldown's ConfigMap.
const LeaseName = "macaque-leader"

// The timing of client-go's leaderelection defaults. A leader that cannot renew for
// RenewDeadline stops leading, and Hold refuses a kill well before then; a standby takes
// the lease only LeaseDuration after it last saw it renewed, by its own clock.
const (
	LeaseDuration = 15 * time.Second
	RenewDeadline = 10 * time.Second
	RetryPeriod   = 2 * time.Second
	// releaseTimeout bounds the release at a clean stop, which runs after the stop signal.
	releaseTimeout = 2 * time.Second
	// jitterFactor spreads a standby's tries as client-go's does (a try every 2 s to 4.4 s),
	// so that replicas started together do not ask in step.
	jitterFactor = 1.2
)

// API is what the election needs of the API server: the one Lease, read, created and updated
// (the Role grants exactly these).
type API interface {
	// GetLease reads the Lease; a missing one is the API server's NotFound.
	GetLease(ctx context.Context, namespace, name string) (kube.Lease, error)
	// CreateLease creates it, AlreadyExists when another replica was first.
	CreateLease(ctx context.Context, l kube.Lease) (kube.Lease, error)
	// UpdateLease writes it back, Conflict when it changed since it was read.
	UpdateLease(ctx context.Context, l kube.Lease) (kube.Lease, error)
}

// macaque hands it the one API client; this keeps the two in step.
var _ API = (*kube.Client)(nil)

// Observer is told when this replica starts or stops leading (the macaque_leader gauge).
type Observer interface {
	Leading(bool)
}

// Takeover is this replica becoming the leader: from whom (empty: nobody held the lease), and
// whether that one released it (a clean stop) or let it run out.
type Takeover struct {
	At       time.Time
	Identity string // this replica's
	From     string
	Expired  bool
	// Following is what the last leader's Following gave at its last write of the lease, when
	// it did not release it: the kills it followed, which nobody follows now.
	Following string
}

// FollowingAnnotation keeps, on the Lease, the kills the leader follows (Elector.Following).
const FollowingAnnotation = "chaos.macaque.dev/following"

// ErrNotLeader is Hold's answer on a replica that does not hold the lease, or whose lease runs
// out before a kill could end.
var ErrNotLeader = errors.New("not the leader")

// Elector takes part in the election for one replica. Its zero value is not usable: set API,
// Namespace, Identity, Now, After and Log; Rand, Observer and Takeovers may be nil.
type Elector struct {
	API       API
	Namespace string
	Identity  string // the pod's name: the lease's holder while it leads
	Now       func() time.Time
	After     func(time.Duration) <-chan time.Time
	Rand      *rand.Rand // the standby's jitter; nil: none
	Log       *slog.Logger
	Observer  Observer // nil: none
	// Takeovers gets each takeover, for the notifier to say who took over from whom; Run
	// closes it. It must be taken from promptly (the notifier queues at once); nil: none.
	Takeovers chan<- Takeover
	// Following is written on the lease at each renewal, for a replica that takes it over
	// should this one die: the kills whose verdicts it follows. Nil: nothing.
	Following func() string

	mu         sync.Mutex
	validUntil time.Time // the lease runs out then, by this replica's count; zero: not leading
	lease      kube.Lease
	seen       seen // a standby's view of the holder's last renewal
}

// seen is the lease record a replica last read and when it first read it so: a holder's
// lease runs from there, by the reader's clock, since the two clocks may differ.
type seen struct {
	record string
	at     time.Time
	lease  time.Duration // the holder's lease duration, as its record says
}

// Hold says whether this replica leads, with its lease valid, by its own clock, for longer than
// need (the longest a kill may take): nil when it may kill.
func (e *Elector) Hold(need time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.validUntil.IsZero() {
		return fmt.Errorf("%w: another replica holds the Lease %s", ErrNotLeader, LeaseName)
	}
	if left := e.validUntil.Sub(e.Now()); left <= need {
		return fmt.Errorf("%w: the Lease %s runs out in %v unless renewed, sooner than a kill may take (%v)",
			ErrNotLeader, LeaseName, left.Round(time.Millisecond), need)
	}
	return nil
}

// Run takes part in the election until killerDone is closed, which the killer does when it
// ends: so a replica that is stopping keeps renewing while a kill may still be in flight, then
// releases the lease, and a standby takes over at its next try instead of a lease later. Once
// ctx is done it only renews, never takes the lease. It closes Takeovers when it returns.
func (e *Elector) Run(ctx context.Context, killerDone <-chan struct{}) {
	if e.Takeovers != nil {
		defer close(e.Takeovers)
	}
	work := context.WithoutCancel(ctx)
	var last time.Time // the start of the last successful try, while leading
	for {
		if ctx.Err() == nil || !last.IsZero() {
			start := e.Now()
			last = e.afterTry(e.try(work, start), start, last)
		}
		if !e.sleep(last, killerDone) {
			e.release(work)
			return
		}
	}
}

// sleep waits for the next try; false once killerDone is closed.
func (e *Elector) sleep(last time.Time, killerDone <-chan struct{}) bool {
	select {
	case <-e.After(e.wait(last)):
		return true
	case <-killerDone:
		return false
	}
}

// wait is the time to the next try: RetryPeriod for a leader; for a standby, RetryPeriod
// stretched at random, but no later than the moment the holder's lease runs out as this
// replica saw it, so that a lost leader is replaced a lease after its last renewal was seen,
// not a try later.
func (e *Elector) wait(last time.Time) time.Duration {
	if !last.IsZero() {
		return RetryPeriod
	}
	d := RetryPeriod
	if e.Rand != nil {
		d += time.Duration(e.Rand.IntN(int(jitterFactor*float64(RetryPeriod/time.Millisecond)))) * time.Millisecond
	}
	e.mu.Lock()
	runsOut := e.seen.at.Add(e.seen.lease)
	e.mu.Unlock()
	if left := runsOut.Sub(e.Now()); left > 0 && left < d {
		return left
	}
	return d
}

// afterTry records the outcome of a try that began at start: a leader that failed to renew
// for RenewDeadline stops leading. It returns the start of the last successful try while
// leading (zero while not).
func (e *Elector) afterTry(ok bool, start, last time.Time) time.Time {
	if ok {
		return start
	}
	e.mu.Lock()
	leading := !e.validUntil.IsZero() // even if run out: a frozen leader is still told it lost
	e.mu.Unlock()
	if !leading {
		return time.Time{}
	}
	if e.Now().Sub(last) >= RenewDeadline {
		e.lose(fmt.Sprintf("no renewal for %v", RenewDeadline))
		return time.Time{}
	}
	return last
}

// try takes or renews the lease once, bounded by RenewDeadline; start is when it began, from
// which a lease it wins is counted.
func (e *Elector) try(ctx context.Context, start time.Time) bool {
	ctx, cancel := context.WithTimeout(ctx, RenewDeadline)
	defer cancel()
	if e.renewCached(ctx, start) {
		return true
	}
	cur, err := e.API.GetLease(ctx, e.Namespace, LeaseName)
	if apierrors.IsNotFound(err) {
		return e.create(ctx, start)
	}
	if err != nil {
		e.Log.Warn("leader election: read the lease", "lease", LeaseName, "err", err)
		return false
	}
	return e.takeOrRenew(ctx, cur, start)
}

// renewCached renews the lease this replica holds from its own last write, without reading it
// first: one request per renewal. A conflict (someone else wrote it) falls back to a read.
func (e *Elector) renewCached(ctx context.Context, start time.Time) bool {
	e.mu.Lock()
	leading, l := !e.validUntil.IsZero(), e.lease
	e.mu.Unlock()
	if !leading {
		return false
	}
	l.Spec.RenewTime = &metav1.MicroTime{Time: start}
	l.Metadata.Annotations = e.annotations(l.Metadata.Annotations)
	got, err := e.API.UpdateLease(ctx, l)
	if err != nil {
		if !apierrors.IsConflict(err) {
			e.Log.Warn("leader election: renew the lease", "lease", LeaseName, "err", err)
		}
		return false
	}
	e.lead(got, start, Takeover{})
	return true
}

// create makes the lease, held by this replica.
func (e *Elector) create(ctx context.Context, start time.Time) bool {
	l := kube.Lease{Metadata: kube.LeaseMetadata{Name: LeaseName, Namespace: e.Namespace}}
	e.hold(&l, start, true)
	got, err := e.API.CreateLease(ctx, l)
	if err != nil {
		if !apierrors.IsAlreadyExists(err) {
			e.Log.Warn("leader election: create the lease", "lease", LeaseName, "err", err)
		}
		return false
	}
	e.lead(got, start, Takeover{})
	return true
}

// takeOrRenew takes cur, the lease as read, when nobody holds it, its holder's lease ran out
// by this replica's count, or this replica holds it already; otherwise it notes the holder's
// renewal and leaves it alone.
func (e *Elector) takeOrRenew(ctx context.Context, cur kube.Lease, start time.Time) bool {
	holder := deref(cur.Spec.HolderIdentity)
	mine := holder == e.Identity
	free, expired := holder == "", false
	if !mine && !free {
		if e.observe(cur, e.Now()) {
			e.lose("another replica holds the lease: " + holder)
			return false
		}
		expired = true
	}
	next := cur
	e.hold(&next, start, !mine)
	got, err := e.API.UpdateLease(ctx, next)
	if err != nil {
		if !apierrors.IsConflict(err) {
			e.Log.Warn("leader election: take the lease", "lease", LeaseName, "holder", holder, "err", err)
		}
		return false
	}
	took := Takeover{From: holder, Expired: expired}
	if !free {
		// Left by a leader that did not release the lease (a release removes it): this
		// replica's own earlier run, if mine.
		took.Following = cur.Metadata.Annotations[FollowingAnnotation]
	}
	e.lead(got, start, took)
	return true
}

// observe notes the holder's record as read at now, and says whether its lease still runs by
// this replica's count: from when this replica first saw that record.
func (e *Elector) observe(cur kube.Lease, now time.Time) bool {
	record := fmt.Sprint(deref(cur.Spec.HolderIdentity), cur.Spec.RenewTime, cur.Spec.AcquireTime,
		derefInt(cur.Spec.LeaseTransitions), derefInt(cur.Spec.LeaseDurationSeconds))
	e.mu.Lock()
	defer e.mu.Unlock()
	if record != e.seen.record {
		e.seen = seen{record: record, at: now, lease: time.Duration(derefInt(cur.Spec.LeaseDurationSeconds)) * time.Second}
	}
	return now.Before(e.seen.at.Add(e.seen.lease))
}

// hold makes l this replica's, renewed at start; taken: acquired now, one more transition.
func (e *Elector) hold(l *kube.Lease, start time.Time, taken bool) {
	id, secs := e.Identity, int32(LeaseDuration/time.Second)
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = &id, &secs
	l.Metadata.Annotations = e.annotations(l.Metadata.Annotations)
	l.Spec.RenewTime = &metav1.MicroTime{Time: start}
	if taken {
		l.Spec.AcquireTime = &metav1.MicroTime{Time: start}
		n := derefInt(l.Spec.LeaseTransitions)
		if l.Metadata.ResourceVersion != "" { // changing hands, not created
			n++
		}
		l.Spec.LeaseTransitions = &n
	}
}

// lead records a lease this replica wrote at start; took says from whom, when it was not
// leading before.
func (e *Elector) lead(l kube.Lease, start time.Time, took Takeover) {
	e.mu.Lock()
	was := !e.validUntil.IsZero()
	e.lease, e.validUntil = l, start.Add(LeaseDuration)
	e.mu.Unlock()
	if was {
		return
	}
	e.observeLeading(true)
	e.Log.Info("became the leader", "lease", LeaseName, "identity", e.Identity, "from", took.From, "expired", took.Expired)
	if e.Takeovers != nil {
		took.At, took.Identity = start, e.Identity
		e.Takeovers <- took
	}
}

// lose stops leading, saying why.
func (e *Elector) lose(why string) {
	e.mu.Lock()
	was := !e.validUntil.IsZero()
	e.validUntil = time.Time{}
	e.mu.Unlock()
	if was {
		e.observeLeading(false)
		e.Log.Warn("lost the leadership: killing nothing until the lease is won again", "lease", LeaseName, "why", why)
	}
}

// release gives the lease up at a clean stop, if this replica holds it: holder empty, as
// client-go's ReleaseOnCancel does, so that a standby takes it at its next try.
func (e *Elector) release(ctx context.Context) {
	e.mu.Lock()
	leading, l := !e.validUntil.IsZero(), e.lease
	e.validUntil = time.Time{}
	e.mu.Unlock()
	if !leading {
		return
	}
	e.observeLeading(false)
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	none, one := "", int32(1)
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = &none, &one
	// This replica ends its own verdicts as it stops: none is left for the next leader.
	l.Metadata.Annotations = maps.Clone(l.Metadata.Annotations)
	delete(l.Metadata.Annotations, FollowingAnnotation)
	l.Spec.RenewTime = &metav1.MicroTime{Time: e.Now()}
	if _, err := e.API.UpdateLease(ctx, l); err != nil {
		e.Log.Warn("leader election: release the lease; a standby takes over once it runs out", "lease", LeaseName, "err", err)
		return
	}
	e.Log.Info("released the leadership", "lease", LeaseName)
}

// annotations is a copy of a's, with the kills this replica follows now.
func (e *Elector) annotations(a map[string]string) map[string]string {
	a = maps.Clone(a)
	if e.Following == nil {
		return a
	}
	if a == nil {
		a = map[string]string{}
	}
	if f := e.Following(); f != "" {
		a[FollowingAnnotation] = f
	} else {
		delete(a, FollowingAnnotation)
	}
	return a
}

// observeLeading tells the Observer, if any.
func (e *Elector) observeLeading(leading bool) {
	if e.Observer != nil {
		e.Observer.Leading(leading)
	}
}

// deref is *s, or "" for nil.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// derefInt is *n, or 0 for nil.
func derefInt(n *int32) int32 {
	if n == nil {
		return 0
	}
	return *n
}
