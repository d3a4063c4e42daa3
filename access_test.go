package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/telemetry"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// apiFailingGets is a client of a fake API server with one pod, whose GETs fail with the status
// the returned pointer holds (nil: they pass).
func apiFailingGets(t *testing.T) (scopeAPI, *atomic.Pointer[metav1.Status]) {
	t.Helper()
	srv := fakeapi.New(t, fakeapi.Pod(testNS, "web-0", nil))
	var failWith atomic.Pointer[metav1.Status]
	srv.Fail = func(r fakeapi.Request) *metav1.Status {
		if r.Method == http.MethodGet {
			return failWith.Load()
		}
		return nil
	}
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return api, &failWith
}

// TestReadyzFollowsTheAPI runs the access check against a fake API server that starts failing
// (RBAC forbids the list, then the server is down) and then recovers: /readyz fails with the
// reason and passes again by itself; the log has a line per change, not per check.
func TestReadyzFollowsTheAPI(t *testing.T) {
	api, failWith := apiFailingGets(t)
	clock := newStepClock(tick0)
	var logs bytes.Buffer
	var logMu sync.Mutex
	h := telemetry.NewHealth(clock.Now)
	check := &accessCheck{api: api, scope: scope{namespaces: []string{testNS}}, way: terminatorFor(modeDelete, api), every: accessCheckEvery,
		now: clock.Now, after: clock.After, ready: &h.Ready, log: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { check.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	logText := func() string { logMu.Lock(); defer logMu.Unlock(); return logs.String() }

	wantProbe(t, h, "/readyz", http.StatusServiceUnavailable, telemetry.NotStarted)
	h.Ready.Observe("the start-up checks", tick0, nil)
	wantProbe(t, h, "/readyz", http.StatusOK, "ok")

	steps := []struct {
		name  string
		fail  *metav1.Status
		code  int
		say   []string
		warns int // "access check failed" lines so far
		backs int // "passes again" lines so far
	}{
		{name: "passing", code: http.StatusOK},
		{name: "RBAC forbids the list", fail: fakeapi.Forbidden("list", testNS), code: http.StatusServiceUnavailable,
			say: []string{"not ready: the access check failed at ", `cannot list resource "pods"`, "MACAQUE_NAMESPACE"}, warns: 1},
		{name: "still forbidden: no new line", fail: fakeapi.Forbidden("list", testNS), code: http.StatusServiceUnavailable, warns: 1},
		{name: "a new reason: a new line", fail: fakeapi.InternalError("etcdserver: leader changed"), code: http.StatusServiceUnavailable,
			say: []string{"leader changed"}, warns: 2},
		{name: "fixed", code: http.StatusOK, say: []string{"ok"}, warns: 2, backs: 1},
		{name: "still fixed: no new line", code: http.StatusOK, warns: 2, backs: 1},
	}
	for _, st := range steps {
		failWith.Store(st.fail)
		if d := clock.waitTimer(t); d != accessCheckEvery {
			t.Fatalf("%s: the check waits %v, want %v", st.name, d, accessCheckEvery)
		}
		clock.fireTimer(t, 0)
		clock.waitTimer(t) // the check is done
		wantProbe(t, h, "/readyz", st.code, st.say...)
		log := logText()
		if n := strings.Count(log, "access check failed"); n != st.warns {
			t.Errorf("%s: %d warnings, want %d; log:\n%s", st.name, n, st.warns, log)
		}
		if n := strings.Count(log, "access check passes again"); n != st.backs {
			t.Errorf("%s: %d lines saying it passes again, want %d; log:\n%s", st.name, n, st.backs, log)
		}
	}
}

// lockedWriter serialises writes to w, for a log read while it is written.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
