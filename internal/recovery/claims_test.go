package recovery

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/kube"
	"k8s.io/apimachinery/pkg/types"
)

// TestClaimsChangeWakesEveryWaiter: the follows that wait for a change of the claims all wait on
// one channel, which the next change closes: none misses it, however many asked before it.
func TestClaimsChangeWakesEveryWaiter(t *testing.T) {
	var cl claims
	_, _, _, first := cl.replacementOf(&claim{top: "uid-web", killRV: "10", progress: "10"}, "")
	if first == nil {
		t.Fatal("no channel to wait on before any kill was registered")
	}
	c := cl.register("uid-web", Kill{Pod: "web-a", RV: "10", Controller: &kube.OwnerRef{}}, false)
	select {
	case <-first:
	default:
		t.Error("a kill registered, and the channel asked for before it still open")
	}
	_, _, _, a := cl.replacementOf(c, "")
	_, _, _, b := cl.replacementOf(c, "")
	if a != b {
		t.Fatal("two follows asking with no change between got two channels: one would miss the change")
	}
	cl.saw(c, newPod{uid: "uid-x", name: "web-x", rv: "11"}, true, false, false, "11")
	for _, ch := range []<-chan struct{}{a, b} {
		select {
		case <-ch:
		default:
			t.Error("a new pod seen, and a waiter's channel still open")
		}
	}
}

// claimStep is one thing a kill's follow did: saw an event of a pod, saw its pods' watch expire,
// or ended, naming its replacement.
type claimStep struct {
	kill                  int    // whose follow
	pod, rv               string // the pod, and the resourceVersion of its event
	added, ready, deleted bool
	expire                bool
	release               bool // the follow ended, naming pod ("" for none) as its replacement
}

// play registers a kill at each of killRVs, in order, then takes steps; it returns the kills'
// claims.
func (cl *claims) play(killRVs []string, steps []claimStep) []*claim {
	var kills []*claim
	for i, rv := range killRVs {
		kills = append(kills, cl.register("uid-top", Kill{Pod: fmt.Sprint("victim-", i), RV: rv}, false))
	}
	for i, s := range steps {
		c := kills[s.kill]
		switch {
		case s.expire:
			cl.expired(c)
		case s.release && s.pod == "":
			cl.release(c, "")
		case s.release:
			cl.release(c, types.UID("uid-"+s.pod))
		default:
			p := newPod{uid: types.UID("uid-" + s.pod), name: s.pod, rv: s.rv, seen: kill0.Add(time.Duration(i) * time.Second)}
			cl.saw(c, p, s.added, s.ready, s.deleted, s.rv)
		}
	}
	return kills
}

// TestClaimsEndedOrBlindKills: a kill whose follow ended keeps the pod it named, takes no other
// and holds no later kill back; so does one whose pods' watch expired; and a kill is held back
// only by pods that could be its own.
func TestClaimsEndedOrBlindKills(t *testing.T) {
	type want struct {
		pod     string // the kill's replacement, "" for none
		settled bool
		why     string // in what it says; "": it says nothing
	}
	tests := []struct {
		name    string
		killRVs []string
		steps   []claimStep
		want    []want
	}{
		{name: "no pod since a later kill: it names none at once, however far behind the earlier kill's follow is",
			killRVs: []string{"10", "20"},
			steps:   []claimStep{{kill: 1, pod: "p0", rv: "15", added: true}},
			want:    []want{{pod: "p0"}, {settled: true}}},
		{name: "an earlier kill whose pods' watch expired takes no pod and holds no later kill back",
			killRVs: []string{"10", "20"},
			steps:   []claimStep{{kill: 0, expire: true}, {kill: 1, pod: "p1", rv: "25", added: true}},
			want:    []want{{settled: true, why: "410 Gone"}, {pod: "p1", settled: true}}},
		{name: "an earlier kill whose follow ended with none takes no later pod and holds no later kill back",
			killRVs: []string{"10", "20"},
			steps:   []claimStep{{kill: 0, release: true}, {kill: 1, pod: "p1", rv: "25", added: true}},
			want:    []want{{settled: true}, {pod: "p1", settled: true}}},
		{name: "a kill's follow ended naming its replacement: the later kill takes the next pod, not that one",
			killRVs: []string{"10", "20"},
			steps: []claimStep{{kill: 0, pod: "pA", rv: "25", added: true}, {kill: 0, pod: "pB", rv: "26", added: true},
				{kill: 1, pod: "pA", rv: "25", added: true}, {kill: 1, pod: "pB", rv: "26", added: true},
				{kill: 0, pod: "pA", release: true}},
			want: []want{{pod: "pA", settled: true}, {pod: "pB", settled: true}}},
		{name: "one kill, resourceVersions that are not numbers, no pod: none created, nothing to tell apart",
			killRVs: []string{"a"},
			want:    []want{{settled: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cl claims
			for i, c := range cl.play(tt.killRVs, tt.steps) {
				p, settled, why, _ := cl.replacementOf(c, "")
				name := ""
				if p != nil {
					name = p.name
				}
				w := tt.want[i]
				if name != w.pod || settled != w.settled || (w.why == "") != (why == "") || !strings.Contains(why, w.why) {
					t.Errorf("kill %d: %q (settled %v, %q), want %q (settled %v, %q)", i, name, settled, why, w.pod, w.settled, w.why)
				}
			}
		})
	}
}

// TestClaimsLastReady: a kill's workload is back when the last of the pods created since the
// kill became Ready: not a pod that came before it, which an earlier kill waited for.
func TestClaimsLastReady(t *testing.T) {
	at := func(step int) time.Time { return kill0.Add(time.Duration(step) * time.Second) } // when step was seen
	tests := []struct {
		name    string
		killRVs []string
		steps   []claimStep
		want    time.Time // for the last kill; zero: none Ready
	}{
		{name: "a pod Ready before a later kill is not one it waited for, once the earlier kill's follow ended",
			killRVs: []string{"10", "20"},
			steps:   []claimStep{{kill: 0, pod: "p0", rv: "15", added: true, ready: true}, {kill: 0, pod: "p0", release: true}}},
		{name: "nor while the earlier kill is still followed",
			killRVs: []string{"10", "20"},
			steps:   []claimStep{{kill: 0, pod: "p0", rv: "15", added: true, ready: true}}},
		{name: "the latest Ready of the pods since the kill",
			killRVs: []string{"10", "20"},
			steps: []claimStep{{kill: 0, pod: "p0", rv: "15", added: true, ready: true}, {kill: 1, pod: "p1", rv: "25", added: true},
				{kill: 1, pod: "p2", rv: "26", added: true, ready: true}, {kill: 1, pod: "p1", rv: "27", ready: true}},
			want: at(3)},
		{name: "one kill, resourceVersions that are not numbers: the pod Ready on its watch is one it waited for",
			killRVs: []string{"a"},
			steps:   []claimStep{{pod: "x", rv: "b", added: true}, {pod: "x", rv: "c", ready: true}},
			want:    at(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cl claims
			kills := cl.play(tt.killRVs, tt.steps)
			got, ok := cl.lastReady(kills[len(kills)-1], kill0)
			if !got.Equal(tt.want) || ok == tt.want.IsZero() {
				t.Errorf("lastReady = %v, %v; want %v", got, ok, tt.want)
			}
		})
	}
}

// TestReplacementWaitsForItsOwnFollowUntil: with until, the resourceVersion of a workload's
// state that needs the replacement, a claim whose pods' watch has read less far is not settled,
// with no pod or a pod not yet seen Ready; read as far, it is.
func TestReplacementWaitsForItsOwnFollowUntil(t *testing.T) {
	for _, c := range []struct {
		name, progress, until string
		ready                 bool
		settled               bool
	}{
		{"no pod, read less far than until", "11", "20", false, false},
		{"a pod not Ready, read less far than until", "11", "20", false, false},
		{"no pod, read as far as until", "20", "20", false, true},
		{"no until to wait for", "11", "", false, true},
		{"a Ready pod needs no more reading", "12", "20", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cl claims
			cl2 := cl.register("uid-web", Kill{Pod: "web-a", RV: "10", Controller: &kube.OwnerRef{}}, false)
			if strings.Contains(c.name, "a pod") || c.ready {
				cl.saw(cl2, newPod{uid: "uid-x", name: "web-x", rv: "11", seen: kill0}, true, c.ready, false, "11")
			}
			cl.mu.Lock()
			cl2.progress = c.progress
			cl.mu.Unlock()
			if _, settled, _, _ := cl.replacementOf(cl2, c.until); settled != c.settled {
				t.Errorf("settled %v, want %v", settled, c.settled)
			}
		})
	}
}
