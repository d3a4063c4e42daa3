package recovery

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/text"
	"k8s.io/apimachinery/pkg/types"
)

// The kills a leader follows are kept on the election's Lease, written as they change and at
// each renewal, so that a
// replica that takes the lease over from one that died (its lease ran out) can end their
// verdicts, which nobody follows any more, as unknown, and say why, instead of leaving kills
// with no verdict at all. A replica that stops cleanly ends its own (macaque stopped) and
// leaves none on the Lease. A kill made in the moment before a crash (the write of the Lease
// takes a request) may not be on it: its verdict is lost, as every verdict was before the
// election.

// handed is one followed kill as the Lease keeps it: what its verdict names.
type handed struct {
	Namespace string    `json:"ns"`
	Pod       string    `json:"pod"`
	UID       types.UID `json:"uid"`
	Tick      time.Time `json:"tick"`
	Deleted   time.Time `json:"deleted,omitzero"`
	Workload  string    `json:"workload,omitempty"` // the verdict's "Kind/name"
}

// inFlight is the kills a Follower follows now, by victim UID. Its methods are safe for
// concurrent use: the follows change it, the election reads it.
type inFlight struct {
	mu    sync.Mutex
	kills map[types.UID]handed
	// changed has a value once the kills changed since it was last taken: the election then
	// writes them at once rather than at its next renewal.
	changed chan struct{}
}

// signal says the kills changed, unless that is said already.
func (f *inFlight) signal() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// add records kill as followed.
func (f *inFlight) add(kill Kill) {
	h := handed{Namespace: kill.Namespace, Pod: kill.Pod, UID: kill.UID, Tick: kill.Tick, Deleted: kill.Deleted}
	if w := cmp.Or(kill.Top, kill.Controller); w != nil {
		h.Workload = w.String()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.kills == nil {
		f.kills = map[types.UID]handed{}
	}
	f.kills[kill.UID] = h
	f.signal()
}

// done records that kill's verdict is given.
func (f *inFlight) done(kill Kill) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.kills, kill.UID)
	f.signal()
}

// FollowingChanged has a value once the kills Following gives changed since it was last taken.
func (rc *Follower) FollowingChanged() <-chan struct{} {
	rc.following.mu.Lock()
	defer rc.following.mu.Unlock()
	if rc.following.changed == nil {
		rc.following.changed = make(chan struct{}, 1)
	}
	return rc.following.changed
}

// Following is the kills followed now, as the election keeps them on the Lease: "" for none.
func (rc *Follower) Following() string {
	rc.following.mu.Lock()
	kills := slices.Collect(maps.Values(rc.following.kills))
	rc.following.mu.Unlock()
	if len(kills) == 0 {
		return ""
	}
	slices.SortFunc(kills, func(a, b handed) int {
		return cmp.Or(a.Deleted.Compare(b.Deleted), strings.Compare(string(a.UID), string(b.UID)))
	})
	b, err := json.Marshal(kills)
	if err != nil {
		return "" // a slice of plain structs always encodes
	}
	return string(b)
}

// Inheritance is the kills a replica that lost its lease was following, as the replica that
// took the lease over read them from it.
type Inheritance struct {
	From  string // the replica that followed them
	Kills string // Following's value, as it left it on the Lease
}

// orphans are the kills of an Inheritance, to end as unknown.
func (in Inheritance) orphans() ([]Kill, error) {
	if in.Kills == "" {
		return nil, nil
	}
	var hs []handed
	if err := json.Unmarshal([]byte(in.Kills), &hs); err != nil {
		return nil, fmt.Errorf("read the kills %s followed, from the Lease: %w", in.From, err)
	}
	kills := make([]Kill, 0, len(hs))
	for _, h := range hs {
		k := Kill{Tick: h.Tick, Namespace: h.Namespace, Pod: h.Pod, UID: h.UID, Deleted: h.Deleted}
		if kind, name, ok := strings.Cut(h.Workload, "/"); ok {
			k.Top = &kube.OwnerRef{Kind: kind, Name: name}
		}
		kills = append(kills, k)
	}
	return kills, nil
}

// inherit ends each kill of in as unknown: the replica that followed it is gone, and the
// watch it had from the kill with it.
func (rc *Follower) inherit(in Inheritance) []Verdict {
	kills, err := in.orphans()
	if err != nil {
		rc.Log.Error("took over the leadership, but cannot read the kills the last leader followed: their verdicts are lost", "from", in.From, "err", err)
		return nil
	}
	out := make([]Verdict, 0, len(kills))
	for _, k := range kills {
		v := rc.base(k, Unknown)
		v.Why = text.Truncate(fmt.Sprintf("leadership moved: %s, which followed this kill, lost the lease before its verdict", in.From), 200)
		out = append(out, v)
	}
	return out
}
