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
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestPerTickAttributesRequestsAndCPUToTheirTick(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	every := 2 * time.Second
	ticks := []tickRun{
		oneReport(tickLog{Tick: t0, Time: t0.Add(150 * time.Millisecond), Pod: "web-000001", Outcome: "killed"}),
		oneReport(tickLog{Tick: t0.Add(every), Time: t0.Add(every + 90*time.Millisecond), Pod: "web-000002", Outcome: "not found"}),
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
		{sentDelete: true, toDelete: 120 * time.Millisecond, toLast: 120 * time.Millisecond, kills: 1, toReport: 150 * time.Millisecond,
			bytes: 132, requests: 4, lists: 1, apiTime: 40 * time.Millisecond},
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

// oneReport is a tick of one report line, as macaque logs with MACAQUE_KILL_COUNT unset.
func oneReport(l tickLog) tickRun { return tickRun{Tick: l.Tick, reports: []tickLog{l}} }

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

func TestParseVMHWM(t *testing.T) {
	got, err := parseVMHWM([]byte("Name:\tmacaque\nVmPeak:\t 1275308 kB\nVmHWM:\t   20736 kB\nVmRSS:\t   20128 kB\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(20736 << 10); got != want {
		t.Errorf("got %d, want %d", got, want)
	}
	if _, err := parseVMHWM([]byte("Name:\tmacaque\n")); err == nil {
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
	upstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
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
		{name: "nothing to measure", args: []string{"-pods", "", "-many", "", "-cluster", ""}, wantErr: "nothing to measure"},
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
	ticks := []tickRun{oneReport(tickLog{Tick: t0, Time: t0.Add(2 * time.Second), Pod: "web-042-5d8f-x2x4q", Outcome: "killed"})}
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
		ticks:     []tickRun{oneReport(tickLog{Tick: t0, Candidates: 100000, Outcome: "killed"})},
		perTick:   []tickMetrics{{sentDelete: true, toDelete: 5 * time.Second}},
		readBacks: []time.Duration{300 * time.Millisecond},
		cpu:       []time.Duration{time.Second},
		peakRSS:   40 << 20,

		apiserverCPU: []time.Duration{9 * time.Second}, apiserverRest: 7 * time.Second,
		etcdCPU: []time.Duration{time.Second}, etcdRest: 600 * time.Millisecond,
	}
	var out bytes.Buffer
	missed := printSize(&out, r)
	text := out.String()
	for _, want := range []string{
		"== 100000 pods in 1000 namespaces, ../bin/macaque: MACAQUE_NAMESPACE=* as ServiceAccount macaque/macaque,",
		"setup: 100000 pods in 1000 namespaces, one Deployment of 100 replicas in each",
		"created after 20s, all Running and Ready after 9m0s",
		"each read-back (list by name)  300.0 ms",
		// What the control plane spends alone stands under what it spends in the ticks.
		"kube-apiserver CPU per tick      9000.0 ms  9000.0 ms  9000.0 ms  —           \n  before macaque ran             7000.0 ms  —",
		"etcd CPU per tick                1000.0 ms  1000.0 ms  1000.0 ms  —           \n  before macaque ran             600.0 ms   —",
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
	want := []verdictLog{{Time: time.Date(2026, 11, 30, 5, 0, 3, 0, time.UTC), Msg: "recovery verdict", Verdict: "recovered", FullStrength: 2.5}}
	if !slices.Equal(got, want) {
		t.Errorf("verdicts kept = %+v, want %+v", got, want)
	}
	if len(d.ticks) != 1 {
		t.Errorf("tick reports passed on = %d, want 1", len(d.ticks))
	}
}

func TestParseOptionsKillsAndWorkloads(t *testing.T) {
	type kills struct {
		killCount, workloads int
		many                 manySpec
		manyKillCount        int
		manyMinReady         time.Duration
	}
	defaults := kills{killCount: 1, workloads: 1, many: manySpec{pods: 50000, workloads: 500}, manyKillCount: 100,
		manyMinReady: 10 * time.Second}
	tests := []struct {
		name    string
		args    []string
		want    kills
		wantErr string // part of the error; empty: none
	}{
		{name: "defaults: one victim a tick, then 100 in 500 Deployments", want: defaults},
		{name: "many-workloads row skipped", args: []string{"-many", ""},
			want: kills{killCount: 1, workloads: 1, manyKillCount: 100, manyMinReady: 10 * time.Second}},
		{name: "many-workloads row alone, small", args: []string{"-pods", "", "-cluster", "", "-many", " 2200x110 "},
			want: kills{killCount: 1, workloads: 1, many: manySpec{pods: 2200, workloads: 110}, manyKillCount: 100,
				manyMinReady: 10 * time.Second}},
		{name: "the sizes spread, 100 victims a tick", args: []string{"-kill-count", "100", "-workloads", "200"},
			want: kills{killCount: 100, workloads: 200, many: defaults.many, manyKillCount: 100, manyMinReady: 10 * time.Second}},
		{name: "many-workloads row's settings", args: []string{"-many-kill-count", "50", "-many-min-ready", "0s"},
			want: kills{killCount: 1, workloads: 1, many: defaults.many, manyKillCount: 50}},
		{name: "no victim", args: []string{"-kill-count", "0"}, wantErr: "-kill-count: 0 is not 1 to 100 victims a tick"},
		{name: "more victims than macaque takes", args: []string{"-many-kill-count", "101"},
			wantErr: "-many-kill-count: 101 is not 1 to 100"},
		{name: "no Deployment", args: []string{"-workloads", "0"}, wantErr: "-workloads: need at least 1"},
		{name: "uneven spread of a size", args: []string{"-pods", "10000,50000", "-workloads", "3"},
			wantErr: "-workloads: 10000 pods do not spread evenly over 3 Deployments"},
		{name: "Deployments of bare pods", args: []string{"-create", "pods", "-workloads", "2"},
			wantErr: "-workloads: 2 Deployments need -create deployment"},
		{name: "many without x", args: []string{"-many", "50000"}, wantErr: `-many: "50000" is not PODSxDEPLOYMENTS (50000x500)`},
		{name: "many without Deployments", args: []string{"-many", "100x0"}, wantErr: "PODS and DEPLOYMENTS must be positive"},
		{name: "many uneven", args: []string{"-many", "1001x10"}, wantErr: "1001 pods do not spread evenly over 10 Deployments"},
		{name: "min ready not whole seconds", args: []string{"-many-min-ready", "1500ms"}, wantErr: "-many-min-ready"},
		{name: "min ready negative", args: []string{"-many-min-ready", "-1s"}, wantErr: "-many-min-ready"},
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
			got := kills{killCount: o.killCount, workloads: o.workloads, many: o.many, manyKillCount: o.manyKillCount,
				manyMinReady: o.manyMinReady}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestNamespaceCases checks what each single-namespace run measures and how far apart its ticks
// are: the sizes as before, and the many-workloads row with room for macaque's 10s of tries and
// the verdicts' minReadySeconds, so that a tick's verdicts are given before the next's kills.
func TestNamespaceCases(t *testing.T) {
	o, err := parseOptions([]string{"-many-min-ready", "12s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sizes, many := o.sizesCase(), o.manyCase()
	if !slices.Equal(sizes.sizes, []int{10000, 50000}) || sizes.killCount != 1 || sizes.workloads != 1 || sizes.rounds != 3 {
		t.Errorf("sizes case %+v", sizes)
	}
	if !slices.Equal(many.sizes, []int{50000}) || many.killCount != 100 || many.workloads != 500 || many.rounds != 0 ||
		many.create != createDeployment || many.minReady != 12*time.Second {
		t.Errorf("many case %+v", many)
	}
	for _, c := range []struct {
		name string
		nc   namespaceCase
		flag time.Duration
		size int
		want time.Duration
	}{
		{name: "10k pods, one victim", nc: sizes, size: 10000, want: 2 * time.Second},
		{name: "50k pods, one victim", nc: sizes, size: 50000, want: 6 * time.Second},
		{name: "50k pods, 100 victims", nc: many, size: 50000, want: (6 + 10 + 12) * time.Second},
		{name: "-every wins", nc: many, flag: 30 * time.Second, size: 50000, want: 30 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.nc.every(c.flag, c.size); got != c.want {
				t.Errorf("every = %s, want %s", got, c.want)
			}
		})
	}
}

// TestTickCollectorGroupsReportsByTick checks that a tick is taken as complete only when its
// reports are all in: as many as MACAQUE_KILL_COUNT allows, or a later tick's came.
func TestTickCollectorGroupsReportsByTick(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	line := func(tick int, pod string) tickLog {
		return tickLog{Tick: t0.Add(time.Duration(tick) * time.Minute), Pod: pod, Outcome: outcomeKilled}
	}
	tests := []struct {
		name       string
		maxReports int
		lines      []tickLog
		want       []int // reports of each complete tick
	}{
		{name: "one victim a tick: each line a tick", maxReports: 1,
			lines: []tickLog{line(0, "a"), line(1, "b")}, want: []int{1, 1}},
		{name: "a tick short of its count waits for the next", maxReports: 3,
			lines: []tickLog{line(0, "a"), line(0, "b")}, want: []int{}},
		{name: "a later tick completes it", maxReports: 3,
			lines: []tickLog{line(0, "a"), line(0, "b"), line(1, "c")}, want: []int{2}},
		{name: "a full tick is complete at once", maxReports: 3,
			lines: []tickLog{line(0, "a"), line(0, "b"), line(0, "c"), line(1, "d")}, want: []int{3}},
		{name: "a skipped tick leaves no gap", maxReports: 2,
			lines: []tickLog{line(0, "a"), line(0, "b"), line(2, "c"), line(2, "d")}, want: []int{2, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tickCollector{maxReports: tt.maxReports}
			for _, l := range tt.lines {
				c.add(l)
			}
			got := []int{}
			for _, tick := range c.complete() {
				got = append(got, len(tick.reports))
				for _, r := range tick.reports {
					if !r.Tick.Equal(tick.Tick) {
						t.Errorf("report of %s in the tick of %s", r.Tick, tick.Tick)
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("complete ticks' reports %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPerTickManyVictims checks a tick of several victims: its first and last victims' DELETEs,
// not another pod's, its kills, and its end at its last report.
func TestPerTickManyVictims(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	every := 22 * time.Second
	tick := tickRun{Tick: t0, reports: []tickLog{
		{Tick: t0, Time: t0.Add(9 * time.Second), Pod: "web-001-x", Outcome: outcomeKilled},
		{Tick: t0, Time: t0.Add(9 * time.Second), Pod: "web-002-y", Outcome: outcomeKilled},
		{Tick: t0, Time: t0.Add(9500 * time.Millisecond), Pod: "web-003-z", Outcome: "error", Err: "rate limiter"},
	}}
	records := []record{
		{at: t0.Add(10 * time.Millisecond), method: "GET", url: "/api/v1/namespaces/ns/pods?includeObject=None&limit=50000"},
		{at: t0.Add(40 * time.Millisecond), method: "DELETE", url: "/api/v1/namespaces/ns/pods/web-001-x"},
		{at: t0.Add(3 * time.Second), method: "DELETE", url: "/api/v1/namespaces/ns/pods/web-002-y"},
		{at: t0.Add(4 * time.Second), method: "DELETE", url: "/api/v1/namespaces/ns/pods/someone-else"},
	}
	got := perTick([]tickRun{tick}, records, every)[0]
	want := tickMetrics{sentDelete: true, toDelete: 40 * time.Millisecond, toLast: 3 * time.Second, kills: 2,
		toReport: 9500 * time.Millisecond, requests: 4, lists: 1}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := outcomes([]tickRun{tick}); got != "killed 2, error 1 (first error: rate limiter)" {
		t.Errorf("outcomes %q: want each report counted", got)
	}
}

func TestDaemonEnvKillCount(t *testing.T) {
	for _, c := range []struct {
		name  string
		count int
		want  []string
	}{
		{name: "unset: macaque's default, as an older build knows it", count: 0},
		{name: "one victim, unset too", count: 1},
		{name: "100 victims", count: 100, want: []string{"MACAQUE_KILL_COUNT=100"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := daemonEnv("/kc", "/home", "bench-x1", measureSpec{every: 2 * time.Second, killCount: c.count})
			var got []string
			for _, kv := range env {
				if strings.HasPrefix(kv, "MACAQUE_KILL_COUNT=") {
					got = append(got, kv)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestReadLineKeepsKills checks that each kill's report is kept with the namespace, pod and time
// its verdict is matched on, and that a failed pick is passed on as a report but not kept.
func TestReadLineKeepsKills(t *testing.T) {
	d := &daemon{ticks: make(chan tickLog, 4), verdict: make(chan struct{}, 1)}
	d.readLine(`{"time":"2026-11-30T05:00:09Z","level":"INFO","msg":"tick done","tick":"2026-11-30T05:00:00Z","namespace":"bench-x1","outcome":"killed","pod":"web-1","deleted":"2026-11-30T05:00:01.5Z"}`)
	d.readLine(`{"time":"2026-11-30T05:00:09Z","level":"ERROR","msg":"kill failed","tick":"2026-11-30T05:00:00Z","namespace":"bench-x1","outcome":"error","pod":"web-2","err":"rate"}`)
	want := []tickLog{{Time: time.Date(2026, 11, 30, 5, 0, 9, 0, time.UTC), Msg: "tick done",
		Tick: time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC), Namespace: "bench-x1", Pod: "web-1", Outcome: outcomeKilled,
		Deleted: time.Date(2026, 11, 30, 5, 0, 1, 5e8, time.UTC)}}
	if got := d.kills(); !slices.Equal(got, want) {
		t.Errorf("kills kept = %+v, want %+v", got, want)
	}
	if len(d.ticks) != 2 {
		t.Errorf("reports passed on = %d, want 2", len(d.ticks))
	}
	d.readLine(`{"time":"2026-11-30T05:00:12Z","level":"INFO","msg":"recovery verdict","namespace":"bench-x1","pod":"web-1","verdict":"recovered"}`)
	select {
	case <-d.verdict:
	default:
		t.Error("a verdict logged, but no waiter told")
	}
}

// TestVerdictsOnTheMeasuredKills checks that the verdicts are matched to their kill by namespace
// and pod, a verdict on another kill set apart, and a kill without one counted.
func TestVerdictsOnTheMeasuredKills(t *testing.T) {
	kills := []tickLog{{Namespace: "a", Pod: "web-1"}, {Namespace: "a", Pod: "web-2"}, {Namespace: "a", Pod: "web-3"}}
	vs := []verdictLog{
		{Namespace: "a", Pod: "web-2", Verdict: "recovered"},
		{Namespace: "b", Pod: "web-1", Verdict: "recovered"}, // same name, another namespace
		{Namespace: "a", Pod: "web-9", Verdict: "unknown"},   // a kill after the measured ticks
		{Namespace: "a", Pod: "web-1", Verdict: "recovered"},
		{Namespace: "a", Pod: "web-2", Verdict: "recovered"}, // a second one: counted once on the kills
	}
	on, rest, missing := verdictsOn(kills, vs)
	if len(on) != 2 || on[0].Pod != "web-2" || on[1].Pod != "web-1" || on[1].Namespace != "a" {
		t.Errorf("on the kills: %+v", on)
	}
	if len(rest) != 3 || missing != 1 {
		t.Errorf("rest %+v, missing %d; want 3, 1", rest, missing)
	}
}

func TestAwaitingPeak(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	kill := func(pod string, s float64) tickLog { return tickLog{Namespace: "ns", Pod: pod, Deleted: at(s)} }
	verdict := func(pod string, s float64) verdictLog { return verdictLog{Namespace: "ns", Pod: pod, Time: at(s)} }
	tests := []struct {
		name   string
		kills  []tickLog
		vs     []verdictLog
		want   int
		wantOK bool
	}{
		{name: "no kill", wantOK: true},
		{name: "overlapping verdicts", kills: []tickLog{kill("a", 0), kill("b", 1), kill("c", 2)},
			vs: []verdictLog{verdict("a", 1.5), verdict("b", 3), verdict("c", 4)}, want: 2, wantOK: true},
		{name: "one given the instant the next kill is made", kills: []tickLog{kill("a", 0), kill("b", 1)},
			vs: []verdictLog{verdict("a", 1), verdict("b", 2)}, want: 1, wantOK: true},
		{name: "a kill never given one stays open", kills: []tickLog{kill("a", 0), kill("b", 5)},
			vs: []verdictLog{verdict("b", 6)}, want: 2, wantOK: true},
		{name: "a tick's kills all open at once", kills: []tickLog{kill("a", 0), kill("b", 1), kill("c", 2)},
			vs: []verdictLog{verdict("c", 12), verdict("a", 10), verdict("b", 11)}, want: 3, wantOK: true},
		{name: "no deleted time: unknown", kills: []tickLog{kill("a", 0), {Namespace: "ns", Pod: "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := awaitingPeak(tt.kills, tt.vs)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("awaitingPeak = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// manyResult is what a small many-workloads row measures: 2 ticks of 3 and 2 kills in 110
// Deployments, their verdicts, and one later kill stopped without one.
func manyResult() sizeResult {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	killed := func(tick time.Time, pod string, after time.Duration) tickLog {
		return tickLog{Tick: tick, Time: tick.Add(9 * time.Second), Namespace: "bench-x1", Pod: pod, Outcome: outcomeKilled,
			Candidates: 2200, Deleted: tick.Add(after)}
	}
	t1 := t0.Add(22 * time.Second)
	ticks := []tickRun{
		{Tick: t0, reports: []tickLog{killed(t0, "web-001-a", time.Second), killed(t0, "web-002-b", 2*time.Second),
			killed(t0, "web-003-c", 3*time.Second)}},
		{Tick: t1, reports: []tickLog{killed(t1, "web-004-d", time.Second), killed(t1, "web-005-e", 2*time.Second)}},
	}
	later := killed(t0.Add(44*time.Second), "web-006-f", time.Second)
	verdict := func(pod, v string, at time.Time, full float64, why string) verdictLog {
		return verdictLog{Time: at, Namespace: "bench-x1", Pod: pod, Verdict: v, FullStrength: full, Why: why}
	}
	return sizeResult{
		pods: 2200, workloads: 110, killCount: 100, ns: "bench-x1", binary: "../bin/macaque", every: 22 * time.Second,
		goMemLimit: "28MiB",
		setup: setupResult{method: createDeployment, created: 2200, deployments: 110, minReady: 10,
			running: 21 * time.Second},
		ticks: ticks,
		perTick: []tickMetrics{{sentDelete: true, toDelete: 50 * time.Millisecond, toLast: 3 * time.Second, kills: 3},
			{sentDelete: true, toDelete: 40 * time.Millisecond, toLast: 2 * time.Second, kills: 2}},
		cpu:     []time.Duration{700 * time.Millisecond, 800 * time.Millisecond},
		peakRSS: 24 << 20,
		verdicts: []verdictLog{
			verdict("web-001-a", "recovered", t0.Add(11*time.Second), 10, ""),
			verdict("web-002-b", "recovered", t0.Add(12*time.Second), 10, ""),
			verdict("web-003-c", "recovered", t0.Add(13*time.Second), 10, ""),
			verdict("web-004-d", "recovered", t1.Add(11*time.Second), 10, ""),
			verdict("web-005-e", "recovered", t1.Add(12*time.Second), 10, ""),
			verdict("web-006-f", "unknown", t0.Add(50*time.Second), -1, "macaque stopped"),
		},
		killed: append(killsOf(ticks), later),
	}
}

// TestPrintSizeManyWorkloads checks the many-workloads row's report: the kill count and the
// Deployments named where the row is, the kills of each tick, the verdicts on them apart from
// those on later kills, how many awaited theirs at once, and the rows of a tick of many kills;
// the CPU target is a single kill's, and not held against it.
func TestPrintSizeManyWorkloads(t *testing.T) {
	r := manyResult()
	var out bytes.Buffer
	missed := printSize(&out, r)
	text := out.String()
	for _, want := range []string{
		"== 2200 pods in 110 Deployments, MACAQUE_KILL_COUNT=100, ../bin/macaque: namespace bench-x1, MACAQUE_CRONTAB=\"@every 22s\"",
		"setup: 2200 more pods by creating or scaling 110 Deployments, minReadySeconds 10",
		"macaque: candidates 2200..2200; outcomes killed 5; ticks skipped 0\n",
		"kills: MACAQUE_KILL_COUNT=100 over 110 Deployments (one victim of each at most a tick); per tick 3, 2\n",
		"recovery verdicts (MACAQUE_RECOVERY_TIMEOUT default) on the 5 kills of the 2 ticks: recovered 5; " +
			"back to full strength: median 10.0 s, max 10.0 s; at most 3 kills awaiting their verdict at once\n",
		"  on 1 later kills, made while bench waited: unknown 1 (first why: macaque stopped)\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	for _, want := range []string{
		`tick → last DELETE sent +2500\.0 ms +2000\.0 ms +3000\.0 ms`,
		`kills per tick +2 +2 +3 `, // the median, 2.5, as count prints it
	} {
		if !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("report lacks a row %q:\n%s", want, text)
		}
	}
	if len(missed) != 0 {
		t.Errorf("missed %q: want none (700 ms of CPU for 100 victims is not a single kill's)", missed)
	}
}

// TestPrintSizeOneVictimSaysNothingOfKills checks that a tick of one victim reports as before:
// no kill count, no kills line or rows, and the CPU target held.
func TestPrintSizeOneVictimSaysNothingOfKills(t *testing.T) {
	r := manyResult()
	r.killCount, r.workloads, r.setup = 1, 0, setupResult{method: createDeployment, created: 2200}
	var out bytes.Buffer
	missed := printSize(&out, r)
	for _, gone := range []string{"kills:", "kills per tick", "last DELETE", "MACAQUE_KILL_COUNT"} {
		if strings.Contains(out.String(), gone) {
			t.Errorf("a single victim's report says %q:\n%s", gone, out.String())
		}
	}
	if !slices.Equal(missed, []string{"CPU per tick at 2200 pods"}) {
		t.Errorf("missed %q: want the CPU target held against a single victim's ticks", missed)
	}
}

// TestOwnDeploymentsSelectTheirOwnPods checks that Deployments sharing a namespace select none
// of each other's pods, their pods still in macaque's scope, and that they are named in order.
func TestOwnDeploymentsSelectTheirOwnPods(t *testing.T) {
	names := []string{numbered(appName, 7, 500), numbered(appName, 499, 500)}
	if !slices.Equal(names, []string{"web-007", "web-499"}) {
		t.Fatalf("names %q", names)
	}
	a, b := ownDeployment(names[0], 100, "kwok"), ownDeployment(names[1], 100, "kwok")
	for _, c := range []struct {
		name string
		sel  *appsv1.Deployment
		pod  *appsv1.Deployment
		want bool
	}{
		{name: "its own pods", sel: a, pod: a, want: true},
		{name: "not another's", sel: a, pod: b},
		{name: "nor the other way", sel: b, pod: a},
	} {
		t.Run(c.name, func(t *testing.T) {
			sel, err := metav1.LabelSelectorAsSelector(c.sel.Spec.Selector)
			if err != nil {
				t.Fatal(err)
			}
			if got := sel.Matches(labels.Set(c.pod.Spec.Template.Labels)); got != c.want {
				t.Errorf("%s's selector %s matches %s's pods: %v, want %v", c.sel.Name, sel, c.pod.Name, got, c.want)
			}
		})
	}
	scope, err := labels.Parse(scopeSelector)
	if err != nil {
		t.Fatal(err)
	}
	if !scope.Matches(labels.Set(a.Spec.Template.Labels)) {
		t.Errorf("pods labelled %v are out of macaque's scope %s", a.Spec.Template.Labels, scopeSelector)
	}
}

// TestWaitVerdicts checks that bench waits for the verdicts on the measured kills, and only them,
// until the last is logged or the wait's bound passes, and not at all for a build that gives none.
func TestWaitVerdicts(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	ticks := []tickRun{{Tick: t0, reports: []tickLog{
		{Tick: t0, Namespace: "ns", Pod: "web-1", Outcome: outcomeKilled},
		{Tick: t0, Namespace: "ns", Pod: "web-2", Outcome: outcomeKilled},
	}}}
	verdictOn := func(pod string) string {
		return `{"msg":"recovery verdict","namespace":"ns","pod":"` + pod + `","verdict":"recovered"}`
	}
	logger := log.New(io.Discard, "", 0)
	// start runs waitVerdicts and returns a channel closed when it returns.
	start := func(d *daemon, bound <-chan time.Time) <-chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.waitVerdicts(t.Context(), ticks, nil, func(time.Duration) <-chan time.Time { return bound }, logger)
		}()
		return done
	}
	returned := func(done <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("waitVerdicts still waiting 10s after %s", what)
		}
	}
	newDaemon := func() *daemon { return &daemon{ticks: make(chan tickLog, 4), verdict: make(chan struct{}, 1)} }

	t.Run("until the last measured kill's", func(t *testing.T) {
		d := newDaemon()
		d.readLine(verdictOn("web-1"))
		done := start(d, nil)
		d.readLine(verdictOn("web-9")) // a later kill's: not waited for
		select {
		case <-done:
			t.Fatal("returned with web-2's verdict still to come")
		case <-time.After(50 * time.Millisecond):
		}
		d.readLine(verdictOn("web-2"))
		returned(done, "the last verdict")
	})
	t.Run("no longer than the bound", func(*testing.T) {
		d := newDaemon()
		d.readLine(verdictOn("web-1"))
		bound := make(chan time.Time)
		done := start(d, bound)
		close(bound)
		returned(done, "the bound passed")
	})
	t.Run("not for a build that gives no verdict", func(*testing.T) {
		returned(start(newDaemon(), nil), "no verdict logged at all")
	})
}

// TestNamespaceSelectorRow: the cluster-wide row labels all but 1% of its namespaces and runs
// macaque with the selector that selects them; the namespace lists it makes are told from its
// candidate lists, and the report names the selector and what it selected.
func TestNamespaceSelectorRow(t *testing.T) {
	for n, want := range map[int]int{1: 0, 2: 1, 100: 1, 250: 2, 1000: 10} {
		if got := clusterUnselected(n); got != want {
			t.Errorf("clusterUnselected(%d) = %d, want %d", n, got, want)
		}
	}
	if got := (clusterSpec{pods: 100000, namespaces: 1000}).selected(); got != 990 {
		t.Errorf("selected() = %d, want 990", got)
	}
	env := daemonEnv("/kc", "/home", "macaque", measureSpec{every: time.Second, scope: "*", namespaceSelector: clusterNamespaceSelector})
	if !slices.Contains(env, "MACAQUE_NAMESPACE_SELECTOR=chaos=on") {
		t.Errorf("env %q, want the namespace selector", env)
	}
	if env := daemonEnv("/kc", "/home", "ns", measureSpec{every: time.Second}); slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "MACAQUE_NAMESPACE_SELECTOR=") }) {
		t.Errorf("env %q: no selector asked for, want none set", env)
	}
	for _, c := range []struct {
		url               string
		candidates, names bool
	}{
		{"/api/v1/pods?fieldSelector=status.phase%3DRunning&includeObject=None&limit=50000", true, false},
		{"/api/v1/namespaces/wide-001/pods?includeObject=None&limit=50000", true, false},
		{"/api/v1/namespaces?includeObject=None&labelSelector=chaos%3Don&limit=5000", false, true},
		{"/api/v1/namespaces?includeObject=None&limit=5000", false, true},
	} {
		r := record{method: "GET", url: c.url}
		if isCandidateList(r) != c.candidates || isNamespaceList(r) != c.names {
			t.Errorf("%s: candidate list %v, namespace list %v; want %v, %v", c.url, isCandidateList(r), isNamespaceList(r), c.candidates, c.names)
		}
	}
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	r := sizeResult{pods: 100000, namespaces: 1000, scope: "*", ns: "macaque", binary: "../bin/macaque", every: 11 * time.Second,
		namespaceSelector: "chaos=on", selected: 990, namespaceLists: []time.Duration{4 * time.Millisecond, 6 * time.Millisecond},
		ticks: []tickRun{oneReport(tickLog{Tick: t0, Candidates: 99000, Outcome: "killed"})}, perTick: []tickMetrics{{sentDelete: true}}}
	var out bytes.Buffer
	printSize(&out, r)
	for _, want := range []string{
		"== 100000 pods in 1000 namespaces, 990 selected by label, ../bin/macaque: MACAQUE_NAMESPACE=* MACAQUE_NAMESPACE_SELECTOR=chaos=on as ServiceAccount macaque/macaque,",
		"  each namespace list (names)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
