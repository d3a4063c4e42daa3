package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/testkit"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// chaosOn is the label the tests' namespace selector selects.
var chaosOn = map[string]string{"chaos": "on"}

// selectorKiller is a Killer over srv with MACAQUE_NAMESPACE=*, MACAQUE_EXCLUDE_NAMESPACES=exclude
// and MACAQUE_NAMESPACE_SELECTOR=chaos=on.
func selectorKiller(t *testing.T, srv *fakeapi.Server, exclude string, seed uint64) *Killer {
	t.Helper()
	k := scopeKiller(t, srv, "*", exclude, seed)
	var err error
	if k.scope, err = k.scope.selecting("chaos=on"); err != nil {
		t.Fatal(err)
	}
	return k
}

// labelledWorld is pods of app web in shop and cart (labelled chaos=on), payments (not
// labelled), kube-system and vault (labelled, but excluded: by default and by
// MACAQUE_EXCLUDE_NAMESPACES=vault), and others unlabelled namespaces of one pod each.
func labelledWorld(t *testing.T, others int) (srv *fakeapi.Server, in []string) {
	web := map[string]string{"app": "web"}
	pods := []*corev1.Pod{
		fakeapi.Pod("shop", "web-0", web), fakeapi.Pod("shop", "web-1", web), fakeapi.Pod("cart", "web-0", web),
		fakeapi.Pod("payments", "web-0", web), fakeapi.Pod("payments", "web-2", web),
		fakeapi.Pod("kube-system", "web-0", web), fakeapi.Pod("vault", "web-3", web),
	}
	for i := range others {
		pods = append(pods, fakeapi.Pod(fmt.Sprintf("team-%03d", i), "web-0", web))
	}
	srv = fakeapi.New(t, pods...)
	for _, ns := range []string{"shop", "cart", "kube-system", "vault"} {
		srv.SetNamespace(ns, chaosOn)
	}
	return srv, []string{"cart/web-0", "shop/web-0", "shop/web-1"}
}

// podLists are the paths of the pod lists (Tables) srv received, and of its namespace lists.
func podLists(srv *fakeapi.Server) (pods, namespaces []fakeapi.Request) {
	for _, r := range srv.Requests() {
		switch {
		case r.Method == http.MethodGet && r.Path == "/api/v1/namespaces":
			namespaces = append(namespaces, r)
		case r.Method == http.MethodGet && strings.Contains(r.Accept, "as=Table"):
			pods = append(pods, r)
		}
	}
	return pods, namespaces
}

// TestNamespaceSelectorNarrowsCandidates: with * and a namespace selector, only the pods of
// the labelled namespaces are candidates and victims, never those of a namespace not labelled
// nor of an excluded one (kube-system, MACAQUE_EXCLUDE_NAMESPACES) even if labelled; whether
// the tick lists pods in one cluster-wide list (few namespaces left out) or one list per
// labelled namespace (many left out).
func TestNamespaceSelectorNarrowsCandidates(t *testing.T) {
	tests := []struct {
		name      string
		others    int      // unlabelled namespaces besides payments
		wantLists []string // the pod lists of one tick
		wantNotIn []string // in the cluster-wide list's fieldSelector
	}{
		{name: "few left out: one cluster-wide list", others: 0, wantLists: []string{"/api/v1/pods"},
			wantNotIn: []string{"kube-system", "kube-public", "kube-node-lease", "vault", "payments"}},
		{name: "more left out than selected: a list per labelled namespace", others: 2,
			wantLists: []string{"/api/v1/namespaces/cart/pods", "/api/v1/namespaces/shop/pods"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, in := labelledWorld(t, tt.others)
			k := selectorKiller(t, srv, "vault", 7)
			seen := map[string]int{}
			const draws = 60
			for i := range draws {
				r := killOnce(t, k)
				if r.Outcome != OutcomeDryRun || r.Candidates != len(in) {
					t.Fatalf("draw %d: %s with %d candidates (%v), want a dry run among %d", i, r.Outcome, r.Candidates, r.Err, len(in))
				}
				victim := r.Namespace + "/" + r.Pod
				if !slices.Contains(in, victim) {
					t.Fatalf("draw %d: victim %s, out of the labelled namespaces %q", i, victim, in)
				}
				seen[victim]++
				if want := "* labelled chaos=on except kube-system,kube-public,kube-node-lease,vault"; r.Scope != want {
					t.Fatalf("report's scope %q, want %q", r.Scope, want)
				}
			}
			if len(seen) != len(in) {
				t.Errorf("victims %v over %d draws, want each of %q", seen, draws, in)
			}
			pods, namespaces := podLists(srv)
			var paths []string
			for _, r := range pods[:len(pods)/draws] {
				paths = append(paths, r.Path)
			}
			if !slices.Equal(paths, tt.wantLists) || len(namespaces) != 2*draws {
				t.Errorf("a tick's pod lists %q and %d namespace lists in %d ticks, want %q and two a tick", paths, len(namespaces), draws, tt.wantLists)
			}
			if namespaces[0].Query.Get("labelSelector") != "chaos=on" || namespaces[1].Query.Get("labelSelector") != "" {
				t.Errorf("namespace lists %v then %v, want the labelled ones, then all", namespaces[0].Query, namespaces[1].Query)
			}
			for _, ns := range tt.wantNotIn {
				if !strings.Contains(pods[0].Query.Get("fieldSelector"), "metadata.namespace!="+ns) {
					t.Errorf("cluster-wide list %v does not leave %s out", pods[0].Query, ns)
				}
			}
		})
	}
}

// TestNamespaceLabelledBetweenTicksJoins: the selector is read again at each tick, so a
// namespace labelled after a tick is in scope at the next, and one unlabelled leaves it.
func TestNamespaceLabelledBetweenTicksJoins(t *testing.T) {
	srv, _ := labelledWorld(t, 0)
	k := selectorKiller(t, srv, "vault", 1)
	if r := killOnce(t, k); r.Candidates != 3 {
		t.Fatalf("first tick: %d candidates (%s, %v), want the 3 of shop and cart", r.Candidates, r.Outcome, r.Err)
	}
	srv.SetNamespace("payments", chaosOn)
	if r := killOnce(t, k); r.Candidates != 5 {
		t.Fatalf("after labelling payments: %d candidates (%s, %v), want 5", r.Candidates, r.Outcome, r.Err)
	}
	srv.SetNamespace("shop", nil)
	srv.SetNamespace("cart", map[string]string{"chaos": "off"})
	for range 20 {
		r := killOnce(t, k)
		if r.Candidates != 2 || r.Namespace != "payments" {
			t.Fatalf("after unlabelling shop and cart: %s/%s among %d candidates, want one of payments' 2", r.Namespace, r.Pod, r.Candidates)
		}
	}
}

// TestNamespaceSelectorTickFailures: a tick that cannot list namespaces kills nothing and says
// why (forbidden for RBAC's refusal), without listing pods; a tick that finds no namespace
// labelled has no candidates and says so, without listing pods either.
func TestNamespaceSelectorTickFailures(t *testing.T) {
	tests := []struct {
		name     string
		fail     *metav1.Status
		unlabel  bool
		want     Outcome
		wantText string // in the error, or else in the note
	}{
		{name: "namespace list fails", fail: fakeapi.InternalError("etcdserver: request timed out"), want: OutcomeError,
			wantText: "list the namespaces labelled chaos=on: etcdserver: request timed out"},
		{name: "namespace list forbidden", fail: fakeapi.Forbidden("list", ""), want: OutcomeForbidden, wantText: "list the namespaces labelled chaos=on"},
		{name: "no namespace labelled", unlabel: true, want: OutcomeNoCandidates,
			wantText: "no namespace in scope is labelled chaos=on (MACAQUE_NAMESPACE_SELECTOR)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := labelledWorld(t, 0)
			if tt.unlabel {
				srv.SetNamespace("shop", nil)
				srv.SetNamespace("cart", nil)
			}
			srv.Fail = func(r fakeapi.Request) *metav1.Status {
				if r.Path == "/api/v1/namespaces" {
					return tt.fail
				}
				return nil
			}
			k := selectorKiller(t, srv, "vault", 1)
			k.dryRun = false
			r := killOnce(t, k)
			text := r.Note
			if r.Err != nil {
				text = r.Err.Error()
			}
			if r.Outcome != tt.want || !strings.Contains(text, tt.wantText) || r.Candidates != 0 {
				t.Errorf("%s with %d candidates: %q, want %s saying %q", r.Outcome, r.Candidates, text, tt.want, tt.wantText)
			}
			if pods, _ := podLists(srv); len(pods) > 0 || len(srv.Deletes()) > 0 {
				t.Errorf("%d pod lists and deletes %v, want none", len(pods), srv.Deletes())
			}
		})
	}
}

// TestNamespaceCreatedMidTickIsOutOfScope: a namespace created after the tick listed the
// namespaces is not left out of its cluster-wide pod list, but its pods are not killed: the
// read-back passes them over as out of scope.
func TestNamespaceCreatedMidTickIsOutOfScope(t *testing.T) {
	web := map[string]string{"app": "web"}
	passedLate := false
	for seed := range uint64(10) {
		srv, _ := labelledWorld(t, 0)
		created := false
		srv.Fail = func(r fakeapi.Request) *metav1.Status {
			if r.Path == "/api/v1/pods" && !created {
				created = true
				for i := range 30 {
					srv.Add(fakeapi.Pod("late", fmt.Sprintf("late-%d", i), web))
				}
			}
			return nil
		}
		k := selectorKiller(t, srv, "vault", seed)
		k.dryRun = false
		for _, r := range killWithin(t.Context(), t, k, tick0) {
			if r.Namespace == "late" && r.Outcome == OutcomeKilled {
				t.Fatalf("seed %d: killed %s/%s, in a namespace not labelled", seed, r.Namespace, r.Pod)
			}
			for _, p := range r.Passed {
				passedLate = passedLate || strings.HasPrefix(p, "late-")
			}
		}
		for _, d := range srv.Deletes() {
			if strings.Contains(d.Path, "/namespaces/late/") {
				t.Fatalf("seed %d: DELETE %s", seed, d.Path)
			}
		}
	}
	if !passedLate {
		t.Error("no pick of the late namespace in 10 ticks: the test did not test it")
	}
}

// TestForTickLists checks the choice between one cluster-wide list and one per namespace.
func TestForTickLists(t *testing.T) {
	tests := []struct {
		name              string
		labelled, others  int
		wantPerNamespace  bool
		wantClusterNotIns int // the namespaces a cluster-wide list leaves out, the 3 system ones included
	}{
		{name: "none labelled", labelled: 0, others: 5},
		{name: "all labelled", labelled: 5, others: 0, wantClusterNotIns: 3},
		{name: "most labelled", labelled: 990, others: 10, wantClusterNotIns: 13},
		{name: "as many left out as labelled", labelled: 10, others: 10, wantClusterNotIns: 13},
		{name: "more left out than labelled", labelled: 10, others: 11, wantPerNamespace: true},
		{name: "more left out than a field selector should hold", labelled: 500, others: maxNotIn + 1, wantPerNamespace: true},
		{name: "as many left out as a field selector may hold", labelled: 500, others: maxNotIn, wantClusterNotIns: maxNotIn + 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t)
			for i := range tt.labelled {
				srv.SetNamespace(fmt.Sprintf("in-%04d", i), chaosOn)
			}
			for i := range tt.others {
				srv.SetNamespace(fmt.Sprintf("out-%04d", i), map[string]string{"chaos": "off"})
			}
			api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
			if err != nil {
				t.Fatal(err)
			}
			sc, err := parseScope("*", "")
			if err == nil {
				sc, err = sc.selecting("chaos=on")
			}
			if err != nil {
				t.Fatal(err)
			}
			ts, err := sc.forTick(testkit.Ctx(t), api)
			if err != nil {
				t.Fatal(err)
			}
			if len(ts.selected) != tt.labelled {
				t.Errorf("%d namespaces selected, want %d", len(ts.selected), tt.labelled)
			}
			switch {
			case tt.labelled == 0:
				if len(ts.lists) != 0 {
					t.Errorf("lists %+v, want none", ts.lists)
				}
			case tt.wantPerNamespace:
				if len(ts.lists) != tt.labelled || ts.lists[0].Namespace != "in-0000" {
					t.Errorf("%d lists, the first %+v, want one per labelled namespace", len(ts.lists), ts.lists[0])
				}
			default:
				if len(ts.lists) != 1 || ts.lists[0].Namespace != "" || len(ts.lists[0].ExcludeNamespaces) != tt.wantClusterNotIns {
					t.Errorf("%d lists, the first %+v, want one cluster-wide list leaving %d namespaces out", len(ts.lists), ts.lists[0], tt.wantClusterNotIns)
				}
			}
		})
	}
}
