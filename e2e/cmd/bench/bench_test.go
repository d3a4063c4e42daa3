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
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
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
		// the kill's verdict, open until the Deployment is back: a request, but no API time
		{at: t0.Add(130 * time.Millisecond), method: "GET", url: "/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb&watch=true", bytes: 7, took: time.Second},
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
		{sentDelete: true, toDelete: 120 * time.Millisecond, toReport: 150 * time.Millisecond, bytes: 132, requests: 4, lists: 1,
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

func TestParseOptionsSizesAndClusterCase(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		sizes   []int
		cluster clusterSpec
		wantErr string // part of the error; empty: none
	}{
		{name: "defaults: 10k, 50k, then 100k pods in 1,000 namespaces", sizes: []int{10000, 50000},
			cluster: clusterSpec{pods: 100000, namespaces: 1000}},
		{name: "cluster-wide case skipped", args: []string{"-cluster", ""}, sizes: []int{10000, 50000}},
		{name: "cluster-wide case alone", args: []string{"-pods", "", "-cluster", "2000x100"},
			cluster: clusterSpec{pods: 2000, namespaces: 100}},
		{name: "spaces around", args: []string{"-pods", " ", "-cluster", " 30x3 "}, cluster: clusterSpec{pods: 30, namespaces: 3}},
		{name: "nothing to measure", args: []string{"-pods", "", "-cluster", ""}, wantErr: "nothing to measure"},
		{name: "no x", args: []string{"-cluster", "100000"}, wantErr: "-cluster: \"100000\" is not PODSxNAMESPACES"},
		{name: "not numbers", args: []string{"-cluster", "tenxtwo"}, wantErr: "-cluster: \"tenxtwo\": PODS and NAMESPACES must be positive"},
		{name: "no namespaces", args: []string{"-cluster", "100x0"}, wantErr: "must be positive"},
		{name: "no pods", args: []string{"-cluster", "0x10"}, wantErr: "must be positive"},
		{name: "fewer pods than namespaces", args: []string{"-cluster", "100x1000"}, wantErr: "do not spread evenly"},
		{name: "uneven", args: []string{"-cluster", "1001x10"}, wantErr: "1001 pods do not spread evenly over 10 namespaces"},
		{name: "bad size still refused", args: []string{"-pods", "10,x", "-cluster", ""}, wantErr: "-pods"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(o.sizes, tt.sizes) || o.cluster != tt.cluster {
				t.Errorf("sizes %v, cluster %+v; want %v, %+v", o.sizes, o.cluster, tt.sizes, tt.cluster)
			}
			if o.cluster.pods > 0 && o.cluster.replicas()*o.cluster.namespaces != o.cluster.pods {
				t.Errorf("%d replicas in each of %d namespaces is not %d pods", o.cluster.replicas(), o.cluster.namespaces, o.cluster.pods)
			}
		})
	}
}

func TestIsReadBack(t *testing.T) {
	for _, c := range []struct {
		name, method, url string
		want              bool
	}{
		{"in a namespace", "GET", "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dweb-1&labelSelector=a%3Db", true},
		{"cluster-wide, system namespaces left out", "GET",
			"/api/v1/pods?fieldSelector=metadata.name%3Dweb-1%2Cmetadata.namespace%21%3Dkube-system&labelSelector=a%3Db", true},
		{"candidate list leaving macaque out", "GET",
			"/api/v1/pods?fieldSelector=status.phase%3DRunning%2Cmetadata.name%21%3Dmacaque-bench&includeObject=None&limit=50000", false},
		{"the victim's ReplicaSet", "GET", "/apis/apps/v1/namespaces/ns/replicasets/web-1?fieldSelector=metadata.name%3Dweb-1", false},
		{"the DELETE", "DELETE", "/api/v1/namespaces/ns/pods/web-1", false},
		{"an Event", "POST", "/apis/events.k8s.io/v1/namespaces/ns/events", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := isReadBack(record{method: c.method, url: c.url}); got != c.want {
				t.Errorf("isReadBack(%s %s) = %v, want %v", c.method, c.url, got, c.want)
			}
		})
	}
}

// TestClusterWideTickIsAttributed checks a cluster-wide tick's requests: the list of every
// namespace, the read-back by name across them, and the DELETE in the namespace it found.
func TestClusterWideTickIsAttributed(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	every := 11 * time.Second
	ticks := []tickLog{{Tick: t0, Time: t0.Add(2 * time.Second), Pod: "web-042-5d8f-x2x4q", Outcome: "killed"}}
	records := []record{
		{at: t0.Add(time.Millisecond), method: "GET", url: "/api/v1/pods?fieldSelector=status.phase%3DRunning%2Cmetadata.namespace%21%3Dkube-system&includeObject=None&limit=50000",
			took: 1400 * time.Millisecond},
		{at: t0.Add(1500 * time.Millisecond), method: "GET", url: "/api/v1/pods?fieldSelector=metadata.name%3Dweb-042-5d8f-x2x4q%2Cmetadata.namespace%21%3Dkube-system",
			took: 300 * time.Millisecond},
		{at: t0.Add(1850 * time.Millisecond), method: "GET", url: "/apis/apps/v1/namespaces/wide-042/replicasets/web-042-5d8f", took: 5 * time.Millisecond},
		{at: t0.Add(1900 * time.Millisecond), method: "DELETE", url: "/api/v1/namespaces/wide-042/pods/web-042-5d8f-x2x4q", took: 10 * time.Millisecond},
	}
	m := perTick(ticks, records, every)[0]
	if !m.sentDelete || m.toDelete != 1900*time.Millisecond || m.requests != 4 || m.lists != 1 {
		t.Errorf("tick %+v, want the DELETE at 1.9s and 4 requests of which 1 list", m)
	}
	if got := listTimes(ticks, records, every); !slices.Equal(got, []time.Duration{1400 * time.Millisecond}) {
		t.Errorf("list times %v, want the cluster-wide list's 1.4s", got)
	}
	if got := requestTimes(ticks, records, every, isReadBack); !slices.Equal(got, []time.Duration{300 * time.Millisecond}) {
		t.Errorf("read-back times %v, want the one read-back's 300ms", got)
	}
}

func TestAtFullStrength(t *testing.T) {
	three := int32(3)
	full := func() appsv1.Deployment {
		d := appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: &three}}
		d.Generation = 2
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}
		return d
	}
	tests := []struct {
		name   string
		change func(*appsv1.Deployment)
		want   bool
	}{
		{name: "every pod updated, Ready and available", change: func(*appsv1.Deployment) {}, want: true},
		{name: "spec not yet seen by the controller", change: func(d *appsv1.Deployment) { d.Generation = 3 }},
		{name: "a kill not yet replaced", change: func(d *appsv1.Deployment) { d.Status.ReadyReplicas, d.Status.AvailableReplicas = 2, 2 }},
		{name: "replacement Ready, not yet available", change: func(d *appsv1.Deployment) { d.Status.AvailableReplicas = 2 }},
		{name: "one pod too many", change: func(d *appsv1.Deployment) { d.Status.Replicas = 4 }},
		{name: "mid-rollout", change: func(d *appsv1.Deployment) { d.Status.UpdatedReplicas = 1 }},
		{name: "replicas unset means one", change: func(d *appsv1.Deployment) {
			d.Spec.Replicas = nil
			d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
		}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := full()
			tt.change(&d)
			if got := atFullStrength(d); got != tt.want {
				t.Errorf("atFullStrength(%+v) = %v, want %v", d.Status, got, tt.want)
			}
		})
	}
	short := full()
	short.Status.ReadyReplicas = 1
	if ready, n := spreadProgress([]appsv1.Deployment{full(), short, full()}); ready != 7 || n != 2 {
		t.Errorf("spreadProgress: %d Ready, %d at full strength; want 7, 2", ready, n)
	}
}

func TestDaemonEnvScope(t *testing.T) {
	for _, c := range []struct {
		name, scope, want string
	}{
		{name: "the ServiceAccount's namespace", want: "MACAQUE_NAMESPACE=bench-x1"},
		{name: "cluster-wide", scope: "*", want: "MACAQUE_NAMESPACE=*"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := daemonEnv("/kc", "/home", "bench-x1", measureSpec{every: 2 * time.Second, scope: c.scope})
			var got []string
			for _, kv := range env {
				if strings.HasPrefix(kv, "MACAQUE_NAMESPACE=") {
					got = append(got, kv)
				}
			}
			if !slices.Equal(got, []string{c.want}) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestPrintSizeClusterWide checks the cluster-wide row's report: it names the spread and the
// scope, holds no latency or CPU target past 50,000 pods but the memory target at every size,
// and names the case in what it missed.
func TestPrintSizeClusterWide(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	r := sizeResult{
		pods: 100000, namespaces: 1000, scope: "*", ns: "macaque", binary: "../bin/macaque", every: 11 * time.Second,
		goMemLimit: "28MiB",
		setup: setupResult{method: createCluster, created: 100000, namespaces: 1000, create: 20 * time.Second,
			running: 9 * time.Minute},
		ticks:     []tickLog{{Tick: t0, Candidates: 100000, Outcome: "killed"}},
		perTick:   []tickMetrics{{sentDelete: true, toDelete: 5 * time.Second}},
		readBacks: []time.Duration{300 * time.Millisecond},
		cpu:       []time.Duration{time.Second},
		peakRSS:   40 << 20,
	}
	var out bytes.Buffer
	missed := printSize(&out, r)
	text := out.String()
	for _, want := range []string{
		"== 100000 pods in 1000 namespaces, ../bin/macaque: MACAQUE_NAMESPACE=* as ServiceAccount macaque/macaque,",
		"setup: 100000 pods in 1000 namespaces, one Deployment of 100 replicas in each",
		"created after 20s, all Running and Ready after 9m0s",
		"each read-back (list by name)  300.0 ms",
		"*** MISSED at 100000 pods in 1000 namespaces: peak RSS (VmHWM) ***",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if want := []string{"peak RSS (VmHWM) at 100000 pods in 1000 namespaces"}; !slices.Equal(missed, want) {
		t.Errorf("missed %q, want %q (no latency or CPU target at 100k)", missed, want)
	}
	r.namespaces, r.scope, r.ns, r.pods = 0, "", "bench-x1", 50000
	out.Reset()
	printSize(&out, r)
	if !strings.Contains(out.String(), "== 50000 pods, ../bin/macaque: namespace bench-x1,") {
		t.Errorf("a single-namespace header changed:\n%s", out.String())
	}
}

// TestVerdictsSummary checks the line that shows the verdicts were on: counts per verdict in the
// order first seen, the first reason, and full-strength times of the recovered kills only.
func TestVerdictsSummary(t *testing.T) {
	cases := []struct {
		name string
		in   []verdictLog
		want string
	}{
		{name: "none logged", want: "none"},
		{name: "recovered and stopped", in: []verdictLog{
			{Verdict: "recovered", FullStrength: 2},
			{Verdict: "unknown", FullStrength: -1, Why: "macaque stopped"},
			{Verdict: "recovered", FullStrength: 4},
			{Verdict: "recovered", FullStrength: 3},
		}, want: "recovered 3, unknown 1 (first why: macaque stopped); back to full strength: median 3.0 s, max 4.0 s"},
		{name: "nothing back to full strength", in: []verdictLog{
			{Verdict: "not recovered", FullStrength: -1, Why: "web: 2/3 ready after 5m"},
		}, want: "not recovered 1 (first why: web: 2/3 ready after 5m)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := verdicts(c.in); got != c.want {
				t.Errorf("verdicts() = %q, want %q", got, c.want)
			}
		})
	}
}

// TestReadLineKeepsVerdicts checks that a verdict line of macaque's JSON log is kept, and a tick's
// report is not taken for one.
func TestReadLineKeepsVerdicts(t *testing.T) {
	d := &daemon{ticks: make(chan tickLog, 4)}
	d.readLine(`{"time":"2026-11-30T05:00:00Z","level":"INFO","msg":"tick done","outcome":"killed","pod":"web-1"}`)
	d.readLine(`{"time":"2026-11-30T05:00:03Z","level":"INFO","msg":"recovery verdict","verdict":"recovered","full_strength_seconds":2.5}`)
	d.readLine(`not json`)
	got := d.recoveryVerdicts()
	want := []verdictLog{{Msg: "recovery verdict", Verdict: "recovered", FullStrength: 2.5}}
	if !slices.Equal(got, want) {
		t.Errorf("verdicts kept = %+v, want %+v", got, want)
	}
	if len(d.ticks) != 1 {
		t.Errorf("tick reports passed on = %d, want 1", len(d.ticks))
	}
}
