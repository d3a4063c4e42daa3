// Package fakeapi is an in-memory stand-in for the pods endpoints of kube-apiserver, served over
// HTTP so that macaque's unit tests exercise its real client code: Table lists with paging
// paged as kube-apiserver 1.37 pages them (a continue request without a limit gets all the
// rest; remainingItemCount only for a list without selectors), field and label selectors, and
// deletes with UID preconditions. It records every request so
// tests can assert the API calls made. client-go's fake clientset cannot serve Table lists,
// which is what macaque asks for; the e2e tests check the same behaviour on a real apiserver.
package fakeapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Request is one call the server received.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Accept string
	Body   []byte
	ctx    context.Context // the request's: a watch ends with it
}

// Server serves a set of pods. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	pods     map[string]*corev1.Pod // by namespace/name
	requests []Request
	rv       int            // the last resourceVersion given out
	cursors  map[string]int // opaque continue token -> offset of the next page
	tokens   []string       // the continue tokens given out, in order
	// IgnoreAccept makes lists answer PodLists whatever they ask for, as a proxy that drops
	// the Accept header would.
	IgnoreAccept bool
	// Fail, if set, is consulted first for each request; a non-nil Status is returned as the response.
	Fail func(Request) *metav1.Status
	// workloads are the controllers served to GETs, as JSON by URL path (see workloads.go).
	workloads map[string][]byte
	// pdbs are the PodDisruptionBudgets served to lists, which refuse together the eviction of a
	// pod several of them cover (see pdbs.go).
	pdbs []*policyv1.PodDisruptionBudget
	// configMaps are the ConfigMaps served to GETs and PUTs, by namespace/name.
	configMaps map[string]*corev1.ConfigMap
	// namespaces are the namespaces set by SetNamespace, with their labels (see namespaces.go).
	namespaces map[string]map[string]string
	// leases are the Leases served to GETs, POSTs and PUTs, by namespace/name (see leases.go).
	leases map[string]*coordinationv1.Lease
	// Deny, if set, answers SelfSubjectAccessReviews: a non-empty reason denies the access
	// asked for; nil allows everything, as a cluster-admin's review would.
	Deny func(authorizationv1.ResourceAttributes) string
	// events are the Events created by POSTs (see events.go).
	events []eventsv1.Event
	// changes is the log of pod and workload events that watches replay (see watch.go), from
	// the resourceVersion after compacted; changed is closed at each new one.
	changes      []change
	changed      chan struct{}
	compacted    int
	closeWatches chan struct{} // closed by CloseWatches
}

// New starts a server holding pods and stops it when the test ends.
func New(t testing.TB, pods ...*corev1.Pod) *Server {
	s := &Server{pods: map[string]*corev1.Pod{}, cursors: map[string]int{}}
	for _, p := range pods {
		s.Add(p)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.CloseWatches() // a watch left open would hold Close
		s.Close()
	})
	return s
}

// Add stores (or replaces) a pod, giving it a new resourceVersion as an update would.
func (s *Server) Add(p *corev1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p = p.DeepCopy()
	s.rv++
	p.ResourceVersion = strconv.Itoa(s.rv)
	kind := "ADDED"
	if old := s.pods[p.Namespace+"/"+p.Name]; old != nil && old.UID == p.UID {
		kind = "MODIFIED"
	}
	s.pods[p.Namespace+"/"+p.Name] = p
	s.podChange(p, kind)
}

// Remove deletes a pod from the store, as another client's delete would.
func (s *Server) Remove(namespace, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deletePod(namespace + "/" + name)
}

// deletePod removes the pod at key, giving the deletion a resourceVersion of its own as the
// API server does, logs it for watches and returns it as deleted (nil if none); s.mu must be held.
func (s *Server) deletePod(key string) *corev1.Pod {
	p := s.pods[key]
	if p == nil {
		return nil
	}
	delete(s.pods, key)
	s.rv++
	p.ResourceVersion = strconv.Itoa(s.rv)
	s.podChange(p, "DELETED")
	return p
}

// Pod returns a copy of a stored pod, or nil.
func (s *Server) Pod(namespace, name string) *corev1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pods[namespace+"/"+name]; p != nil {
		return p.DeepCopy()
	}
	return nil
}

// Len is the number of pods stored.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pods)
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Tokens returns the continue tokens the server has given out, in order.
func (s *Server) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens...)
}

// Deletes returns the paths of the DELETE requests received so far.
func (s *Server) Deletes() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Method == http.MethodDelete {
			out = append(out, r)
		}
	}
	return out
}

// Evictions returns the POSTs to a pod's eviction subresource received so far.
func (s *Server) Evictions() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/eviction") {
			out = append(out, r)
		}
	}
	return out
}

// Pod builds a Running pod owned by a ReplicaSet of its own (rs-NAME) and scheduled on a node of
// its own (node-NAME), so that a report naming the wrong pod's owner or node is caught.
func Pod(namespace, name string, lbls map[string]string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name, UID: types.UID("uid-" + name), Labels: lbls,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs-" + name, UID: types.UID("rs-uid-" + name), Controller: ptr(true),
			}},
		},
		Spec: corev1.PodSpec{NodeName: "node-" + name},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionTrue},
		}},
	}
}

func ptr[T any](v T) *T { return &v }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeStatus(w, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error()))
		return
	}
	req := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Accept: r.Header.Get("Accept"), Body: body, ctx: r.Context()}
	if st := s.take(req); st != nil {
		writeStatus(w, st)
		return
	}
	if s.serveBesidePods(w, req) {
		return
	}
	s.servePods(w, req)
}

// take records req and asks Fail about it: a Status it returns is the answer instead.
func (s *Server) take(req Request) *metav1.Status {
	s.mu.Lock()
	s.requests = append(s.requests, req)
	fail := s.Fail
	s.mu.Unlock()
	if fail == nil {
		return nil
	}
	return fail(req)
}

// serveBesidePods answers what is not the pod API: watches, workloads, events, access reviews,
// PodDisruptionBudgets, ConfigMaps, Leases and namespaces, in that order; false when req is none of them.
func (s *Server) serveBesidePods(w http.ResponseWriter, req Request) bool {
	switch {
	case isWatch(req):
		s.serveWatch(w, req)
	case req.Method == http.MethodGet && s.serveWorkload(w, req.Path):
	case s.serveEvent(w, req):
	case req.Method == http.MethodPost && req.Path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
		s.review(w, req)
	case req.Method == http.MethodGet && strings.HasSuffix(req.Path, "/poddisruptionbudgets"):
		s.listPDBs(w, req.Path)
	case strings.Contains(req.Path, "/configmaps/"):
		s.serveConfigMap(w, req)
	case isLease(req):
		s.serveLease(w, req)
	case isNamespaceList(req):
		s.listNamespaces(w, req)
	default:
		return false
	}
	return true
}

// servePods answers the pod API: lists (of every namespace, or of one), deletes and evictions.
func (s *Server) servePods(w http.ResponseWriter, req Request) {
	if req.Method == http.MethodGet && req.Path == "/api/v1/pods" {
		s.list(w, req, "") // every namespace
		return
	}
	ns, rest, ok := podsPath(req.Path)
	if !ok {
		writeStatus(w, status(http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource"))
		return
	}
	switch {
	case len(rest) == 0 && req.Method == http.MethodGet:
		s.list(w, req, ns)
	case len(rest) == 1 && req.Method == http.MethodDelete:
		s.delete(w, req, ns, rest[0])
	case len(rest) == 2 && rest[1] == "eviction" && req.Method == http.MethodPost:
		s.evict(w, req, ns, rest[0])
	default:
		writeStatus(w, status(http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "not supported by fakeapi"))
	}
}

// podsPath splits /api/v1/namespaces/{ns}/pods[/...] into ns and what follows pods; false for
// any other path.
func podsPath(path string) (ns string, rest []string, ok bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) < 5 || parts[0] != "api" || parts[1] != "v1" || parts[2] != "namespaces" || parts[4] != "pods" {
		return "", nil, false
	}
	return parts[3], parts[5:], true
}

func (s *Server) list(w http.ResponseWriter, req Request, ns string) {
	fsel, lsel, err := selectors(req)
	if err != nil {
		writeStatus(w, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error()))
		return
	}
	s.mu.Lock()
	var matched []*corev1.Pod
	for _, p := range s.pods {
		f := fields.Set{"metadata.name": p.Name, "metadata.namespace": p.Namespace, "status.phase": string(p.Status.Phase), "spec.nodeName": p.Spec.NodeName}
		if (ns == "" || p.Namespace == ns) && fsel.Matches(f) && lsel.Matches(labels.Set(p.Labels)) {
			matched = append(matched, p.DeepCopy())
		}
	}
	s.mu.Unlock()
	sort.Slice(matched, func(i, j int) bool { return matched[i].Name < matched[j].Name })

	start, end, st := s.page(req, len(matched))
	if st != nil {
		writeStatus(w, st)
		return
	}
	meta := metav1.ListMeta{}
	if end < len(matched) {
		meta.Continue = s.cursor(end)
		// The API server counts what is left only when nothing is filtered out (its storage
		// cannot count matches without reading them), so a list with a selector never has one.
		if fsel.Empty() && lsel.Empty() {
			meta.RemainingItemCount = ptr(int64(len(matched) - end))
		}
	}
	matched = matched[start:end]

	if strings.Contains(req.Accept, "as=Table") && !s.IgnoreAccept {
		writeJSON(w, http.StatusOK, table(matched, meta))
		return
	}
	list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, ListMeta: meta}
	for _, p := range matched {
		list.Items = append(list.Items, *p)
	}
	writeJSON(w, http.StatusOK, list)
}

// selectors parses req's field and label selectors.
func selectors(req Request) (fields.Selector, labels.Selector, error) {
	fsel, err := fields.ParseSelector(req.Query.Get("fieldSelector"))
	if err != nil {
		return nil, nil, err
	}
	lsel, err := labels.Parse(req.Query.Get("labelSelector"))
	if err != nil {
		return nil, nil, err
	}
	return fsel, lsel, nil
}

// page returns the bounds, in a list of n items, of the page req asks for with its continue
// token and limit; a Status (410) when the token is not one this server gave.
func (s *Server) page(req Request, n int) (start, end int, st *metav1.Status) {
	// Continue tokens are opaque, as the API server's are, so a client that makes them up is caught.
	// A continue request without a limit gets all the rest, as from the API server.
	if token := req.Query.Get("continue"); token != "" {
		s.mu.Lock()
		offset, ok := s.cursors[token]
		s.mu.Unlock()
		if !ok {
			return 0, 0, status(http.StatusGone, metav1.StatusReasonExpired, "The provided continue parameter is too old or malformed")
		}
		start = offset
	}
	end = n
	if limit, _ := strconv.Atoi(req.Query.Get("limit")); limit > 0 && start+limit < end {
		end = start + limit
	}
	if start > n {
		start = n
	}
	return start, end, nil
}

// cursor returns a new random continue token for offset.
func (s *Server) cursor(offset int) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	s.mu.Lock()
	s.cursors[token] = offset
	s.tokens = append(s.tokens, token)
	s.mu.Unlock()
	return token
}

// table prints pods the way kube-apiserver does, with the same columns in the same order.
func table(pods []*corev1.Pod, meta metav1.ListMeta) *metav1.Table {
	t := &metav1.Table{
		TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"},
		ListMeta: meta,
		ColumnDefinitions: []metav1.TableColumnDefinition{
			{Name: "Name", Type: "string", Format: "name"}, {Name: "Ready", Type: "string"}, {Name: "Status", Type: "string"},
			{Name: "Restarts", Type: "string"}, {Name: "Age", Type: "string"}, {Name: "IP", Type: "string", Priority: 1},
			{Name: "Node", Type: "string", Priority: 1}, {Name: "Nominated Node", Type: "string", Priority: 1},
			{Name: "Readiness Gates", Type: "string", Priority: 1},
		},
	}
	for _, p := range pods {
		st := string(p.Status.Phase)
		if p.Status.Reason != "" {
			st = p.Status.Reason
		}
		switch {
		case p.DeletionTimestamp != nil && p.Status.Reason == "NodeLost":
			st = "Unknown" // kubectl's printer: a pod being deleted on an unreachable node
		case p.DeletionTimestamp != nil:
			st = "Terminating"
		}
		t.Rows = append(t.Rows, metav1.TableRow{Cells: []any{p.Name, "1/1", st, "0", "5m", "10.0.0.1", p.Spec.NodeName, "<none>", "<none>"}})
	}
	return t
}

func (s *Server) delete(w http.ResponseWriter, req Request, ns, name string) {
	var opts metav1.DeleteOptions
	if len(req.Body) > 0 {
		if err := json.Unmarshal(req.Body, &opts); err != nil {
			writeStatus(w, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error()))
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ns + "/" + name
	p := s.pods[key]
	if p == nil {
		writeStatus(w, status(http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("pods %q not found", name)))
		return
	}
	if pre := opts.Preconditions; pre != nil && pre.UID != nil && *pre.UID != p.UID {
		writeStatus(w, status(http.StatusConflict, metav1.StatusReasonConflict,
			fmt.Sprintf("Precondition failed: UID in precondition: %s, UID in object meta: %s", *pre.UID, p.UID)))
		return
	}
	if pre := opts.Preconditions; pre != nil && pre.ResourceVersion != nil && *pre.ResourceVersion != p.ResourceVersion {
		writeStatus(w, status(http.StatusConflict, metav1.StatusReasonConflict,
			fmt.Sprintf("Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s", *pre.ResourceVersion, p.ResourceVersion)))
		return
	}
	if slices.Contains(req.Query["dryRun"], "All") {
		writeJSON(w, http.StatusOK, p)
		return
	}
	writeJSON(w, http.StatusOK, s.deletePod(key))
}

// evict serves an eviction as kube-apiserver does with no PodDisruptionBudget in the way: the
// deleteOptions it carries apply as a DELETE's would, and success is 201 with a Status.
// Tests play a PDB's refusal through Fail.
func (s *Server) evict(w http.ResponseWriter, req Request, ns, name string) {
	var ev struct {
		APIVersion    string                `json:"apiVersion"`
		Kind          string                `json:"kind"`
		Metadata      metav1.ObjectMeta     `json:"metadata"`
		DeleteOptions *metav1.DeleteOptions `json:"deleteOptions"`
	}
	if err := json.Unmarshal(req.Body, &ev); err != nil {
		writeStatus(w, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error()))
		return
	}
	if ev.APIVersion != "policy/v1" || ev.Kind != "Eviction" || ev.Metadata.Name != name {
		writeStatus(w, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, "name in URL does not match name in Eviction object"))
		return
	}
	opts := metav1.DeleteOptions{}
	if ev.DeleteOptions != nil {
		opts = *ev.DeleteOptions
	}
	if slices.Contains(req.Query["dryRun"], "All") {
		opts.DryRun = []string{"All"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ns + "/" + name
	p := s.pods[key]
	if st := checkPreconditions(p, name, opts.Preconditions); st != nil {
		writeStatus(w, st)
		return
	}
	if st := s.coveredTwice(p); st != nil {
		writeStatus(w, st)
		return
	}
	if len(opts.DryRun) == 0 {
		s.deletePod(key)
	}
	writeJSON(w, http.StatusCreated, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess})
}

// checkPreconditions is the API server's answer to a kill of p (nil when none is stored) under
// pre: 404, 409, or nil to go ahead.
func checkPreconditions(p *corev1.Pod, name string, pre *metav1.Preconditions) *metav1.Status {
	if p == nil {
		return status(http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("pods %q not found", name))
	}
	if pre != nil && pre.UID != nil && *pre.UID != p.UID {
		return status(http.StatusConflict, metav1.StatusReasonConflict,
			fmt.Sprintf("Precondition failed: UID in precondition: %s, UID in object meta: %s", *pre.UID, p.UID))
	}
	if pre != nil && pre.ResourceVersion != nil && *pre.ResourceVersion != p.ResourceVersion {
		return status(http.StatusConflict, metav1.StatusReasonConflict,
			fmt.Sprintf("Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s", *pre.ResourceVersion, p.ResourceVersion))
	}
	return nil
}

// PDBRefusal is the 429 kube-apiserver answers an eviction that PodDisruptionBudget pdb refuses,
// needing want healthy pods and having have.
func PDBRefusal(pdb string, want, have int) *metav1.Status {
	st := status(http.StatusTooManyRequests, metav1.StatusReasonTooManyRequests, "Cannot evict pod as it would violate the pod's disruption budget.")
	st.Details = &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "DisruptionBudget",
		Message: fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", pdb, want, have)}}}
	return st
}

// AddConfigMap stores (or replaces) a ConfigMap, giving it a new resourceVersion.
func (s *Server) AddConfigMap(cm *corev1.ConfigMap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cm = cm.DeepCopy()
	s.rv++
	cm.ResourceVersion = strconv.Itoa(s.rv)
	if s.configMaps == nil {
		s.configMaps = map[string]*corev1.ConfigMap{}
	}
	s.configMaps[cm.Namespace+"/"+cm.Name] = cm
}

// ConfigMap returns a copy of a stored ConfigMap, or nil.
func (s *Server) ConfigMap(namespace, name string) *corev1.ConfigMap {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.configMaps[namespace+"/"+name].DeepCopy()
}

// serveConfigMap answers a GET of a ConfigMap, or a PUT that replaces it when its
// resourceVersion is current (409 otherwise), as the API server does; dryRun=All changes nothing.
func (s *Server) serveConfigMap(w http.ResponseWriter, req Request) {
	parts := strings.Split(strings.Trim(req.Path, "/"), "/") // api/v1/namespaces/{ns}/configmaps/{name}
	if len(parts) != 6 {
		writeStatus(w, status(http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource"))
		return
	}
	key := parts[3] + "/" + parts[5]
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.configMaps[key]
	if cur == nil {
		writeStatus(w, status(http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("configmaps %q not found", parts[5])))
		return
	}
	if req.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, cur)
		return
	}
	if req.Method != http.MethodPut {
		writeStatus(w, status(http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "not supported by fakeapi"))
		return
	}
	var next corev1.ConfigMap
	if err := json.Unmarshal(req.Body, &next); err != nil || next.Name != parts[5] {
		writeStatus(w, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("bad ConfigMap: %v", err)))
		return
	}
	if next.ResourceVersion != cur.ResourceVersion {
		writeStatus(w, status(http.StatusConflict, metav1.StatusReasonConflict,
			fmt.Sprintf("Operation cannot be fulfilled on configmaps %q: the object has been modified; please apply your changes to the latest version and try again", next.Name)))
		return
	}
	if problems := validateConfigMap(next); len(problems) > 0 {
		writeStatus(w, status(http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
			fmt.Sprintf("ConfigMap %q is invalid: %s", next.Name, strings.Join(problems, ", "))))
		return
	}
	next.Namespace = cur.Namespace
	if !slices.Contains(req.Query["dryRun"], "All") {
		s.rv++
		next.ResourceVersion = strconv.Itoa(s.rv)
		s.configMaps[key] = next.DeepCopy()
	}
	writeJSON(w, http.StatusOK, &next)
}

// maxConfigMapBytes is the most data a ConfigMap may hold (corev1.MaxSecretSize, also its bound).
const maxConfigMapBytes = 1 << 20

// validateConfigMap lists what kube-apiserver's ValidateConfigMap refuses in cm's data, in its
// words: a key of more than 253 characters or of others than [-._a-zA-Z0-9] (which refuses the
// whole write, every other key with it), and data past 1 MiB in all.
func validateConfigMap(cm corev1.ConfigMap) []string {
	var out []string
	size := 0
	for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
		for _, msg := range validation.IsConfigMapKey(k) {
			out = append(out, fmt.Sprintf("data[%s]: Invalid value: %q: %s", k, k, msg))
		}
		size += len(k) + len(cm.Data[k])
	}
	for k, v := range cm.BinaryData {
		size += len(k) + len(v)
	}
	if size > maxConfigMapBytes {
		out = append(out, fmt.Sprintf("[]: Too long: must have at most %d bytes", maxConfigMapBytes))
	}
	return out
}

// review answers a SelfSubjectAccessReview with Deny's verdict.
func (s *Server) review(w http.ResponseWriter, req Request) {
	var review authorizationv1.SelfSubjectAccessReview
	if err := json.Unmarshal(req.Body, &review); err != nil || review.Spec.ResourceAttributes == nil {
		writeStatus(w, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("want a SelfSubjectAccessReview of resource attributes: %v", err)))
		return
	}
	s.mu.Lock()
	deny := s.Deny
	s.mu.Unlock()
	review.Status.Allowed = true
	if deny != nil {
		if reason := deny(*review.Spec.ResourceAttributes); reason != "" {
			review.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: false, Reason: reason}
		}
	}
	writeJSON(w, http.StatusCreated, review)
}

func status(code int32, reason metav1.StatusReason, msg string) *metav1.Status {
	return &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg}
}

// Forbidden is the Status kube-apiserver returns when RBAC denies verb on pods in ns.
func Forbidden(verb, ns string) *metav1.Status {
	return status(http.StatusForbidden, metav1.StatusReasonForbidden,
		fmt.Sprintf(`pods is forbidden: User "system:serviceaccount:%s:macaque" cannot %s resource "pods" in API group "" in the namespace %q`, ns, verb, ns))
}

// InternalError is a 500 Status.
func InternalError(msg string) *metav1.Status {
	return status(http.StatusInternalServerError, metav1.StatusReasonInternalError, msg)
}

func writeStatus(w http.ResponseWriter, st *metav1.Status) {
	st = st.DeepCopy()
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	if st.Details != nil && st.Details.RetryAfterSeconds > 0 { // as kube-apiserver does
		w.Header().Set("Retry-After", strconv.Itoa(int(st.Details.RetryAfterSeconds)))
	}
	writeJSON(w, int(st.Code), st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
