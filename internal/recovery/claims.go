package recovery

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/macaque-chaos/macaque/internal/kube"
	"k8s.io/apimachinery/pkg/types"
)

// claims matches the new pods of each workload followed to its kills, one to one, in the order
// of the kills. A ReplicaSet recreates "a" pod, not a given one, so when several kills of one
// workload are followed at once, the first pod created after them is the first kill's
// replacement, the next the second's, and so on; a follow that took the first new pod it saw
// would name one pod for every kill. The follows of the Follower share it.
type claims struct {
	mu    sync.Mutex
	byTop map[types.UID]*workloadClaims
	// changed is closed, and replaced, at each change: a follow that waits for its peers to
	// catch up before it names its replacement wakes on it.
	changed chan struct{}
}

// workloadClaims are the kills of one workload being followed, and the pods created since.
type workloadClaims struct {
	kills []*claim  // in kill order
	pods  []*newPod // in order of creation (the resourceVersion of their creation)
}

// claim is one kill's place among those of its workload.
type claim struct {
	top    types.UID
	victim string // the killed pod's name: a StatefulSet's replacement has it
	byName bool   // the replacement is the pod of the victim's name (a StatefulSet's)
	killRV string
	// progress is the resourceVersion up to which its follow has read the pods' events: no pod
	// created after the kill and before it is unknown to the registry.
	progress string
	// blind is set when its pods' watch expired (410): a pod created since may never have been
	// seen, so none can be told to be its replacement, and it takes none.
	blind bool
	done  bool
	pod   *newPod // its replacement, frozen when done
}

// newPod is a pod of the workload created after a kill, as the follows saw it: what the
// verdict of the kill it replaces says of it.
type newPod struct {
	uid  types.UID
	name string
	rs   string // its ReplicaSet, for a Deployment's pod
	rv   string // the resourceVersion of its creation
	// created is its creationTimestamp (to the second), zero if it had none; seen is when a
	// follow first saw it.
	created, seen time.Time
	// readyAt is its Ready condition's lastTransitionTime (to the second), zero if none;
	// readySeen is when a follow first saw it Ready, zero until then; readyRV is at which
	// resourceVersion.
	readyAt, readySeen time.Time
	// seenSince and ReadySince are when the follows that saw it, and saw it Ready, first began
	// watching: a sighting is live only if its follow was watching already (see happened).
	seenSince, readySince time.Time
	readyRV               string
	why                   string // what keeps it from being Ready, as last seen
	gone                  bool   // deleted
}

// register adds a kill of the workload top, after those already registered: call it in the order
// of the kills.
func (cl *claims) register(top types.UID, kill Kill, byName bool) *claim {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.byTop == nil {
		cl.byTop = map[types.UID]*workloadClaims{}
	}
	w := cl.byTop[top]
	if w == nil {
		w = &workloadClaims{}
		cl.byTop[top] = w
	}
	c := &claim{top: top, victim: kill.Pod, byName: byName, killRV: kill.RV, progress: kill.RV}
	w.kills = append(w.kills, c)
	cl.notify()
	return c
}

// notify wakes the follows waiting on a change; cl.mu must be held.
func (cl *claims) notify() {
	if cl.changed != nil {
		close(cl.changed)
	}
	cl.changed = make(chan struct{})
}

// saw records what c's follow saw of a pod of its workload at resourceVersion rv: a pod created
// after the kill (added), or a change to one (Ready, deleted). Either way, c's follow has
// read the pods' events up to rv.
func (cl *claims) saw(c *claim, p newPod, added, ready, deleted bool, rv string) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	defer cl.notify()
	if kube.RVBefore(c.progress, rv) {
		c.progress = rv
	}
	w := cl.byTop[c.top]
	if w == nil {
		return
	}
	i := slices.IndexFunc(w.pods, func(q *newPod) bool { return q.uid == p.uid })
	if i < 0 {
		if !added {
			return // a pod older than every kill followed
		}
		q := p
		i = slices.IndexFunc(w.pods, func(o *newPod) bool { return kube.RVBefore(q.rv, o.rv) })
		if i < 0 {
			i = len(w.pods)
		}
		w.pods = slices.Insert(w.pods, i, &q)
	}
	q := w.pods[i]
	q.why = p.why
	if p.seen.Before(q.seen) {
		q.seen, q.seenSince = p.seen, p.seenSince // another follow saw it first
	}
	if ready && (q.readySeen.IsZero() || p.seen.Before(q.readySeen)) {
		q.readyAt, q.readySeen, q.readySince, q.readyRV = p.readyAt, p.seen, p.seenSince, rv
	}
	q.gone = q.gone || deleted
}

// expired marks c blind: its pods' watch resumes from the present, past pods never seen.
func (cl *claims) expired(c *claim) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	c.blind = true
	cl.notify()
}

// replacementOf is c's replacement as far as the pods seen tell, nil if none; settled says
// whether it can still change as the follows of earlier kills catch up (a pod they have not
// read yet, created before it, would be theirs or c's), or, with until, as c's own follow
// catches up: its pods' watch has not yet shown the replacement Ready and has not read as far
// as until, the resourceVersion of the workload's state that needs it. why says, when none can
// be named, why not, if it is not simply that none was created; changed is closed at the next
// change.
func (cl *claims) replacementOf(c *claim, until string) (p *newPod, settled bool, why string, changed <-chan struct{}) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.changed == nil {
		cl.changed = make(chan struct{})
	}
	changed = cl.changed
	if c.done {
		return copyOf(c.pod), true, "", changed
	}
	if c.blind {
		return nil, true, "the pods' watch expired (410 Gone): which pod replaced it is not known", changed
	}
	w := cl.byTop[c.top]
	if w == nil {
		return nil, true, "", changed
	}
	p = w.assign()[c]
	if (p == nil || p.readySeen.IsZero()) && until != "" && kube.RVBefore(c.progress, until) {
		return copyOf(p), false, "", changed
	}
	if p == nil && w.unordered() && w.pending() > 1 {
		return nil, true, fmt.Sprintf("%d kills of this workload are followed at once and the API server's resourceVersions do not tell which pod came after which: its replacement cannot be told apart", w.pending()), changed
	}
	return copyOf(p), w.settled(c, p), "", changed
}

// settled says whether c's replacement p (nil: none) is final: every kill followed up to c that
// came before the pods it was matched among (p, or those taken by earlier kills) has read as
// far as them. A pod created before them that a lagging follow has not yet seen would be one
// of those kills' or c's.
func (w *workloadClaims) settled(c *claim, p *newPod) bool {
	horizon := ""
	if p != nil {
		horizon = p.rv
	} else {
		for _, q := range w.pods {
			if kube.RVBefore(c.killRV, q.rv) && (horizon == "" || kube.RVBefore(horizon, q.rv)) {
				horizon = q.rv
			}
		}
	}
	if horizon == "" {
		return true // no pod since the kill
	}
	for _, k := range w.kills {
		if !k.done && !k.blind && kube.RVBefore(k.killRV, horizon) && kube.RVBefore(k.progress, horizon) {
			return false
		}
		if k == c {
			break
		}
	}
	return true
}

// copyOf is a copy of p, nil for nil: what a follow reads of a pod the others may update.
func copyOf(p *newPod) *newPod {
	if p == nil {
		return nil
	}
	cp := *p
	return &cp
}

// assign matches pods to kills: each pod, in order of creation, goes to the earliest kill not yet
// matched that it came after; a pod deleted before it was Ready is no one's, as its controller
// makes another. A done kill keeps the pod it had.
func (w *workloadClaims) assign() map[*claim]*newPod {
	out := map[*claim]*newPod{}
	taken := map[*newPod]bool{}
	for _, c := range w.kills {
		if c.pod != nil { // set only as its follow ends (done): the pod it named, frozen
			out[c], taken[c.pod] = c.pod, true
		}
	}
	// Without numbers to order them by, a pod seen on the watch of the only kill followed came
	// after it; with several, none can be told to be whose.
	lone := w.unordered() && w.pending() == 1
	for _, p := range w.pods {
		if taken[p] || (p.gone && p.readySeen.IsZero()) {
			continue
		}
		for _, c := range w.kills {
			if out[c] == nil && c.mayTake(p, lone) {
				out[c] = p
				break
			}
		}
	}
	return out
}

// mayTake says whether p may be c's replacement: c is still followed and sees its pods, p was
// created after it (or, lone, came on its watch), and, for a StatefulSet, has the victim's name.
func (c *claim) mayTake(p *newPod, lone bool) bool {
	if c.done || c.blind || (c.byName && p.name != c.victim) {
		return false
	}
	return lone || kube.RVBefore(c.killRV, p.rv)
}

// blind says whether c's pods' watch expired (false for no claim).
func (cl *claims) blind(c *claim) bool {
	if c == nil {
		return false
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return c.blind
}

// pending counts the kills still followed.
func (w *workloadClaims) pending() int {
	n := 0
	for _, c := range w.kills {
		if !c.done {
			n++
		}
	}
	return n
}

// unordered says whether the kills' and pods' resourceVersions are not all numbers, which
// kube-apiserver's are: then which pod came after which kill cannot be known.
func (w *workloadClaims) unordered() bool {
	for _, c := range w.kills {
		if _, err := strconv.ParseUint(c.killRV, 10, 64); err != nil {
			return true
		}
	}
	for _, p := range w.pods {
		if _, err := strconv.ParseUint(p.rv, 10, 64); err != nil {
			return true
		}
	}
	return false
}

// lastReady is when the latest of the pods created since c's kill became Ready, as
// newPod.readyTime says; false if none has.
func (cl *claims) lastReady(c *claim, deleted time.Time) (time.Time, bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var last time.Time
	w := cl.byTop[c.top]
	if w == nil {
		return last, false
	}
	lone := w.unordered() && w.pending() == 1
	for _, p := range w.pods {
		if !p.readySeen.IsZero() && (lone || kube.RVBefore(c.killRV, p.rv)) {
			if t := p.readyTime(deleted); t.After(last) {
				last = t
			}
		}
	}
	return last, !last.IsZero()
}

// release ends c's follow: its replacement is the pod of UID named ("" for none), frozen. When
// no kill of its workload is followed any more, the workload is forgotten.
func (cl *claims) release(c *claim, named types.UID) {
	if c == nil {
		return
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	c.done = true
	cl.notify()
	w := cl.byTop[c.top]
	if w == nil {
		return
	}
	if named != "" {
		if i := slices.IndexFunc(w.pods, func(p *newPod) bool { return p.uid == named }); i >= 0 {
			c.pod = w.pods[i]
		}
	}
	for _, k := range w.kills {
		if !k.done {
			return
		}
	}
	delete(cl.byTop, c.top)
}
