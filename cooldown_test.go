package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/kube"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
)

// cooldownServer is fakeapi holding macaque's cooldown ConfigMap in testNS with data.
func cooldownServer(t *testing.T, data map[string]string) (*fakeapi.Server, *cooldown) {
	t.Helper()
	srv := fakeapi.New(t)
	srv.AddConfigMap(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: cooldownConfigMap}, Data: data})
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return srv, &cooldown{api: api, namespace: testNS, period: time.Hour}
}

func TestCooldownCheck(t *testing.T) {
	c := &cooldown{period: time.Hour}
	web := &kube.OwnerRef{Kind: "Deployment", Name: "web"}
	key := cooldownKey("shop", *web)
	if key != "shop.Deployment.web" {
		t.Fatalf("key %q", key)
	}
	h := hits{key: tick0}
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{"just hit", tick0, "Deployment/web lost a pod 0s ago: cooling down until 2026-03-29T10:00:00Z (MACAQUE_COOLDOWN=1h0m0s)"},
		{"a second before it passes", tick0.Add(time.Hour - time.Second), "Deployment/web lost a pod 59m59s ago: cooling down until 2026-03-29T10:00:00Z"},
		{"the moment it passes", tick0.Add(time.Hour), ""},
		{"long after", tick0.Add(48 * time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.check(h, "shop", web, tt.at)
			if (tt.want == "") != (got == "") || !strings.HasPrefix(got, tt.want) {
				t.Errorf("check at %v = %q, want %q", tt.at, got, tt.want)
			}
		})
	}
	if got := c.check(h, "shop", &kube.OwnerRef{Kind: "Deployment", Name: "api"}, tick0); got != "" {
		t.Errorf("a workload never hit: %q, want none", got)
	}
	if got := c.check(h, "cart", web, tick0); got != "" {
		t.Errorf("a workload of the same name in another namespace: %q, want none", got)
	}
	if got := c.check(h, "shop", nil, tick0); got != "" {
		t.Errorf("a bare pod: %q, want none", got)
	}
	var off *cooldown
	if got := off.check(h, "shop", web, tick0); got != "" {
		t.Errorf("no cooldown: %q, want none", got)
	}
}

func TestCooldownRecordAndLoad(t *testing.T) {
	old := tick0.Add(-2 * time.Hour).Format(time.RFC3339)
	recent := tick0.Add(-10 * time.Minute).Format(time.RFC3339)
	srv, c := cooldownServer(t, map[string]string{
		"shop.Deployment.old": old, "shop.Deployment.recent": recent, "shop.Deployment.edited": "yesterday",
	})
	h, err := c.load(boundedCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || !h["shop.Deployment.recent"].Equal(tick0.Add(-10*time.Minute)) {
		t.Errorf("loaded %v, want the two entries that parse", h)
	}
	before := len(srv.Requests())
	if err := c.record(boundedCtx(t), []string{"shop.Deployment.web", "cart.StatefulSet.db"}, tick0); err != nil {
		t.Fatal(err)
	}
	if sent := srv.Requests()[before:]; len(sent) != 2 || sent[0].Method != http.MethodGet || sent[1].Method != http.MethodPut {
		t.Errorf("the write sent %+v, want one GET and one PUT", sent)
	}
	got := srv.ConfigMap(testNS, cooldownConfigMap).Data
	want := map[string]string{"shop.Deployment.web": "2026-03-29T09:00:00Z", "cart.StatefulSet.db": "2026-03-29T09:00:00Z", "shop.Deployment.recent": recent}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("state after the write %v, want %v: the new hits, and only the entries still cooling down", got, want)
	}
	// A new cooldown (a restart of macaque) reads what the last one wrote.
	_, again := cooldownServer(t, nil)
	again.api = c.api
	h, err = again.load(boundedCtx(t))
	if err != nil || again.check(h, "shop", &kube.OwnerRef{Kind: "Deployment", Name: "web"}, tick0.Add(time.Minute)) == "" {
		t.Errorf("after a restart: %v, %v; want web still cooling down", h, err)
	}
}

func TestCooldownRecordRetriesAConflictOnce(t *testing.T) {
	for _, conflicts := range []int{1, 2} {
		t.Run(fmt.Sprint(conflicts), func(t *testing.T) {
			srv, c := cooldownServer(t, nil)
			n := 0
			srv.Fail = func(r fakeapi.Request) *metav1.Status {
				if r.Method == http.MethodPut && n < conflicts {
					n++
					// Another writer got there first: the state moved on under us.
					srv.AddConfigMap(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: cooldownConfigMap},
						Data: map[string]string{"shop.Deployment.api": tick0.Format(time.RFC3339)}})
				}
				return nil
			}
			err := c.record(boundedCtx(t), []string{"shop.Deployment.web"}, tick0)
			data := srv.ConfigMap(testNS, cooldownConfigMap).Data
			if conflicts == 1 && (err != nil || data["shop.Deployment.web"] == "" || data["shop.Deployment.api"] == "") {
				t.Errorf("after one conflict: %v, state %v; want both hits kept", err, data)
			}
			if conflicts == 2 && (err == nil || !strings.Contains(err.Error(), "the object has been modified")) {
				t.Errorf("after two conflicts: %v, want the conflict reported", err)
			}
		})
	}
}

func TestCooldownPruneIsBounded(t *testing.T) {
	c := &cooldown{period: time.Hour}
	h := hits{}
	for i := range maxCooldownEntries + 10 {
		h[fmt.Sprintf("shop.Deployment.w%d", i)] = tick0.Add(-time.Duration(i) * time.Second)
	}
	out := c.prune(h, tick0)
	if len(out) != maxCooldownEntries {
		t.Fatalf("%d entries kept, want %d", len(out), maxCooldownEntries)
	}
	if _, ok := out["shop.Deployment.w0"]; !ok {
		t.Error("the latest hit was dropped; the oldest must go first")
	}
	if _, ok := out[fmt.Sprintf("shop.Deployment.w%d", maxCooldownEntries)]; ok {
		t.Error("an oldest hit was kept past the bound")
	}
}

func TestCooldownLoadFailsClosed(t *testing.T) {
	srv, c := cooldownServer(t, nil)
	srv.Fail = func(fakeapi.Request) *metav1.Status { return fakeapi.InternalError("etcdserver: leader changed") }
	if _, err := c.load(boundedCtx(t)); err == nil || !strings.Contains(err.Error(), "read the cooldown state") {
		t.Errorf("load = %v, want an error: a tick must not kill on a state it could not read", err)
	}
	var off *cooldown
	if h, err := off.load(boundedCtx(t)); err != nil || len(h) != 0 {
		t.Errorf("no cooldown: %v, %v", h, err)
	}
	if err := off.record(boundedCtx(t), []string{"x"}, tick0); err != nil {
		t.Errorf("no cooldown records nothing: %v", err)
	}
}

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
			fail: func(r fakeapi.Request) *metav1.Status { return configMapForbidden("get") }},
		{name: "not writable", wantVar: "MACAQUE_COOLDOWN", wantMsg: "cannot update ConfigMap macaque-cooldown",
			fail: func(r fakeapi.Request) *metav1.Status {
				if r.Method == http.MethodPut {
					return configMapForbidden("update")
				}
				return nil
			}},
		{name: "a server error is no bad setting", wantMsg: "leader changed",
			fail: func(r fakeapi.Request) *metav1.Status { return fakeapi.InternalError("etcdserver: leader changed") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := cooldownServer(t, map[string]string{"shop.Deployment.web": tick0.Format(time.RFC3339)})
			if tt.missing {
				c.namespace = "elsewhere"
			}
			srv.Fail = tt.fail
			err := preflightCooldown(boundedCtx(t), c)
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
			if got := srv.ConfigMap(testNS, cooldownConfigMap).Data; len(got) != 1 {
				t.Errorf("preflight changed the state: %v", got)
			}
		})
	}
	if err := preflightCooldown(boundedCtx(t), nil); err != nil {
		t.Errorf("no cooldown: %v", err)
	}
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
	srv, c := cooldownServer(t, data)
	for _, app := range apps {
		d := ctrl("apps/v1", "Deployment", app)
		rs := ctrl("apps/v1", "ReplicaSet", app+"-7d9")
		srv.AddWorkload(steadyDeployment(app, 1, nil))
		srv.AddWorkload(steadyReplicaSet(app+"-7d9", 1, &d, nil))
		srv.Add(ownedBy(fakeapi.Pod(testNS, app+"-1", nil), &rs))
	}
	k := newGuardedKiller(t, srv, "", guard{})
	c.api = k.api.(*kube.Client)
	k.cooldown = c
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
	if got := srv.ConfigMap(testNS, cooldownConfigMap).Data["shop.Deployment.api"]; got != "2026-03-29T09:00:00Z" {
		t.Errorf("api's hit recorded as %q, want the time of the kill", got)
	}

	// A restart: a new Killer and cooldown over the same cluster, a minute later.
	srv.Add(ownedBy(fakeapi.Pod(testNS, "api-2", nil), new(ctrl("apps/v1", "ReplicaSet", "api-7d9"))))
	restarted := newGuardedKiller(t, srv, "", guard{})
	restarted.cooldown = &cooldown{api: restarted.api.(*kube.Client), namespace: testNS, period: time.Hour}
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
	k.guard.allowOrphans = true
	for range 2 {
		if r := killOnce(t, k); r.Outcome != OutcomeKilled {
			t.Fatalf("%s (%v), passed %q; want a kill", r.Outcome, r.Err, r.Passed)
		}
	}
	if got := srv.ConfigMap(testNS, cooldownConfigMap).Data; fmt.Sprint(got) != "map[shop.Deployment.api:2026-03-29T09:00:00Z]" {
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
// fails on a line naming MACAQUE_COOLDOWN and POD_NAMESPACE. A cooldown of 0 needs no state.
func TestStartCooldownFindsItsNamespace(t *testing.T) {
	_, c := cooldownServer(t, nil)
	named, everywhere := mustScope(t, testNS+",other"), mustScope(t, "*")
	tests := []struct {
		name   string
		period time.Duration
		own    string
		sc     scope
		wantNS string // the cooldown's namespace; "" with wantErr: none
		errMsg string
	}{
		{name: "off", period: 0, sc: everywhere},
		{name: "its own namespace", period: time.Hour, own: testNS, sc: everywhere, wantNS: testNS},
		{name: "its own namespace before the scope's", period: time.Hour, own: testNS, sc: mustScope(t, "other"), wantNS: testNS},
		{name: "out of a pod: the scope's first namespace", period: time.Hour, sc: named, wantNS: testNS},
		{name: "out of a pod, every namespace: unknown", period: time.Hour, sc: everywhere,
			errMsg: "MACAQUE_COOLDOWN: macaque's own namespace, where the ConfigMap macaque-cooldown keeps the cooldown state, is unknown: set POD_NAMESPACE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := startCooldown(boundedCtx(t), c.api, tt.period, tt.own, tt.sc)
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
				if got != nil {
					t.Errorf("cooldown %+v, want none", got)
				}
				return
			}
			if got == nil || got.namespace != tt.wantNS || got.period != tt.period {
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
	reports := k.kill(t.Context(), tick0)
	if len(reports) != 2 {
		t.Fatalf("%d reports, want both Deployments hit: %+v", len(reports), reports)
	}
	for _, r := range reports {
		if r.Outcome != OutcomeKilled || r.Note != "" {
			t.Errorf("%s of %.20s...: %s (%v), note %q; want killed and its cooldown recorded", r.Owner, r.Pod, r.Outcome, r.Err, r.Note)
		}
	}
	if got := srv.ConfigMap(testNS, cooldownConfigMap).Data; len(got) != 2 {
		t.Errorf("state %v, want an entry for each Deployment", got)
	}

	for _, app := range []string{longName, "web"} { // their replacements
		srv.Add(ownedBy(fakeapi.Pod(testNS, app+"-2", nil), new(ctrl("apps/v1", "ReplicaSet", app+"-7d9"))))
	}
	k.now = func() time.Time { return tick0.Add(time.Minute) }
	reports = k.kill(t.Context(), tick0.Add(time.Minute))
	if len(reports) != 1 || reports[0].Outcome != OutcomeSkipped {
		t.Fatalf("a minute later: %+v; want one report, skipped: both are cooling down", reports)
	}
	assertPassed(t, reports[0].Passed, []string{"shop/" + longName + "-2: Deployment/" + longName + " lost a pod 1m0s ago", "shop/web-2: Deployment/web lost a pod 1m0s ago"})
}

// TestCooldownRecordsLongNames: the state records a workload of any valid name, and reads it
// back; one whose key would be too long costs no other its entry.
func TestCooldownRecordsLongNames(t *testing.T) {
	long := kube.OwnerRef{Kind: "Deployment", Name: longName}
	web := kube.OwnerRef{Kind: "Deployment", Name: "web"}
	srv, c := cooldownServer(t, nil)
	if err := c.record(boundedCtx(t), []string{cooldownKey(testNS, long), cooldownKey(testNS, web)}, tick0); err != nil {
		t.Fatalf("record: %v", err)
	}
	h, err := c.load(boundedCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, top := range []kube.OwnerRef{long, web} {
		if why := c.check(h, testNS, &top, tick0.Add(time.Minute)); !strings.Contains(why, "lost a pod 1m0s ago") {
			t.Errorf("%.30s...: %q, want it cooling down; state %v", top.Name, why, srv.ConfigMap(testNS, cooldownConfigMap).Data)
		}
	}
}

// TestCooldownDropsEntriesNoConfigMapHolds: an entry of the stored state that the API server
// would refuse in a write (a key edited by hand, or from before a tighter validation) is
// dropped, never written back to sink the others with it.
func TestCooldownDropsEntriesNoConfigMapHolds(t *testing.T) {
	recent := tick0.Add(-time.Minute).Format(time.RFC3339)
	garbage := "shop.Deployment." + longName // today's key of the long name: 255 characters
	srv, c := cooldownServer(t, map[string]string{garbage: recent, "shop.Deployment.api": recent, "shop.Deployment.bad-value": "soon"})
	if err := c.record(boundedCtx(t), []string{"shop.Deployment.web"}, tick0); err != nil {
		t.Fatalf("record: %v", err)
	}
	got := srv.ConfigMap(testNS, cooldownConfigMap).Data
	want := map[string]string{"shop.Deployment.api": recent, "shop.Deployment.web": tick0.Format(time.RFC3339)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("state %v, want %v", got, want)
	}
	if err := c.record(boundedCtx(t), []string{"shop.Deployment.db", garbage}, tick0); err == nil || !strings.Contains(err.Error(), "not a valid ConfigMap key") {
		t.Errorf("record of a key no ConfigMap holds: %v, want an error saying so", err)
	}
	if got := srv.ConfigMap(testNS, cooldownConfigMap).Data; got["shop.Deployment.db"] == "" {
		t.Errorf("state %v: the valid key of the same write was not recorded", got)
	}
}

// TestCooldownKeys: a key is a valid ConfigMap key for any valid namespace, kind and name, is
// the same for the same workload and differs between workloads; a short one is today's
// "namespace.Kind.name", so that the state written before still reads.
func TestCooldownKeys(t *testing.T) {
	fits := strings.Repeat("a", 253-len("shop.Deployment."))
	tests := []struct {
		name      string
		namespace string
		top       kube.OwnerRef
		want      string // the key; with hashed, what it starts with
		hashed    bool
	}{
		{name: "short", namespace: "shop", top: kube.OwnerRef{Kind: "Deployment", Name: "web"}, want: "shop.Deployment.web"},
		{name: "a dotted name", namespace: "shop", top: kube.OwnerRef{Kind: "StatefulSet", Name: "db.v2"}, want: "shop.StatefulSet.db.v2"},
		{name: "just fits", namespace: "shop", top: kube.OwnerRef{Kind: "Deployment", Name: fits}, want: "shop.Deployment." + fits},
		{name: "a character past", namespace: "shop", top: kube.OwnerRef{Kind: "Deployment", Name: fits + "b"}, want: "shop.Deployment." + fits[:253-17-16], hashed: true},
		{name: "the 239 characters seen", namespace: "shop", top: kube.OwnerRef{Kind: "Deployment", Name: longName}, want: "shop.Deployment.aaaa", hashed: true},
		{name: "every piece at its longest", namespace: strings.Repeat("n", 63), top: kube.OwnerRef{Kind: "Rollout" + strings.Repeat("x", 100), Name: strings.Repeat("a.b-", 63) + "a"},
			want: strings.Repeat("n", 63) + ".Rollout", hashed: true},
		{name: "a name of characters no key holds", namespace: "shop", top: kube.OwnerRef{Kind: "Widget", Name: "café:1"}, want: "shop.Widget.caf", hashed: true},
		{name: "empty pieces", hashed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cooldownKey(tt.namespace, tt.top)
			if errs := validation.IsConfigMapKey(got); len(errs) > 0 {
				t.Fatalf("key %q (%d characters) is no ConfigMap key: %v", got, len(got), errs)
			}
			if !tt.hashed && got != tt.want {
				t.Errorf("key %q, want %q", got, tt.want)
			}
			if tt.hashed && (!strings.HasPrefix(got, tt.want) || !hashSuffix.MatchString(got)) {
				t.Errorf("key %q, want one starting %q and ending in a hash", got, tt.want)
			}
			if again := cooldownKey(tt.namespace, tt.top); again != got {
				t.Errorf("key %q, then %q: not the same for the same workload", got, again)
			}
		})
	}
	// Names alike but past the cut: the hash tells them apart.
	a, b := cooldownKey("shop", kube.OwnerRef{Kind: "Deployment", Name: longName + "-a"}), cooldownKey("shop", kube.OwnerRef{Kind: "Deployment", Name: longName + "-b"})
	if a == b {
		t.Errorf("two workloads share the key %q", a)
	}
	// Random valid names, many of them long: every key valid, and no two workloads' alike.
	rng := rand.New(rand.NewPCG(18, 8))
	seen := map[string]string{}
	for range 2000 {
		ns := dnsLabel(rng, 1+rng.IntN(63))
		top := kube.OwnerRef{Kind: "K" + dnsLabel(rng, rng.IntN(60)), Name: dnsSubdomain(rng, 1+rng.IntN(253))}
		key, workload := cooldownKey(ns, top), ns+"/"+top.Kind+"/"+top.Name
		if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
			t.Fatalf("%s: key %q is no ConfigMap key: %v", workload, key, errs)
		}
		if other, ok := seen[key]; ok && other != workload {
			t.Fatalf("%s and %s share the key %q", workload, other, key)
		}
		seen[key] = workload
	}
}

// hashSuffix is how a cut cooldown key ends.
var hashSuffix = regexp.MustCompile(`\.[0-9a-f]{16}$`)

// dnsLabel is a random DNS label of n characters (n ≤ 63), as a namespace is.
func dnsLabel(rng *rand.Rand, n int) string {
	const alnum, inner = "abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrstuvwxyz0123456789-"
	b := make([]byte, n)
	for i := range b {
		set := inner
		if i == 0 || i == n-1 {
			set = alnum
		}
		b[i] = set[rng.IntN(len(set))]
	}
	return string(b)
}

// dnsSubdomain is a random DNS subdomain of about n characters (at most 253), as a workload's
// name is: labels joined by dots.
func dnsSubdomain(rng *rand.Rand, n int) string {
	var labels []string
	for left := n; left > 0; {
		l := min(left, 1+rng.IntN(63))
		labels = append(labels, dnsLabel(rng, l))
		left -= l + 1
	}
	return strings.Join(labels, ".")
}
