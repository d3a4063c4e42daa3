package main

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

func TestPerTickAttributesRequestsAndCPUToTheirTick(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	every := 2 * time.Second
	ticks := []tickLog{
		{Tick: t0, Time: t0.Add(150 * time.Millisecond), Pod: "web-000001", Outcome: "killed"},
		{Tick: t0.Add(every), Time: t0.Add(every + 90*time.Millisecond), Pod: "web-000002", Outcome: "not found"},
	}
	records := []record{
		{at: t0.Add(-time.Second), method: "GET", url: "/api/v1/namespaces/ns/pods?limit=500", bytes: 999}, // preflight
		{at: t0.Add(10 * time.Millisecond), method: "GET", url: "/api/v1/namespaces/ns/pods?includeObject=None&limit=500", bytes: 100, took: 40 * time.Millisecond},
		{at: t0.Add(60 * time.Millisecond), method: "GET", url: "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dweb-000001", bytes: 20},
		{at: t0.Add(120 * time.Millisecond), method: "DELETE", url: "/api/v1/namespaces/ns/pods/web-000001", bytes: 5},
		{at: t0.Add(every + 5*time.Millisecond), method: "GET", url: "/api/v1/namespaces/ns/pods?limit=500", bytes: 70},
		{at: t0.Add(every + 50*time.Millisecond), method: "DELETE", url: "/api/v1/namespaces/ns/pods/other", bytes: 1},
	}
	samples := []cpuSample{
		{at: t0.Add(-20 * time.Millisecond), cpu: 100 * time.Millisecond},
		{at: t0.Add(100 * time.Millisecond), cpu: 130 * time.Millisecond},
		{at: t0.Add(every - 10*time.Millisecond), cpu: 150 * time.Millisecond},
		{at: t0.Add(every + 100*time.Millisecond), cpu: 170 * time.Millisecond},
		{at: t0.Add(2*every - 10*time.Millisecond), cpu: 180 * time.Millisecond},
		{at: t0.Add(2*every + 10*time.Millisecond), cpu: 250 * time.Millisecond}, // the next tick's work
	}
	got := perTick(ticks, records, every)
	want := []tickMetrics{
		{sentDelete: true, toDelete: 120 * time.Millisecond, toReport: 150 * time.Millisecond, bytes: 125, requests: 3, lists: 1,
			apiTime: 40 * time.Millisecond},
		{toReport: 90 * time.Millisecond, bytes: 71, requests: 2},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d ticks, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("tick %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if lists := listTimes(ticks, records, every); !slices.Equal(lists, []time.Duration{40 * time.Millisecond}) {
		t.Errorf("list request times %v, want the one candidate list's 40ms (not the preflight's, nor the read-back's)", lists)
	}
	cpu := cpuPerTick(ticks, samples, every)
	if want := []time.Duration{50 * time.Millisecond, 30 * time.Millisecond}; !slices.Equal(cpu, want) {
		t.Errorf("CPU per tick %v, want %v", cpu, want)
	}
}

func TestIsDeleteOf(t *testing.T) {
	for _, c := range []struct {
		uri, pod string
		want     bool
	}{
		{"/api/v1/namespaces/ns/pods/web-1", "web-1", true},
		{"/api/v1/namespaces/ns/pods/web-10", "web-1", false},
		{"/api/v1/namespaces/ns/secrets/web-1", "web-1", false},
		{"/api/v1/namespaces/ns/pods/web-1", "", false},
	} {
		if got := isDeleteOf(c.uri, c.pod); got != c.want {
			t.Errorf("isDeleteOf(%q, %q) = %v, want %v", c.uri, c.pod, got, c.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	s := summarize([]float64{5, 1, 3, 2})
	if s.median != 2.5 || s.min != 1 || s.max != 5 || s.n != 4 {
		t.Errorf("got %+v", s)
	}
	if s := summarize([]float64{3, 1, 2}); s.median != 2 {
		t.Errorf("odd count: median %v, want 2", s.median)
	}
	if s := summarize(nil); s.n != 0 {
		t.Errorf("empty: %+v", s)
	}
}

func TestParseStatCPU(t *testing.T) {
	// The name holds a space and a ')' to prove fields are counted from the last ')'.
	stat := []byte("4242 (mac aque) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 37 5 0 0 20 0 9 0 100 1000 500\n")
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 420 * time.Millisecond; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseStatCPU([]byte("4242 (macaque S 1")); err == nil {
		t.Error("no error for a line without ')'")
	}
}

func TestParseVmHWM(t *testing.T) {
	got, err := parseVmHWM([]byte("Name:\tmacaque\nVmPeak:\t 1275308 kB\nVmHWM:\t   20736 kB\nVmRSS:\t   20128 kB\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(20736 << 10); got != want {
		t.Errorf("got %d, want %d", got, want)
	}
	if _, err := parseVmHWM([]byte("Name:\tmacaque\n")); err == nil {
		t.Error("no error without VmHWM")
	}
}

func TestCountTableRowsSkipsTerminating(t *testing.T) {
	body := []byte(`{"kind":"Table","metadata":{"continue":"abc"},
		"columnDefinitions":[{"name":"Name"},{"name":"Ready"},{"name":"Status"}],
		"rows":[{"cells":["a","1/1","Running"]},{"cells":["b","1/1","Terminating"]},{"cells":["c","1/1","Running"]}]}`)
	n, next, err := countTableRows(body)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || next != "abc" {
		t.Errorf("got %d rows, continue %q; want 2, abc", n, next)
	}
}

// proxyTo starts a measuring proxy in front of upstream (both closed when the test ends) and a
// client that trusts the proxy and speaks HTTP/2 to it, as client-go does.
func proxyTo(t *testing.T, upstream *httptest.Server) (*measuringProxy, *http.Client) {
	t.Helper()
	t.Cleanup(upstream.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: upstream.Certificate().Raw})
	p, err := startProxy(upstream.URL, caPEM, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CAPEM())
	return p, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
}

// TestProxyPassesGzipAndAuthorizationThrough checks the two properties the figures depend on:
// macaque's token reaches the API server, and a compressed response is neither unzipped nor
// re-zipped on the way, so the bytes counted are the bytes the server sent.
func TestProxyPassesGzipAndAuthorizationThrough(t *testing.T) {
	payload := bytes.Repeat([]byte(`{"cells":["web-000001","1/1","Running"]},`), 1000)
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write(payload)
	_ = zw.Close()

	upstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer sa-token" {
			http.Error(w, "no token: "+got, http.StatusUnauthorized)
			return
		}
		if r.Header.Get("Accept-Encoding") != "gzip" {
			_, _ = w.Write(payload)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(zipped.Bytes())
	}))
	p, client := proxyTo(t, upstream)
	req, _ := http.NewRequest(http.MethodGet, p.URL()+"/api/v1/namespaces/ns/pods?limit=500", nil)
	req.Header.Set("Authorization", "Bearer sa-token")
	resp, err := client.Do(req) // Go asks for gzip and unzips, as client-go does
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, payload) {
		t.Fatalf("status %s, %d bytes: %.100s", resp.Status, len(body), body)
	}
	recs := p.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	r := recs[0]
	if r.method != http.MethodGet || r.url != "/api/v1/namespaces/ns/pods?limit=500" || r.status != http.StatusOK {
		t.Errorf("record %+v", r)
	}
	if r.bytes != int64(zipped.Len()) {
		t.Errorf("counted %d bytes, want the %d compressed bytes sent (payload is %d)", r.bytes, zipped.Len(), len(payload))
	}
}

// TestProxyRecordsARequestTheClientAbandons covers a client that stops reading mid-body (a
// streaming decoder that returns at the end of the rows): the request must still be counted.
func TestProxyRecordsARequestTheClientAbandons(t *testing.T) {
	const total = 32 << 20
	upstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for sent := 0; sent < total; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	p, client := proxyTo(t, upstream)
	resp, err := client.Get(p.URL() + "/api/v1/namespaces/ns/pods")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close() // hang up with most of the body unsent

	deadline := time.Now().Add(10 * time.Second)
	for len(p.Records()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned request was never recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := p.Records()[0]; r.bytes < 1024 || r.bytes >= total {
		t.Errorf("recorded %d bytes, want what was sent before the hang-up (≥ 1024, < %d)", r.bytes, total)
	}
}

// TestListAllPagesAsTheStrategySays checks the probe's requests (the limit of the first and of
// the continue requests, the tokens followed, the selectors) and that it counts the bytes as
// sent, gzipped, and after gunzip.
func TestListAllPagesAsTheStrategySays(t *testing.T) {
	const rows = 7
	tests := []struct {
		name   string
		s      strategy
		limits []string // of each request
	}{
		{name: "pages of 3", s: strategy{first: 3, rest: 3}, limits: []string{"3", "3", "3"}},
		{name: "first 2, then the rest", s: strategy{first: 2}, limits: []string{"2", ""}},
		{name: "unpaged", limits: []string{""}},
		{name: "count without selectors", s: strategy{first: 1, noSelectors: true}, limits: []string{"1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var limits []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				q := r.URL.Query()
				limits = append(limits, q.Get("limit"))
				if (q.Get("labelSelector") == "") != tt.s.noSelectors || r.Header.Get("Accept") != tableAccept {
					t.Errorf("request %s, Accept %q", r.URL, r.Header.Get("Accept"))
				}
				start := 0
				if c := q.Get("continue"); c != "" {
					start = int(c[0] - '0')
				}
				end := rows
				if l := q.Get("limit"); l != "" {
					end = min(rows, start+int(l[0]-'0'))
				}
				next := ""
				if end < rows {
					next = string(rune('0' + end))
				}
				var body bytes.Buffer
				body.WriteString(`{"kind":"Table","metadata":{"continue":"` + next + `"},"rows":[`)
				for i := start; i < end; i++ {
					if i > start {
						body.WriteString(",")
					}
					body.WriteString(`{"cells":["web"]}`)
				}
				body.WriteString("]}")
				w.Header().Set("Content-Encoding", "gzip")
				zw := gzip.NewWriter(w)
				_, _ = zw.Write(body.Bytes())
				_ = zw.Close()
			}))
			t.Cleanup(srv.Close)
			calls, err := listAll(t.Context(), srv.Client(), srv.URL, "ns", tt.s)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(limits, tt.limits) {
				t.Errorf("limits %q, want %q", limits, tt.limits)
			}
			got := 0
			for _, c := range calls {
				got += c.rows
				if c.wire == 0 || c.raw <= 0 || c.took <= 0 {
					t.Errorf("call %+v: bytes or time not counted", c)
				}
			}
			if want := map[bool]int{false: rows, true: 1}[tt.s.noSelectors]; got != want {
				t.Errorf("%d rows, want %d", got, want)
			}
		})
	}
}
