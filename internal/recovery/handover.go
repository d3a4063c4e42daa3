package recovery

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/text"
	"k8s.io/apimachinery/pkg/types"
)

// The kills a leader follows are kept on the election's Lease at each renewal (every 2 s), so
// that a
// replica that takes the lease over from one that died (its lease ran out) can end their
// verdicts, which nobody follows any more, as unknown, and say why, instead of leaving kills
// with no verdict at all. A replica that stops cleanly ends its own (macaque stopped) and
// leaves none on the Lease. A kill made in the last 2 s before a crash may not be on it yet: its
// verdict is lost, as every verdict was before the election. Writing at every change instead
// (tried) wrote the Lease tens of times a second in a tick of 100 kills: the API server's CPU
// per tick rose by half, recoveries slowed, and macaque's peak RSS passed 32 MiB.

// handed is one followed kill as the Lease keeps it: what its verdict names.
type handed struct {
	Namespace string    `json:"ns"`
	Pod       string    `json:"pod"`
	UID       types.UID `json:"uid"`
	Tick      time.Time `json:"tick"`
	Deleted   time.Time `json:"deleted,omitzero"`
	Workload  string    `json:"workload,omitempty"` // the verdict's "Kind/name"
}

// inFlight is the kills a Follower follows now, in the order they were taken (at most
// MaxFollowing). Its methods are safe for concurrent use: the follows change it, the election
// reads it.
type inFlight struct {
	mu    sync.Mutex
	kills []handed
}

// add records kill as followed.
func (f *inFlight) add(kill Kill) {
	h := handed{Namespace: kill.Namespace, Pod: kill.Pod, UID: kill.UID, Tick: kill.Tick, Deleted: kill.Deleted}
	if w := cmp.Or(kill.Top, kill.Controller); w != nil {
		h.Workload = w.String()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kills = append(f.kills, h)
}

// done records that kill's verdict is given.
func (f *inFlight) done(kill Kill) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, h := range f.kills {
		if h.UID == kill.UID {
			f.kills = append(f.kills[:i], f.kills[i+1:]...)
			return
		}
	}
}

// Following is the kills followed now, in kill order, as the election keeps them on the
// Lease: "" for none.
func (rc *Follower) Following() string {
	rc.following.mu.Lock()
	defer rc.following.mu.Unlock()
	if len(rc.following.kills) == 0 {
		return ""
	}
	b, err := json.Marshal(rc.following.kills)
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
