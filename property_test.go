package main

// Property tests of the pick over random worlds, through macaque's real HTTP client and table
// decoder against internal/fakeapi's handler: what the killer may draw from is exactly the pods
// in scope, and each as likely as any other to be picked.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/macaque-chaos/macaque/internal/testkit"

	"github.com/macaque-chaos/macaque/internal/kube"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
)

// smallPages drives Killer.pick with a page size of its own (pageSize is a const, sized for
// real namespaces, so a small world would fit on one page) and records every candidate the API
// offered the pick, so a test sees the whole scope the reservoir drew from, not only the few
// names it kept.
type smallPages struct {
	podAPI
	limit   int64
	offered []string
	pages   int
	// budget bounds pages: a pick that does not follow the continue token lists the first page
	// again and again, and must fail rather than hang.
	budget int
}

func (s *smallPages) ListPage(ctx context.Context, q kube.ListQuery, each func(string)) (string, error) {
	if s.pages++; s.pages > s.budget {
		return "", fmt.Errorf("%d pages and counting: does the pick follow the continue token?", s.pages)
	}
	if q.Limit != pageSize {
		return "", fmt.Errorf("pick asked for %d rows a page, want pageSize (%d)", q.Limit, pageSize)
	}
	q.Limit = s.limit
	return s.podAPI.ListPage(ctx, q, func(name string) {
		s.offered = append(s.offered, name)
		each(name)
	})
}

// world is a namespace macaque kills in, its neighbours, and what macaque was told.
type world struct {
	namespace, selector, self string
	pageSize                  int64
	pods                      []*corev1.Pod
}

var (
	worldLabelKeys   = []string{"app", "tier", "env"}
	worldLabelValues = []string{"a", "b", "c"}
	worldPhases      = []corev1.PodPhase{corev1.PodRunning, corev1.PodRunning, corev1.PodRunning, corev1.PodPending, corev1.PodSucceeded, corev1.PodFailed}
	worldOwners      = []string{"ReplicaSet", "StatefulSet", "DaemonSet", "Job", ""}
)

// randomWorld builds 2-3 namespaces of up to a dozen pods each, with names that repeat across
// namespaces, random labels, phases, deletions (Terminating, and Unknown on a lost node) and
// owners; macaque's own pod, usually in scope but for being itself; a selector of up to two
// requirements; and a page size that splits the scope over several pages.
func randomWorld(rng *rand.Rand) world {
	namespaces := []string{"shop", "ops", "shop-2"}[:2+rng.IntN(2)]
	w := world{namespace: namespaces[rng.IntN(len(namespaces))], pageSize: 1 + rng.Int64N(4)}
	w.self = fmt.Sprintf("macaque-%d", rng.IntN(3))
	randomLabels := func() map[string]string {
		l := map[string]string{}
		for _, k := range worldLabelKeys {
			if rng.IntN(3) > 0 {
				l[k] = worldLabelValues[rng.IntN(len(worldLabelValues))]
			}
		}
		return l
	}
	for _, ns := range namespaces {
		for i := range rng.IntN(13) {
			p := fakeapi.Pod(ns, fmt.Sprintf("%s-%d", []string{"web", "db", "job"}[rng.IntN(3)], i), randomLabels())
			p.Status.Phase = worldPhases[rng.IntN(len(worldPhases))]
			switch rng.IntN(8) {
			case 0:
				p = terminating(p)
			case 1:
				p = nodeLost(p)
			}
			switch kind := worldOwners[rng.IntN(len(worldOwners))]; kind {
			case "":
				p.OwnerReferences = nil
			default:
				p.OwnerReferences[0].Kind = kind
			}
			w.pods = append(w.pods, p)
		}
		if ns == w.namespace && rng.IntN(5) > 0 {
			w.pods = append(w.pods, fakeapi.Pod(ns, w.self, randomLabels()))
		}
	}
	var reqs []string
	for range rng.IntN(3) {
		k, v, v2 := worldLabelKeys[rng.IntN(3)], worldLabelValues[rng.IntN(3)], worldLabelValues[rng.IntN(3)]
		reqs = append(reqs, []string{k + "=" + v, k + "!=" + v, k + " in (" + v + "," + v2 + ")", k + " notin (" + v + ")", k, "!" + k}[rng.IntN(6)])
	}
	w.selector = strings.Join(reqs, ",")
	return w
}

func (w world) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "namespace %q, selector %q, self %q, %d rows a page; pods:", w.namespace, w.selector, w.self, w.pageSize)
	for _, p := range w.pods {
		owner := "none"
		if len(p.OwnerReferences) > 0 {
			owner = p.OwnerReferences[0].Kind
		}
		fmt.Fprintf(&b, "\n  %s/%s %v %s deleting=%v reason=%q owner=%s", p.Namespace, p.Name, p.Labels, p.Status.Phase, p.DeletionTimestamp != nil, p.Status.Reason, owner)
	}
	return b.String()
}

// propertySeed makes every run draw the same worlds; a failure names it and the world.
const propertySeed = 20261129

// TestPickOnlyFromScopeInRandomWorlds draws random worlds, serves each through fakeapi and
// checks that the pick is offered exactly the pods in scope, each once, across every page: none
// out of scope (another namespace, not matching, not Running, Terminating, Unknown, macaque
// itself), and none in scope missed, so each may be the victim. The worlds are shared among
// two workers, each with its own server and its own stream of the seed, so that a failure
// reproduces whatever the scheduling.
func TestPickOnlyFromScopeInRandomWorlds(t *testing.T) {
	worlds, workers := 10_000, 2
	if testing.Short() {
		worlds = 1_000
	}
	for worker := range workers {
		t.Run(fmt.Sprintf("worker %d", worker), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(propertySeed, uint64(worker)))
			srv := fakeapi.New(t)
			// QPS -1: no client-side rate limit; client-go's default, 5 a second, would take an hour.
			api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1, Transport: inProcess{srv.Config.Handler}})
			if err != nil {
				t.Fatal(err)
			}
			for i := range worlds / workers {
				w := randomWorld(rng)
				checkPickInWorld(t, srv, api, w, rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())), func(format string, args ...any) {
					t.Helper()
					t.Fatalf("seed %d, worker %d, world %d: %s\n%s", propertySeed, worker, i, fmt.Sprintf(format, args...), w)
				})
			}
		})
	}
}

// checkPickInWorld serves w, picks once and fails unless the pick was offered exactly the pods
// in scope, each once, on as many pages as the server pages them over, and kept distinct ones.
func checkPickInWorld(t *testing.T, srv *fakeapi.Server, api podAPI, w world, rng *rand.Rand, fail func(format string, args ...any)) {
	t.Helper()
	for _, p := range w.pods {
		srv.Add(p)
	}
	defer func() { // the next world starts from an empty server
		for _, p := range w.pods {
			srv.Remove(p.Namespace, p.Name)
		}
	}()
	sel, err := labels.Parse(w.selector)
	if err != nil {
		fail("selector: %v", err)
	}
	// The specification of a candidate, written out from the README rather than from the code:
	// in macaque's namespace, matching the selector, Running, not being deleted, not itself.
	// listed counts the rows the API server pages over: its field and label selectors keep
	// Running pods matching the selector except macaque's own, being deleted or not.
	var want []string
	listed := 0
	for _, p := range w.pods {
		if p.Namespace == w.namespace && sel.Matches(labels.Set(p.Labels)) && p.Status.Phase == corev1.PodRunning && p.Name != w.self {
			listed++
			if p.DeletionTimestamp == nil {
				want = append(want, p.Name)
			}
		}
	}
	slices.Sort(want)

	list := &smallPages{podAPI: api, limit: w.pageSize, budget: 100} // no world has 100 rows
	k := &Killer{api: list, scope: scope{namespaces: []string{w.namespace}}, selector: w.selector, self: w.self, rng: rng, log: discardLogger()}
	got, n, err := k.pick(testkit.Ctx(t), tickScope{lists: k.scope.lists()})
	if err != nil {
		fail("pick: %v", err)
	}
	picks := make([]string, 0, len(got))
	for _, c := range got {
		if c.namespace != w.namespace {
			fail("picked %s, out of namespace %q", c, w.namespace)
		}
		picks = append(picks, c.name)
	}
	if offered := slices.Sorted(slices.Values(list.offered)); !slices.Equal(offered, want) {
		fail("the pick was offered %q, want exactly the pods in scope %q", offered, want)
	}
	if n != len(want) {
		fail("%d candidates counted, want %d", n, len(want))
	}
	if len(picks) != min(picksPerTick, n) || len(slices.Compact(slices.Sorted(slices.Values(picks)))) != len(picks) {
		fail("picks %q of %d candidates: want %d distinct", picks, n, min(picksPerTick, n))
	}
	for _, p := range picks {
		if !slices.Contains(want, p) {
			fail("picked %q, out of scope %q", p, want)
		}
	}
	// Each page is asked for once, the last one included.
	if pages := max(1, (listed+int(w.pageSize)-1)/int(w.pageSize)); list.pages != pages {
		fail("%d pages listed, want %d", list.pages, pages)
	}
}

// TestPickIsUniformOverHTTP is a chi-squared test of many picks in one fixed world served by
// fakeapi, its candidates spread over pages among pods out of scope: every candidate must be as
// likely as any other to be the first pick, and to be among the picks a tick may try.
func TestPickIsUniformOverHTTP(t *testing.T) {
	const draws = 1200
	web := map[string]string{"app": "web"}
	var pods []*corev1.Pod
	var candidates []string
	for i := range 12 {
		name := fmt.Sprintf("web-%02d", i)
		p := fakeapi.Pod(testNS, name, web)
		switch i % 6 { // a third of the rows the server pages over are dropped by the client
		case 1:
			p = terminating(p)
		case 4:
			p = nodeLost(p)
		default:
			candidates = append(candidates, name)
		}
		pods = append(pods, p, fakeapi.Pod("other", name, web), withPhase(fakeapi.Pod(testNS, name+"-job", web), corev1.PodSucceeded),
			fakeapi.Pod(testNS, fmt.Sprintf("db-%02d", i), map[string]string{"app": "db"}))
	}
	pods = append(pods, fakeapi.Pod(testNS, "macaque-0", web))
	srv := fakeapi.New(t, pods...)
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1, Transport: inProcess{srv.Config.Handler}})
	if err != nil {
		t.Fatal(err)
	}
	list := &smallPages{podAPI: api, limit: 5, budget: 3 * draws} // 12 rows to list, 5 a page
	k := &Killer{api: list, scope: scope{namespaces: []string{testNS}}, selector: "app=web", self: "macaque-0", rng: rand.New(rand.NewPCG(propertySeed, 2)), log: discardLogger()}
	first, tried := map[string]int{}, map[string]int{}
	for range draws {
		got, n, err := k.pick(testkit.Ctx(t), tickScope{lists: k.scope.lists()})
		if err != nil || n != len(candidates) || len(got) != picksPerTick {
			t.Fatalf("pick: %v, %d candidates, picks %q; want %d candidates", err, n, got, len(candidates))
		}
		first[got[0].name]++
		for _, c := range got {
			tried[c.name]++
		}
	}
	// 24.32 is the 0.999 quantile of chi-squared with 7 degrees of freedom (8 candidates).
	if chi2 := chiSquared(candidates, first, draws); chi2 > 24.32 {
		t.Errorf("chi-squared = %.1f over %v, first picks are not uniform", chi2, first)
	}
	if chi2 := chiSquared(candidates, tried, draws*picksPerTick); chi2 > 24.32 {
		t.Errorf("chi-squared = %.1f over %v, the picks a tick may try are not uniform", chi2, tried)
	}
	for name := range tried {
		if !slices.Contains(candidates, name) {
			t.Errorf("picked %q, out of scope", name)
		}
	}
}

// inProcess carries client-go's HTTP requests to a handler without a socket: the requests and
// responses are the same, built and read by the same code, at a fraction of the cost, which
// is what lets thousands of worlds run in seconds under -race.
type inProcess struct{ handler http.Handler }

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper must not change the request
	if r.Body == nil {
		r.Body = http.NoBody // as a server's request always has one
	}
	rec := httptest.NewRecorder()
	p.handler.ServeHTTP(rec, r)
	return rec.Result(), nil
}
