package kube

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/testkit"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
)

// newClient is a Client of srv.
func newClient(t *testing.T, srv *fakeapi.Server) *Client {
	t.Helper()
	c, err := NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// onlyRequest is the one request srv got since the test began, failing the test otherwise.
func onlyRequest(t *testing.T, srv *fakeapi.Server) fakeapi.Request {
	t.Helper()
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1: %+v", len(reqs), reqs)
	}
	return reqs[0]
}

// TestLookupReadsThePodBack: a pod is read through a list by name (list is all the Role grants),
// narrowed by the selector, and comes back with what the rules and the kill need; a pod that
// does not match, or is gone, is ErrGone.
func TestLookupReadsThePodBack(t *testing.T) {
	p := fakeapi.Pod(testNamespace, "web-1", map[string]string{"app": "web"})
	p.Annotations = map[string]string{"chaos.macaque.dev/exclude": "true"}
	srv := fakeapi.New(t, p)
	c := newClient(t, srv)
	got, err := c.Lookup(testkit.Ctx(t), testNamespace, "web-1", "app=web")
	if err != nil {
		t.Fatal(err)
	}
	req := onlyRequest(t, srv)
	if req.Method != http.MethodGet || req.Path != "/api/v1/namespaces/shop/pods" ||
		req.Query.Get("fieldSelector") != "metadata.name=web-1" || req.Query.Get("labelSelector") != "app=web" {
		t.Errorf("request %s %s?%s, want a list of shop's pods by name and selector", req.Method, req.Path, req.Query.Encode())
	}
	if got.Namespace != testNamespace || got.UID != "uid-web-1" || got.Node != "node-web-1" || !got.Running || !got.Ready || got.Terminating ||
		got.Owner() != "ReplicaSet/rs-web-1" || got.Annotations["chaos.macaque.dev/exclude"] != "true" || got.Labels["app"] != "web" ||
		!got.Created.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || got.ResourceVersion == "" {
		t.Errorf("pod %+v", got)
	}
	for _, tt := range []struct{ name, selector string }{{"web-1", "app=api"}, {"web-2", ""}} {
		if _, err := c.Lookup(testkit.Ctx(t), testNamespace, tt.name, tt.selector); !errors.Is(err, ErrGone) {
			t.Errorf("Lookup(%q, %q) = %v, want ErrGone", tt.name, tt.selector, err)
		}
	}
}

// TestLocateFindsAPodByNameInEveryNamespace: a cluster-wide row names no namespace; every pod of
// the name in scope comes back, and none is ErrGone.
func TestLocateFindsAPodByNameInEveryNamespace(t *testing.T) {
	srv := fakeapi.New(t, fakeapi.Pod("shop", "web-0", nil), fakeapi.Pod("cart", "web-0", nil), fakeapi.Pod("kube-system", "web-0", nil))
	c := newClient(t, srv)
	got, err := c.Locate(testkit.Ctx(t), ListQuery{ExcludeNamespaces: []string{"kube-system"}}, "web-0")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Namespace == "kube-system" || got[1].Namespace == "kube-system" {
		t.Errorf("found %+v, want web-0 of shop and cart only", got)
	}
	if req := onlyRequest(t, srv); req.Path != "/api/v1/pods" {
		t.Errorf("request %s, want a cluster-wide list", req.Path)
	}
	if _, err := c.Locate(testkit.Ctx(t), ListQuery{}, "api-0"); !errors.Is(err, ErrGone) {
		t.Errorf("Locate of no such pod = %v, want ErrGone", err)
	}
}

// TestDeleteSendsItsPreconditions: a kill names the pod's UID and resourceVersion, so that a pod
// replaced or changed since its read-back is not killed (409), and the grace period asked for;
// it returns the deletion's resourceVersion.
func TestDeleteSendsItsPreconditions(t *testing.T) {
	srv := fakeapi.New(t, fakeapi.Pod(testNamespace, "web-1", nil))
	c := newClient(t, srv)
	v, err := c.Lookup(testkit.Ctx(t), testNamespace, "web-1", "")
	if err != nil {
		t.Fatal(err)
	}
	stale := v
	stale.ResourceVersion += "0" // another version than the pod's
	if _, err := c.Delete(testkit.Ctx(t), testNamespace, "web-1", stale, nil); !apierrors.IsConflict(err) {
		t.Fatalf("Delete with a stale resourceVersion = %v, want 409 Conflict", err)
	}
	grace := int64(7)
	rv, err := c.Delete(testkit.Ctx(t), testNamespace, "web-1", v, &grace)
	if err != nil || rv == "" {
		t.Fatalf("Delete = %q, %v; want the deletion's resourceVersion", rv, err)
	}
	deletes := srv.Deletes()
	var opts metav1.DeleteOptions
	if err := json.Unmarshal(deletes[len(deletes)-1].Body, &opts); err != nil {
		t.Fatal(err)
	}
	if opts.Preconditions == nil || opts.Preconditions.UID == nil || *opts.Preconditions.UID != v.UID ||
		opts.Preconditions.ResourceVersion == nil || *opts.Preconditions.ResourceVersion != v.ResourceVersion ||
		opts.GracePeriodSeconds == nil || *opts.GracePeriodSeconds != 7 {
		t.Errorf("delete options %+v, want the UID, the resourceVersion and 7 s", opts)
	}
	if srv.Pod(testNamespace, "web-1") != nil {
		t.Error("the pod is still there")
	}
}

// TestEvictSendsAnEviction: an eviction is a POST of an Eviction with the same preconditions; a
// PodDisruptionBudget's refusal comes back with its cause, and two budgets' as CoveredTwice.
func TestEvictSendsAnEviction(t *testing.T) {
	srv := fakeapi.New(t, fakeapi.Pod(testNamespace, "web-1", map[string]string{"app": "web"}), fakeapi.Pod(testNamespace, "web-2", map[string]string{"app": "web"}))
	c := newClient(t, srv)
	v, err := c.Lookup(testkit.Ctx(t), testNamespace, "web-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Evict(testkit.Ctx(t), testNamespace, "web-1", v, nil); err != nil {
		t.Fatal(err)
	}
	ev := srv.Evictions()
	var eviction policyv1.Eviction
	if len(ev) != 1 || json.Unmarshal(ev[0].Body, &eviction) != nil || eviction.Name != "web-1" || eviction.DeleteOptions == nil ||
		eviction.DeleteOptions.Preconditions == nil || *eviction.DeleteOptions.Preconditions.UID != v.UID {
		t.Fatalf("evictions %+v, want one of web-1 with its UID", ev)
	}
	for _, name := range []string{"a", "b"} {
		srv.AddPDB(&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: new(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}})
	}
	w2, err := c.Lookup(testkit.Ctx(t), testNamespace, "web-2", "")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Evict(testkit.Ctx(t), testNamespace, "web-2", w2, nil)
	if !CoveredTwice(err) {
		t.Fatalf("eviction under two budgets = %v, want the refusal of a pod covered twice", err)
	}
	pdbs, err := c.ListPDBs(testkit.Ctx(t), testNamespace)
	if names := Covering(pdbs, w2.Labels); err != nil || len(names) != 2 {
		t.Errorf("budgets covering web-2: %v, %v; want a and b", names, err)
	}
}

// TestProbesKillNothing: the start-up probes ask with a dry run of a pod that cannot exist, and
// say nil when allowed; a Role without the verb answers RBAC's denial.
func TestProbesKillNothing(t *testing.T) {
	srv := fakeapi.New(t, fakeapi.Pod(testNamespace, "web-1", nil))
	c := newClient(t, srv)
	if err := c.ProbeDelete(testkit.Ctx(t), testNamespace); err != nil {
		t.Errorf("ProbeDelete = %v", err)
	}
	if err := c.ProbeEvict(testkit.Ctx(t), testNamespace); err != nil {
		t.Errorf("ProbeEvict = %v", err)
	}
	if err := c.ProbeGet(testkit.Ctx(t), testNamespace, KindDeployment); err != nil {
		t.Errorf("ProbeGet = %v", err)
	}
	for _, r := range srv.Requests() {
		if r.Method != http.MethodGet && r.Query.Get("dryRun") != "All" {
			t.Errorf("probe %s %s without dryRun=All", r.Method, r.Path)
		}
	}
	if srv.Len() != 1 {
		t.Error("a probe killed a pod")
	}
	srv.Fail = func(fakeapi.Request) *metav1.Status { return fakeapi.Forbidden("delete", testNamespace) }
	if err := c.ProbeDelete(testkit.Ctx(t), testNamespace); !IsRBACDenial(err) {
		t.Errorf("ProbeDelete under a Role without delete = %v, want RBAC's denial", err)
	}
}

// TestGetWorkloadReadsItsKind: each kind is read at its own path and decoded into Workload.
func TestGetWorkloadReadsItsKind(t *testing.T) {
	d := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{Kind: "Deployment", APIVersion: "apps/v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "web", UID: "d-1", Generation: 2},
		Spec:       appsv1.DeploymentSpec{Replicas: new(int32(3))},
		Status:     appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, UpdatedReplicas: 3}}
	srv := fakeapi.New(t)
	srv.AddWorkload(d)
	c := newClient(t, srv)
	w, err := c.GetWorkload(testkit.Ctx(t), testNamespace, KindDeployment, "web")
	if err != nil {
		t.Fatal(err)
	}
	if req := onlyRequest(t, srv); req.Path != "/apis/apps/v1/namespaces/shop/deployments/web" {
		t.Errorf("path %s", req.Path)
	}
	if w.Metadata.UID != "d-1" || w.Desired() != 3 || w.Status.ReadyReplicas != 3 || w.Status.ObservedGeneration != 2 {
		t.Errorf("workload %+v", w)
	}
	if _, err := c.GetWorkload(testkit.Ctx(t), testNamespace, KindStatefulSet, "web"); !apierrors.IsNotFound(err) {
		t.Errorf("a StatefulSet that is not there: %v, want 404", err)
	}
}

// TestConfigMapIsReadAndWrittenWithItsVersion: an update carries the resourceVersion read, so
// that a write that lost a race fails (409) instead of overwriting.
func TestConfigMapIsReadAndWrittenWithItsVersion(t *testing.T) {
	srv := fakeapi.New(t)
	srv.AddConfigMap(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "state"}, Data: map[string]string{"a": "1"}})
	c := newClient(t, srv)
	cm, err := c.GetConfigMap(testkit.Ctx(t), testNamespace, "state")
	if err != nil || cm.Data["a"] != "1" || cm.Metadata.ResourceVersion == "" {
		t.Fatalf("GetConfigMap = %+v, %v", cm, err)
	}
	if err := c.ProbeUpdateConfigMap(testkit.Ctx(t), cm); err != nil {
		t.Errorf("ProbeUpdateConfigMap = %v", err)
	}
	if got := srv.ConfigMap(testNamespace, "state").Data; got["a"] != "1" {
		t.Errorf("the probe wrote %v", got)
	}
	cm.Data = map[string]string{"a": "2"}
	if _, err := c.UpdateConfigMap(testkit.Ctx(t), cm); err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{"a": "3"} // still at the version read before the last write
	if _, err := c.UpdateConfigMap(testkit.Ctx(t), cm); !apierrors.IsConflict(err) {
		t.Errorf("a write at a stale version = %v, want 409 Conflict", err)
	}
	if got := srv.ConfigMap(testNamespace, "state").Data; got["a"] != "2" {
		t.Errorf("state %v, want the first write's", got)
	}
}

// TestMayIAsksForEachPermission: a SelfSubjectAccessReview of exactly the permission asked; ""
// when allowed, the authorizer's reason when not.
func TestMayIAsksForEachPermission(t *testing.T) {
	srv := fakeapi.New(t)
	srv.Deny = func(a authorizationv1.ResourceAttributes) string {
		if a.Verb == "create" && a.Resource == "pods" && a.Subresource == "eviction" && a.Namespace == "" {
			return "no RBAC policy matched"
		}
		return ""
	}
	c := newClient(t, srv)
	if why, err := c.MayI(testkit.Ctx(t), Permission{Verb: "delete", Resource: "pods"}); err != nil || why != "" {
		t.Errorf("delete pods: %q, %v; want allowed", why, err)
	}
	if why, err := c.MayI(testkit.Ctx(t), Permission{Verb: "create", Resource: "pods", Subresource: "eviction"}); err != nil || why != "no RBAC policy matched" {
		t.Errorf("create pods/eviction: %q, %v; want the authorizer's reason", why, err)
	}
}

// TestListPageAsksForWhatTheQuerySays: the candidates' list asks for the printed Table of the
// Running pods, leaving out macaque's own pod and the excluded namespaces, narrowed by the
// selector, and resumes at the continue token; a query without them sends none (an empty
// labelSelector or continue is no "every pod").
func TestListPageAsksForWhatTheQuerySays(t *testing.T) {
	tests := []struct {
		name       string
		q          ListQuery
		wantFields string
		wantLabels string
		wantCont   string
	}{
		{name: "a namespace, nothing else", q: ListQuery{Namespace: testNamespace, Limit: 500}, wantFields: "status.phase=Running"},
		{name: "macaque's own pod left out", q: ListQuery{Namespace: testNamespace, Exclude: "macaque-0", Limit: 500},
			wantFields: "status.phase=Running,metadata.name!=macaque-0"},
		{name: "a selector", q: ListQuery{Namespace: testNamespace, Selector: "app=web", Limit: 500}, wantFields: "status.phase=Running", wantLabels: "app=web"},
		{name: "every namespace but two, from a token", q: ListQuery{ExcludeNamespaces: []string{"kube-system", "ops"}, Limit: 500, ContinueToken: "tok"},
			wantFields: "status.phase=Running,metadata.namespace!=kube-system,metadata.namespace!=ops", wantCont: "tok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t)
			// fakeapi refuses a continue token it did not make: the request is what is checked.
			if _, err := newClient(t, srv).ListPage(testkit.Ctx(t), tt.q, func(string) {}); err != nil && tt.wantCont == "" {
				t.Fatal(err)
			}
			req := srv.Requests()[0]
			q := req.Query
			if q.Get("fieldSelector") != tt.wantFields || q.Get("labelSelector") != tt.wantLabels || q.Get("continue") != tt.wantCont ||
				q.Has("labelSelector") != (tt.wantLabels != "") || q.Has("continue") != (tt.wantCont != "") ||
				q.Get("limit") != "500" || q.Get("includeObject") != "None" || req.Accept != TableAccept {
				t.Errorf("request %s?%s (Accept %s)", req.Path, q.Encode(), req.Accept)
			}
		})
	}
}
