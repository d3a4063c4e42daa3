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

	"github.com/macaque-chaos/macaque/internal/kube"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

const testNS = "shop"

var tick0 = time.Date(2026, 3, 29, 9, 0, 0, 0, time.UTC)

// newTestKiller returns a Killer talking HTTP to srv, seeded so every run picks alike.
func newTestKiller(t *testing.T, srv *fakeapi.Server, selector string, dryRun bool) *Killer {
	t.Helper()
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &Killer{api: api, scope: scope{namespaces: []string{testNS}}, selector: selector, self: "macaque-0", dryRun: dryRun,
		timeouts: testTimeouts, rng: rand.New(rand.NewPCG(1, 2)), now: func() time.Time { return tick0 }, log: discardLogger()}
}

// killOnce runs one tick of k that must give exactly one report, as every tick of a single
// victim does, and returns it.
func killOnce(t *testing.T, k *Killer) Result {
	t.Helper()
	reports := killWithin(t.Context(), t, k, tick0)
	if len(reports) != 1 {
		t.Fatalf("%d reports, want 1: %+v", len(reports), reports)
	}
	return reports[0]
}

// testTimeouts keep the cases whose DELETE never gets an answer short: each waits out Delete.
var testTimeouts = Timeouts{Pick: 10 * time.Second, Delete: 100 * time.Millisecond, ReadBack: 5 * time.Second}

// hold is a Fail hook step that blocks a request until the test ends, as a lost answer would.
func hold(t *testing.T) func() {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return func() { <-release }
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func terminating(p *corev1.Pod) *corev1.Pod {
	now := metav1.Now()
	p.DeletionTimestamp = &now
	p.Finalizers = []string{"example.com/hold"}
	return p
}

// nodeLost marks p as being deleted on an unreachable node, which kubectl prints as Unknown.
func nodeLost(p *corev1.Pod) *corev1.Pod {
	p = terminating(p)
	p.Status.Reason = "NodeLost"
	return p
}

func withPhase(p *corev1.Pod, phase corev1.PodPhase) *corev1.Pod {
	p.Status.Phase = phase
	return p
}

// killCase is a case of TestKill: the pods in the API server, how it misbehaves, and what the
// tick must report and send.
type killCase struct {
	name       string
	pods       []*corev1.Pod
	selector   string
	dryRun     bool
	fail       func(*testing.T, *fakeapi.Server) func(fakeapi.Request) *metav1.Status
	want       Outcome
	candidates int
	victims    []string // pods that may be picked; empty when none may be
	deleted    bool     // whether the victim must be gone afterwards
	deletes    int      // DELETE requests the killer must send
	passed     int      // picks rejected before the outcome
	note       string   // a substring of the report's note; empty when there must be none
	errText    string   // a substring of the error, when one is wanted
}

func TestKill(t *testing.T) {
	web := map[string]string{"app": "web"}
	tests := []killCase{
		{
			name:       "kills the only Running pod in scope",
			pods:       []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web), fakeapi.Pod(testNS, "db-1", map[string]string{"app": "db"}), fakeapi.Pod("other", "web-9", web)},
			selector:   "app=web",
			want:       OutcomeKilled,
			candidates: 1,
			victims:    []string{"web-1"},
			deleted:    true,
			deletes:    1,
		},
		{
			name:       "set-based selector",
			pods:       []*corev1.Pod{fakeapi.Pod(testNS, "a-1", map[string]string{"app": "a", "tier": "fe"}), fakeapi.Pod(testNS, "b-1", map[string]string{"app": "b", "tier": "db"}), fakeapi.Pod(testNS, "c-1", map[string]string{"app": "c"})},
			selector:   "app in (a,b),tier!=db",
			want:       OutcomeKilled,
			candidates: 1,
			victims:    []string{"a-1"},
			deleted:    true,
			deletes:    1,
		},
		{
			name:       "never macaque's own pod, terminating or non-Running pods",
			pods:       []*corev1.Pod{fakeapi.Pod(testNS, "macaque-0", web), terminating(fakeapi.Pod(testNS, "web-old", web)), withPhase(fakeapi.Pod(testNS, "web-new", web), corev1.PodPending), withPhase(fakeapi.Pod(testNS, "job-1", web), corev1.PodSucceeded)},
			want:       OutcomeNoCandidates,
			candidates: 0,
		},
		{
			name:       "dry run deletes nothing",
			pods:       []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web), fakeapi.Pod(testNS, "web-2", web)},
			dryRun:     true,
			want:       OutcomeDryRun,
			candidates: 2,
			victims:    []string{"web-1", "web-2"},
		},
		{
			name: "list forbidden",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(*testing.T, *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(fakeapi.Request) *metav1.Status { return fakeapi.Forbidden("list", testNS) }
			},
			want: OutcomeForbidden,
		},
		{
			name: "delete forbidden is not reported as a kill",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(*testing.T, *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodDelete {
						return fakeapi.Forbidden("delete", testNS)
					}
					return nil
				}
			},
			want:       OutcomeForbidden,
			candidates: 1,
			victims:    []string{"web-1"},
			deletes:    1,
		},
		{
			name: "pod replaced under the same name: UID precondition protects the new one",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "db-0", web)},
			fail: func(_ *testing.T, s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodDelete { // a StatefulSet recreated db-0 just before our delete
						p := fakeapi.Pod(testNS, "db-0", web)
						p.UID = "uid-db-0-reborn"
						s.Add(p)
					}
					return nil
				}
			},
			want:       OutcomeNotFound,
			candidates: 1,
			deletes:    1,
			passed:     1,
		},
		{
			name: "pod gone before the delete",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(*testing.T, *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodDelete {
						return &metav1.Status{Status: metav1.StatusFailure, Code: 404, Reason: metav1.StatusReasonNotFound, Message: `pods "web-1" not found`}
					}
					return nil
				}
			},
			want:       OutcomeNotFound,
			candidates: 1,
			deletes:    1,
			passed:     1,
		},
		{
			name: "pod stopped running between list and delete",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(_ *testing.T, s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if r.Query.Get("fieldSelector") == "metadata.name=web-1" {
						s.Add(withPhase(fakeapi.Pod(testNS, "web-1", web), corev1.PodSucceeded))
					}
					return nil
				}
			},
			want:       OutcomeNotFound,
			candidates: 1,
			passed:     1,
		},
		{
			name: "a pick that stopped running is passed over for the next",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web), fakeapi.Pod(testNS, "web-2", web)},
			fail: func(_ *testing.T, s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				var stopped atomic.Bool
				return func(r fakeapi.Request) *metav1.Status {
					if name, ok := strings.CutPrefix(r.Query.Get("fieldSelector"), "metadata.name="); ok && stopped.CompareAndSwap(false, true) {
						s.Add(withPhase(fakeapi.Pod(testNS, name, web), corev1.PodSucceeded))
					}
					return nil
				}
			},
			want: OutcomeKilled, candidates: 2, victims: []string{"web-1", "web-2"}, deleted: true, deletes: 1, passed: 1,
		},
		{
			name: "a pod printed Unknown (being deleted on a lost node) is not a candidate",
			pods: []*corev1.Pod{nodeLost(fakeapi.Pod(testNS, "web-lost", web)), fakeapi.Pod(testNS, "web-1", web)},
			want: OutcomeKilled, candidates: 1, victims: []string{"web-1"}, deleted: true, deletes: 1,
		},
		{
			name:     "a pick relabelled out of scope before its read-back is passed over for the next",
			pods:     []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web), fakeapi.Pod(testNS, "web-2", web)},
			selector: "app=web",
			fail: func(_ *testing.T, s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				var relabelled atomic.Bool
				return func(r fakeapi.Request) *metav1.Status {
					if name, ok := strings.CutPrefix(r.Query.Get("fieldSelector"), "metadata.name="); ok && relabelled.CompareAndSwap(false, true) {
						// the first pick leaves the scope between the list and its read-back
						s.Add(fakeapi.Pod(testNS, name, map[string]string{"app": "db"}))
					}
					return nil
				}
			},
			want: OutcomeKilled, candidates: 2, victims: []string{"web-1", "web-2"}, deleted: true, deletes: 1, passed: 1,
		},
		{
			name: "a pick changed between its read-back and the delete is not deleted: resourceVersion precondition",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web), fakeapi.Pod(testNS, "web-2", web)},
			fail: func(_ *testing.T, s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				var changed atomic.Bool
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodDelete && changed.CompareAndSwap(false, true) {
						// someone else starts deleting it: same UID, new resourceVersion
						name := path.Base(r.Path)
						s.Add(terminating(fakeapi.Pod(testNS, name, web)))
					}
					return nil
				}
			},
			want: OutcomeKilled, candidates: 2, victims: []string{"web-1", "web-2"}, deleted: true, deletes: 2, passed: 1,
		},
		{
			name: "every pick rejected at its read-back: not found, with why for each, after picksPerTick tries",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web), fakeapi.Pod(testNS, "web-2", web), fakeapi.Pod(testNS, "web-3", web), fakeapi.Pod(testNS, "web-4", web),
				fakeapi.Pod(testNS, "web-5", web), fakeapi.Pod(testNS, "web-6", web)},
			fail: func(_ *testing.T, s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if name, ok := strings.CutPrefix(r.Query.Get("fieldSelector"), "metadata.name="); ok {
						s.Remove(testNS, name)
					}
					return nil
				}
			},
			want: OutcomeNotFound, candidates: 6, passed: picksPerTick,
		},
		{
			name: "an admission webhook's 403 is denied, not blamed on the Role",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(*testing.T, *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodDelete {
						return &metav1.Status{Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden,
							Message: `admission webhook "no-chaos.example.com" denied the request: no chaos on Fridays`}
					}
					return nil
				}
			},
			want: OutcomeDenied, candidates: 1, victims: []string{"web-1"}, deletes: 1, errText: "no chaos on Fridays",
		},
		{
			name: "a DELETE committed whose answer never came is a kill, confirmed by a read-back",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(t *testing.T, s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				wait := hold(t)
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodDelete {
						s.Remove(testNS, "web-1")
						wait()
					}
					return nil
				}
			},
			want: OutcomeKilled, candidates: 1, victims: []string{"web-1"}, deleted: true, deletes: 1, note: "read-back found the pod gone",
		},
		{
			name: "a 5xx to a DELETE that left the pod terminating is a kill, confirmed by a read-back",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(_ *testing.T, s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodDelete {
						s.Add(terminating(fakeapi.Pod(testNS, "web-1", web)))
						return &metav1.Status{Status: metav1.StatusFailure, Code: 504, Reason: metav1.StatusReasonTimeout, Message: "request did not complete within 1m0s"}
					}
					return nil
				}
			},
			want: OutcomeKilled, candidates: 1, victims: []string{"web-1"}, deletes: 1, note: "read-back found the pod terminating",
		},
		{
			name: "a 500 to a DELETE after which the pod was replaced under its name is a kill of the old one",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "db-0", web)},
			fail: func(_ *testing.T, s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodDelete { // deleted, and a StatefulSet made db-0 anew
						p := fakeapi.Pod(testNS, "db-0", web)
						p.UID = "uid-db-0-reborn"
						s.Add(p)
						return fakeapi.InternalError("etcdserver: leader changed")
					}
					return nil
				}
			},
			want: OutcomeKilled, candidates: 1, victims: []string{"db-0"}, deletes: 1, note: "read-back found the pod gone",
		},
		{
			name: "a DELETE answered 503 with Retry-After is not resent: a resent one would find the pod gone",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(_ *testing.T, s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodDelete {
						s.Remove(testNS, "web-1") // committed before the answer was lost
						return &metav1.Status{Status: metav1.StatusFailure, Code: 503, Reason: metav1.StatusReasonServiceUnavailable,
							Message: "the server is shutting down", Details: &metav1.StatusDetails{RetryAfterSeconds: 1}}
					}
					return nil
				}
			},
			want: OutcomeKilled, candidates: 1, victims: []string{"web-1"}, deleted: true, deletes: 1, note: "read-back found the pod gone",
		},
		{
			name: "a DELETE that never got an answer and left the pod running is not a kill",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(t *testing.T, _ *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				wait := hold(t)
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodDelete {
						wait()
					}
					return nil
				}
			},
			want: OutcomeError, candidates: 1, victims: []string{"web-1"}, deletes: 1, errText: "still running",
		},
		{
			name: "a DELETE without an answer and a failed read-back is unknown, never nothing-was-killed",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(t *testing.T, _ *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				wait := hold(t)
				var sent atomic.Bool
				return func(r fakeapi.Request) *metav1.Status {
					switch {
					case r.Method == http.MethodDelete:
						sent.Store(true)
						wait()
					case sent.Load():
						return fakeapi.InternalError("etcdserver: leader changed")
					}
					return nil
				}
			},
			want: OutcomeUnknown, candidates: 1, victims: []string{"web-1"}, deletes: 1, errText: "read-back failed",
		},
		{
			name: "a 429 to a DELETE was not carried out: an error, and no read-back",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(t *testing.T, s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodDelete {
						return &metav1.Status{Status: metav1.StatusFailure, Code: 429, Reason: metav1.StatusReasonTooManyRequests, Message: "too many requests"}
					}
					if r.Query.Get("fieldSelector") == "metadata.name=web-1" && len(s.Deletes()) > 0 {
						t.Error("read back after a 429")
					}
					return nil
				}
			},
			want: OutcomeError, candidates: 1, victims: []string{"web-1"}, deletes: 1, errText: "too many requests",
		},
		{
			name: "server error",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(*testing.T, *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(fakeapi.Request) *metav1.Status { return fakeapi.InternalError("etcdserver: request timed out") }
			},
			want: OutcomeError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// run runs one tick over the case's pods, then checks its report and the DELETEs it sent.
func (tt killCase) run(t *testing.T) {
	srv := fakeapi.New(t, tt.pods...)
	if tt.fail != nil {
		srv.Fail = tt.fail(t, srv)
	}
	rvs := resourceVersions(srv, tt.pods)
	k := newTestKiller(t, srv, tt.selector, tt.dryRun)
	r := killOnce(t, k)

	tt.checkOutcome(t, r)
	tt.checkPick(t, srv, r)
	tt.checkDeletes(t, srv, r, rvs)
	tt.checkReport(t, r)
}

// resourceVersions is the resourceVersion each of pods has in srv (now, as the tick begins).
func resourceVersions(srv *fakeapi.Server, pods []*corev1.Pod) map[string]string {
	rvs := map[string]string{}
	for _, p := range pods {
		if stored := srv.Pod(p.Namespace, p.Name); stored != nil {
			rvs[p.Name] = stored.ResourceVersion
		}
	}
	return rvs
}

// checkOutcome checks r's outcome (ending the test when it is not the case's), that r has an
// error exactly when its outcome is a failure, and the candidates it counted.
func (tt killCase) checkOutcome(t *testing.T, r Result) {
	t.Helper()
	if r.Outcome != tt.want {
		t.Fatalf("outcome = %q (err %v), want %q", r.Outcome, r.Err, tt.want)
	}
	if (r.Err != nil) != (tt.want != OutcomeKilled && tt.want != OutcomeDryRun && tt.want != OutcomeNoCandidates) {
		t.Errorf("err = %v for outcome %q", r.Err, r.Outcome)
	}
	if r.Candidates != tt.candidates {
		t.Errorf("candidates = %d, want %d", r.Candidates, tt.candidates)
	}
}

// checkPick checks the pod r names is one of the case's victims (or none when it has none),
// with its owner and node, and whether it is gone from srv.
func (tt killCase) checkPick(t *testing.T, srv *fakeapi.Server, r Result) {
	t.Helper()
	if len(tt.victims) == 0 && r.Pod != "" {
		t.Errorf("picked %q, want no pick", r.Pod)
	}
	if len(tt.victims) > 0 {
		if !slices.Contains(tt.victims, r.Pod) {
			t.Errorf("picked %q, want one of %v", r.Pod, tt.victims)
		}
		if r.Owner != "ReplicaSet/rs-"+r.Pod || r.Node != "node-"+r.Pod {
			t.Errorf("owner, node = %q, %q; want ReplicaSet/rs-%s, node-%s", r.Owner, r.Node, r.Pod, r.Pod)
		}
	}
	if gone := r.Pod != "" && srv.Pod(testNS, r.Pod) == nil; gone != tt.deleted {
		t.Errorf("victim %q deleted = %v, want %v", r.Pod, gone, tt.deleted)
	}
}

// checkDeletes checks the number of DELETEs srv received (ending the test when it is not the
// case's) and that the last is of the pod r names, with the preconditions it had in rvs.
func (tt killCase) checkDeletes(t *testing.T, srv *fakeapi.Server, r Result, rvs map[string]string) {
	t.Helper()
	dels := srv.Deletes()
	if len(dels) != tt.deletes {
		t.Fatalf("%d DELETE requests, want %d: %+v", len(dels), tt.deletes, dels)
	}
	if tt.deletes > 0 {
		last := path.Base(dels[len(dels)-1].Path)
		if r.Pod != "" && last != r.Pod {
			t.Errorf("last DELETE of %s, but the report names %s", last, r.Pod)
		}
		assertDelete(t, dels[len(dels)-1], last, rvs[last])
	}
}

// checkReport checks what else r says: the picks passed over, its note, its error's text, and
// a deletion time exactly when it reports a kill.
func (tt killCase) checkReport(t *testing.T, r Result) {
	t.Helper()
	if len(r.Passed) != tt.passed {
		t.Errorf("passed = %q, want %d rejected picks", r.Passed, tt.passed)
	}
	if (tt.note == "") != (r.Note == "") || !strings.Contains(r.Note, tt.note) {
		t.Errorf("note = %q, want one containing %q", r.Note, tt.note)
	}
	if tt.errText != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), tt.errText)) {
		t.Errorf("err = %v, want one containing %q", r.Err, tt.errText)
	}
	if deleted := !r.Deleted.IsZero(); deleted != (r.Outcome == OutcomeKilled) {
		t.Errorf("deleted at %v for outcome %q", r.Deleted, r.Outcome)
	}
}

// assertDelete checks a DELETE targets pod and carries the UID and resourceVersion it had when
// picked, and that client-go did not send it twice.
func assertDelete(t *testing.T, d fakeapi.Request, pod, rv string) {
	t.Helper()
	if want := "/api/v1/namespaces/" + testNS + "/pods/" + pod; d.Path != want {
		t.Errorf("DELETE %s, want %s", d.Path, want)
	}
	var opts metav1.DeleteOptions
	if err := json.Unmarshal(d.Body, &opts); err != nil {
		t.Fatalf("DELETE body %q: %v", d.Body, err)
	}
	if opts.Preconditions == nil || opts.Preconditions.UID == nil || *opts.Preconditions.UID != types.UID("uid-"+pod) {
		t.Errorf("DELETE preconditions = %+v, want UID uid-%s", opts.Preconditions, pod)
	}
	if opts.Preconditions == nil || opts.Preconditions.ResourceVersion == nil || *opts.Preconditions.ResourceVersion != rv {
		t.Errorf("DELETE preconditions = %+v, want resourceVersion %q", opts.Preconditions, rv)
	}
	if d.Query.Has("dryRun") {
		t.Errorf("DELETE of a victim with dryRun=%q", d.Query.Get("dryRun"))
	}
}

// TestListRequests checks the requests a tick's listing makes: up to pageSize rows in one
// request (so a namespace of 10,345 pods, three pages at the old 5,000 a page, is one request),
// and beyond a request's cap, pages of the cap that follow the server's continue tokens. Every
// request carries a limit, which is what bounds what one of them costs the API server.
func TestListRequests(t *testing.T) {
	tests := []struct {
		name     string
		pods     int
		pageRows int64 // the Killer's; 0: pageSize
		limit    int64 // every list request's
		lists    int
	}{
		{name: "under the cap: one request", pods: 2*5000 + 345, limit: pageSize, lists: 1},
		{name: "over the cap: pages of the cap", pods: 2*1000 + 345, pageRows: 1000, limit: 1000, lists: 3},
		{name: "exactly the cap: one request", pods: 1000, pageRows: 1000, limit: 1000, lists: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t)
			for i := range tt.pods {
				srv.Add(fakeapi.Pod(testNS, fmt.Sprintf("web-%05d", i), map[string]string{"app": "web"}))
			}
			rvs := map[string]string{}
			for i := range tt.pods {
				name := fmt.Sprintf("web-%05d", i)
				rvs[name] = srv.Pod(testNS, name).ResourceVersion
			}
			k := newTestKiller(t, srv, "app=web", false)
			k.pageRows = tt.pageRows
			r := killOnce(t, k)
			if r.Outcome != OutcomeKilled || r.Candidates != tt.pods {
				t.Fatalf("outcome %q, candidates %d (err %v); want killed, %d", r.Outcome, r.Candidates, r.Err, tt.pods)
			}

			reqs := srv.Requests()
			// The table pages, one lookup of the victim, one delete.
			if len(reqs) != tt.lists+2 {
				t.Fatalf("%d requests, want %d list requests, a lookup and a delete: %+v", len(reqs), tt.lists, reqs)
			}
			tokens := srv.Tokens() // random: each page must ask for the one the page before it was given
			if len(tokens) != tt.lists-1 {
				t.Fatalf("%d continue tokens given out, want %d", len(tokens), tt.lists-1)
			}
			for i := range tt.lists {
				q := reqs[i].Query
				wantContinue := ""
				if i > 0 {
					wantContinue = tokens[i-1]
				}
				checks := map[string][2]string{
					"Accept":        {reqs[i].Accept, kube.TableAccept},
					"fieldSelector": {q.Get("fieldSelector"), "status.phase=Running,metadata.name!=macaque-0"},
					"labelSelector": {q.Get("labelSelector"), "app=web"},
					"limit":         {q.Get("limit"), fmt.Sprint(tt.limit)},
					"includeObject": {q.Get("includeObject"), "None"},
					"continue":      {q.Get("continue"), wantContinue},
				}
				for what, c := range checks {
					if c[0] != c[1] {
						t.Errorf("page %d: %s = %q, want %q", i, what, c[0], c[1])
					}
				}
			}
			lookup := reqs[tt.lists]
			if lookup.Method != http.MethodGet || lookup.Query.Get("fieldSelector") != "metadata.name="+r.Pod ||
				lookup.Query.Get("labelSelector") != "app=web" || strings.Contains(lookup.Accept, "Table") {
				t.Errorf("lookup = %s %s?%s (Accept %q), want a plain list by metadata.name=%s and the selector app=web", lookup.Method, lookup.Path, lookup.Query.Encode(), lookup.Accept, r.Pod)
			}
			assertDelete(t, reqs[tt.lists+1], r.Pod, rvs[r.Pod])
			if srv.Len() != tt.pods-1 {
				t.Errorf("%d pods left, want %d", srv.Len(), tt.pods-1)
			}
		})
	}
}

// pagedNames serves names in pages of size per, without HTTP, for the statistical test.
type pagedNames struct {
	names []string
	per   int
}

func (p pagedNames) ListPage(_ context.Context, q kube.ListQuery, each func(string)) (string, error) {
	start := 0
	if q.ContinueToken != "" {
		_, _ = fmt.Sscan(q.ContinueToken, &start)
	}
	end := min(start+p.per, len(p.names))
	for _, name := range p.names[start:end] {
		each(name)
	}
	if end < len(p.names) {
		return fmt.Sprint(end), nil
	}
	return "", nil
}

func (pagedNames) Lookup(context.Context, string, string, string) (kube.Pod, error) {
	panic("not used")
}
func (pagedNames) Locate(context.Context, kube.ListQuery, string) ([]kube.Pod, error) {
	panic("not used")
}
func (pagedNames) Delete(context.Context, string, string, kube.Pod, *int64) (string, error) {
	panic("not used")
}
func (pagedNames) Evict(context.Context, string, string, kube.Pod, *int64) error { panic("not used") }
func (pagedNames) ListPDBs(context.Context, string) ([]kube.PDB, error)          { panic("not used") }
func (pagedNames) ProbeDelete(context.Context, string) error                     { panic("not used") }
func (pagedNames) ProbeEvict(context.Context, string) error                      { panic("not used") }
func (pagedNames) ListNamespaces(context.Context, string, func(string)) error {
	panic("not used")
}
func (pagedNames) ProbeListNamespaces(context.Context, string) error { panic("not used") }

// TestPickIsUniformAcrossPages is a chi-squared test: every pod, on whichever page of
// whichever namespace's list it is, must be equally likely to be the first pick, and equally
// likely to be among the picks a tick may try; the picks are distinct.
func TestPickIsUniformAcrossPages(t *testing.T) {
	const perNamespace, picks = 5, 100_000
	listed := make([]string, perNamespace)
	for i := range listed {
		listed[i] = fmt.Sprint(i)
	}
	namespaces := []string{"a", "b"}
	var names []string // every candidate, as candidate.String names it
	for _, ns := range namespaces {
		for _, name := range listed {
			names = append(names, ns+"/"+name)
		}
	}
	k := &Killer{api: pagedNames{names: listed, per: 3}, scope: scope{namespaces: namespaces}, rng: rand.New(rand.NewPCG(7, 11))}
	first, tried := map[string]int{}, map[string]int{}
	for range picks {
		got, n, err := k.pick(testkit.Ctx(t), tickScope{lists: k.scope.lists()})
		if err != nil || n != len(names) || len(got) != picksPerTick {
			t.Fatalf("pick: %v, %d candidates, picks %q", err, n, got)
		}
		first[got[0].String()]++
		seen := map[candidate]bool{}
		for _, c := range got {
			if seen[c] {
				t.Fatalf("picks %q repeat %s", got, c)
			}
			seen[c] = true
			tried[c.String()]++
		}
	}
	// 27.88 is the 0.999 quantile of chi-squared with 9 degrees of freedom.
	if chi2 := chiSquared(names, first, picks); chi2 > 27.88 {
		t.Errorf("chi-squared = %.1f over %v, first picks are not uniform", chi2, first)
	}
	if chi2 := chiSquared(names, tried, picks*picksPerTick); chi2 > 27.88 {
		t.Errorf("chi-squared = %.1f over %v, the picks a tick may try are not uniform", chi2, tried)
	}
	// Fewer candidates than tries: each is tried once.
	k.api, k.scope = pagedNames{names: listed[:2], per: 1}, scope{namespaces: namespaces[:1]}
	if got, n, err := k.pick(testkit.Ctx(t), tickScope{lists: k.scope.lists()}); err != nil || n != 2 || len(got) != 2 || got[0] == got[1] {
		t.Errorf("pick of 2 = %q, %d, %v; want both, once each", got, n, err)
	}
}

// chiSquared is the statistic of counts (total draws) against a uniform spread over names.
func chiSquared(names []string, counts map[string]int, total int) float64 {
	expected := float64(total) / float64(len(names))
	chi2 := 0.0
	for _, name := range names {
		d := float64(counts[name]) - expected
		chi2 += d * d / expected
	}
	return chi2
}

func TestRunSkipsTicksThatFireDuringAKill(t *testing.T) {
	srv := fakeapi.New(t)
	for i := range 5 {
		srv.Add(fakeapi.Pod(testNS, fmt.Sprintf("web-%d", i), nil))
	}
	k := newTestKiller(t, srv, "", false)
	clock := tick0
	k.now = func() time.Time { return clock }

	ticks := make(chan time.Time, 4)
	results := make(chan []Result, 4)   // a tick's reports at most per tick
	clock = tick0.Add(90 * time.Second) // the first kill ends after the next two ticks fired
	ticks <- tick0
	ticks <- tick0.Add(30 * time.Second)
	ticks <- tick0.Add(60 * time.Second)
	ticks <- tick0.Add(120 * time.Second)
	close(ticks)
	done := make(chan struct{})
	go func() { k.run(t.Context(), ticks, results); close(done) }()
	testkit.Recv(t, done, "the killer to return after its ticks were closed")

	if n := len(srv.Deletes()); n != 2 {
		t.Errorf("%d deletes, want 2 (ticks at +30s and +60s skipped)", n)
	}
	if n := len(results); n != 2 {
		t.Errorf("%d ticks reported, want 2", n)
	}
	for range 2 {
		<-results
	}
	if _, open := testkit.Recv(t, results, "results to be closed"); open {
		t.Error("results not closed after ticks closed")
	}
}

func TestPreflight(t *testing.T) {
	webhook := &metav1.Status{Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden,
		Message: `admission webhook "x" denied the request`}
	probesWith := func(method string, st *metav1.Status) func(fakeapi.Request) *metav1.Status {
		return func(r fakeapi.Request) *metav1.Status {
			if r.Method == method {
				return st
			}
			return nil
		}
	}
	tests := []struct {
		name     string
		mode     killMode
		fail     func(fakeapi.Request) *metav1.Status
		podList  bool   // the list answers a PodList, as through a proxy that drops Accept
		wantErr  string // "" for a start
		wantVar  string // the variable of the configError, which exits 2; "" for none
		requests int
	}{
		{name: "namespace readable and pods deletable", mode: modeDelete, requests: 2},
		{name: "list forbidden names the setting", mode: modeDelete, wantErr: "cannot list pods", wantVar: "MACAQUE_NAMESPACE", requests: 1,
			fail: func(fakeapi.Request) *metav1.Status { return fakeapi.Forbidden("list", testNS) }},
		{name: "server error is not a bad setting", mode: modeDelete, wantErr: "leader changed", requests: 1,
			fail: func(fakeapi.Request) *metav1.Status { return fakeapi.InternalError("etcdserver: leader changed") }},
		{name: "a Role without delete names the setting", mode: modeDelete, wantErr: "cannot delete pods", wantVar: "MACAQUE_NAMESPACE", requests: 2,
			fail: probesWith(http.MethodDelete, fakeapi.Forbidden("delete", testNS))},
		{name: "a non-RBAC 403 to the probe is not blamed on the Role", mode: modeDelete, wantErr: "denied the request", requests: 2,
			fail: probesWith(http.MethodDelete, webhook)},
		{name: "a list answer that is not a Table fails the start", mode: modeDelete, podList: true, wantErr: "not a pod Table", requests: 1},
		{name: "eviction allowed", mode: modeEvict, requests: 2},
		{name: "a Role without pods/eviction create names MACAQUE_MODE", mode: modeEvict, wantErr: "pods/eviction", wantVar: "MACAQUE_MODE", requests: 2,
			fail: probesWith(http.MethodPost, fakeapi.Forbidden("create", testNS))},
		{name: "a webhook's 403 to the eviction is not blamed on the Role", mode: modeEvict, wantErr: "denied the request", requests: 2,
			fail: probesWith(http.MethodPost, webhook)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t, fakeapi.Pod(testNS, "web-1", nil), fakeapi.Pod(testNS, "web-2", nil))
			srv.Fail = tt.fail
			srv.IgnoreAccept = tt.podList
			api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
			if err != nil {
				t.Fatal(err)
			}
			err = preflight(t.Context(), api, testNS, terminatorFor(tt.mode, api))
			if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			var ce *configError
			if errors.As(err, &ce) {
				if got := ce.variable; got != tt.wantVar {
					t.Errorf("config error names %s, want %q", got, tt.wantVar)
				}
			} else if tt.wantVar != "" {
				t.Errorf("err = %v, want a configError naming %s", err, tt.wantVar)
			}
			reqs := srv.Requests()
			if len(reqs) != tt.requests || reqs[0].Method != http.MethodGet || reqs[0].Query.Get("limit") != "1" {
				t.Fatalf("requests = %+v, want a list of a single row, then a dry-run %s", reqs, tt.mode.request())
			}
			if tt.requests == 2 {
				method, path := http.MethodDelete, "/api/v1/namespaces/"+testNS+"/pods/"+kube.PreflightPod
				if tt.mode == modeEvict {
					method, path = http.MethodPost, path+"/eviction"
				}
				if p := reqs[1]; p.Method != method || p.Path != path || p.Query.Get("dryRun") != "All" {
					t.Errorf("probe = %s %s?%s, want a dry-run %s %s", p.Method, p.Path, p.Query.Encode(), method, path)
				}
			}
			if srv.Len() != 2 {
				t.Errorf("%d pods left, want 2: preflight must kill nothing", srv.Len())
			}
		})
	}
}

// TestReportLogs checks the one line each tick logs: what happened, at the right level, with
// the fields that apply and none that do not (no pod for a tick that picked none).
func TestReportLogs(t *testing.T) {
	deleted := tick0.Add(150 * time.Millisecond)
	tests := []struct {
		name      string
		r         Result
		err       error
		wantLevel string
		wantMsg   string
		want      map[string]any // fields that must be there, with these values
		absent    []string       // fields that must not be there
	}{
		{
			name: "a kill, after a pick passed over",
			r: Result{Time: tick0, Namespace: testNS, Selector: "app=web", Candidates: 3, Pod: "web-2", Owner: "ReplicaSet/rs-web-2",
				Node: "node-1", Outcome: OutcomeKilled, Deleted: deleted, Note: "read back", Passed: []string{"web-1: no longer running"}},
			wantLevel: "INFO", wantMsg: "tick done",
			want: map[string]any{"namespace": testNS, "selector": "app=web", "candidates": 3.0, "outcome": "killed", "pod": "web-2",
				"owner": "ReplicaSet/rs-web-2", "node": "node-1", "deleted": deleted.Format(time.RFC3339Nano), "note": "read back",
				"passed": []any{"web-1: no longer running"}, "tick": tick0.Format(time.RFC3339)},
			absent: []string{"err"},
		},
		{
			name:      "nothing to kill",
			r:         Result{Time: tick0, Namespace: testNS},
			wantLevel: "INFO", wantMsg: "tick done",
			want:   map[string]any{"outcome": "no candidates", "candidates": 0.0},
			absent: []string{"pod", "owner", "node", "deleted", "note", "passed", "err", "resumed"},
		},
		{
			name:      "the first tick after a pause",
			r:         Result{Time: tick0, Namespace: testNS, Candidates: 1, Pod: "web-1", Outcome: OutcomeKilled, Deleted: deleted, Resumed: "the pause annotation was removed"},
			wantLevel: "INFO", wantMsg: "tick done",
			want: map[string]any{"outcome": "killed", "resumed": "the pause annotation was removed"},
		},
		{
			name:      "a delete that failed",
			r:         Result{Time: tick0, Namespace: testNS, Candidates: 1, Pod: "web-1"},
			err:       errors.New("delete pod \"web-1\": boom"),
			wantLevel: "ERROR", wantMsg: "kill failed",
			want:   map[string]any{"outcome": "error", "pod": "web-1", "err": "delete pod \"web-1\": boom"},
			absent: []string{"deleted", "note", "passed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf strings.Builder
			k := &Killer{log: slog.New(slog.NewJSONHandler(&buf, nil))}
			k.report(tt.r, tt.err)
			var line map[string]any
			if err := json.Unmarshal([]byte(buf.String()), &line); err != nil {
				t.Fatalf("log %q: %v", buf.String(), err)
			}
			if line["level"] != tt.wantLevel || line["msg"] != tt.wantMsg {
				t.Errorf("level %v msg %v, want %s %q", line["level"], line["msg"], tt.wantLevel, tt.wantMsg)
			}
			for k, v := range tt.want {
				if got, ok := line[k]; !ok || fmt.Sprint(got) != fmt.Sprint(v) {
					t.Errorf("%s = %v, want %v (line %s)", k, got, v, buf.String())
				}
			}
			for _, k := range tt.absent {
				if _, ok := line[k]; ok {
					t.Errorf("%s logged (%v), want it absent", k, line[k])
				}
			}
		})
	}
}

// TestTimeoutsTotal: shutdownGrace is checked against the total, so it must be the sum.
func TestTimeoutsTotal(t *testing.T) {
	if got := (Timeouts{Pick: time.Second, Delete: 2 * time.Second, ReadBack: 4 * time.Second}).total(); got != 7*time.Second {
		t.Errorf("total = %v, want 7s", got)
	}
}

// TestListScope checks how an error names the namespaces a list covered.
func TestListScope(t *testing.T) {
	for _, tt := range []struct {
		q    kube.ListQuery
		want string
	}{
		{kube.ListQuery{Namespace: "shop"}, `"shop"`},
		{kube.ListQuery{}, "every namespace"},
		{kube.ListQuery{ExcludeNamespaces: []string{"kube-system", "vault"}}, "every namespace except kube-system,vault"},
	} {
		if got := listScope(tt.q); got != tt.want {
			t.Errorf("listScope(%+v) = %q, want %q", tt.q, got, tt.want)
		}
	}
}
