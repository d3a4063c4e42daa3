package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/testkit"

	corev1 "k8s.io/api/core/v1"

	"github.com/macaque-chaos/macaque/internal/policy"

	"github.com/macaque-chaos/macaque/internal/kube"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

func TestPreflightCooldown(t *testing.T) {
	configMapForbidden := func(verb string) *metav1.Status {
		st := fakeapi.Forbidden(verb, testNS)
		st.Message = strings.Replace(st.Message, `resource "pods"`, `resource "configmaps"`, 1)
		return st
	}
	tests := []struct {
		name    string
		missing bool
		fail    func(fakeapi.Request) *metav1.Status
		wantVar string
		wantMsg string
	}{
		{name: "present and writable"},
		{name: "missing", missing: true, wantVar: "MACAQUE_COOLDOWN", wantMsg: "the ConfigMap macaque-cooldown that keeps the cooldown state is not in"},
		{name: "not readable", wantVar: "MACAQUE_COOLDOWN", wantMsg: "cannot get ConfigMap macaque-cooldown",
			fail: func(fakeapi.Request) *metav1.Status { return configMapForbidden("get") }},
		{name: "not writable", wantVar: "MACAQUE_COOLDOWN", wantMsg: "cannot update ConfigMap macaque-cooldown",
			fail: func(r fakeapi.Request) *metav1.Status {
				if r.Method == http.MethodPut {
					return configMapForbidden("update")
				}
				return nil
			}},
		{name: "a server error is no bad setting", wantMsg: "leader changed",
			fail: func(fakeapi.Request) *metav1.Status { return fakeapi.InternalError("etcdserver: leader changed") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, api := cooldownState(t, map[string]string{"shop.Deployment.web": tick0.Format(time.RFC3339)})
			namespace := testNS
			if tt.missing {
				namespace = "elsewhere"
			}
			srv.Fail = tt.fail
			err := preflightCooldown(testkit.Ctx(t), api, namespace)
			var bad *configError
			if tt.wantMsg == "" && err != nil {
				t.Fatalf("preflight: %v", err)
			}
			if tt.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Fatalf("preflight: %v, want %q", err, tt.wantMsg)
			}
			if isBad := errors.As(err, &bad); isBad != (tt.wantVar != "") {
				t.Fatalf("preflight: %v, a bad setting: %v, want %v", err, isBad, tt.wantVar != "")
			}
			if got := srv.ConfigMap(testNS, policy.CooldownConfigMap).Data; len(got) != 1 {
				t.Errorf("preflight changed the state: %v", got)
			}
		})
	}
}

// cooldownState is fakeapi holding macaque's cooldown ConfigMap in testNS with data, and a
// client of it.
func cooldownState(t *testing.T, data map[string]string) (*fakeapi.Server, *kube.Client) {
	t.Helper()
	srv := fakeapi.New(t)
	srv.AddConfigMap(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: policy.CooldownConfigMap}, Data: data})
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return srv, api
}

// cooldownWorld is fakeapi holding two steady Deployments in testNS, web and api, a pod each
// (through a ReplicaSet each), and the cooldown ConfigMap with data; and a guarded Killer over
// it whose cooldown is an hour.
func cooldownWorld(t *testing.T, data map[string]string) (*fakeapi.Server, *Killer) {
	t.Helper()
	return cooldownWorldOf(t, data, "web", "api")
}

// cooldownWorldOf is cooldownWorld with a steady Deployment for each of apps.
func cooldownWorldOf(t *testing.T, data map[string]string, apps ...string) (*fakeapi.Server, *Killer) {
	t.Helper()
	srv, _ := cooldownState(t, data)
	for _, app := range apps {
		d := ctrl("apps/v1", "Deployment", app)
		rs := ctrl("apps/v1", "ReplicaSet", app+"-7d9")
		srv.AddWorkload(steadyDeployment(app, 1, nil))
		srv.AddWorkload(steadyReplicaSet(app+"-7d9", 1, &d, nil))
		srv.Add(ownedBy(fakeapi.Pod(testNS, app+"-1", nil), &rs))
	}
	k := newGuardedKiller(t, srv, "", policy.Guard{})
	k.cooldown = policy.NewCooldown(k.api.(*kube.Client), testNS, time.Hour)
	return srv, k
}

// TestKillHonoursTheCooldown: a workload hit within the period is passed over (and blamed),
// another is killed and recorded, and once both are cooling down the tick is skipped; a new
// Killer (a restart) reads the same state, and the period's end lets them be hit again.
func TestKillHonoursTheCooldown(t *testing.T) {
	srv, k := cooldownWorld(t, map[string]string{"shop.Deployment.web": tick0.Add(-10 * time.Minute).Format(time.RFC3339)})
	r := killOnce(t, k)
	if r.Outcome != OutcomeKilled || r.Pod != "api-1" {
		t.Fatalf("first tick: %s of %q (%v), passed %q; want api-1 killed, web cooling down", r.Outcome, r.Pod, r.Err, r.Passed)
	}
	assertPassed(t, r.Passed, []string{"shop/web-1: Deployment/web lost a pod 10m0s ago: cooling down until 2026-03-29T09:50:00Z"})
	if got := srv.ConfigMap(testNS, policy.CooldownConfigMap).Data["shop.Deployment.api"]; got != "2026-03-29T09:00:00Z" {
		t.Errorf("api's hit recorded as %q, want the time of the kill", got)
	}

	// A restart: a new Killer and cooldown over the same cluster, a minute later.
	srv.Add(ownedBy(fakeapi.Pod(testNS, "api-2", nil), new(ctrl("apps/v1", "ReplicaSet", "api-7d9"))))
	restarted := newGuardedKiller(t, srv, "", policy.Guard{})
	restarted.cooldown = policy.NewCooldown(restarted.api.(*kube.Client), testNS, time.Hour)
	restarted.now = func() time.Time { return tick0.Add(time.Minute) }
	r = killOnce(t, restarted)
	if r.Outcome != OutcomeSkipped || r.Err != nil {
		t.Fatalf("after a restart: %s (%v), passed %q; want skipped: both workloads are cooling down", r.Outcome, r.Err, r.Passed)
	}
	assertPassed(t, r.Passed, []string{"shop/web-1: Deployment/web lost a pod", "shop/api-2: Deployment/api lost a pod 1m0s ago"})
	if len(r.blamed) != 2 {
		t.Errorf("blamed %+v, want both Deployments (a skipped tick's Events go on them)", r.blamed)
	}

	restarted.now = func() time.Time { return tick0.Add(time.Hour) }
	if r = killOnce(t, restarted); r.Outcome != OutcomeKilled {
		t.Errorf("an hour later: %s (%v), passed %q; want a kill: api's period is over", r.Outcome, r.Err, r.Passed)
	}
}

// TestKillWithAnUnreadableCooldownKillsNothing: a tick that cannot read the state cannot know
// what is cooling down, so it kills nothing and says why; a state that cannot be written after
// a kill leaves the kill reported, with a note that its cooldown may not hold.
func TestKillWithAnUnreadableCooldownKillsNothing(t *testing.T) {
	srv, k := cooldownWorld(t, nil)
	srv.Fail = func(r fakeapi.Request) *metav1.Status {
		if strings.Contains(r.Path, "/configmaps/") {
			return fakeapi.InternalError("etcdserver: leader changed")
		}
		return nil
	}
	r := killOnce(t, k)
	if r.Outcome != OutcomeError || !strings.Contains(r.Err.Error(), "read the cooldown state") || len(srv.Deletes()) != 0 {
		t.Fatalf("%s (%v), %d deletes; want an error and no kill", r.Outcome, r.Err, len(srv.Deletes()))
	}

	srv.Fail = func(r fakeapi.Request) *metav1.Status {
		if r.Method == http.MethodPut {
			return fakeapi.InternalError("etcdserver: leader changed")
		}
		return nil
	}
	r = killOnce(t, k)
	if r.Outcome != OutcomeKilled || !strings.Contains(r.Note, "the cooldown was not recorded") {
		t.Errorf("%s, note %q; want killed, noting that the cooldown was not recorded", r.Outcome, r.Note)
	}
}

// TestCooldownKeysAreTheTopControllers: a kill is recorded against the Deployment above the
// ReplicaSet, which outlives a rollout's new ReplicaSet; a bare pod is recorded against nothing.
func TestCooldownKeysAreTheTopControllers(t *testing.T) {
	srv, k := cooldownWorld(t, nil)
	srv.Remove(testNS, "web-1")
	srv.Add(ownedBy(fakeapi.Pod(testNS, "solo", nil), nil))
	k.guard.AllowOrphans = true
	for range 2 {
		if r := killOnce(t, k); r.Outcome != OutcomeKilled {
			t.Fatalf("%s (%v), passed %q; want a kill", r.Outcome, r.Err, r.Passed)
		}
	}
	if got := srv.ConfigMap(testNS, policy.CooldownConfigMap).Data; fmt.Sprint(got) != "map[shop.Deployment.api:2026-03-29T09:00:00Z]" {
		t.Errorf("state %v, want only the Deployment of api-1", got)
	}
}

func TestParseCooldown(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "", want: 0}, {in: "0", want: 0}, {in: " 90m ", want: 90 * time.Minute}, {in: "24h", want: 24 * time.Hour},
		{in: "-1h", bad: true}, {in: "1.5s", bad: true}, {in: "1500ms", bad: true}, {in: "soon", bad: true}, {in: "1", bad: true},
	}
	for _, tt := range tests {
		got, err := parseCooldown(tt.in)
		var bad *configError
		if tt.bad != errors.As(err, &bad) || (tt.bad && (bad.variable != "MACAQUE_COOLDOWN" || !strings.Contains(bad.problem, "whole seconds"))) {
			t.Errorf("parseCooldown(%q) = %v, %v; want a bad setting: %v", tt.in, got, err, tt.bad)
			continue
		}
		if !tt.bad && got != tt.want {
			t.Errorf("parseCooldown(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestStartCooldownFindsItsNamespace: the state lives in macaque's own namespace; out of a pod,
// the first namespace of a named scope stands in, and with none (MACAQUE_NAMESPACE=*) the start
// fails on a line naming MACAQUE_COOLDOWN and POD_NAMESPACE. A cooldown of 0 is still built,
// for the annotations, and without a state it starts all the same.
func TestStartCooldownFindsItsNamespace(t *testing.T) {
	_, api := cooldownState(t, nil)
	named, everywhere := mustScope(t, testNS+",other"), mustScope(t, "*")
	tests := []struct {
		name   string
		period time.Duration
		own    string
		sc     scope
		wantNS string // the cooldown's namespace; "" with wantErr: none
		errMsg string
	}{
		{name: "off: still built for the annotations", period: 0, own: testNS, sc: everywhere, wantNS: testNS},
		{name: "off, out of a pod, every namespace: no state, no error", period: 0, sc: everywhere},
		{name: "its own namespace", period: time.Hour, own: testNS, sc: everywhere, wantNS: testNS},
		{name: "its own namespace before the scope's", period: time.Hour, own: testNS, sc: mustScope(t, "other"), wantNS: testNS},
		{name: "out of a pod: the scope's first namespace", period: time.Hour, sc: named, wantNS: testNS},
		{name: "out of a pod, every namespace: unknown", period: time.Hour, sc: everywhere,
			errMsg: "MACAQUE_COOLDOWN: macaque's own namespace, where the ConfigMap macaque-cooldown keeps the cooldown state, is unknown: set POD_NAMESPACE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := startCooldown(testkit.Ctx(t), api, tt.period, tt.own, tt.sc, discardLogger())
			if tt.errMsg != "" {
				var bad *configError
				if !errors.As(err, &bad) || !strings.Contains(err.Error(), tt.errMsg) {
					t.Fatalf("startCooldown = %v, want a bad setting saying %q", err, tt.errMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("startCooldown: %v", err)
			}
			if tt.wantNS == "" {
				if !reflect.DeepEqual(got, policy.NoCooldownState(errors.New("macaque's own namespace is unknown: set POD_NAMESPACE"))) {
					t.Errorf("cooldown %+v, want one without a state, saying why", got)
				}
				return
			}
			if want := policy.NewCooldown(api, tt.wantNS, tt.period); !reflect.DeepEqual(got, want) {
				t.Errorf("cooldown %+v, want namespace %q and period %v", got, tt.wantNS, tt.period)
			}
		})
	}
}

// mustScope parses MACAQUE_NAMESPACE=namespace.
func mustScope(t *testing.T, namespace string) scope {
	t.Helper()
	sc, err := parseScope(namespace, "")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// longName is a valid Deployment name of 239 characters, as the one seen on a real control
// plane: "shop.Deployment." before it makes a key of 255, past the 253 a ConfigMap key may have.
var longName = strings.Repeat("a", 230) + "-workload"

// TestKillHonoursTheCooldownOfALongName: a workload whose name makes a key too long for a
// ConfigMap is recorded and cooled down like any other, and costs no other workload its own
// cooldown (a single key refused made the API server refuse the whole write).
func TestKillHonoursTheCooldownOfALongName(t *testing.T) {
	srv, k := cooldownWorldOf(t, nil, longName, "web")
	k.count = killCount{n: 2}
	reports := killWithin(t.Context(), t, k, tick0)
	if len(reports) != 2 {
		t.Fatalf("%d reports, want both Deployments hit: %+v", len(reports), reports)
	}
	for _, r := range reports {
		if r.Outcome != OutcomeKilled || r.Note != "" {
			t.Errorf("%s of %.20s...: %s (%v), note %q; want killed and its cooldown recorded", r.Owner, r.Pod, r.Outcome, r.Err, r.Note)
		}
	}
	if got := srv.ConfigMap(testNS, policy.CooldownConfigMap).Data; len(got) != 2 {
		t.Errorf("state %v, want an entry for each Deployment", got)
	}

	for _, app := range []string{longName, "web"} { // their replacements
		srv.Add(ownedBy(fakeapi.Pod(testNS, app+"-2", nil), new(ctrl("apps/v1", "ReplicaSet", app+"-7d9"))))
	}
	k.now = func() time.Time { return tick0.Add(time.Minute) }
	reports = killWithin(t.Context(), t, k, tick0.Add(time.Minute))
	if len(reports) != 1 || reports[0].Outcome != OutcomeSkipped {
		t.Fatalf("a minute later: %+v; want one report, skipped: both are cooling down", reports)
	}
	assertPassed(t, reports[0].Passed, []string{"shop/" + longName + "-2: Deployment/" + longName + " lost a pod 1m0s ago", "shop/web-2: Deployment/web lost a pod 1m0s ago"})
}

// TestAnnotatedCooldownWarns: with MACAQUE_COOLDOWN=0, a state macaque cannot keep (the
// ConfigMap missing, macaque's namespace unknown) does not stop it, since only annotated
// workloads need it, but it is said at start; a state it can keep is not warned about.
func TestAnnotatedCooldownWarns(t *testing.T) {
	for _, tt := range []struct{ name, namespace, want string }{
		{name: "the state is kept", namespace: testNS},
		{name: "the ConfigMap is missing", namespace: "elsewhere", want: "the ConfigMap macaque-cooldown that keeps the cooldown state is not in"},
		{name: "the namespace is unknown", want: "set POD_NAMESPACE"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, api := cooldownState(t, nil)
			var b bytes.Buffer
			c := annotatedCooldown(testkit.Ctx(t), api, tt.namespace, slog.New(slog.NewTextHandler(&b, nil)))
			warned := strings.Contains(b.String(), "level=WARN msg=\"the cooldown state cannot be kept")
			if c == nil || warned != (tt.want != "") || !strings.Contains(b.String(), tt.want) {
				t.Errorf("annotatedCooldown = %v, logged %q; want a cooldown, and a warning saying %q", c, b.String(), tt.want)
			}
		})
	}
}
