package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/testkit"

	"github.com/macaque-chaos/macaque/internal/policy"

	"github.com/macaque-chaos/macaque/internal/kube"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// evictedPod is the name in the path of an eviction request.
func evictedPod(r fakeapi.Request) string { return path.Base(path.Dir(r.Path)) }

// assertEviction checks an eviction targets pod with the UID and resourceVersion it had when
// picked, and grace as its grace period (nil: none sent).
func assertEviction(t *testing.T, r fakeapi.Request, pod, rv string, grace *int64) {
	t.Helper()
	if want := "/api/v1/namespaces/" + testNS + "/pods/" + pod + "/eviction"; r.Method != http.MethodPost || r.Path != want {
		t.Errorf("%s %s, want POST %s", r.Method, r.Path, want)
	}
	if r.Query.Has("dryRun") {
		t.Errorf("eviction of a victim with dryRun=%q", r.Query.Get("dryRun"))
	}
	var ev struct {
		APIVersion    string                `json:"apiVersion"`
		Kind          string                `json:"kind"`
		Metadata      metav1.ObjectMeta     `json:"metadata"`
		DeleteOptions *metav1.DeleteOptions `json:"deleteOptions"`
	}
	if err := json.Unmarshal(r.Body, &ev); err != nil {
		t.Fatalf("eviction body %q: %v", r.Body, err)
	}
	if ev.APIVersion != "policy/v1" || ev.Kind != "Eviction" || ev.Metadata.Name != pod || ev.Metadata.Namespace != testNS {
		t.Errorf("eviction body %s, want a policy/v1 Eviction of %s/%s", r.Body, testNS, pod)
	}
	o := ev.DeleteOptions
	if o == nil || o.Preconditions == nil || o.Preconditions.UID == nil || *o.Preconditions.UID != types.UID("uid-"+pod) ||
		o.Preconditions.ResourceVersion == nil || *o.Preconditions.ResourceVersion != rv {
		t.Errorf("eviction body %s, want deleteOptions with preconditions UID uid-%s, resourceVersion %q", r.Body, pod, rv)
	}
	if o != nil && !equalPtr(o.GracePeriodSeconds, grace) {
		t.Errorf("eviction body %s, want gracePeriodSeconds %v", r.Body, show(grace))
	}
}

func equalPtr(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func show(p *int64) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// rvsOf is the resourceVersion of each pod stored in srv when the tick begins.
func rvsOf(srv *fakeapi.Server, pods []*corev1.Pod) map[string]string {
	rvs := map[string]string{}
	for _, p := range pods {
		if stored := srv.Pod(p.Namespace, p.Name); stored != nil {
			rvs[p.Name] = stored.ResourceVersion
		}
	}
	return rvs
}

// evictFirst fails the eviction of whichever pod is evicted first with st, and lets later ones through.
func evictFirst(st *metav1.Status) func(*testing.T, *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
	return func(*testing.T, *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
		var done atomic.Bool
		return func(r fakeapi.Request) *metav1.Status {
			if r.Method == http.MethodPost && done.CompareAndSwap(false, true) {
				return st
			}
			return nil
		}
	}
}

// evictAll fails every eviction with st.
func evictAll(st *metav1.Status) func(*testing.T, *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
	return func(*testing.T, *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
		return func(r fakeapi.Request) *metav1.Status {
			if r.Method == http.MethodPost {
				return st
			}
			return nil
		}
	}
}

func TestEvictMode(t *testing.T) {
	web := map[string]string{"app": "web"}
	two := []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web), fakeapi.Pod(testNS, "web-2", web)}
	throttled := &metav1.Status{Status: metav1.StatusFailure, Code: 429, Reason: metav1.StatusReasonTooManyRequests,
		Message: "Too many requests, please try again later.", Details: &metav1.StatusDetails{RetryAfterSeconds: 1}}
	negative := &metav1.Status{Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden,
		Message: `poddisruptionbudget.policy "web-pdb" is forbidden: pdb disruptions allowed is negative`,
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "DisruptionBudget",
			Message: "The disruption budget web-pdb does not allow evicting pods currently: pdb disruptions allowed is negative"}}}}
	seven := int64(7)
	tests := []struct {
		name      string
		pods      []*corev1.Pod
		grace     *int64
		fail      func(*testing.T, *fakeapi.Server) func(fakeapi.Request) *metav1.Status
		want      Outcome
		evictions int
		evicted   bool     // the victim is gone afterwards
		passed    []string // substrings of each rejected pick's entry, in order
		note      string
		errText   string
		readBack  bool // a read-back of the pod followed the eviction
	}{
		{name: "evicts with the UID and resourceVersion preconditions, never DELETE", pods: two[:1],
			want: OutcomeKilled, evictions: 1, evicted: true},
		{name: "the grace period override rides in deleteOptions", pods: two[:1], grace: &seven,
			want: OutcomeKilled, evictions: 1, evicted: true, note: "grace period 7s (MACAQUE_GRACE_PERIOD)"},
		{name: "a pick a PDB protects is passed over for the next, naming the PDB", pods: two,
			fail: evictFirst(fakeapi.PDBRefusal("web-pdb", 3, 3)), want: OutcomeKilled, evictions: 2, evicted: true,
			passed: []string{": eviction blocked by PodDisruptionBudget web-pdb (needs 3 healthy, has 3)"}},
		{name: "every pick protected by a PDB: blocked, not an error", pods: two,
			fail: evictAll(fakeapi.PDBRefusal("web-pdb", 2, 2)), want: OutcomeBlocked, evictions: 2,
			passed: []string{"eviction blocked by PodDisruptionBudget web-pdb (needs 2 healthy, has 2)", "web-pdb"}},
		{name: "a PDB's 403 (disruptions allowed negative) is blocked too, not denied", pods: two[:1],
			fail: evictAll(negative), want: OutcomeBlocked, evictions: 1,
			passed: []string{"eviction blocked by PodDisruptionBudget web-pdb (does not allow evicting pods currently: pdb disruptions allowed is negative)"}},
		{name: "a 429 without a PDB's cause is throttling: an error, not blocked, no read-back", pods: two[:1],
			fail: evictAll(throttled), want: OutcomeError, evictions: 1, errText: `evict pod "web-1": Too many requests`},
		{name: "a pod replaced before its eviction is passed over", pods: two[:1],
			fail: func(_ *testing.T, s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodPost {
						p := fakeapi.Pod(testNS, "web-1", web)
						p.UID = "uid-web-1-reborn"
						s.Add(p)
					}
					return nil
				}
			},
			want: OutcomeNotFound, evictions: 1, passed: []string{"web-1: changed or went away before the eviction"}, errText: "UID in precondition"},
		{name: "an eviction whose answer was lost is read back", pods: two[:1],
			fail: func(_ *testing.T, s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodPost {
						s.Remove(testNS, "web-1")
						return fakeapi.InternalError("etcdserver: leader changed")
					}
					return nil
				}
			},
			want: OutcomeKilled, evictions: 1, evicted: true, readBack: true, note: "the eviction's answer never came"},
		{name: "RBAC's 403 to the eviction is forbidden", pods: two[:1],
			fail: evictAll(fakeapi.Forbidden("create", testNS)), want: OutcomeForbidden, evictions: 1, errText: `evict pod "web-1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t, tt.pods...)
			if tt.fail != nil {
				srv.Fail = tt.fail(t, srv)
			}
			rvs := rvsOf(srv, tt.pods)
			k := newTestKiller(t, srv, "", false)
			k.terminator, k.grace = terminatorFor(modeEvict, k.api), tt.grace
			r := killOnce(t, k)
			if r.Outcome != tt.want {
				t.Fatalf("outcome = %q (err %v, passed %q), want %q", r.Outcome, r.Err, r.Passed, tt.want)
			}
			if r.Mode != modeEvict {
				t.Errorf("mode = %q, want evict", r.Mode)
			}
			if (r.Err != nil) != (tt.errText != "") || (r.Err != nil && !strings.Contains(r.Err.Error(), tt.errText)) {
				t.Errorf("err = %v, want one containing %q", r.Err, tt.errText)
			}
			if n := len(srv.Deletes()); n != 0 {
				t.Errorf("%d DELETE requests in evict mode, want none", n)
			}
			evs := srv.Evictions()
			if len(evs) != tt.evictions {
				t.Fatalf("%d evictions, want %d: %+v", len(evs), tt.evictions, evs)
			}
			last := evictedPod(evs[len(evs)-1])
			assertEviction(t, evs[len(evs)-1], last, rvs[last], tt.grace)
			if tt.want == OutcomeKilled && r.Pod != last {
				t.Errorf("report names %s, but the last eviction was of %s", r.Pod, last)
			}
			if gone := r.Pod != "" && srv.Pod(testNS, r.Pod) == nil; gone != tt.evicted {
				t.Errorf("victim %q evicted = %v, want %v", r.Pod, gone, tt.evicted)
			}
			if len(r.Passed) != len(tt.passed) {
				t.Fatalf("passed = %q, want %d entries like %q", r.Passed, len(tt.passed), tt.passed)
			}
			for i, want := range tt.passed {
				if !strings.Contains(r.Passed[i], want) {
					t.Errorf("passed[%d] = %q, want it to contain %q", i, r.Passed[i], want)
				}
			}
			if (tt.note == "") != (r.Note == "") || !strings.Contains(r.Note, tt.note) {
				t.Errorf("note = %q, want one containing %q", r.Note, tt.note)
			}
			// A read-back of the victim follows its eviction only when the answer was lost.
			after := 0
			seenLast := false
			for _, q := range srv.Requests() {
				if q.Method == http.MethodPost && evictedPod(q) == last {
					seenLast = true
				} else if seenLast && q.Method == http.MethodGet && strings.HasPrefix(q.Query.Get("fieldSelector"), "metadata.name=") {
					after++
				}
			}
			if (after > 0) != tt.readBack {
				t.Errorf("%d read-backs after the eviction, want them: %v", after, tt.readBack)
			}
		})
	}
}

// TestGuardedPickBlockedByAPDB: a tick whose picks were passed over by the guard and by a PDB
// is blocked (a pick the guard let through met its PDB), and lists both.
func TestGuardedPickBlockedByAPDB(t *testing.T) {
	web := map[string]string{"app": "web"}
	srv := fakeapi.New(t, fakeapi.Pod(testNS, "web-1", web), notReady(fakeapi.Pod(testNS, "web-2", web)))
	srv.Fail = evictAll(fakeapi.PDBRefusal("web-pdb", 1, 1))(t, srv)
	k := newGuardedKiller(t, srv, "", policy.Guard{})
	k.terminator = terminatorFor(modeEvict, k.api)
	srv.AddWorkload(steadyReplicaSet("rs-web-1", 1, nil, func(rs *appsv1.ReplicaSet) { rs.UID = "rs-uid-web-1" }))
	r := killOnce(t, k)
	if r.Outcome != OutcomeBlocked || r.Err != nil {
		t.Fatalf("outcome %q (err %v, passed %q), want blocked", r.Outcome, r.Err, r.Passed)
	}
	assertPassed(t, r.Passed, []string{"web-2: not Ready", "web-1: eviction blocked by PodDisruptionBudget web-pdb"})
}

// TestDeleteGracePeriod: MACAQUE_GRACE_PERIOD rides in the DELETE's options (0 is sent, not
// left out), and the report notes it; without it, none is sent and the pod's own applies.
func TestDeleteGracePeriod(t *testing.T) {
	zero, thirty := int64(0), int64(30)
	tests := []struct {
		name  string
		grace *int64
		note  string
	}{
		{name: "the pod's own: none sent, no note"},
		{name: "0 is a hard kill", grace: &zero, note: "grace period 0s (MACAQUE_GRACE_PERIOD): a hard kill"},
		{name: "30 seconds", grace: &thirty, note: "grace period 30s (MACAQUE_GRACE_PERIOD), not the pod's own"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t, fakeapi.Pod(testNS, "web-1", nil))
			k := newTestKiller(t, srv, "", false)
			k.grace = tt.grace
			r := killOnce(t, k)
			if r.Outcome != OutcomeKilled || r.Note != tt.note {
				t.Errorf("outcome %q, note %q; want killed, note %q", r.Outcome, r.Note, tt.note)
			}
			dels := srv.Deletes()
			if len(dels) != 1 {
				t.Fatalf("%d DELETEs", len(dels))
			}
			var raw map[string]any
			if err := json.Unmarshal(dels[0].Body, &raw); err != nil {
				t.Fatal(err)
			}
			got, sent := raw["gracePeriodSeconds"]
			if sent != (tt.grace != nil) || (sent && got != float64(*tt.grace)) {
				t.Errorf("DELETE body %s, want gracePeriodSeconds %s", dels[0].Body, show(tt.grace))
			}
		})
	}
}

// replicas are n pods of a ReplicaSet rs (their controller), named rs-0, rs-1...
func replicas(rs string, n int) []*corev1.Pod {
	ref := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs, UID: types.UID("uid-rs-" + rs), Controller: new(true)}
	var out []*corev1.Pod
	for i := range n {
		out = append(out, ownedBy(fakeapi.Pod(testNS, fmt.Sprintf("%s-%d", rs, i), map[string]string{"app": rs}), &ref))
	}
	return out
}

func TestKillCount(t *testing.T) {
	three := slices.Concat(replicas("a", 3), replicas("b", 3), replicas("c", 3))
	var solos []*corev1.Pod // each its own controller (fakeapi.Pod's rs-NAME)
	for i := range 150 {
		solos = append(solos, fakeapi.Pod(testNS, fmt.Sprintf("solo-%03d", i), nil))
	}
	tests := []killCountCase{
		{name: "3 over three controllers of 3 pods: one of each", pods: three, count: killCount{n: 3},
			want: []Outcome{OutcomeKilled, OutcomeKilled, OutcomeKilled}, deletes: 3},
		{name: "3 over one controller: one, every other pick tried, and the last report says why not more", pods: replicas("a", 5), count: killCount{n: 3},
			want: []Outcome{OutcomeKilled}, deletes: 1, note: "1 of 3 asked for: no other pick could be killed", passed: "ReplicaSet/a already lost a pod this tick", tried: 4},
		{name: "more asked for than candidates", pods: slices.Concat(replicas("a", 1), replicas("b", 1)), count: killCount{n: 5},
			want: []Outcome{OutcomeKilled, OutcomeKilled}, deletes: 2, note: "2 of 5 asked for: only 2 candidates"},
		{name: "a percentage of the candidates", pods: solos[:20], count: killCount{percent: 10},
			want: []Outcome{OutcomeKilled, OutcomeKilled}, deletes: 2},
		{name: "a percentage rounds down but to at least one", pods: solos[:5], count: killCount{percent: 10},
			want: []Outcome{OutcomeKilled}, deletes: 1},
		{name: "a percentage is capped at maxVictims, and says so", pods: solos, count: killCount{percent: 100},
			want: slices.Repeat([]Outcome{OutcomeKilled}, maxVictims), deletes: maxVictims, note: "capped at 100 victims a tick"},
		{name: "dry run reports each victim, deletes none", pods: three, count: killCount{n: 2}, dryRun: true,
			want: []Outcome{OutcomeDryRun, OutcomeDryRun}},
		{name: "a failure half-way: the kill done is reported, then the failure, which ends the tick", pods: three, count: killCount{n: 3},
			fail: func(*testing.T, *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				var n atomic.Int32
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodDelete && n.Add(1) == 2 {
						return fakeapi.Forbidden("delete", testNS)
					}
					return nil
				}
			},
			want: []Outcome{OutcomeKilled, OutcomeForbidden}, deletes: 2, note: "1 of 3 asked for: this failure ended the tick"},
		{name: "stopping after a kill starts no further one", pods: three, count: killCount{n: 3}, stop: true,
			want: []Outcome{OutcomeKilled}, deletes: 1, note: "1 of 3 asked for: macaque is stopping"},
		{name: "stopping before the tick still lets its first kill through, and no other", pods: three, count: killCount{n: 3}, stopBefore: true,
			want: []Outcome{OutcomeKilled}, deletes: 1, note: "1 of 3 asked for: macaque is stopping"},
		{name: "a percentage tries picksPerTick picks per victim, not every pick it holds", pods: solos[:60], count: killCount{percent: 2},
			fail: func(_ *testing.T, s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if name, ok := strings.CutPrefix(r.Query.Get("fieldSelector"), "metadata.name="); ok {
						s.Remove(testNS, name) // every pick is gone by its read-back
					}
					return nil
				}
			},
			want: []Outcome{OutcomeNotFound}, tried: picksPerTick},
		{name: "nothing killed: one report, as with one victim", pods: three, count: killCount{n: 3},
			fail: func(*testing.T, *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodDelete {
						return fakeapi.Forbidden("delete", testNS)
					}
					return nil
				}
			},
			want: []Outcome{OutcomeForbidden}, deletes: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// killCountCase is a case of TestKillCount: the pods, how many victims a tick asks for, how
// the API server misbehaves or macaque is stopped, and the reports the tick must give.
type killCountCase struct {
	name   string
	pods   []*corev1.Pod
	count  killCount
	dryRun bool
	fail   func(*testing.T, *fakeapi.Server) func(fakeapi.Request) *metav1.Status
	stop   bool // cancel the tick's context once the first DELETE is answered
	// stopBefore cancels the tick's context before it starts, as a SIGTERM during the list
	stopBefore bool
	want       []Outcome // one per report
	deletes    int
	note       string // a substring of the last report's note; empty: no note
	passed     string // a substring of one of the last report's passed entries; empty: none
	tried      int    // when not 0, the picks passed over in all
}

// run runs one tick of the case's count over its pods, then checks its reports and DELETEs.
func (tt killCountCase) run(t *testing.T) {
	srv := fakeapi.New(t, tt.pods...)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if tt.fail != nil {
		srv.Fail = tt.fail(t, srv)
	}
	if tt.stop {
		srv.Fail = func(r fakeapi.Request) *metav1.Status {
			if r.Method == http.MethodDelete {
				cancel() // SIGTERM arrives while the first kill is in flight
			}
			return nil
		}
	}
	k := newTestKiller(t, srv, "", tt.dryRun)
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	// Up to 100 kills a tick: no case holds a request, so the short DELETE deadline of
	// testTimeouts would only make a loaded machine fail it.
	k.api, k.count, k.timeouts = api, tt.count, defaultTimeouts
	if tt.stopBefore {
		cancel()
	}
	reports := killWithin(ctx, t, k, tick0)

	tt.checkOutcomes(t, srv, reports)
	checkVictimsApart(t, srv, reports)
	tt.checkLast(t, reports)
	checkDeletesReported(t, srv, reports)
}

// checkOutcomes checks the outcome of each report (ending the test when they are not the
// case's) and the number of DELETEs srv received.
func (tt killCountCase) checkOutcomes(t *testing.T, srv *fakeapi.Server, reports []Result) {
	t.Helper()
	var got []Outcome
	for _, r := range reports {
		got = append(got, r.Outcome)
	}
	if !slices.Equal(got, tt.want) {
		t.Fatalf("outcomes %q, want %q (reports %+v)", got, tt.want, reports)
	}
	if n := len(srv.Deletes()); n != tt.deletes {
		t.Errorf("%d DELETEs, want %d", n, tt.deletes)
	}
}

// checkVictimsApart checks that no two victims of a tick share a pod or a controller, that
// each one reported killed is gone from srv, and that only the last report has a note.
func checkVictimsApart(t *testing.T, srv *fakeapi.Server, reports []Result) {
	t.Helper()
	pods, owners := map[string]bool{}, map[string]bool{}
	for i, r := range reports {
		if r.Outcome != OutcomeKilled && r.Outcome != OutcomeDryRun {
			continue
		}
		if pods[r.Pod] || owners[r.Owner] {
			t.Errorf("report %d: %s of %s, a pod or controller already hit this tick", i, r.Pod, r.Owner)
		}
		pods[r.Pod], owners[r.Owner] = true, true
		if r.Outcome == OutcomeKilled && srv.Pod(testNS, r.Pod) != nil {
			t.Errorf("report %d: %s reported killed but still there", i, r.Pod)
		}
		if i < len(reports)-1 && r.Note != "" {
			t.Errorf("report %d: note %q, want notes on the last report only", i, r.Note)
		}
	}
}

// checkLast checks the last of reports: the picks it passed over, its note, and, when it is
// a failure after kills, the kills it counts before it.
func (tt killCountCase) checkLast(t *testing.T, reports []Result) {
	t.Helper()
	last := reports[len(reports)-1]
	if tt.tried != 0 && len(last.Passed) != tt.tried {
		t.Errorf("%d picks passed over, want %d", len(last.Passed), tt.tried)
	}
	if (tt.note == "") != (last.Note == "") || !strings.Contains(last.Note, tt.note) {
		t.Errorf("last note = %q, want one containing %q", last.Note, tt.note)
	}
	if tt.passed != "" && !slices.ContainsFunc(last.Passed, func(p string) bool { return strings.Contains(p, tt.passed) }) {
		t.Errorf("last passed = %q, want an entry containing %q", last.Passed, tt.passed)
	}
	if last.Outcome == OutcomeForbidden && len(reports) > 1 && last.KilledBefore != len(reports)-1 {
		t.Errorf("the failure's report counts %d earlier victims, want %d", last.KilledBefore, len(reports)-1)
	}
}

// checkDeletesReported checks that each DELETE srv received is of the pod the report of the
// same rank names, when that report is a kill.
func checkDeletesReported(t *testing.T, srv *fakeapi.Server, reports []Result) {
	t.Helper()
	for i, d := range srv.Deletes() {
		if name := path.Base(d.Path); i < len(reports) && reports[i].Outcome == OutcomeKilled && reports[i].Pod != name {
			t.Errorf("DELETE %d of %s, report %d names %s", i, name, i, reports[i].Pod)
		}
	}
}

// memPods is an in-memory podAPI for the statistical tests: every pod is Running and Ready,
// owned by the controller owner gives it; kills are recorded, and delete nothing.
type memPods struct {
	pagedNames
	owner  map[string]string // pod -> controller name
	killed []string
}

func (m *memPods) Lookup(_ context.Context, _, name, _ string) (kube.Pod, error) {
	return kube.Pod{UID: types.UID("uid-" + name), Running: true, Ready: true,
		Controller: &kube.OwnerRef{Kind: "ReplicaSet", Name: m.owner[name], UID: types.UID("uid-" + m.owner[name])}}, nil
}

func (m *memPods) Delete(_ context.Context, _, name string, _ kube.Pod, _ *int64) (string, error) {
	m.killed = append(m.killed, name)
	return "", nil
}

// TestKillCountIsUniformWithoutReplacement is a chi-squared test: with KILL_COUNT=3 over 10
// pods of 10 controllers, every pod is equally likely to be among a tick's victims, and no
// tick hits one twice; over 4 controllers, no tick hits one controller twice.
func TestKillCountIsUniformWithoutReplacement(t *testing.T) {
	const pods, ticks = 10, 20_000
	names := make([]string, pods)
	own, shared := map[string]string{}, map[string]string{}
	for i := range names {
		names[i] = fmt.Sprint(i)
		own[names[i]] = "rs-" + names[i]
		shared[names[i]] = fmt.Sprint("rs-", i%4)
	}
	api := &memPods{pagedNames: pagedNames{names: names, per: 3}, owner: own}
	k := &Killer{api: api, scope: scope{namespaces: []string{testNS}}, rng: rand.New(rand.NewPCG(3, 5)), count: killCount{n: 3}, timeouts: testTimeouts,
		now: func() time.Time { return tick0 }, log: discardLogger()}
	hits := map[string]int{}
	for range ticks {
		api.killed = api.killed[:0]
		killWithin(t.Context(), t, k, tick0)
		if len(api.killed) != 3 || len(slices.Compact(slices.Sorted(slices.Values(api.killed)))) != 3 {
			t.Fatalf("a tick killed %q, want 3 distinct pods", api.killed)
		}
		for _, name := range api.killed {
			hits[name]++
		}
	}
	if chi2 := chiSquared(names, hits, ticks*3); chi2 > 27.88 {
		t.Errorf("chi-squared = %.1f over %v, the victims are not uniform", chi2, hits)
	}
	api.owner = shared
	for range 200 {
		api.killed = api.killed[:0]
		killWithin(t.Context(), t, k, tick0)
		ctrls := map[string]bool{}
		for _, name := range api.killed {
			if ctrls[shared[name]] {
				t.Fatalf("a tick killed %q: two pods of %s", api.killed, shared[name])
			}
			ctrls[shared[name]] = true
		}
	}
}

// TestPickReservoirIsBounded: the pick keeps picksPerTick names per victim asked for, up to
// maxPicks, and as many for a percentage, whatever the number of candidates.
func TestPickReservoirIsBounded(t *testing.T) {
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprint(i)
	}
	tests := []struct {
		count killCount
		want  int
	}{
		{count: killCount{}, want: picksPerTick},
		{count: killCount{n: 1}, want: picksPerTick},
		{count: killCount{n: 3}, want: 3 * picksPerTick},
		{count: killCount{n: maxVictims}, want: maxPicks},
		{count: killCount{percent: 1}, want: maxPicks},
	}
	for _, tt := range tests {
		t.Run(tt.count.String(), func(t *testing.T) {
			k := &Killer{api: pagedNames{names: names, per: 100}, scope: scope{namespaces: []string{testNS}}, rng: rand.New(rand.NewPCG(1, 1)), count: tt.count}
			got, n, err := k.pick(testkit.Ctx(t), tickScope{lists: k.scope.lists()})
			if err != nil || n != len(names) || len(got) != tt.want {
				t.Errorf("pick kept %d names of %d (err %v), want %d", len(got), n, err, tt.want)
			}
		})
	}
	if got := tries(maxVictims); got != maxPicks {
		t.Errorf("tries(%d) = %d, want %d", maxVictims, got, maxPicks)
	}
	if got := tries(2); got != 2*picksPerTick {
		t.Errorf("tries(2) = %d, want %d", got, 2*picksPerTick)
	}
}

func TestKillCountVictims(t *testing.T) {
	tests := []struct {
		count      killCount
		candidates int
		want       int
		capped     bool
	}{
		{killCount{}, 10, 1, false},
		{killCount{n: 3}, 2, 3, false},
		{killCount{percent: 10}, 5, 1, false},
		{killCount{percent: 10}, 29, 2, false},
		{killCount{percent: 50}, 200, 100, false},
		{killCount{percent: 50}, 202, 100, true},
	}
	for _, tt := range tests {
		if got, capped := tt.count.victims(tt.candidates); got != tt.want || capped != tt.capped {
			t.Errorf("%s of %d = %d (capped %v), want %d (capped %v)", tt.count, tt.candidates, got, capped, tt.want, tt.capped)
		}
	}
}

// TestRunSendsATicksReportsAsOne: a tick of several victims sends all of its reports as one
// value (the notifier posts them as one message), and logs one line per victim.
func TestRunSendsATicksReportsAsOne(t *testing.T) {
	srv := fakeapi.New(t, slices.Concat(replicas("a", 2), replicas("b", 2), replicas("c", 2))...)
	k := newTestKiller(t, srv, "", false)
	k.count = killCount{n: 3}
	var logs strings.Builder
	k.log = slog.New(slog.NewJSONHandler(&logs, nil))
	results := runOneTick(t, k)
	var got [][]string
	for tick := range results {
		var pods []string
		for _, r := range tick {
			pods = append(pods, r.Pod)
		}
		got = append(got, pods)
	}
	if len(got) != 1 || len(got[0]) != 3 {
		t.Errorf("sent %q, want one value of 3 reports", got)
	}
	if lines := strings.Count(logs.String(), `"msg":"tick done"`); lines != 3 {
		t.Errorf("%d log lines for the tick, want one per victim, 3; log:\n%s", lines, logs.String())
	}
}

func TestMessageModes(t *testing.T) {
	evicted := killed
	evicted.Mode, evicted.Deleted = modeEvict, tick0.Add(120*time.Millisecond)
	with := func(r Result, edit func(*Result)) Result { edit(&r); return r }
	tests := []struct {
		name     string
		r        Result
		prefix   string
		contains []string
		absent   []string
	}{
		{name: "evicted", r: evicted, prefix: ":monkey_face: evicted pod `shop/web-1` (ReplicaSet/web-7d9, node node-1), 1 of 3 candidates",
			contains: []string{"evicted at 09:00:00.12 UTC"}, absent: []string{"killed", "deleted"}},
		{name: "a dry run in evict mode", r: with(evicted, func(r *Result) { r.Outcome, r.Deleted = OutcomeDryRun, time.Time{} }),
			prefix: ":see_no_evil: dry run: would have evicted pod `shop/web-1`"},
		{name: "blocked names the PDB", r: Result{Time: tick0, Namespace: "shop", Candidates: 2, Outcome: OutcomeBlocked, Mode: modeEvict,
			Passed: []string{"shop/web-1: eviction blocked by PodDisruptionBudget web-pdb (needs 3 healthy, has 3)"}},
			prefix:   ":vertical_traffic_light: blocked: PodDisruptionBudgets refused to let any pick among 2 candidates in namespace `shop` be evicted; nothing was evicted.",
			contains: []string{"Picks passed over: `shop/web-1` (eviction blocked by PodDisruptionBudget web-pdb (needs 3 healthy, has 3))"}},
		{name: "forbidden eviction", r: with(evicted, func(r *Result) { r.Outcome, r.Err = OutcomeForbidden, errors.New("no") }),
			prefix: ":no_entry: forbidden to evict pod `shop/web-1`", contains: []string{"nothing was evicted"}},
		{name: "unknown eviction", r: with(evicted, func(r *Result) { r.Outcome, r.Err = OutcomeUnknown, errors.New("timeout") }),
			prefix: ":question: sent the eviction of pod `shop/web-1`", contains: []string{"may or may not have been evicted"}},
		{name: "gone before the eviction", r: with(evicted, func(r *Result) { r.Outcome, r.Err = OutcomeNotFound, kube.ErrGone }),
			contains: []string{"gone before it could be evicted; nothing was evicted"}},
		{name: "a grace period is noted", r: with(killed, func(r *Result) { r.Note = graceNote(new(int64(0))) }),
			contains: []string{"\nNote: grace period 0s (MACAQUE_GRACE_PERIOD): a hard kill"}},
		{name: "a failure after earlier kills does not say nothing was killed",
			r:      with(killed, func(r *Result) { r.Outcome, r.Err, r.KilledBefore = OutcomeForbidden, errors.New("no"), 2 }),
			prefix: ":no_entry: forbidden to kill pod `shop/web-1` (ReplicaSet/web-7d9, node node-1); it was not killed (2 earlier in this tick were).",
			absent: []string{"nothing was killed"}},
		{name: "a plain error after earlier kills", r: with(killed, func(r *Result) { r.Outcome, r.Err, r.KilledBefore = OutcomeError, errors.New("boom"), 1 }),
			prefix: ":warning: failed to kill pod `shop/web-1` (ReplicaSet/web-7d9, node node-1); it was not killed (1 earlier in this tick were)."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := message(tt.r)
			if !strings.HasPrefix(got, tt.prefix) {
				t.Errorf("message = %q, want it to start %q", got, tt.prefix)
			}
			for _, c := range tt.contains {
				if !strings.Contains(got, c) {
					t.Errorf("message = %q, want it to contain %q", got, c)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(got, a) {
					t.Errorf("message = %q, want no %q", got, a)
				}
			}
			if tt.r.Mode == modeEvict && killedRE.MatchString(got) {
				t.Errorf("message = %q matches the delete mode's kill report", got)
			}
		})
	}
}

// TestReportLogsMode: a victim's log line says how it was killed, and when (deleted or evicted).
func TestReportLogsMode(t *testing.T) {
	for _, mode := range []killMode{"", modeDelete, modeEvict} {
		t.Run(string(mode), func(t *testing.T) {
			var buf strings.Builder
			k := &Killer{log: slog.New(slog.NewJSONHandler(&buf, nil))}
			k.report(Result{Time: tick0, Namespace: testNS, Pod: "web-1", Outcome: OutcomeKilled, Mode: mode, Deleted: tick0}, nil)
			var line map[string]any
			if err := json.Unmarshal([]byte(buf.String()), &line); err != nil {
				t.Fatal(err)
			}
			want, when, not := "delete", "deleted", "evicted"
			if mode == modeEvict {
				want, when, not = "evict", "evicted", "deleted"
			}
			if line["mode"] != want {
				t.Errorf("mode = %v, want %s (line %s)", line["mode"], want, buf.String())
			}
			if _, ok := line[when]; !ok {
				t.Errorf("no %q field in %s", when, buf.String())
			}
			if _, ok := line[not]; ok {
				t.Errorf("a %q field in %s", not, buf.String())
			}
		})
	}
}

// TestParseKillCount checks MACAQUE_KILL_COUNT's accepted values at their bounds, and how the
// count is spelt back (the start-up log line).
func TestParseKillCount(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want killCount
		says string
	}{
		{"", killCount{n: 1}, "1"},
		{"1", killCount{n: 1}, "1"},
		{" 100 ", killCount{n: 100}, "100"},
		{"1%", killCount{percent: 1}, "1%"},
		{"100%", killCount{percent: 100}, "100%"},
	} {
		got, err := parseKillCount(tt.in)
		if err != nil || got != tt.want || got.String() != tt.says {
			t.Errorf("parseKillCount(%q) = %+v (%q), %v; want %+v (%q)", tt.in, got, got.String(), err, tt.want, tt.says)
		}
	}
	if got := (killCount{}).String(); got != "1" {
		t.Errorf("the zero count says %q, want 1", got)
	}
}
