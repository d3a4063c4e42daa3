package recovery

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/macaque-chaos/macaque/internal/text"

	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/policy"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// tracker is one kill's follow: what its watches have shown of the workload so far.
type tracker struct {
	rc          *Follower
	kill        Kill
	claim       *claim
	on          watchedBy     // its places on the shared watches
	direct, top kube.OwnerRef // the victim's controller, and the workload above it (or it)
	dk, tk      kube.WorkloadKind
	// deleted is when the kill was accepted: every milestone is measured from it, and the
	// timeout runs from it, however late the follow starts.
	deleted   time.Time
	atStart   kube.Workload  // top as read when the follow started; no name if it could not be
	latest    *kube.Workload // top as its watch last showed it
	lastShown kube.Workload  // and as last known, for the timeout's message
	minReady  time.Duration  // top's spec.minReadySeconds, as last shown: a Ready pod is available after it
	short     bool           // top was shown short of full strength since the kill
	// resynced is set when top, read again after its watch expired, had changed since the
	// kill: minutes later, a state that the controller computed after the loss.
	resynced bool
	owners   map[types.UID]bool
	// via is a ReplicaSet of top other than the victim's that created a pod since the kill:
	// the recovery came through a rollout.
	via string
}

// followed is what a follow of kill follows: the victim's controller, and the top controller
// whose full strength is the recovery; ok is false, and why says why, for a kind macaque
// cannot read.
func followed(kill Kill) (direct, top kube.OwnerRef, dk, tk kube.WorkloadKind, why string) {
	direct = *kill.Controller
	dk, ok := kube.CheckedKind(direct)
	if !ok {
		return direct, direct, dk, dk, fmt.Sprintf("macaque cannot follow a %s: it reads only ReplicaSets, Deployments, StatefulSets, DaemonSets and ReplicationControllers", direct.Kind)
	}
	top, tk = direct, dk
	if kill.Top != nil {
		if k, ok := kube.CheckedKind(*kill.Top); ok {
			top, tk = *kill.Top, k
		}
	}
	return direct, top, dk, tk, ""
}

// follow watches kill's workload until it is back at full strength, the timeout (from the kill)
// passes or ctx is done, and returns the verdict. Full strength is judged on the top controller
// (the Deployment above a ReplicaSet), as the guard judges it before a kill, whichever
// ReplicaSet brought it back. The replacement is the pod of the workload that c, kill's claim,
// is matched to: created after the kill, one to one with the other kills followed; for a
// StatefulSet, a pod of the victim's name with a new UID.
func (rc *Follower) follow(ctx context.Context, kill Kill, c *claim, b begun) Verdict {
	var named types.UID
	// However it ends: a claim left open would hold the later kills' replacements back, and a
	// place on a feed would keep its watch open.
	defer func() { rc.claims.release(c, named); b.on.leave() }()
	v := rc.base(kill, Unknown)
	direct, top, dk, tk, why := followed(kill)
	v.Workload = top.String()
	if why != "" {
		v.Why = why
		return v
	}
	if ctx.Err() != nil {
		v.Why = "macaque stopped"
		return v
	}
	f := &tracker{rc: rc, kill: kill, claim: c, on: b.on, direct: direct, top: top, dk: dk, tk: tk, deleted: b.deleted}
	sel, err := f.start(ctx)
	if err != nil {
		v.Why = stoppedOr(ctx, err.Error())
		return v
	}
	in := newInbox()
	b.on.pods.attach(matchPods(sel), in)
	b.on.workload.attach(matchWorkload(top.Name), in)
	v, named = f.watch(ctx, v, in, b.deadline)
	return v
}

// watchedBy is a follow's places on the shared watches: its namespace's pods', and its
// workload kind's.
type watchedBy struct{ pods, workload *sub }

// leave takes the follow off both.
func (w watchedBy) leave() {
	w.pods.leave()
	w.workload.leave()
}

// flush waits for both to hand on what they have read.
func (w watchedBy) flush(ctx context.Context) {
	w.pods.flush(ctx)
	w.workload.flush(ctx)
}

// watch takes the events of the follow's watches until the verdict, which it returns with the
// UID of the replacement it names.
func (f *tracker) watch(ctx context.Context, v Verdict, in *inbox, deadline <-chan time.Time) (Verdict, types.UID) {
	for {
		select {
		case <-ctx.Done():
			v.Why = "macaque stopped"
			return v, ""
		case <-deadline:
			return f.timedOut(ctx, v, in)
		case <-in.wake:
		}
		for d, ok := in.pop(); ok; d, ok = in.pop() {
			if d.Err != nil {
				v.Why = stoppedOr(ctx, d.Err.Error())
				return v, ""
			}
			at := f.handle(ctx, d)
			if f.backAtFull() {
				return f.recovered(ctx, v, in, at)
			}
		}
	}
}

// start reads the top controller, whose selector tells its pods on the namespace's pods' watch:
// those of every ReplicaSet of a Deployment, so that a rollout's are seen. When it cannot be
// read, the victim's own controller's pods are followed.
func (f *tracker) start(ctx context.Context) (labels.Selector, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	w, err := f.rc.API.GetWorkload(ctx, f.kill.Namespace, f.tk, f.top.Name)
	if err == nil {
		f.atStart, f.lastShown = w, w
		sel, err := podSelector(f.tk, w)
		if err == nil || f.top == f.direct {
			return sel, wrapIf(err, f.top.String())
		}
	} else if f.top == f.direct {
		return nil, fmt.Errorf("read %s: %w", f.direct, err)
	}
	owner, err := f.rc.API.GetWorkload(ctx, f.kill.Namespace, f.dk, f.direct.Name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.direct, err)
	}
	sel, err := podSelector(f.dk, owner)
	return sel, wrapIf(err, f.direct.String())
}

// wrapIf is err with what as its context, nil if err is.
func wrapIf(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// reread is the top controller read again, as an event of its watch, after the watch expired.
func (f *tracker) reread(ctx context.Context) (kube.WatchEvent, bool) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	w, err := f.rc.API.GetWorkload(ctx, f.kill.Namespace, f.tk, f.top.Name)
	if err != nil {
		f.rc.Log.Debug("could not read a workload again after its watch expired", "namespace", f.kill.Namespace, "workload", f.top.String(), "err", err)
		return kube.WatchEvent{}, false
	}
	return kube.WatchEvent{Kind: kindReread, Workload: &w}, true
}

// handle takes one event of its feeds, and returns when what it took was seen. The workload's
// watch expired (410), it reads the workload again, as the events it missed would have shown it.
func (f *tracker) handle(ctx context.Context, d delivery) time.Time {
	e := d.WatchEvent
	switch {
	case e.Kind == kindExpired && d.pods:
		f.rc.claims.expired(f.claim)
	case e.Kind == kindExpired:
		if w, ok := f.reread(ctx); ok {
			return f.handle(ctx, delivery{WatchEvent: w, at: f.rc.Now()})
		}
	case e.Pod != nil:
		f.pod(ctx, d)
	case e.Workload != nil:
		f.latest, f.lastShown, f.minReady = e.Workload, *e.Workload, e.MinReady
		if policy.Strength(f.tk, *e.Workload) != "" {
			f.short = true
		}
		if e.Kind == kindReread && kube.RVBefore(f.kill.RV, e.Workload.Metadata.ResourceVersion) {
			f.resynced = true
		}
	}
	return d.at
}

// pod records an event of a pod: one of the workload's created since the kill, or a change to
// one, goes to the claims; every pod's tells how far the follow has read.
func (f *tracker) pod(ctx context.Context, d delivery) {
	kind, p := d.Kind, d.Pod
	rs, ours := f.ofTop(ctx, p)
	added := ours && kind == "ADDED" && p.Metadata.UID != f.kill.UID
	np := newPod{uid: p.Metadata.UID, name: p.Metadata.Name, rs: rs, rv: p.Metadata.ResourceVersion,
		created: p.Metadata.CreationTimestamp.Time, seen: d.at, seenSince: d.since}
	ready := false
	if ours {
		np.why = p.Why()
		np.readyAt, ready = p.ReadySince()
		ready = ready && kind != "DELETED"
	}
	if added && f.top != f.direct && rs != f.direct.Name {
		f.via = rs
	}
	f.rc.claims.saw(f.claim, np, added, ready, ours && kind == "DELETED", p.Metadata.ResourceVersion)
}

// ofTop says whether p is a pod of the workload followed, and names its ReplicaSet: one the
// victim's controller controls, or (below a Deployment) one of the Deployment's ReplicaSets,
// read once to learn whose it is.
func (f *tracker) ofTop(ctx context.Context, p *kube.WatchedPod) (string, bool) {
	ctl, ok := kube.ControllerOf(p.Metadata.OwnerReferences)
	if !ok {
		return "", false
	}
	if ctl.UID == f.direct.UID {
		return ctl.Name, true
	}
	if f.top == f.direct || ctl.Kind != kube.KindReplicaSet.Kind {
		return "", false
	}
	mine, known := f.owners[ctl.UID]
	if !known {
		readCtx, cancel := context.WithTimeout(ctx, readTimeout)
		rs, err := f.rc.API.GetWorkload(readCtx, f.kill.Namespace, kube.KindReplicaSet, ctl.Name)
		cancel()
		if err != nil {
			f.rc.Log.Debug("could not read the replicaset of a new pod", "namespace", f.kill.Namespace, "pod", p.Metadata.Name, "err", err)
			return "", false // not remembered: read again at its next event
		}
		up, ok := rs.Controller()
		mine = rs.Metadata.UID == ctl.UID && ok && up.UID == f.top.UID
		if f.owners == nil {
			f.owners = map[types.UID]bool{}
		}
		f.owners[ctl.UID] = mine
	}
	return ctl.Name, mine
}

// backAtFull says whether the workload, as last shown, is at full strength in a state that
// counts the loss: one shown after it was seen short, or after a change of its spec (a rollout,
// a scale), or read again after its watch expired, or at or after the replacement was Ready. The controller's status counts a
// replacement Ready only after the pod's own update, so a full strength shown before it is a
// state from before the kill was counted.
func (f *tracker) backAtFull() bool {
	if f.latest == nil || policy.Strength(f.tk, *f.latest) != "" {
		return false
	}
	if f.short || f.resynced || (f.atStart.Metadata.Name != "" && f.latest.Metadata.Generation > f.atStart.Metadata.Generation) {
		return true
	}
	p, _, _, _ := f.rc.claims.replacementOf(f.claim, "")
	return p != nil && p.readyRV != "" && !kube.RVBefore(f.latest.Metadata.ResourceVersion, p.readyRV)
}

// recovered is the verdict recovered, the workload back at full strength as seen at at.
func (f *tracker) recovered(ctx context.Context, v Verdict, in *inbox, at time.Time) (Verdict, types.UID) {
	shown := *f.latest // the settling may take later events
	p := f.settle(ctx, &v, in, shown.Metadata.ResourceVersion)
	v.Status, v.Strength = Recovered, strengthOf(f.tk, shown)
	lower := f.milestones(&v, p)
	full := at
	if last, ok := f.rc.claims.lastReady(f.claim, f.deleted); ok {
		// Back when the last pod it waited for was available, which it shows only later.
		full = clamp(last.Add(f.minReady), lower, at)
	}
	v.Full = Milestone{full.Sub(f.deleted), true}
	v.Through = f.through()
	return v, uidOf(p)
}

// timedOut is the verdict not recovered: the timeout has passed.
func (f *tracker) timedOut(ctx context.Context, v Verdict, in *inbox) (Verdict, types.UID) {
	f.on.flush(ctx)
	p := f.settle(ctx, &v, in, "")
	v.Status = NotRecovered
	f.milestones(&v, p)
	v.Why = text.Join(f.missing(ctx, p), v.Why)
	if f.latest != nil {
		v.Strength = strengthOf(f.tk, *f.latest)
	}
	return v, uidOf(p)
}

// uidOf is p's UID, "" for none.
func uidOf(p *newPod) types.UID {
	if p == nil {
		return ""
	}
	return p.uid
}

// settleWait bounds how long a verdict waits for the follows of earlier kills of its workload
// to read as far as it has, before it names its replacement (or says it cannot).
const settleWait = 5 * time.Second

// settle is the replacement the verdict names, once the follows of earlier kills have read as
// far (their replacements come first) and, with until, once this follow's pods' watch has
// caught up with its workload's (the replacement of a workload back at full strength was
// Ready before it), taking this follow's own events meanwhile; nil, with why in v, when none
// can be told.
func (f *tracker) settle(ctx context.Context, v *Verdict, in *inbox, until string) *newPod {
	var timer <-chan time.Time
	for {
		f.drain(ctx, in)
		p, settled, why, changed := f.rc.claims.replacementOf(f.claim, until)
		if settled {
			v.Why = text.Join(v.Why, why)
			return p
		}
		if timer == nil {
			timer = f.rc.After(settleWait)
		}
		select {
		case <-changed:
		case <-in.wake:
		case <-timer:
			// Its own pods' watch behind is no reason to name none: it takes what its watches
			// have read by now, and has what it has seen.
			f.on.flush(ctx)
			f.drain(ctx, in)
			if p, settled, why, _ := f.rc.claims.replacementOf(f.claim, ""); settled {
				v.Why = text.Join(v.Why, why)
				return p
			}
			v.Why = text.Join(v.Why, fmt.Sprintf("its replacement cannot be told apart from those of the other kills of %s followed at once, whose follows are behind", f.top.Name))
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// drain takes every event waiting in in; an error ends nothing once the verdict is being given.
func (f *tracker) drain(ctx context.Context, in *inbox) {
	for d, ok := in.pop(); ok; d, ok = in.pop() {
		if d.Err == nil {
			f.handle(ctx, d)
		}
	}
}

// milestones sets the replacement p's name and the times it was created and Ready, from the
// best evidence: the server's timestamps (to the second) no earlier than the kill, nor than an
// earlier milestone, and no later than when the event was seen. It returns the latest.
func (f *tracker) milestones(v *Verdict, p *newPod) time.Time {
	if p == nil {
		return f.deleted
	}
	v.Replacement = p.name
	created := p.createdAt(f.deleted)
	v.Created = Milestone{created.Sub(f.deleted), true}
	if p.readySeen.IsZero() {
		return created
	}
	ready := p.readyTime(f.deleted)
	v.Ready = Milestone{ready.Sub(f.deleted), true}
	return ready
}

// createdAt is when p was created: its creationTimestamp, no earlier than the kill (a pod
// created in the kill's second was created after it) and no later than when it was seen.
func (p *newPod) createdAt(deleted time.Time) time.Time {
	if p.created.IsZero() {
		return p.seen
	}
	return happened(p.created, deleted, p.seen, p.seenSince)
}

// readyTime is when p became Ready: its condition's lastTransitionTime, no earlier than its
// creation and no later than when it was seen Ready.
func (p *newPod) readyTime(deleted time.Time) time.Time {
	if p.readyAt.IsZero() {
		return p.readySeen
	}
	return happened(p.readyAt, p.createdAt(deleted), p.readySeen, p.readySince)
}

// liveSlack is how long after an event a follow may have begun and still count as having seen
// it live: the start of a follow (a workload read, then its watches) takes about that long.
const liveSlack = 100 * time.Millisecond

// happened is when an event the API server stamped at (to the second, truncated) took place:
// within at's second, no earlier than lo and no later than seen. A follow that was watching by
// then (since, within liveSlack) saw it live, so seen, the tightest bound, is the time; one that
// began later may have been sent it in the burst at its start, so only the server's second
// vouches for it, and the earliest time that second allows is taken.
func happened(at, lo, seen, since time.Time) time.Time {
	earliest := clamp(at, lo, seen)
	if since.After(earliest.Add(liveSlack)) {
		return earliest
	}
	latest := at.Add(time.Second)
	if latest.Before(earliest) {
		latest = earliest
	}
	return clamp(seen, earliest, latest)
}

// clamp is t, but no earlier than lo and no later than hi.
func clamp(t, lo, hi time.Time) time.Time {
	if t.Before(lo) {
		t = lo
	}
	if t.After(hi) {
		t = hi
	}
	return t
}

// through says how the workload got back other than by a replacement from the victim's own
// controller: "a rollout to web-5c6d", "a scale from 3 to 2".
func (f *tracker) through() string {
	var parts []string
	if f.via != "" {
		parts = append(parts, "a rollout to "+f.via)
	}
	if f.atStart.Metadata.Name != "" && f.latest != nil && f.tk != kube.KindDaemonSet {
		if from, to := f.atStart.Desired(), f.latest.Desired(); from != to {
			parts = append(parts, fmt.Sprintf("a scale from %d to %d", from, to))
		}
	}
	return strings.Join(parts, " and ")
}

// kindExpired is the last event of a pods' watch that expired (410): it is not resumed, as
// pods created meanwhile were not seen, and a watch resumed from the present begins with every
// pod there is, each as ADDED. kindReread is the workload read again after its watch expired.
const (
	kindExpired = "EXPIRED"
	kindReread  = "REREAD"
)

// maxFailures bounds the failures in a row of one watch (refused, broken, expired) before its
// follow gives up, unknown: with the backoff between them, about 4 minutes of an API server
// that answers none. A watch the API server closes as routine is no failure.
const maxFailures = 10

// watchPause is how long a follow waits before it reopens a watch the API server closed
// without an event, as a quiet workload's is every few minutes: so that a server that closes
// them at once cannot make macaque spin.
const watchPause = time.Second

// watchBackoff is the wait after the nth failure in a row of a watch: 1 s, doubling, at most a
// minute.
func watchBackoff(n int) time.Duration {
	return min(time.Second<<min(n-1, 6), time.Minute)
}

// stream runs one watch of q from rv, decoding each event with decode and sending it on out,
// until ctx is done. A watch the API server closes is reopened from the last resourceVersion
// seen, however often; one that fails is reopened after a backoff, maxFailures times in a row
// at most, then its error is sent, last. One that expired (410) sends a kindExpired event, then,
// with resume (a workload kind's), resumes from the present, where the API server sends every
// workload's state first; without (the pods'), it ends.
func (rc *Follower) stream(ctx context.Context, q kube.WatchQuery, rv string, out chan<- kube.WatchEvent,
	decode func(string, json.RawMessage) (kube.WatchEvent, error), resume bool) {
	send := func(w kube.WatchEvent) bool {
		select {
		case out <- w:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for failures := 0; ; {
		from := rv
		var err error
		rv, err = rc.watchOnce(ctx, q, rv, send, decode)
		if ctx.Err() != nil {
			return
		}
		if rv != from {
			failures = 0 // it got somewhere
		}
		wait := watchPause
		switch {
		case err == nil && rv != from:
			continue // closed as routine: resumed at once
		case err != nil:
			failures++
			var ok bool
			if rv, ok = rc.failed(q, rv, failures, err, send, resume); !ok {
				return
			}
			wait = watchBackoff(failures)
		}
		select {
		case <-ctx.Done():
			return
		case <-rc.After(wait):
		}
	}
}

// failed takes a watch's failures-th failure in a row, err: past maxFailures, it sends the
// error and returns false; after a 410, it sends a kindExpired event, then resumes from the
// present ("", returned) with resume, or ends (false).
func (rc *Follower) failed(q kube.WatchQuery, rv string, failures int, err error, send func(kube.WatchEvent) bool, resume bool) (string, bool) {
	if failures >= maxFailures {
		send(kube.WatchEvent{Err: fmt.Errorf("watch %s: failed %d times in a row, the last: %w", q, failures, err)})
		return rv, false
	}
	rc.Log.Debug("recovery watch failed, retrying", "watch", q.String(), "failures", failures, "err", err)
	if !kube.Expired(err) {
		return rv, true
	}
	return "", send(kube.WatchEvent{Kind: kindExpired}) && resume
}

// watchOnce runs one watch of q from rv to its end and returns the last resourceVersion seen,
// and the error that ended it, nil when the API server closed it (stream names q in it).
func (rc *Follower) watchOnce(ctx context.Context, q kube.WatchQuery, rv string, send func(kube.WatchEvent) bool,
	decode func(string, json.RawMessage) (kube.WatchEvent, error)) (string, error) {
	body, err := rc.API.Watch(ctx, q, rv)
	if err != nil {
		return rv, err
	}
	defer func() { _ = body.Close() }()
	rv, err = kube.DecodeWatch(body, rv, func(kind string, obj json.RawMessage) error {
		w, err := decode(kind, obj)
		if err != nil {
			return err
		}
		if !send(w) {
			return ctx.Err()
		}
		return nil
	})
	return rv, err
}
