package faultproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// upstream is a stand-in API server that records what reached it.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // "METHOD URI Accept"
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Accept"))
		u.mu.Unlock()
		w.Header().Set("X-Upstream", "yes")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, "upstream %s %s", r.Method, r.URL.Path)
	}))
	u.EnableHTTP2 = true
	u.StartTLS()
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

// setup starts an upstream and a proxy in front of it, and a client that trusts the proxy.
// The proxy is closed when the test ends, and that must not hang.
func setup(t *testing.T) (*upstream, *Proxy, *http.Client) {
	t.Helper()
	u := newUpstream(t)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: u.Certificate().Raw})
	p, err := New(u.URL, caPEM)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeWithin(t, p, 5*time.Second) })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CAPEM())
	tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return u, p, &http.Client{Transport: tr}
}

// closeWithin closes p and fails if that takes longer than d: a handler left blocking.
func closeWithin(t *testing.T, p *Proxy, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(d):
		t.Errorf("Close did not return within %v", d)
	}
}

// result is what a client got.
type result struct {
	status int
	body   string
	err    error
}

// do sends a request through the proxy in the background.
func do(ctx context.Context, c *http.Client, p *Proxy, method, uri, accept string) <-chan result {
	out := make(chan result, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, method, p.URL()+uri, nil)
		if err != nil {
			out <- result{err: err}
			return
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := c.Do(req)
		if err != nil {
			out <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		out <- result{status: resp.StatusCode, body: string(b), err: err}
	}()
	return out
}

// get waits up to 5 seconds for a result.
func get(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no answer within 5s")
		return result{}
	}
}

// pending checks that no answer has come yet, giving one a short while to show up.
func pending(t *testing.T, ch <-chan result) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("answered %+v while it should be held", r)
	case <-time.After(100 * time.Millisecond):
	}
}

// eventually polls cond for up to 5 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestForwardsEverythingWithoutRules(t *testing.T) {
	u, p, c := setup(t)
	r := get(t, do(t.Context(), c, p, "GET", "/api/v1/pods?limit=1", "application/json"))
	if r.err != nil || r.status != 200 || r.body != "upstream GET /api/v1/pods" {
		t.Fatalf("got %+v", r)
	}
	if got := u.requests(); len(got) != 1 || got[0] != "GET /api/v1/pods?limit=1 application/json" {
		t.Errorf("upstream saw %q", got)
	}
	if log := p.Log(); len(log) != 1 || log[0].Outcome != "200" {
		t.Errorf("log %v", log)
	}
}

func TestMatching(t *testing.T) {
	const uri = "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dweb&labelSelector=app%3Dweb"
	tests := []struct {
		name string
		rule Rule
		want bool
	}{
		{"zero rule", Rule{}, true},
		{"method", Rule{Method: "GET"}, true},
		{"other method", Rule{Method: "DELETE"}, false},
		{"path", Rule{Path: "/api/v1/namespaces/ns/pods"}, true},
		{"other path", Rule{Path: "/api/v1/namespaces/ns/pods/web"}, false},
		{"prefix", Rule{PathPrefix: "/api/v1/namespaces/ns/"}, true},
		{"other prefix", Rule{PathPrefix: "/api/v1/namespaces/other/"}, false},
		{"query", Rule{Query: map[string]string{"fieldSelector": "metadata.name=web"}}, true},
		{"query both", Rule{Query: map[string]string{"fieldSelector": "metadata.name=web", "labelSelector": "app=web"}}, true},
		{"query other value", Rule{Query: map[string]string{"fieldSelector": "metadata.name=api"}}, false},
		{"query missing", Rule{Query: map[string]string{"limit": "1"}}, false},
		{"no query absent", Rule{NoQuery: []string{"dryRun"}}, true},
		{"no query present", Rule{NoQuery: []string{"labelSelector"}}, false},
		{"func", Rule{Match: func(r *http.Request) bool { return r.URL.Query().Get("labelSelector") == "app=web" }}, true},
		{"func false", Rule{Match: func(*http.Request) bool { return false }}, false},
		{"all but one", Rule{Method: "GET", Path: "/api/v1/namespaces/ns/pods", NoQuery: []string{"fieldSelector"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, p, c := setup(t)
			tt.rule.Action = Fail
			tt.rule.Status = http.StatusTeapot
			f := p.Add(tt.rule)
			r := get(t, do(t.Context(), c, p, "GET", uri, ""))
			if r.err != nil {
				t.Fatal(r.err)
			}
			if matched := r.status == http.StatusTeapot; matched != tt.want {
				t.Errorf("matched %v (status %d), want %v", matched, r.status, tt.want)
			}
			if n := f.Count(); (n == 1) != tt.want {
				t.Errorf("Count %d", n)
			}
		})
	}
}

func TestHoldResponseForwardsAndWithholdsTheAnswerUntilReleased(t *testing.T) {
	u, p, c := setup(t)
	f := p.Add(Rule{Method: "DELETE", Action: HoldResponse})
	ch := do(t.Context(), c, p, "DELETE", "/api/v1/namespaces/ns/pods/web", "")
	eventually(t, "the DELETE to reach upstream", func() bool { return len(u.requests()) == 1 })
	pending(t, ch)
	f.Release()
	if r := get(t, ch); r.err != nil || r.status != 200 || r.body != "upstream DELETE /api/v1/namespaces/ns/pods/web" {
		t.Fatalf("after release got %+v", r)
	}
	// Later matches go through at once.
	if r := get(t, do(t.Context(), c, p, "DELETE", "/x", "")); r.status != 200 {
		t.Fatalf("after release got %+v", r)
	}
	if f.Count() != 2 {
		t.Errorf("Count %d, want 2", f.Count())
	}
}

func TestHoldResponseClientGivesUp(t *testing.T) {
	u, p, c := setup(t)
	p.Add(Rule{Action: HoldResponse})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	r := get(t, do(ctx, c, p, "DELETE", "/api/v1/namespaces/ns/pods/web", ""))
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("got %+v, want the client's deadline", r)
	}
	if len(u.requests()) != 1 {
		t.Errorf("upstream saw %q, want the DELETE committed", u.requests())
	}
	eventually(t, "the withheld answer logged", func() bool {
		log := p.Log()
		return len(log) == 1 && strings.Contains(log[0].Outcome, "answer withheld: client gave up")
	})
}

func TestHoldResponseDelay(t *testing.T) {
	_, p, c := setup(t)
	p.Add(Rule{Action: HoldResponse, Delay: 200 * time.Millisecond})
	start := time.Now()
	r := get(t, do(t.Context(), c, p, "GET", "/slow", ""))
	if r.status != 200 || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("got %+v after %v, want 200 after the delay", r, time.Since(start))
	}
}

func TestHoldRequestForwardsOnlyOnRelease(t *testing.T) {
	u, p, c := setup(t)
	f := p.Add(Rule{Method: "GET", Query: map[string]string{"fieldSelector": "metadata.name=web"}, Action: HoldRequest})
	ch := do(t.Context(), c, p, "GET", "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dweb", "")
	eventually(t, "the GET to be held", func() bool { return f.Count() == 1 })
	// Other requests pass while one is held.
	if r := get(t, do(t.Context(), c, p, "GET", "/other", "")); r.status != 200 {
		t.Fatalf("other request got %+v", r)
	}
	pending(t, ch)
	if got := u.requests(); len(got) != 1 || !strings.HasPrefix(got[0], "GET /other") {
		t.Fatalf("upstream saw %q before the release, want only /other", got)
	}
	f.Release()
	if r := get(t, ch); r.status != 200 {
		t.Fatalf("after release got %+v", r)
	}
	if got := u.requests(); len(got) != 2 {
		t.Errorf("upstream saw %q, want the held GET after the release", got)
	}
}

func TestHoldRequestClientGivesUpNeverForwards(t *testing.T) {
	u, p, c := setup(t)
	f := p.Add(Rule{Action: HoldRequest})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if r := get(t, do(ctx, c, p, "GET", "/x", "")); r.err == nil {
		t.Fatalf("got %+v, want the client's deadline", r)
	}
	f.Release() // too late: the request is gone
	eventually(t, "the handler to finish", func() bool { return len(p.Log()) == 1 })
	if got := u.requests(); len(got) != 0 {
		t.Errorf("upstream saw %q", got)
	}
}

func TestDropNeverForwards(t *testing.T) {
	tests := []struct {
		name   string
		rule   Rule
		letGo  func(*Fault, context.CancelFunc)
		reason string
	}{
		{"client gives up", Rule{Action: Drop}, func(_ *Fault, cancel context.CancelFunc) { cancel() }, "client gave up"},
		{"released", Rule{Action: Drop}, func(f *Fault, _ context.CancelFunc) { f.Release() }, "released"},
		{"delay", Rule{Action: Drop, Delay: 100 * time.Millisecond}, func(*Fault, context.CancelFunc) {}, "delay passed"},
		{"removed", Rule{Action: Drop}, func(f *Fault, _ context.CancelFunc) { f.Remove() }, "released"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, p, c := setup(t)
			f := p.Add(tt.rule)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			ch := do(ctx, c, p, "DELETE", "/api/v1/namespaces/ns/pods/web", "")
			eventually(t, "the DELETE to be matched", func() bool { return f.Count() == 1 })
			tt.letGo(f, cancel)
			if r := get(t, ch); r.err == nil {
				t.Fatalf("got %+v, want a broken stream", r)
			}
			eventually(t, "the drop logged", func() bool { return len(p.Log()) == 1 })
			if log := p.Log(); !strings.HasSuffix(log[0].Outcome, tt.reason) {
				t.Errorf("log %v, want %q", log, tt.reason)
			}
			if got := u.requests(); len(got) != 0 {
				t.Errorf("upstream saw %q", got)
			}
		})
	}
}

func TestFailAndAbort(t *testing.T) {
	tests := []struct {
		name       string
		rule       Rule
		wantStatus int    // 0: a broken stream
		wantBody   string // substring
		forwarded  bool
	}{
		{"fail", Rule{Action: Fail, Status: 503, Body: `{"kind":"Status"}`}, 503, `{"kind":"Status"}`, false},
		{"fail default", Rule{Action: Fail, Name: "no-lists"}, 500, `"message":"faultproxy: no-lists"`, false},
		{"fail after forwarding", Rule{Action: Fail, Status: 504, Forward: true}, 504, "", true},
		{"abort", Rule{Action: Abort}, 0, "", false},
		{"abort after forwarding", Rule{Action: Abort, Forward: true}, 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, p, c := setup(t)
			p.Add(tt.rule)
			r := get(t, do(t.Context(), c, p, "DELETE", "/api/v1/namespaces/ns/pods/web", ""))
			if tt.wantStatus == 0 {
				if r.err == nil {
					t.Errorf("got %+v, want a broken stream", r)
				}
			} else if r.err != nil || r.status != tt.wantStatus || !strings.Contains(r.body, tt.wantBody) {
				t.Errorf("got %+v, want %d with %q", r, tt.wantStatus, tt.wantBody)
			}
			if forwarded := len(u.requests()) == 1; forwarded != tt.forwarded {
				t.Errorf("upstream saw %q, want forwarded=%v", u.requests(), tt.forwarded)
			}
		})
	}
}

func TestRewritesAccept(t *testing.T) {
	u, p, c := setup(t)
	const table = "application/json;as=Table;v=v1;g=meta.k8s.io"
	p.Add(Rule{Method: "GET", Accept: "application/json"})
	if r := get(t, do(t.Context(), c, p, "GET", "/api/v1/pods", table)); r.status != 200 {
		t.Fatalf("got %+v", r)
	}
	if got := u.requests(); len(got) != 1 || got[0] != "GET /api/v1/pods application/json" {
		t.Errorf("upstream saw %q, want Accept rewritten", got)
	}
}

func TestTimesLimitsARule(t *testing.T) {
	_, p, c := setup(t)
	f := p.Add(Rule{Action: Fail, Status: 503, Times: 2})
	var statuses []int
	for range 4 {
		statuses = append(statuses, get(t, do(t.Context(), c, p, "GET", "/x", "")).status)
	}
	if fmt.Sprint(statuses) != "[503 503 200 200]" {
		t.Errorf("statuses %v, want two failures then passes", statuses)
	}
	if f.Count() != 2 || len(f.Requests()) != 2 || f.Requests()[0] != "GET /x" {
		t.Errorf("Count %d, Requests %q", f.Count(), f.Requests())
	}
}

func TestFirstMatchingRuleWinsAndRemoveRestores(t *testing.T) {
	_, p, c := setup(t)
	first := p.Add(Rule{Method: "GET", Action: Fail, Status: 503})
	second := p.Add(Rule{Action: Fail, Status: 418})
	if r := get(t, do(t.Context(), c, p, "GET", "/x", "")); r.status != 503 {
		t.Errorf("got %d, want the first rule's 503", r.status)
	}
	first.Remove()
	if r := get(t, do(t.Context(), c, p, "GET", "/x", "")); r.status != 418 {
		t.Errorf("got %d after Remove, want the second rule's 418", r.status)
	}
	second.Remove()
	if r := get(t, do(t.Context(), c, p, "GET", "/x", "")); r.status != 200 {
		t.Errorf("got %d with no rules, want 200", r.status)
	}
	if first.Count() != 1 || second.Count() != 1 {
		t.Errorf("counts %d, %d", first.Count(), second.Count())
	}
}

// TestCloseLetsGoOfHeldRequests holds requests in every way and checks Close returns promptly,
// breaking them, and that requests after Close are refused.
func TestCloseLetsGoOfHeldRequests(t *testing.T) {
	u, p, c := setup(t)
	p.Add(Rule{Path: "/hold-response", Action: HoldResponse})
	p.Add(Rule{Path: "/hold-request", Action: HoldRequest})
	p.Add(Rule{Path: "/drop", Action: Drop})
	var chans []<-chan result
	for _, path := range []string{"/hold-response", "/hold-request", "/drop"} {
		chans = append(chans, do(t.Context(), c, p, "GET", path, ""))
	}
	eventually(t, "the hold-response request to reach upstream", func() bool { return len(u.requests()) == 1 })
	eventually(t, "all three held", func() bool {
		n := 0
		p.mu.Lock()
		for _, f := range p.rules {
			n += f.count
		}
		p.mu.Unlock()
		return n == 3
	})
	closeWithin(t, p, 2*time.Second)
	for _, ch := range chans {
		if r := get(t, ch); r.err == nil {
			t.Errorf("got %+v after Close, want a broken stream", r)
		}
	}
	if r := get(t, do(t.Context(), c, p, "GET", "/x", "")); r.err == nil {
		t.Errorf("got %+v after Close, want a refused connection", r)
	}
}

// TestConcurrentRequestsAreCountedOnce runs many requests at once against a limited rule
// (go test -race checks the locking).
func TestConcurrentRequestsAreCountedOnce(t *testing.T) {
	u, p, c := setup(t)
	f := p.Add(Rule{Action: Fail, Status: 503, Times: 10})
	const n = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range n {
		wg.Go(func() {
			r := <-do(t.Context(), c, p, "GET", "/x", "")
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[503] != 10 || statuses[200] != n-10 || f.Count() != 10 || len(u.requests()) != n-10 {
		t.Errorf("statuses %v, Count %d, upstream %d; want 10 failed and %d forwarded", statuses, f.Count(), len(u.requests()), n-10)
	}
}
