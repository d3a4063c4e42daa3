package alerts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// now is the tests' clock.
var now = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// alertJSON is one alert as GET /api/v2/alerts answers it; state active unless edited.
func alertJSON(labels, state string, silencedBy, inhibitedBy string, endsAt time.Time) string {
	return fmt.Sprintf(`{"labels":{%s},"annotations":{},"startsAt":"2026-12-07T09:50:00Z","endsAt":%q,"updatedAt":"2026-12-07T09:59:00Z",
"fingerprint":"f","receivers":[{"name":"null"}],"status":{"state":%q,"silencedBy":[%s],"inhibitedBy":[%s]}}`,
		labels, endsAt.Format(time.RFC3339), state, silencedBy, inhibitedBy)
}

// stub is an Alertmanager that answers every question with status and body, and records them.
type stub struct {
	mu      sync.Mutex
	queries []*url.URL
	status  int
	body    string
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.queries = append(s.queries, r.URL)
	status, body := s.status, s.body
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// serve starts s at path prefix and returns a client of it selecting matchers.
func serve(t *testing.T, s *stub, prefix, matchers string) *Client {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", s)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base, err := ParseURL(srv.URL + prefix)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMatchers(matchers)
	if err != nil {
		t.Fatal(err)
	}
	return NewClient(base, m, DefaultTimeout, srv.Client(), func() time.Time { return now })
}

func TestFiringKeepsOnlyActiveSelectedAlerts(t *testing.T) {
	later := now.Add(time.Hour)
	body := "[" + strings.Join([]string{
		alertJSON(`"alertname":"HighErrorRate","severity":"critical","namespace":"shop"`, "active", "", "", later),
		alertJSON(`"alertname":"KubeAPIDown","severity":"critical"`, "active", "", "", later),
		alertJSON(`"alertname":"Unprocessed","severity":"critical","namespace":"cart"`, "unprocessed", "", "", later),
		alertJSON(`"alertname":"SlowDisk","severity":"warning","namespace":"shop"`, "active", "", "", later),
		alertJSON(`"alertname":"Silenced","severity":"critical","namespace":"shop"`, "suppressed", `"s1"`, "", later),
		alertJSON(`"alertname":"Inhibited","severity":"critical","namespace":"shop"`, "suppressed", "", `"i1"`, later),
		alertJSON(`"alertname":"SilencedButActive","severity":"critical"`, "active", `"s2"`, "", later),
		alertJSON(`"alertname":"Resolved","severity":"critical"`, "active", "", "", now),
	}, ",") + "]"
	s := &stub{status: http.StatusOK, body: body}
	c := serve(t, s, "/alertmanager", `severity="critical"`)
	got, err := c.Firing(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Sorted by namespace, then name: the alert without one first.
	want := "KubeAPIDown, Unprocessed (namespace cart), HighErrorRate (namespace shop)"
	if joined(got) != want {
		t.Errorf("firing %s, want %s: critical, active or not yet processed, neither silenced, inhibited nor resolved", joined(got), want)
	}
	if len(s.queries) != 1 {
		t.Fatalf("%d queries, want 1", len(s.queries))
	}
	q := s.queries[0]
	if q.Path != "/alertmanager/api/v2/alerts" || q.Query().Get("active") != "true" || q.Query().Get("silenced") != "false" ||
		q.Query().Get("inhibited") != "false" || q.Query().Has("filter") {
		t.Errorf("query %s, want /alertmanager/api/v2/alerts?active=true&silenced=false&inhibited=false under the route prefix, with no filter", q)
	}
}

// joined names alerts as a report would, comma-separated.
func joined(as []Alert) string {
	names := make([]string, 0, len(as))
	for _, a := range as {
		names = append(names, a.String())
	}
	return strings.Join(names, ", ")
}

func TestFiringFailures(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    string
		refuses bool // no retry would change it: the URL is not Alertmanager's API
	}{
		{name: "500", status: 500, body: "boom\n", want: "HTTP 500 Internal Server Error: boom"},
		{name: "503", status: 503, want: "HTTP 503 Service Unavailable"},
		{name: "404", status: 404, body: "404 page not found", want: "HTTP 404 Not Found", refuses: true},
		{name: "401", status: 401, want: "HTTP 401 Unauthorized", refuses: true},
		{name: "429", status: 429, want: "HTTP 429 Too Many Requests"},
		{name: "an HTML page", status: 200, body: "<html>Grafana</html>", want: "the answer is not a JSON list of alerts", refuses: true},
		{name: "an object", status: 200, body: `{"status":"success"}`, want: "the answer is not a JSON list of alerts", refuses: true},
		{name: "an empty object", status: 200, body: `{}`, want: "the answer is not a JSON list of alerts (it does not start with '[')", refuses: true},
		{name: "cut short", status: 200, body: `[` + alertJSON(`"alertname":"A"`, "active", "", "", now.Add(time.Hour)), want: "the answer is not a JSON list of alerts", refuses: true},
		{name: "a bad alert", status: 200, body: `[{"labels":"critical"}]`, want: "the answer is not a JSON list of alerts", refuses: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := serve(t, &stub{status: tt.status, body: tt.body}, "", "{}")
			got, err := c.Firing(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Firing = %v, %v; want an error saying %q", got, err, tt.want)
			}
			if Refuses(err) != tt.refuses {
				t.Errorf("Refuses(%v) = %v, want %v", err, Refuses(err), tt.refuses)
			}
		})
	}
}

func TestFiringTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select { // an Alertmanager that never answers
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	base, _ := ParseURL(srv.URL)
	m, _ := ParseMatchers("{}")
	c := NewClient(base, m, 50*time.Millisecond, nil, func() time.Time { return now })
	done := make(chan error, 1)
	go func() {
		_, err := c.Firing(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "Client.Timeout exceeded") || Refuses(err) {
			t.Errorf("Firing = %v, want the client's timeout, which a retry may pass", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Firing still waiting 5s after its 50ms timeout")
	}
	if _, err := c.Firing(canceled()); !errors.Is(err, context.Canceled) {
		t.Errorf("Firing with its context done = %v, want context.Canceled", err)
	}
}

// canceled is a context already done.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestFiringUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there now
	base, _ := ParseURL(addr)
	m, _ := ParseMatchers("{}")
	_, err := NewClient(base, m, DefaultTimeout, nil, time.Now).Firing(t.Context())
	if err == nil || !strings.Contains(err.Error(), "connection refused") || Refuses(err) {
		t.Errorf("Firing = %v, want connection refused, which a retry may pass", err)
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "http://alertmanager.monitoring:9093", want: "http://alertmanager.monitoring:9093"},
		{in: " https://am.example/prefix/ ", want: "https://am.example/prefix/"},
		{in: "alertmanager:9093", wantErr: "not an http(s) URL"},
		{in: "alertmanager.monitoring", wantErr: "not an http(s) URL"},
		{in: "ftp://am:21", wantErr: "not an http(s) URL"},
		{in: "http://", wantErr: "not an http(s) URL"},
		{in: "http://am:9093/api/v2/alerts?active=true", wantErr: "has a query or a fragment"},
		{in: "http://am:9093/#/alerts", wantErr: "has a query or a fragment"},
		{in: "http://am:bad", wantErr: "not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := ParseURL(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseURL(%q) = %v, %v; want an error saying %q", tt.in, u, err, tt.wantErr)
				}
				return
			}
			if err != nil || u.String() != tt.want {
				t.Errorf("ParseURL(%q) = %v, %v; want %s", tt.in, u, err, tt.want)
			}
		})
	}
}

func TestWhereHidesThePassword(t *testing.T) {
	base, err := ParseURL("https://macaque:s3cret@am.example")
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(base, Matchers{}, DefaultTimeout, nil, time.Now)
	if strings.Contains(c.Where(), "s3cret") {
		t.Errorf("Where() = %s, shows the password", c.Where())
	}
}
