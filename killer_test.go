package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	api, err := newRESTPods(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return &Killer{api: api, namespace: testNS, selector: selector, self: "macaque-0", dryRun: dryRun,
		rng: rand.New(rand.NewPCG(1, 2)), now: func() time.Time { return tick0 }, log: discardLogger()}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func terminating(p *corev1.Pod) *corev1.Pod {
	now := metav1.Now()
	p.DeletionTimestamp = &now
	p.Finalizers = []string{"example.com/hold"}
	return p
}

func withPhase(p *corev1.Pod, phase corev1.PodPhase) *corev1.Pod {
	p.Status.Phase = phase
	return p
}

func TestKill(t *testing.T) {
	web := map[string]string{"app": "web"}
	tests := []struct {
		name       string
		pods       []*corev1.Pod
		selector   string
		dryRun     bool
		fail       func(*fakeapi.Server) func(fakeapi.Request) *metav1.Status
		want       Outcome
		candidates int
		victims    []string // pods that may be picked; empty when none may be
		deleted    bool     // whether the victim must be gone afterwards
		deletes    int      // DELETE requests the killer must send
	}{
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
			fail: func(*fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status { return fakeapi.Forbidden("list", testNS) }
			},
			want: OutcomeForbidden,
		},
		{
			name: "delete forbidden is not reported as a kill",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(*fakeapi.Server) func(fakeapi.Request) *metav1.Status {
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
			fail: func(s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
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
			victims:    []string{"db-0"},
			deletes:    1,
		},
		{
			name: "pod gone before the delete",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(*fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if r.Method == http.MethodDelete {
						return &metav1.Status{Status: metav1.StatusFailure, Code: 404, Reason: metav1.StatusReasonNotFound, Message: `pods "web-1" not found`}
					}
					return nil
				}
			},
			want:       OutcomeNotFound,
			candidates: 1,
			victims:    []string{"web-1"},
			deletes:    1,
		},
		{
			name: "pod stopped running between list and delete",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(s *fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(r fakeapi.Request) *metav1.Status {
					if r.Query.Get("fieldSelector") == "metadata.name=web-1" {
						s.Add(withPhase(fakeapi.Pod(testNS, "web-1", web), corev1.PodSucceeded))
					}
					return nil
				}
			},
			want:       OutcomeNotFound,
			candidates: 1,
			victims:    []string{"web-1"},
		},
		{
			name: "server error",
			pods: []*corev1.Pod{fakeapi.Pod(testNS, "web-1", web)},
			fail: func(*fakeapi.Server) func(fakeapi.Request) *metav1.Status {
				return func(fakeapi.Request) *metav1.Status { return fakeapi.InternalError("etcdserver: request timed out") }
			},
			want: OutcomeError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t, tt.pods...)
			if tt.fail != nil {
				srv.Fail = tt.fail(srv)
			}
			k := newTestKiller(t, srv, tt.selector, tt.dryRun)
			r := k.kill(t.Context(), tick0)

			if r.Outcome != tt.want {
				t.Fatalf("outcome = %q (err %v), want %q", r.Outcome, r.Err, tt.want)
			}
			if (r.Err != nil) != (tt.want != OutcomeKilled && tt.want != OutcomeDryRun && tt.want != OutcomeNoCandidates) {
				t.Errorf("err = %v for outcome %q", r.Err, r.Outcome)
			}
			if r.Candidates != tt.candidates {
				t.Errorf("candidates = %d, want %d", r.Candidates, tt.candidates)
			}
			if len(tt.victims) == 0 && r.Pod != "" {
				t.Errorf("picked %q, want no pick", r.Pod)
			}
			if len(tt.victims) > 0 {
				if !slices.Contains(tt.victims, r.Pod) {
					t.Errorf("picked %q, want one of %v", r.Pod, tt.victims)
				}
				if r.Owner != "ReplicaSet/web-7d9" || r.Node != "node-1" {
					t.Errorf("owner, node = %q, %q; want ReplicaSet/web-7d9, node-1", r.Owner, r.Node)
				}
			}
			if gone := r.Pod != "" && srv.Pod(testNS, r.Pod) == nil; gone != tt.deleted {
				t.Errorf("victim %q deleted = %v, want %v", r.Pod, gone, tt.deleted)
			}
			dels := srv.Deletes()
			if len(dels) != tt.deletes {
				t.Fatalf("%d DELETE requests, want %d: %+v", len(dels), tt.deletes, dels)
			}
			if tt.deletes == 1 {
				assertDelete(t, dels[0], r.Pod)
			}
		})
	}
}

// assertDelete checks a DELETE targets pod and carries the UID it had when picked.
func assertDelete(t *testing.T, d fakeapi.Request, pod string) {
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
}

func TestListRequests(t *testing.T) {
	const pods = 2*pageSize + 345
	srv := fakeapi.New(t)
	for i := range pods {
		srv.Add(fakeapi.Pod(testNS, fmt.Sprintf("web-%05d", i), map[string]string{"app": "web"}))
	}
	k := newTestKiller(t, srv, "app=web", false)
	r := k.kill(t.Context(), tick0)
	if r.Outcome != OutcomeKilled || r.Candidates != pods {
		t.Fatalf("outcome %q, candidates %d (err %v); want killed, %d", r.Outcome, r.Candidates, r.Err, pods)
	}

	reqs := srv.Requests()
	// Three table pages, one lookup of the victim, one delete.
	if len(reqs) != 5 {
		t.Fatalf("%d requests, want 5: %+v", len(reqs), reqs)
	}
	for i, wantContinue := range []string{"", fmt.Sprint(pageSize), fmt.Sprint(2 * pageSize)} {
		q := reqs[i].Query
		checks := map[string][2]string{
			"Accept":        {reqs[i].Accept, tableAccept},
			"fieldSelector": {q.Get("fieldSelector"), "status.phase=Running,metadata.name!=macaque-0"},
			"labelSelector": {q.Get("labelSelector"), "app=web"},
			"limit":         {q.Get("limit"), fmt.Sprint(pageSize)},
			"includeObject": {q.Get("includeObject"), "None"},
			"continue":      {q.Get("continue"), wantContinue},
		}
		for what, c := range checks {
			if c[0] != c[1] {
				t.Errorf("page %d: %s = %q, want %q", i, what, c[0], c[1])
			}
		}
	}
	lookup := reqs[3]
	if lookup.Method != http.MethodGet || lookup.Query.Get("fieldSelector") != "metadata.name="+r.Pod || strings.Contains(lookup.Accept, "Table") {
		t.Errorf("lookup = %s %s?%s (Accept %q), want a plain list by metadata.name=%s", lookup.Method, lookup.Path, lookup.Query.Encode(), lookup.Accept, r.Pod)
	}
	assertDelete(t, reqs[4], r.Pod)
	if srv.Len() != pods-1 {
		t.Errorf("%d pods left, want %d", srv.Len(), pods-1)
	}
}

// pagedNames serves names in pages of size per, without HTTP, for the statistical test.
type pagedNames struct {
	names []string
	per   int
}

func (p pagedNames) listPage(_ context.Context, q listQuery, each func(string)) (string, error) {
	start := 0
	if q.continueToken != "" {
		_, _ = fmt.Sscan(q.continueToken, &start)
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

func (pagedNames) lookup(context.Context, string, string) (victim, error) { panic("not used") }
func (pagedNames) delete(context.Context, string, string, types.UID) error {
	panic("not used")
}

// TestPickIsUniformAcrossPages is a chi-squared test: every pod, on whichever page it is
// listed, must be equally likely to be picked.
func TestPickIsUniformAcrossPages(t *testing.T) {
	const pods, picks = 10, 100_000
	names := make([]string, pods)
	for i := range names {
		names[i] = fmt.Sprint(i)
	}
	k := &Killer{api: pagedNames{names: names, per: 3}, rng: rand.New(rand.NewPCG(7, 11))}
	counts := map[string]int{}
	for range picks {
		name, n, err := k.pick(t.Context())
		if err != nil || n != pods {
			t.Fatalf("pick: %v, %d candidates", err, n)
		}
		counts[name]++
	}
	expected := float64(picks) / pods
	chi2 := 0.0
	for _, name := range names {
		d := float64(counts[name]) - expected
		chi2 += d * d / expected
	}
	// 27.88 is the 0.999 quantile of chi-squared with 9 degrees of freedom.
	if chi2 > 27.88 {
		t.Errorf("chi-squared = %.1f over %v, picks are not uniform", chi2, counts)
	}
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
	results := make(chan Result)        // nobody reads: the killer must not wait on the notifier
	clock = tick0.Add(90 * time.Second) // the first kill ends after the next two ticks fired
	ticks <- tick0
	ticks <- tick0.Add(30 * time.Second)
	ticks <- tick0.Add(60 * time.Second)
	ticks <- tick0.Add(120 * time.Second)
	close(ticks)
	k.run(t.Context(), ticks, results, time.Minute)

	if n := len(srv.Deletes()); n != 2 {
		t.Errorf("%d deletes, want 2 (ticks at +30s and +60s skipped)", n)
	}
	if _, open := <-results; open {
		t.Error("results not closed after ticks closed")
	}
}

// tableJSON prints a pod table the way kube-apiserver lays it out: metadata, then columns, then rows.
func tableJSON(next string, cols []string, rows ...[]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"42","continue":%q},"columnDefinitions":[`, next)
	for i, c := range cols {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name":%q,"type":"string","format":"","description":"","priority":0}`, c)
	}
	b.WriteString(`],"rows":[`)
	for i, r := range rows {
		if i > 0 {
			b.WriteString(",")
		}
		cells, _ := json.Marshal(r)
		fmt.Fprintf(&b, `{"cells":%s,"object":null}`, cells)
	}
	b.WriteString("]}\n")
	return b.String()
}

// cutAfter returns s up to the end of the first mark, as a connection dropped there would.
func cutAfter(s, mark string) string { return s[:strings.Index(s, mark)+len(mark)] }

func TestDecodeTable(t *testing.T) {
	podCols := []string{"Name", "Ready", "Status", "Restarts", "Age"}
	tests := []struct {
		name      string
		body      string
		wantNames []string
		wantNext  string
		wantErr   string // a substring of the error; empty when none is wanted
	}{
		{
			name: "a page with more to come, skipping a terminating pod",
			body: tableJSON("tok-2", podCols,
				[]string{"web-1", "1/1", "Running", "0", "5m"},
				[]string{"web-2", "1/1", "Terminating", "0", "5m"},
				[]string{"web-3", "0/1", "Running", "3", "1m"}),
			wantNames: []string{"web-1", "web-3"},
			wantNext:  "tok-2",
		},
		{
			name:      "the last page",
			body:      tableJSON("", podCols, []string{"web-1", "1/1", "Running", "0", "5m"}),
			wantNames: []string{"web-1"},
		},
		{
			name:      "columns found by name, not position",
			body:      tableJSON("", []string{"Status", "Extra", "Name"}, []string{"Running", "x", "web-1"}, []string{"Terminating", "x", "web-2"}),
			wantNames: []string{"web-1"},
		},
		{name: "no rows", body: tableJSON("", podCols)},
		{name: "rows null", body: `{"metadata":{},"columnDefinitions":[{"name":"Name"},{"name":"Status"}],"rows":null}`},
		{name: "no rows field", body: `{"metadata":{},"columnDefinitions":[{"name":"Name"},{"name":"Status"}]}`},
		{
			name:    "rows before columns cannot be read as they come",
			body:    `{"rows":[{"cells":["web-1","Running"]}],"columnDefinitions":[{"name":"Name"},{"name":"Status"}]}`,
			wantErr: "rows come before the column definitions",
		},
		{name: "no Status column", body: tableJSON("", []string{"Name", "Ready"}), wantErr: "no Name or Status column"},
		{
			name:    "short row",
			body:    tableJSON("", podCols, []string{"web-1", "1/1"}),
			wantErr: "row has 2 cells",
		},
		{
			name:    "name not a string",
			body:    `{"columnDefinitions":[{"name":"Name"},{"name":"Status"}],"rows":[{"cells":[7,"Running"]}]}`,
			wantErr: "pod name",
		},
		{
			name:      "cut off mid-row",
			body:      cutAfter(tableJSON("", podCols, []string{"web-1", "1/1", "Running", "0", "5m"}, []string{"web-2", "1/1", "Running", "0", "5m"}), `"web-2",`),
			wantNames: []string{"web-1"},
			wantErr:   "unexpected EOF",
		},
		{name: "a Status instead of a table", body: `["not", "a", "table"]`, wantErr: "want {"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			next, err := decodeTable(strings.NewReader(tt.body), func(name string) { names = append(names, name) })
			if tt.wantErr == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if !slices.Equal(names, tt.wantNames) {
				t.Errorf("names = %q, want %q", names, tt.wantNames)
			}
			if err == nil && next != tt.wantNext {
				t.Errorf("next = %q, want %q", next, tt.wantNext)
			}
		})
	}
}

// TestListPageReadsTheResponseToItsEnd checks the connection survives a page: a body closed
// before its end costs a new connection (HTTP/1) or a reset stream (HTTP/2) on every page.
func TestListPageReadsTheResponseToItsEnd(t *testing.T) {
	body := tableJSON("", []string{"Name", "Status"}, []string{"web-1", "Running"}) + strings.Repeat(" ", 8<<10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	api, err := newRESTPods(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		var names []string
		if _, err := api.listPage(t.Context(), listQuery{namespace: testNS, limit: pageSize}, func(n string) { names = append(names, n) }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(names, []string{"web-1"}) {
			t.Fatalf("names = %q", names)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 pages took %d connections, want 1", n)
	}
}

func TestPreflight(t *testing.T) {
	tests := []struct {
		name       string
		fail       *metav1.Status
		wantErr    bool
		wantConfig bool // a configError naming MACAQUE_NAMESPACE, which exits 2
	}{
		{name: "namespace readable"},
		{name: "forbidden names the setting", fail: fakeapi.Forbidden("list", testNS), wantErr: true, wantConfig: true},
		{name: "server error is not a bad setting", fail: fakeapi.InternalError("etcdserver: leader changed"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t, fakeapi.Pod(testNS, "web-1", nil), fakeapi.Pod(testNS, "web-2", nil))
			srv.Fail = func(fakeapi.Request) *metav1.Status { return tt.fail }
			api, err := newRESTPods(&rest.Config{Host: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			err = preflight(t.Context(), api, testNS)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tt.wantErr)
			}
			var ce *configError
			if isConfig := errors.As(err, &ce) && ce.variable == "MACAQUE_NAMESPACE"; isConfig != tt.wantConfig {
				t.Errorf("err = %v; a MACAQUE_NAMESPACE setting error: %v, want %v", err, isConfig, tt.wantConfig)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 || reqs[0].Method != http.MethodGet || reqs[0].Query.Get("limit") != "1" {
				t.Errorf("requests = %+v, want one list of a single row", reqs)
			}
		})
	}
}
