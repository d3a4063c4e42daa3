package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/macaque-chaos/macaque/internal/testkit"

	"github.com/macaque-chaos/macaque/internal/policy"

	"github.com/macaque-chaos/macaque/internal/kube"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

func TestParseScope(t *testing.T) {
	tests := []struct {
		name, namespace, exclude string
		want                     scope
		wantString               string
		wantVar, wantMsg         string // a bad setting: the variable named and part of the problem
	}{
		{name: "unset is resolved later", want: scope{}, wantString: ""},
		{name: "one namespace", namespace: "shop", want: scope{namespaces: []string{"shop"}}, wantString: "shop"},
		{name: "a list, spaces allowed", namespace: "shop, web", want: scope{namespaces: []string{"shop", "web"}}, wantString: "shop,web"},
		{name: "every namespace leaves the system's out", namespace: "*",
			want: scope{all: true, exclude: systemNamespaces}, wantString: "* except kube-system,kube-public,kube-node-lease"},
		{name: "a system namespace named beside * is taken back", namespace: "*,kube-system",
			want:       scope{all: true, namespaces: []string{"kube-system"}, exclude: []string{"kube-public", "kube-node-lease"}},
			wantString: "* except kube-public,kube-node-lease"},
		{name: "exclusions add to the system's", namespace: "*", exclude: "payments,kube-public",
			want:       scope{all: true, exclude: []string{"kube-system", "kube-node-lease", "payments", "kube-public"}},
			wantString: "* except kube-system,kube-node-lease,payments,kube-public"},
		{name: "every system namespace named", namespace: "*,kube-system,kube-public,kube-node-lease",
			want: scope{all: true, namespaces: systemNamespaces}, wantString: "*"},
		{name: "bad name", namespace: "shop,Web_1", wantVar: "MACAQUE_NAMESPACE", wantMsg: `invalid namespace "Web_1"`},
		{name: "empty item", namespace: "shop,", wantVar: "MACAQUE_NAMESPACE", wantMsg: `invalid namespace ""`},
		{name: "named twice", namespace: "shop,web,shop", wantVar: "MACAQUE_NAMESPACE", wantMsg: `"shop" is named twice`},
		{name: "star twice", namespace: "*,*", wantVar: "MACAQUE_NAMESPACE", wantMsg: `"*" is named twice`},
		{name: "star is no exclusion", namespace: "*", exclude: "*", wantVar: "MACAQUE_EXCLUDE_NAMESPACES", wantMsg: `invalid namespace "*"`},
		{name: "exclusions without star", namespace: "shop", exclude: "web", wantVar: "MACAQUE_EXCLUDE_NAMESPACES", wantMsg: "applies only to MACAQUE_NAMESPACE=*"},
		{name: "exclusions without any namespace", exclude: "web", wantVar: "MACAQUE_EXCLUDE_NAMESPACES", wantMsg: "applies only to MACAQUE_NAMESPACE=*"},
		{name: "named and excluded", namespace: "*,kube-system", exclude: "kube-system", wantVar: "MACAQUE_EXCLUDE_NAMESPACES", wantMsg: `"kube-system" is also named`},
		{name: "bad exclusion", namespace: "*", exclude: "a..b", wantVar: "MACAQUE_EXCLUDE_NAMESPACES", wantMsg: `invalid namespace "a..b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseScope(tt.namespace, tt.exclude)
			if tt.wantVar != "" {
				var bad *configError
				if !errors.As(err, &bad) || bad.variable != tt.wantVar || !strings.Contains(bad.problem, tt.wantMsg) {
					t.Fatalf("parseScope(%q, %q) = %v, want a %s error containing %q", tt.namespace, tt.exclude, err, tt.wantVar, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.all != tt.want.all || !slices.Equal(got.namespaces, tt.want.namespaces) || !slices.Equal(got.exclude, tt.want.exclude) {
				t.Errorf("parseScope(%q, %q) = %+v, want %+v", tt.namespace, tt.exclude, got, tt.want)
			}
			if got.String() != tt.wantString {
				t.Errorf("String() = %q, want %q", got.String(), tt.wantString)
			}
			if got.resolved() != (tt.namespace != "") {
				t.Errorf("resolved() = %v for MACAQUE_NAMESPACE=%q", got.resolved(), tt.namespace)
			}
		})
	}
}

// scopeKiller is a Killer over srv whose scope is MACAQUE_NAMESPACE=namespace.
func scopeKiller(t *testing.T, srv *fakeapi.Server, namespace, exclude string, seed uint64) *Killer {
	t.Helper()
	k := newTestKiller(t, srv, "app=web", true)
	sc, err := parseScope(namespace, exclude)
	if err != nil {
		t.Fatal(err)
	}
	// No client-side rate limit and no sockets: the uniformity test makes thousands of calls.
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1, Transport: inProcess{srv.Config.Handler}})
	if err != nil {
		t.Fatal(err)
	}
	k.api, k.scope, k.rng = api, sc, rand.New(rand.NewPCG(seed, 3))
	return k
}

// inScope are pods of one app spread over namespaces, two of them sharing a name, as the pods
// of a StatefulSet in two namespaces do; out of scope are pods in the excluded namespaces, in a
// namespace not named, and of another app.
func inScope() (in, out []*corev1.Pod) {
	web := map[string]string{"app": "web"}
	in = []*corev1.Pod{
		fakeapi.Pod("shop", "web-0", web), fakeapi.Pod("cart", "web-0", web), fakeapi.Pod("shop", "web-1", web),
		fakeapi.Pod("cart", "api-7", web),
	}
	out = []*corev1.Pod{
		fakeapi.Pod("kube-system", "web-0", web), fakeapi.Pod("payments", "web-0", web), fakeapi.Pod("payments", "web-9", web),
		fakeapi.Pod("shop", "db-0", map[string]string{"app": "db"}),
	}
	return in, out
}

// TestKillIsUniformOverPodsInScope is a chi-squared test over many dry-run kills: with a list
// of namespaces (one list each) and with * (one cluster-wide list, whose rows name no
// namespace), every pod in scope is as likely as any other to be the victim, the two pods
// named web-0 included, and no pod out of scope is ever reported.
func TestKillIsUniformOverPodsInScope(t *testing.T) {
	in, out := inScope()
	for _, tt := range []struct{ name, namespace, exclude string }{
		{"a list of namespaces", "shop,cart", ""},
		{"every namespace but some", "*", "payments"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t, append(in, out...)...)
			k := scopeKiller(t, srv, tt.namespace, tt.exclude, 1)
			var names []string
			for _, p := range in {
				names = append(names, p.Namespace+"/"+p.Name)
			}
			const draws = 2000
			counts := map[string]int{}
			for i := range draws {
				r := killOnce(t, k)
				if r.Outcome != OutcomeDryRun || r.Candidates != len(in) {
					t.Fatalf("draw %d: %s with %d candidates (%v), want a dry run among %d", i, r.Outcome, r.Candidates, r.Err, len(in))
				}
				victim := r.Namespace + "/" + r.Pod
				if !slices.Contains(names, victim) {
					t.Fatalf("draw %d: victim %s, out of scope %q", i, victim, names)
				}
				counts[victim]++
			}
			// 16.27 is the 0.999 quantile of chi-squared with 3 degrees of freedom (4 pods).
			if chi2 := chiSquared(names, counts, draws); chi2 > 16.27 {
				t.Errorf("chi-squared = %.1f over %v: victims are not uniform over pods", chi2, counts)
			}
		})
	}
}

// TestKillRequestsPerScope checks the API calls a tick makes: one list per named namespace, or
// one cluster-wide list that leaves the excluded namespaces out by field selector, and a
// cluster-wide read-back that does too; and the kill lands in the victim's own namespace.
func TestKillRequestsPerScope(t *testing.T) {
	in, out := inScope()
	tests := []struct {
		name, namespace, exclude string
		wantLists                []string // paths, in order
		wantFields               []string // in every list's and read-back's fieldSelector
	}{
		{name: "named namespaces", namespace: "shop,cart",
			wantLists: []string{"/api/v1/namespaces/shop/pods", "/api/v1/namespaces/cart/pods"}, wantFields: []string{"status.phase=Running"}},
		{name: "every namespace", namespace: "*", exclude: "payments", wantLists: []string{"/api/v1/pods"},
			wantFields: []string{"metadata.namespace!=kube-system", "metadata.namespace!=kube-public", "metadata.namespace!=kube-node-lease", "metadata.namespace!=payments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t, append(in, out...)...)
			k := scopeKiller(t, srv, tt.namespace, tt.exclude, 5)
			k.dryRun = false
			r := killOnce(t, k)
			if r.Outcome != OutcomeKilled {
				t.Fatalf("outcome %s (%v), want killed", r.Outcome, r.Err)
			}
			if srv.Pod(r.Namespace, r.Pod) != nil {
				t.Errorf("reported %s/%s killed, but it is still there", r.Namespace, r.Pod)
			}
			reqs := srv.Requests()
			var lists []string
			for _, req := range reqs {
				if req.Method == http.MethodGet && strings.Contains(req.Accept, "as=Table") {
					lists = append(lists, req.Path)
					for _, f := range tt.wantFields {
						if !strings.Contains(req.Query.Get("fieldSelector"), f) {
							t.Errorf("list %s?%s: fieldSelector lacks %s", req.Path, req.Query.Encode(), f)
						}
					}
				}
			}
			if !slices.Equal(lists, tt.wantLists) {
				t.Errorf("lists = %q, want %q", lists, tt.wantLists)
			}
			readBack := reqs[len(lists)]
			if !strings.Contains(readBack.Query.Get("fieldSelector"), "metadata.name="+r.Pod) || readBack.Query.Get("labelSelector") != "app=web" {
				t.Errorf("read-back %s?%s, want one by name with the selector", readBack.Path, readBack.Query.Encode())
			}
			if tt.namespace == "*" {
				for _, f := range tt.wantFields[:4] {
					if !strings.Contains(readBack.Query.Get("fieldSelector"), f) {
						t.Errorf("read-back %s?%s: fieldSelector lacks %s", readBack.Path, readBack.Query.Encode(), f)
					}
				}
			}
			del := reqs[len(reqs)-1]
			if want := fmt.Sprintf("/api/v1/namespaces/%s/pods/%s", r.Namespace, r.Pod); del.Method != http.MethodDelete || del.Path != want {
				t.Errorf("last request %s %s, want DELETE %s", del.Method, del.Path, want)
			}
			if r.Scope != k.scope.String() {
				t.Errorf("report's scope %q, want %q", r.Scope, k.scope.String())
			}
		})
	}
}

// TestClusterReadBackTriesEachPodOnce: when both rows named web-0 are picked, the two
// read-backs must try the two pods, not the same one twice, and a pick whose every pod of its
// name was tried is gone.
func TestClusterReadBackTriesEachPodOnce(t *testing.T) {
	web := map[string]string{"app": "web"}
	notReady := func(p *corev1.Pod) *corev1.Pod {
		p.Status.Conditions = nil
		return p
	}
	for seed := range uint64(20) {
		srv := fakeapi.New(t, notReady(fakeapi.Pod("shop", "web-0", web)), notReady(fakeapi.Pod("cart", "web-0", web)))
		k := scopeKiller(t, srv, "*", "", seed)
		k.guard = &policy.Guard{}
		r := killOnce(t, k)
		want := []string{"cart/web-0: not Ready", "shop/web-0: not Ready"}
		if got := slices.Sorted(slices.Values(r.Passed)); r.Outcome != OutcomeSkipped || !slices.Equal(got, want) {
			t.Fatalf("seed %d: %s, passed over %q; want skipped, each pod passed over once: %q", seed, r.Outcome, r.Passed, want)
		}
	}
	// Two rows of one name, and only one pod of that name left by the read-back.
	srv := fakeapi.New(t, fakeapi.Pod("shop", "web-0", web), fakeapi.Pod("cart", "web-0", web))
	k := scopeKiller(t, srv, "*", "", 1)
	k.guard = &policy.Guard{}
	srv.Fail = func(r fakeapi.Request) *metav1.Status {
		if !strings.Contains(r.Accept, "as=Table") {
			srv.Remove("cart", "web-0")
			srv.Add(notReady(fakeapi.Pod("shop", "web-0", web)))
		}
		return nil
	}
	r := killOnce(t, k)
	if want := []string{"shop/web-0: not Ready", "web-0: gone, or no longer matches the selector"}; r.Outcome != OutcomeSkipped || !slices.Equal(r.Passed, want) {
		t.Errorf("%s, passed over %q; want skipped, passed over %q", r.Outcome, r.Passed, want)
	}
}

// nsProbes are the start-up probes in namespace ns: a list of one row, the kill's dry run
// (method, and the path's suffix after the pod), and a get of each workload kind.
func nsProbes(ns, kill, suffix string) []string {
	out := []string{"GET /api/v1/namespaces/" + ns + "/pods", kill + " /api/v1/namespaces/" + ns + "/pods/" + kube.PreflightPod + suffix}
	for _, k := range kube.WorkloadKinds {
		out = append(out, "GET "+k.Prefix+"/namespaces/"+ns+"/"+k.Resource+"/"+kube.PreflightPod)
	}
	return out
}

// clusterReviews are the access reviews of * after its cluster-wide list: the kill's, then a
// get of each workload kind.
func clusterReviews(kill string) []string {
	return append([]string{kill}, "get replicasets.apps", "get deployments.apps", "get statefulsets.apps", "get daemonsets.apps", "get replicationcontrollers")
}

func TestPreflightScope(t *testing.T) {
	denyVerb := func(verb, resource string) func(authorizationv1.ResourceAttributes) string {
		return func(a authorizationv1.ResourceAttributes) string {
			if a.Verb == verb && a.Resource == resource {
				return "no RBAC policy matched"
			}
			return ""
		}
	}
	tests := []struct {
		name, namespace string
		nsSelector      string
		mode            killMode
		healthOff       bool
		fail            func(fakeapi.Request) *metav1.Status
		deny            func(authorizationv1.ResourceAttributes) string
		wantVar         string // a bad setting naming it, or "" for a start
		wantMsg         string
		wantReviews     []string // "verb resource.group" asked at cluster scope, in order
		wantPaths       []string // the GETs and DELETEs of the probes, in order
	}{
		{name: "each named namespace is probed", namespace: "shop,cart",
			wantPaths: append(nsProbes("shop", "DELETE", ""), nsProbes("cart", "DELETE", "")...)},
		{name: "with the guard off, its gets still run: the opt-out annotation needs them", namespace: "shop,cart", healthOff: true,
			wantPaths: append(nsProbes("shop", "DELETE", ""), nsProbes("cart", "DELETE", "")...)},
		{name: "the second namespace's Role is checked too", namespace: "shop,cart", wantVar: "MACAQUE_NAMESPACE", wantMsg: `cannot delete pods in "cart"`,
			fail: func(r fakeapi.Request) *metav1.Status {
				if r.Method == http.MethodDelete && strings.Contains(r.Path, "/cart/") {
					return fakeapi.Forbidden("delete", "cart")
				}
				return nil
			}},
		{name: "every namespace: one list, reviews at cluster scope", namespace: "*",
			wantPaths: []string{"GET /api/v1/pods"}, wantReviews: clusterReviews("delete pods")},
		{name: "every namespace without a ClusterRole to list", namespace: "*", wantVar: "MACAQUE_NAMESPACE", wantMsg: "* needs list on pods in every namespace",
			fail: func(r fakeapi.Request) *metav1.Status {
				if r.Method == http.MethodGet {
					return fakeapi.Forbidden("list", "")
				}
				return nil
			}},
		{name: "every namespace with a namespace selector: a list of namespaces too", namespace: "*", nsSelector: "chaos=on",
			wantPaths: []string{"GET /api/v1/pods", "GET /api/v1/namespaces"}, wantReviews: clusterReviews("delete pods")},
		{name: "a namespace selector without list on namespaces", namespace: "*", nsSelector: "chaos=on",
			wantVar: "MACAQUE_NAMESPACE_SELECTOR", wantMsg: "needs list on namespaces, which macaque may not (apply macaque-cluster.yml",
			fail: func(r fakeapi.Request) *metav1.Status {
				if r.Path == "/api/v1/namespaces" {
					return fakeapi.Forbidden("list", "")
				}
				return nil
			}},
		{name: "a namespace list failing is no bad setting", namespace: "*", nsSelector: "chaos=on", wantMsg: "list namespaces labelled chaos=on",
			fail: func(r fakeapi.Request) *metav1.Status {
				if r.Path == "/api/v1/namespaces" {
					return fakeapi.InternalError("etcdserver: leader changed")
				}
				return nil
			}},
		{name: "every namespace, evicting", namespace: "*", mode: modeEvict,
			wantPaths: []string{"GET /api/v1/pods"}, wantReviews: clusterReviews("create pods/eviction")},
		{name: "every namespace without eviction", namespace: "*", mode: modeEvict, deny: denyVerb("create", "pods"),
			wantVar: "MACAQUE_MODE", wantMsg: "* needs create pods/eviction in every namespace"},
		{name: "each named namespace is probed for eviction", namespace: "shop,cart", mode: modeEvict,
			wantPaths: append(nsProbes("shop", "POST", "/eviction"), nsProbes("cart", "POST", "/eviction")...)},
		{name: "every namespace without delete", namespace: "*", deny: denyVerb("delete", "pods"),
			wantVar: "MACAQUE_NAMESPACE", wantMsg: "* needs delete pods in every namespace, which macaque may not (no RBAC policy matched)"},
		{name: "every namespace without the guard's gets", namespace: "*", deny: denyVerb("get", "statefulsets"),
			wantVar: "MACAQUE_REQUIRE_HEALTHY", wantMsg: "* needs get statefulsets.apps in every namespace"},
		{name: "every namespace without the gets, guard off", namespace: "*", healthOff: true, deny: denyVerb("get", "statefulsets"),
			wantVar: "MACAQUE_NAMESPACE", wantMsg: "* needs get statefulsets.apps in every namespace"},
		{name: "a failed review is no bad setting", namespace: "*", wantMsg: "check that macaque may delete pods in every namespace",
			fail: func(r fakeapi.Request) *metav1.Status {
				if r.Method == http.MethodPost {
					return fakeapi.InternalError("etcdserver: leader changed")
				}
				return nil
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t, fakeapi.Pod("shop", "web-1", nil))
			srv.Fail, srv.Deny = tt.fail, tt.deny
			api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
			if err != nil {
				t.Fatal(err)
			}
			sc, err := parseScope(tt.namespace, "")
			if err == nil {
				sc, err = sc.selecting(tt.nsSelector)
			}
			if err != nil {
				t.Fatal(err)
			}
			err = preflightScope(testkit.Ctx(t), api, sc, terminatorFor(tt.mode, api), tt.healthOff)
			var bad *configError
			if tt.wantMsg == "" && err != nil {
				t.Fatalf("preflight: %v, want none", err)
			}
			if tt.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Fatalf("preflight: %v, want an error containing %q", err, tt.wantMsg)
			}
			if isBad := errors.As(err, &bad); isBad != (tt.wantVar != "") || (isBad && bad.variable != tt.wantVar) {
				t.Fatalf("preflight: %v, want a bad setting of %q", err, tt.wantVar)
			}
			if tt.wantMsg != "" {
				return
			}
			var paths, reviews []string
			for _, r := range srv.Requests() {
				if r.Path != "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" {
					paths = append(paths, r.Method+" "+r.Path)
					continue
				}
				var review authorizationv1.SelfSubjectAccessReview
				if err := json.Unmarshal(r.Body, &review); err != nil || review.Spec.ResourceAttributes == nil {
					t.Fatalf("review %s: %v", r.Body, err)
				}
				a := review.Spec.ResourceAttributes
				if a.Namespace != "" {
					t.Errorf("review of %s in namespace %q, want every namespace", a.Resource, a.Namespace)
				}
				reviews = append(reviews, kube.Permission{Verb: a.Verb, Group: a.Group, Resource: a.Resource, Subresource: a.Subresource}.String())
			}
			if !slices.Equal(paths, tt.wantPaths) || !slices.Equal(reviews, tt.wantReviews) {
				t.Errorf("probes %q and reviews %q, want %q and %q", paths, reviews, tt.wantPaths, tt.wantReviews)
			}
		})
	}
}

func TestScopeInReports(t *testing.T) {
	tests := []struct {
		r    Result
		want string
	}{
		{Result{Namespace: "shop"}, "in namespace `shop`"},
		{Result{Scope: "shop"}, "in namespace `shop`"},
		{Result{Scope: "shop,cart"}, "in namespaces `shop,cart`"},
		{Result{Scope: "* except kube-system,payments"}, "in every namespace except `kube-system,payments`"},
		{Result{Scope: "*"}, "in every namespace"},
		{Result{Scope: "* labelled chaos in (on,yes),!frozen except kube-system"}, "in every namespace labelled `chaos in (on,yes),!frozen` except `kube-system`"},
		{Result{Scope: "* labelled chaos=on"}, "in every namespace labelled `chaos=on`"},
	}
	for _, tt := range tests {
		tt.r.Outcome, tt.r.Time = OutcomeNoCandidates, tick0
		if got := message(tt.r); !strings.Contains(got, tt.want+".") {
			t.Errorf("message(%+v) = %q, want it to say %q", tt.r, got, tt.want)
		}
	}
}
