package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// cooldownServer is fakeapi holding macaque's cooldown ConfigMap in testNS with data.
func cooldownServer(t *testing.T, data map[string]string) (*fakeapi.Server, *cooldown) {
	t.Helper()
	srv := fakeapi.New(t)
	srv.AddConfigMap(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: cooldownConfigMap}, Data: data})
	api, err := newRESTPods(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return srv, &cooldown{api: api, namespace: testNS, period: time.Hour}
}

func TestCooldownCheck(t *testing.T) {
	c := &cooldown{period: time.Hour}
	key := cooldownKey("shop", ownerRef{Kind: "Deployment", Name: "web"})
	if key != "shop.Deployment.web" {
		t.Fatalf("key %q", key)
	}
	h := hits{key: tick0}
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{"just hit", tick0, "web lost a pod 0s ago: cooling down until 2026-03-29T10:00:00Z (MACAQUE_COOLDOWN=1h0m0s)"},
		{"a second before it passes", tick0.Add(time.Hour - time.Second), "web lost a pod 59m59s ago: cooling down until 2026-03-29T10:00:00Z"},
		{"the moment it passes", tick0.Add(time.Hour), ""},
		{"long after", tick0.Add(48 * time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.check(h, key, "web", tt.at)
			if (tt.want == "") != (got == "") || !strings.HasPrefix(got, tt.want) {
				t.Errorf("check at %v = %q, want %q", tt.at, got, tt.want)
			}
		})
	}
	if got := c.check(h, "shop.Deployment.api", "api", tick0); got != "" {
		t.Errorf("a workload never hit: %q, want none", got)
	}
	var off *cooldown
	if got := off.check(h, key, "web", tick0); got != "" {
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
	if err := c.record(boundedCtx(t), []string{"shop.Deployment.web", "cart.StatefulSet.db"}, tick0); err != nil {
		t.Fatal(err)
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
	if err != nil || again.check(h, "shop.Deployment.web", "web", tick0.Add(time.Minute)) == "" {
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
