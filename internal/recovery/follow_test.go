package recovery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/testkit"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/kube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// manualClock is a clock the test moves: now is what it was last set to; a timer of at least
// long fires when the clock is set past it, a shorter one (a backoff, a pause) at once.
type manualClock struct {
	mu     sync.Mutex
	t      time.Time
	long   time.Duration
	timers []manualTimer
	waits  []time.Duration // every timer asked for, in order
	reads  int             // how often now was read
}

// manualTimer is a long timer not yet fired.
type manualTimer struct {
	at time.Time
	ch chan time.Time
}

func newManualClock(t time.Time, long time.Duration) *manualClock {
	return &manualClock{t: t, long: long}
}

func (c *manualClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.t
}

func (c *manualClock) after(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	if d < c.long {
		ch <- c.t.Add(d)
		return ch
	}
	c.timers = append(c.timers, manualTimer{c.t.Add(d), ch})
	return ch
}

// set moves the clock to t, firing the long timers due by then.
func (c *manualClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(t) {
			kept = append(kept, tm)
			continue
		}
		tm.ch <- tm.at
	}
	c.timers = kept
}

// readCount is how often now has been read.
func (c *manualClock) readCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// asked is a copy of the timers asked for so far.
func (c *manualClock) asked() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// waitFor polls ok until it holds, failing after testkit.Within with what saw says it last saw, or
// at once if a verdict comes first (none is expected yet).
func waitFor(t *testing.T, verdicts <-chan Verdict, what string, ok func() bool, saw func() string) {
	t.Helper()
	for deadline := time.Now().Add(testkit.Within); !ok(); time.Sleep(time.Millisecond) {
		select {
		case v := <-verdicts:
			t.Fatalf("verdict %q (%s) while waiting for %s; last saw %s", v.Status, v.Summary(), what, saw())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v for %s; last saw %s", testkit.Within, what, saw())
		}
	}
}

// TestRecoveryMilestonesFromTheServersTimes: a follow that starts 1.5 s after the kill, when
// the replacement was created 0.02 s after it, times each milestone from the pod's own
// timestamps (second precision, bounded by the kill and by when each event was seen), not from
// when it saw them; its deadline runs from the kill.
func TestRecoveryMilestonesFromTheServersTimes(t *testing.T) {
	srv, api := recoveryWorld(t)
	kill := killFor(t, api, "web-7d9f-a", "uid-web-a", webRS, webDeploy)
	srv.AddWorkload(deployment(2))
	p := ownedPod("web-7d9f-x", "uid-web-x", webRS, false)
	p.CreationTimestamp = metav1.NewTime(kill0.Add(20 * time.Millisecond)) // served to the second
	srv.Add(p)
	p = ownedPod("web-7d9f-x", "uid-web-x", webRS, true)
	p.CreationTimestamp = metav1.NewTime(kill0.Add(20 * time.Millisecond))
	p.Status.Conditions[1].LastTransitionTime = metav1.NewTime(kill0.Add(1300 * time.Millisecond))
	srv.Add(p)
	srv.AddWorkload(deployment(3))

	clock := newManualClock(kill0.Add(1500*time.Millisecond), 5*time.Second)
	rc := &Follower{API: api, Timeout: 10 * time.Second, Now: clock.now, After: clock.after, Log: discardLogger()}
	v, _ := testkit.Recv(t, startFollow(testkit.Ctx(t), t, rc, kill), "the verdict")
	if v.Status != Recovered || v.Replacement != "web-7d9f-x" {
		t.Fatalf("verdict %q (%s), want recovered by web-7d9f-x", v.Status, v.Summary())
	}
	if d := v.Created.After - 20*time.Millisecond; !v.Created.Reached || d > 100*time.Millisecond || d < -100*time.Millisecond {
		t.Errorf("created %+v, want within 100ms of 0.02 s, when the pod was created", v.Created)
	}
	for _, m := range []struct {
		name string
		m    Milestone
	}{{"ready", v.Ready}, {"full strength", v.Full}} {
		// Ready at 1.3 s, which the condition says to the second: 1 s at the least, and no
		// later than when it was seen.
		if !m.m.Reached || m.m.After < time.Second || m.m.After > 1500*time.Millisecond {
			t.Errorf("%s %+v, want from 1 s to 1.5 s", m.name, m.m)
		}
	}
	if w := clock.asked(); len(w) == 0 || w[0] != 8500*time.Millisecond {
		t.Errorf("timers %v, want first the timeout's, 10 s from the kill: 8.5 s", w)
	}
}

// TestRecoveryOutlastsRoutineWatchCloses: the API server closes each watch every few minutes
// as routine; a workload still short after a 2h timeout is not recovered at 2h, however
// often its watches were closed meanwhile.
func TestRecoveryOutlastsRoutineWatchCloses(t *testing.T) {
	srv, api := recoveryWorld(t)
	kill := killFor(t, api, "web-7d9f-a", "uid-web-a", webRS, webDeploy)
	srv.AddWorkload(deployment(2))
	clock := newManualClock(kill0, time.Minute)
	rc := &Follower{API: api, Timeout: 2 * time.Hour, Now: clock.now, After: clock.after, Log: discardLogger()}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	verdicts := startFollow(ctx, t, rc, kill)
	watches := func() int { return len(srv.Watches()) }
	saw := func() string { return fmt.Sprintf("%d watches", watches()) }
	waitFor(t, verdicts, "both watches", func() bool { return watches() >= 2 }, saw)
	// Each close ends at least one of the two watches; 24 of each (every 5 minutes for 2h)
	// is well past any budget of reopenings.
	for at := 5 * time.Minute; watches() < 2+2*24; at += 5 * time.Minute {
		clock.set(kill0.Add(min(at, 2*time.Hour-time.Second)))
		before := watches()
		srv.CloseWatches()
		waitFor(t, verdicts, "a watch reopened", func() bool { return watches() > before }, saw)
	}
	clock.set(kill0.Add(2 * time.Hour))
	v, _ := testkit.Recv(t, verdicts, "the verdict at the timeout")
	if v.Status != NotRecovered || !strings.Contains(v.Why, "web: 2/3 ready after 2h0m0s") {
		t.Errorf("verdict %q (%s), want not recovered, 2/3 after 2h", v.Status, v.Why)
	}
}

// TestRecoveryWatchFailuresBackOff: a watch that fails is reopened after a growing backoff,
// and only failures in a row past the budget end the follow, unknown, saying why.
func TestRecoveryWatchFailuresBackOff(t *testing.T) {
	srv, api := recoveryWorld(t)
	kill := killFor(t, api, "web-7d9f-a", "uid-web-a", webRS, webDeploy)
	srv.Fail = func(r fakeapi.Request) *metav1.Status {
		if r.Query.Get("watch") == "true" && strings.HasSuffix(r.Path, "/pods") {
			return fakeapi.InternalError("etcdserver: leader changed")
		}
		return nil
	}
	clock := newManualClock(kill0, time.Hour)
	rc := &Follower{API: api, Timeout: 2 * time.Hour, Now: clock.now, After: clock.after, Log: discardLogger()}
	v, _ := testkit.Recv(t, startFollow(testkit.Ctx(t), t, rc, kill), "the verdict")
	if v.Status != Unknown || !strings.Contains(v.Why, "leader changed") || !strings.Contains(v.Why, "failed 10 times in a row") {
		t.Errorf("verdict %q (%s), want unknown after 10 failures, the last's error", v.Status, v.Why)
	}
	var backoffs []time.Duration
	for _, d := range clock.asked() {
		if d < time.Hour {
			backoffs = append(backoffs, d)
		}
	}
	if len(backoffs) != 9 || backoffs[0] != time.Second || backoffs[8] <= backoffs[0] {
		t.Errorf("backoffs %v, want 9 between the 10 tries, from 1 s, growing", backoffs)
	}
	if n := len(srv.Watches()); n < 10 {
		t.Errorf("%d watches, want the pods' tried 10 times", n)
	}
}

// TestRecoveryClaimsOneReplacementPerKill: kills of one Deployment followed at once each get
// their own replacement, in the order of the kills; a kill no new pod came for names none.
func TestRecoveryClaimsOneReplacementPerKill(t *testing.T) {
	for _, tt := range []struct {
		name string
		pods int
		want []string // each kill's replacement, in kill order
	}{
		{"four kills, four new pods", 4, []string{"web-7d9f-n1", "web-7d9f-n2", "web-7d9f-n3", "web-7d9f-n4"}},
		{"four kills, one new pod", 1, []string{"web-7d9f-n1", "", "", ""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, api := recoveryWorld(t)
			srv.Add(ownedPod("web-7d9f-d", "uid-web-d", webRS, true))
			var kills []Kill
			for _, n := range []string{"a", "b", "c", "d"} {
				kills = append(kills, killFor(t, api, "web-7d9f-"+n, types.UID("uid-web-"+n), webRS, webDeploy))
			}
			clock := newManualClock(kill0.Add(time.Second), time.Second) // the follows' settling waits too
			rc := &Follower{API: api, Timeout: 10 * time.Second, Now: clock.now, After: clock.after, Log: discardLogger()}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			verdicts := startFollow(ctx, t, rc, kills...)
			waitFor(t, verdicts, "the namespace's watches", func() bool { return len(srv.Watches()) >= 2 },
				func() string { return fmt.Sprintf("%d watches", len(srv.Watches())) })
			for i := range tt.pods {
				srv.Add(ownedPod(fmt.Sprint("web-7d9f-n", i+1), types.UID(fmt.Sprint("uid-web-n", i+1)), webRS, true))
			}
			// The clock is read as each kill's follow starts, then once for each event of the
			// shared pods' watch, from the first kill: the later kills' pods deleted, the new pods.
			// And each follow has its timeout's timer before the clock passes it.
			want := len(kills) + len(kills) - 1 + tt.pods
			timeouts := func() int {
				return len(slices.DeleteFunc(clock.asked(), func(d time.Duration) bool { return d <= settleWait }))
			}
			waitFor(t, verdicts, "every follow to see every new pod", func() bool { return clock.readCount() >= want && timeouts() == len(kills) },
				func() string {
					return fmt.Sprintf("%d clock reads, want %d; %d timeouts' timers", clock.readCount(), want, timeouts())
				})
			clock.set(kill0.Add(11 * time.Second)) // past the timeout, from the kill or from the start
			got := map[string]Verdict{}
			for range kills {
				v, _ := testkit.Recv(t, verdicts, "the verdicts at the timeout")
				got[v.Pod] = v
			}
			for i, k := range kills {
				v := got[k.Pod]
				if v.Replacement != tt.want[i] {
					t.Errorf("kill %d (%s): replacement %q (%s), want %q", i+1, k.Pod, v.Replacement, v.Summary(), tt.want[i])
				}
				if tt.want[i] == "" && (v.Created.Reached || !strings.Contains(v.Why, "no replacement created")) {
					t.Errorf("kill %d (%s): %s, want no replacement created", i+1, k.Pod, v.Summary())
				}
			}
		})
	}
}

// TestVerdictIsNeverDropped: a verdict waits for the notifier however far behind it is, and is
// dropped (logged, counted) only when macaque is stopping and the notifier has not taken it
// within the grace of a shutdown.
func TestVerdictIsNeverDropped(t *testing.T) {
	var behind testkit.SyncBuffer
	rc := &Follower{Log: slog.New(slog.NewJSONHandler(&behind, nil)), Grace: testGrace, Now: func() time.Time { return kill0 }, After: newManualClock(kill0, time.Hour).after}
	verdicts := make(chan Verdict, 1)
	verdicts <- Verdict{Pod: "web-1"} // the notifier is behind
	sent := make(chan struct{})
	go func() {
		rc.finish(t.Context(), verdicts, Kill{}, Verdict{Namespace: testNS, Pod: "web-2", Status: Recovered})
		close(sent)
	}()
	// The verdict is logged, then handed on: the notifier takes the one before only after.
	for deadline := time.Now().Add(testkit.Within); !strings.Contains(behind.String(), `"msg":"recovery verdict"`); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("log %q after %v, want web-2's verdict logged", behind.String(), testkit.Within)
		}
	}
	for _, want := range []string{"web-1", "web-2"} {
		if v, _ := testkit.Recv(t, verdicts, want+"'s verdict"); v.Pod != want {
			t.Errorf("verdict of %s, want %s's", v.Pod, want)
		}
	}
	testkit.Recv(t, sent, "finish to return")

	var logs bytes.Buffer
	stopping := &Follower{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Grace: testGrace, Now: func() time.Time { return kill0 },
		After: newManualClock(kill0, testGrace).after} // the grace never passes
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	stopping.finish(ctx, verdicts, Kill{}, Verdict{Namespace: testNS, Pod: "web-3", Status: Unknown, Why: "macaque stopped"}) // room: sent
	// Full, never read, macaque stopping: dropped once the grace has passed (at once, on this clock).
	clock := newManualClock(kill0, time.Minute)
	stopping.After = clock.after
	stopping.finish(ctx, verdicts, Kill{}, Verdict{Namespace: testNS, Pod: "web-4", Status: Unknown, Why: "macaque stopped"})
	if v := <-verdicts; v.Pod != "web-3" {
		t.Errorf("verdict of %s queued, want web-3's", v.Pod)
	}
	if !strings.Contains(logs.String(), `"msg":"notifier gone, dropping verdict","namespace":"shop","pod":"web-4","verdict":"unknown","dropped_total":1`) {
		t.Errorf("log %s, want web-4's verdict dropped, counted", logs.String())
	}
	if w := clock.asked(); len(w) != 1 || w[0] != testGrace {
		t.Errorf("timers %v, want one of testGrace", w)
	}
}

// idleAPI serves a Deployment that never changes and watches that stay open, silent, until
// their context ends: followed kills that wait for nothing but their end. It counts the watches.
type idleAPI struct{ watches, reads atomic.Int32 }

func (a *idleAPI) GetWorkload(_ context.Context, _ string, _ kube.WorkloadKind, name string) (kube.Workload, error) {
	a.reads.Add(1)
	var w kube.Workload
	err := json.Unmarshal([]byte(`{"metadata":{"name":"`+name+`","generation":1},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}}}}`), &w)
	return w, err
}

func (a *idleAPI) Watch(ctx context.Context, _ kube.WatchQuery, _ string) (io.ReadCloser, error) {
	a.watches.Add(1)
	r, w := io.Pipe()
	context.AfterFunc(ctx, func() { _ = w.Close() })
	return r, nil
}

func (*idleAPI) ListEvents(context.Context, string, types.UID) ([]kube.SeenEvent, error) {
	return nil, nil
}

// TestOneTickOfKillsIsAllFollowed: the most kills one tick makes are all followed at once, each
// to its verdict (here, macaque stopped), none refused as one too many in flight, and all on the
// two watches of their namespace: its pods' and its Deployments'.
func TestOneTickOfKillsIsAllFollowed(t *testing.T) {
	api := &idleAPI{}
	never := func(time.Duration) <-chan time.Time { return nil } // no timer fires: their end is macaque's stop
	rc := &Follower{API: api, Timeout: time.Hour, Now: func() time.Time { return kill0 }, After: never, Log: discardLogger()}
	kills := make(chan Kill, tickVictims)
	for i := range tickVictims {
		kills <- Kill{Namespace: testNS, Pod: fmt.Sprint("web-7d9f-", i), Deleted: kill0,
			UID: types.UID(fmt.Sprint("uid-", i)), RV: "1", Controller: &webRS, Top: &webDeploy}
	}
	close(kills)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	verdicts := make(chan Verdict)
	go rc.Run(ctx, kills, verdicts)
	waitFor(t, verdicts, "every kill's follow to read its workload", func() bool { return api.reads.Load() >= tickVictims },
		func() string { return fmt.Sprintf("%d reads", api.reads.Load()) })
	if n := api.watches.Load(); n != 2 {
		t.Errorf("%d watches for %d kills in one namespace, want 2: its pods' and its Deployments'", n, tickVictims)
	}
	cancel()
	got := 0
	for v := range verdicts {
		got++
		if v.Status != Unknown || v.Why != "macaque stopped" {
			t.Errorf("%s: %q (%s), want unknown: macaque stopped", v.Pod, v.Status, v.Why)
		}
	}
	if got != tickVictims {
		t.Errorf("%d verdicts, want one for each of the %d kills", got, tickVictims)
	}
}

// TestClaimsInKillOrder: new pods go to the kills of their workload one to one, in the order of
// the kills, whichever follow saw them first; a kill's replacement is final only once the
// follows of the kills before it have read as far; a pod deleted before it was Ready is no
// one's; a StatefulSet's is the pod of the victim's name; resourceVersions that are not numbers
// tell no order between several kills.
func TestClaimsInKillOrder(t *testing.T) {
	type step struct {
		kill            int    // whose follow saw it
		pod, rv         string // the pod, and the resourceVersion of its event
		added, ready    bool
		deleted, expire bool
	}
	type want struct {
		pod     string // each kill's replacement, "" for none
		settled bool
	}
	tests := []struct {
		name    string
		killRVs []string
		sts     bool
		steps   []step
		want    []want
		why     string // in the first kill's why
	}{
		{name: "a later kill's follow sees its pod first: the earlier kill's until its follow has read as far", killRVs: []string{"10", "20"},
			steps: []step{{kill: 1, pod: "p1", rv: "25", added: true}},
			want:  []want{{"p1", false}, {"", false}}},
		{name: "then the earlier kill's follow sees the pod before", killRVs: []string{"10", "20"},
			steps: []step{{kill: 1, pod: "p1", rv: "25", added: true}, {kill: 0, pod: "p0", rv: "15", added: true}},
			want:  []want{{"p0", true}, {"p1", false}}},
		{name: "and reads as far as the later's", killRVs: []string{"10", "20"},
			steps: []step{{kill: 1, pod: "p1", rv: "25", added: true}, {kill: 0, pod: "p0", rv: "15", added: true}, {kill: 0, pod: "p1", rv: "25", added: true}},
			want:  []want{{"p0", true}, {"p1", true}}},
		{name: "four kills, one pod: the first kill's", killRVs: []string{"10", "11", "12", "13"},
			steps: []step{{kill: 0, pod: "p", rv: "20", added: true}, {kill: 1, pod: "p", rv: "20", added: true},
				{kill: 2, pod: "p", rv: "20", added: true}, {kill: 3, pod: "p", rv: "20", added: true}},
			want: []want{{"p", true}, {"", true}, {"", true}, {"", true}}},
		{name: "a pod deleted before it was Ready is no one's", killRVs: []string{"10"},
			steps: []step{{pod: "x", rv: "11", added: true}, {pod: "x", rv: "12", deleted: true}, {pod: "y", rv: "13", added: true, ready: true}},
			want:  []want{{"y", true}}},
		{name: "a pod deleted once Ready was the replacement", killRVs: []string{"10"},
			steps: []step{{pod: "x", rv: "11", added: true, ready: true}, {pod: "x", rv: "12", deleted: true}, {pod: "y", rv: "13", added: true}},
			want:  []want{{"x", true}}},
		{name: "a statefulset's is the pod of the victim's name", killRVs: []string{"10", "11"}, sts: true,
			steps: []step{{pod: "victim-1", rv: "12", added: true}, {pod: "victim-0", rv: "13", added: true}, {kill: 1, pod: "victim-1", rv: "12", added: true}},
			want:  []want{{"victim-0", true}, {"victim-1", true}}},
		{name: "a pod changed that no kill's follow saw created is no replacement", killRVs: []string{"10"},
			steps: []step{{pod: "old", rv: "12", ready: true}},
			want:  []want{{"", true}}},
		{name: "an expired watch: none can be told", killRVs: []string{"10"},
			steps: []step{{expire: true}, {pod: "x", rv: "30", added: true, ready: true}},
			want:  []want{{"", true}}, why: "410 Gone"},
		{name: "no order to tell between several kills", killRVs: []string{"a", "b"},
			steps: []step{{pod: "x", rv: "c", added: true}},
			want:  []want{{"", true}, {"", true}}, why: "cannot be told apart"},
		{name: "no order needed for one kill", killRVs: []string{"a"},
			steps: []step{{pod: "x", rv: "c", added: true}},
			want:  []want{{"x", true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cl claims
			var kills []*claim
			for i, rv := range tt.killRVs {
				kills = append(kills, cl.register("uid-top", Kill{Pod: fmt.Sprint("victim-", i), RV: rv}, tt.sts))
			}
			for _, s := range tt.steps {
				if s.expire {
					cl.expired(kills[s.kill])
					continue
				}
				p := newPod{uid: types.UID("uid-" + s.pod), name: s.pod, rv: s.rv, seen: kill0}
				cl.saw(kills[s.kill], p, s.added, s.ready, s.deleted, s.rv)
			}
			for i, c := range kills {
				p, settled, why, _ := cl.replacementOf(c, "")
				name := ""
				if p != nil {
					name = p.name
				}
				if name != tt.want[i].pod || settled != tt.want[i].settled {
					t.Errorf("kill %d: %q (settled %v, %q), want %q (settled %v)", i, name, settled, why, tt.want[i].pod, tt.want[i].settled)
				}
				if i == 0 && !strings.Contains(why, tt.why) {
					t.Errorf("kill 0 says %q, want %q", why, tt.why)
				}
			}
			for _, c := range kills {
				cl.release(c, "")
			}
			if len(cl.byTop) != 0 {
				t.Errorf("%d workloads remembered after every follow ended, want none", len(cl.byTop))
			}
		})
	}
}

// TestClaimReleasedWhateverTheEnd: a follow that ends before it watches (a controller of a
// kind macaque cannot read, or one it cannot read now) releases its claim, so that it holds
// back no later kill's replacement.
func TestClaimReleasedWhateverTheEnd(t *testing.T) {
	job := kube.OwnerRef{APIVersion: "batch/v1", Kind: "Job", Name: "batch", UID: "uid-job", Controller: new(true)}
	for _, tt := range []struct {
		name     string
		ctl, top kube.OwnerRef
		why      string
	}{
		{"a kind macaque cannot read", job, job, "macaque cannot follow a Job"},
		{"a replicaset that cannot be read", webRS, webRS, "read ReplicaSet/web-7d9f"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, api := recoveryWorld(t)
			srv.Fail = func(r fakeapi.Request) *metav1.Status {
				if r.Query.Get("watch") == "" && strings.Contains(r.Path, "/replicasets/") {
					return fakeapi.InternalError("etcdserver: request timed out")
				}
				return nil
			}
			kill := killFor(t, api, "web-7d9f-a", "uid-web-a", tt.ctl, tt.top)
			rc := &Follower{API: api, Timeout: time.Hour, Now: func() time.Time { return kill0 }, After: newManualClock(kill0, 2*time.Hour).after, Log: discardLogger()}
			v, _ := testkit.Recv(t, startFollow(testkit.Ctx(t), t, rc, kill), "the verdict")
			if v.Status != Unknown || !strings.Contains(v.Why, tt.why) {
				t.Errorf("verdict %q (%s), want unknown: %s", v.Status, v.Why, tt.why)
			}
			rc.claims.mu.Lock()
			defer rc.claims.mu.Unlock()
			if n := len(rc.claims.byTop); n != 0 {
				t.Errorf("%d workloads with claims after the follow ended, want none", n)
			}
		})
	}
}

// TestHappened: a milestone's time from the server's stamp (truncated to the second) and when a
// follow saw it: seen when the follow was watching already (the tightest bound, within the
// stamp's second), the earliest time the stamp and the kill allow when the follow began later
// and may have been sent it in the burst at its start.
func TestHappened(t *testing.T) {
	kill := time.Date(2026, 3, 29, 9, 0, 4, 16e6, time.UTC) // 09:00:04.016
	stamp := kill.Truncate(time.Second)                     // created in the kill's second
	at := func(ms int) time.Time { return kill.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name        string
		stamp       time.Time
		seen, since time.Time
		want        time.Time
	}{
		{"seen live, 30 ms after the kill", stamp, at(30), at(1), at(30)},
		{"seen live but late (a slow watch): no later than the stamp's second", stamp, at(3000), at(1), stamp.Add(time.Second)},
		{"sent at a follow's late start: the earliest the stamp and the kill allow", stamp, at(1500), at(1480), kill},
		{"a later second's stamp, sent at a late start", stamp.Add(2 * time.Second), at(2500), at(2490), stamp.Add(2 * time.Second)},
		{"no follow start known: seen", stamp, at(40), time.Time{}, at(40)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := happened(tt.stamp, kill, tt.seen, tt.since); !got.Equal(tt.want) {
				t.Errorf("happened = %v after the kill, want %v", got.Sub(kill), tt.want.Sub(kill))
			}
		})
	}
}
