package recovery

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/testkit"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// sec is s seconds.
func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// failFirstRead makes srv refuse the first read of the workload at path (a GET, not a watch):
// the follow starts without it, and reads it fine later.
func failFirstRead(srv *fakeapi.Server, path string) {
	var failed atomic.Bool
	srv.Fail = func(r fakeapi.Request) *metav1.Status {
		if r.Method == http.MethodGet && r.Path == path && r.Query.Get("watch") != "true" && failed.CompareAndSwap(false, true) {
			return fakeapi.InternalError("etcdserver: request timed out")
		}
		return nil
	}
}

// webPath is the API path of the Deployment web.
const webPath = "/apis/apps/v1/namespaces/" + testNS + "/deployments/web"

// TestRecoveryVerdictWhatTheStartMissed: a follow that could not read its workload, or not use
// its selector, as it started still follows the kill to a verdict that says only what it saw.
func TestRecoveryVerdictWhatTheStartMissed(t *testing.T) {
	back := func(t *testing.T, srv *fakeapi.Server, clock *syncClock, rc *Follower) {
		srv.AddWorkload(deployment(2))
		clock.tell(t, sec(0.1))
		srv.Add(ownedPod("web-7d9f-x", "uid-web-x", webRS, true))
		clock.tell(t, sec(0.3))
		waitForReady(t, rc, "web-7d9f-x")
		srv.AddWorkload(deployment(3))
		clock.tell(t, sec(0.4))
	}
	for _, tt := range []struct {
		name   string
		before func(srv *fakeapi.Server)
	}{
		{"a Deployment whose selector cannot be used: its ReplicaSet's pods are watched", func(srv *fakeapi.Server) {
			d := deployment(3)
			d.Spec.Selector = &metav1.LabelSelector{} // would take every pod of the namespace
			srv.AddWorkload(d)
		}},
		{"a Deployment that could not be read at the start: back at full strength, no scale said", func(srv *fakeapi.Server) { failFirstRead(srv, webPath) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vc := verdictCase{pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
				want: Recovered, created: sec(0.3), ready: sec(0.3), full: sec(0.3), repl: "web-7d9f-x",
				summary: "web lost web-7d9f-a: replacement web-7d9f-x created in 0.3 s, Ready in 0.3 s, web back to 3/3 in 0.3 s"}
			_, v := vc.followFrom(t, tt.before, back)
			vc.checkVerdict(t, v)
			vc.checkWhy(t, v)
		})
	}
	for _, tt := range []verdictCase{
		{
			name: "a Deployment not read at the start, its watch silent, read at the timeout: its state then", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			setup:   func(srv *fakeapi.Server) { failFirstRead(srv, webPath) },
			play:    func(*testing.T, *fakeapi.Server, *syncClock) {},
			timeout: true, want: NotRecovered,
			why:    []string{"web: its status unchanged since the kill, which it does not count yet after 10s; no replacement created"},
			notWhy: []string{"state unknown"},
		},
		{
			name: "a ReplicaFailure condition no longer True is no reason", pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy,
			play: func(t *testing.T, srv *fakeapi.Server, clock *syncClock) {
				rs := replicaSet(`pods "web-7d9f-z" is forbidden: exceeded quota: none`)
				rs.Status.Conditions[0].Status = corev1.ConditionFalse // the quota since raised
				srv.AddWorkload(rs)                                    // its ReplicaSets are not watched: no clock read
				srv.AddWorkload(deployment(2))
				clock.tell(t, sec(0.1))
			},
			timeout: true, want: NotRecovered,
			why: []string{"web: 2/3 ready after 10s; no replacement created"}, notWhy: []string{"quota", "ReplicaSet web-7d9f"},
		},
	} {
		t.Run(tt.name, tt.run)
	}
}

// TestRecoveryPodsOfOtherControllers: a pod that web's selector matches but that is not web's
// (another Deployment's, a ReplicaSet since deleted, another kind's) is no replacement, no
// rollout, and costs no read of the API at each of its events; a change to a pod of another of
// web's ReplicaSets that was there before the kill is no rollout either.
func TestRecoveryPodsOfOtherControllers(t *testing.T) {
	api5c6d := kube.OwnerRef{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "api-5c6d", UID: "uid-rs-api-5c6d", Controller: new(true)}
	gone5c6d := kube.OwnerRef{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: web5c6d.Name, UID: "uid-rs-web-5c6d-deleted", Controller: new(true)}
	webSTS := kube.OwnerRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "web-cache", UID: "uid-sts-web-cache", Controller: new(true)}
	tests := []struct {
		name     string
		before   func(srv *fakeapi.Server) // before the kill
		other    *corev1.Pod               // created after the kill, before web's replacement
		ctl, top kube.OwnerRef
		noRead   string // a path never read
	}{
		{name: "another Deployment's, its selector overlapping web's",
			before: func(srv *fakeapi.Server) {
				rs := rolloutReplicaSet()
				rs.Name, rs.UID = api5c6d.Name, api5c6d.UID
				rs.OwnerReferences[0].Name, rs.OwnerReferences[0].UID = "api", "uid-deploy-api"
				srv.AddWorkload(rs)
			},
			other: relabelled(ownedPod("api-5c6d-x", "uid-api-x", api5c6d, true)), ctl: webRS, top: webDeploy},
		{name: "a ReplicaSet since deleted, whose name a new one of web's took",
			before: func(srv *fakeapi.Server) { srv.AddWorkload(rolloutReplicaSet()) },
			other:  ownedPod("web-5c6d-x", "uid-web-5c6d-x", gone5c6d, true), ctl: webRS, top: webDeploy},
		{name: "a StatefulSet's, under a Deployment", other: relabelled(ownedPod("web-cache-0", "uid-web-cache-0", webSTS, true)),
			ctl: webRS, top: webDeploy, noRead: "/replicasets/web-cache"},
		{name: "a ReplicaSet's, under a StatefulSet", other: dbLabelled(ownedPod("other-x", "uid-other-x", kube.OwnerRef{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "other", UID: "uid-other-rs", Controller: new(true)}, true)),
			ctl: dbSTS, top: dbSTS, noRead: "/replicasets/other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			victim, repl, full := "web-7d9f-a", ownedPod("web-7d9f-y", "uid-web-y", webRS, true), func(srv *fakeapi.Server) { srv.AddWorkload(deployment(3)) }
			if tt.top == dbSTS {
				victim, repl, full = "db-1", ownedPod("db-1", "uid-db-1-new", dbSTS, true), func(srv *fakeapi.Server) { srv.AddWorkload(statefulSet(3)) }
			}
			vc := verdictCase{pod: victim, uid: kubeUID(victim), ctl: tt.ctl, top: tt.top, want: Recovered,
				created: sec(1), ready: sec(1), full: sec(1), repl: repl.Name,
				summary: fmt.Sprintf("%s lost %s: replacement %s created in 1.0 s, Ready in 1.0 s, %[1]s back to 3/3 in 1.0 s", tt.top.Name, victim, repl.Name)}
			srv, v := vc.followFrom(t, tt.before, func(t *testing.T, srv *fakeapi.Server, clock *syncClock, rc *Follower) {
				srv.Add(tt.other)
				clock.tell(t, sec(0.5))
				srv.Add(tt.other) // a change to it: each event would read its controller again
				clock.tell(t, sec(0.6))
				srv.Add(repl)
				clock.tell(t, sec(1))
				waitForReady(t, rc, repl.Name)
				full(srv)
				clock.tell(t, sec(1.2))
			})
			vc.checkVerdict(t, v)
			vc.checkWhy(t, v)
			if tt.noRead == "" {
				return
			}
			for _, r := range srv.Requests() {
				if strings.HasSuffix(r.Path, tt.noRead) {
					t.Errorf("%s %s read: a pod of another kind's controller cost a read of the API", r.Method, r.Path)
				}
			}
		})
	}
	t.Run("a change to a pod of another of web's ReplicaSets, there before the kill, is no rollout", func(t *testing.T) {
		vc := verdictCase{pod: "web-7d9f-a", uid: "uid-web-a", ctl: webRS, top: webDeploy, want: Recovered,
			created: sec(1), ready: sec(1), full: sec(1), repl: "web-7d9f-y",
			summary: "web lost web-7d9f-a: replacement web-7d9f-y created in 1.0 s, Ready in 1.0 s, web back to 3/3 in 1.0 s"}
		_, v := vc.followFrom(t, func(srv *fakeapi.Server) {
			srv.AddWorkload(rolloutReplicaSet())
			srv.Add(ownedPod("web-5c6d-a", "uid-web-5c6d-a", web5c6d, false)) // mid-rollout
		}, func(t *testing.T, srv *fakeapi.Server, clock *syncClock, rc *Follower) {
			srv.Add(ownedPod("web-5c6d-a", "uid-web-5c6d-a", web5c6d, true))
			clock.tell(t, sec(0.5))
			srv.Add(ownedPod("web-7d9f-y", "uid-web-y", webRS, true))
			clock.tell(t, sec(1))
			waitForReady(t, rc, "web-7d9f-y")
			srv.AddWorkload(deployment(3))
			clock.tell(t, sec(1.2))
		})
		vc.checkVerdict(t, v)
		vc.checkWhy(t, v)
	})
}

// relabelled is p with web's labels: a pod that web's selector matches.
func relabelled(p *corev1.Pod) *corev1.Pod {
	p.Labels = map[string]string{"app": "web", "pod-template-hash": "7d9f"}
	return p
}

// dbLabelled is p with db's labels.
func dbLabelled(p *corev1.Pod) *corev1.Pod {
	p.Labels = map[string]string{"app": "db"}
	return p
}

// kubeUID is the UID recoveryWorld gives the pod name: uid-web-a for web-7d9f-a, uid-db-1 for db-1.
func kubeUID(name string) types.UID {
	return types.UID("uid-" + strings.Replace(name, "7d9f-", "", 1))
}

// followFrom kills tt's pod in recoveryWorld after before (if set) changed it, follows it while
// play makes the controllers' changes, and returns the API server and the verdict.
func (tt verdictCase) followFrom(t *testing.T, before func(*fakeapi.Server), play func(*testing.T, *fakeapi.Server, *syncClock, *Follower)) (*fakeapi.Server, Verdict) {
	t.Helper()
	srv, api := recoveryWorld(t)
	if before != nil {
		before(srv)
	}
	clock := newSyncClock()
	rc := newTestRecoverer(api, clock, 10*time.Second)
	verdicts := startFollow(testkit.Ctx(t), t, rc, killFor(t, api, tt.pod, tt.uid, tt.ctl, tt.top))
	clock.tell(t, 0)
	waitForWatches(t, srv, "the pods' and the workload's")
	waitForWorkloadRead(t, srv)
	play(t, srv, clock, rc)
	v, _ := testkit.Recv(t, verdicts, "the verdict")
	return srv, v
}

// waitForReady waits until rc's follows have seen the pod name Ready, failing after
// testkit.Within. The pods' and the workload's watches are read apart: a test that shows the
// workload back at full strength after the replacement's Ready waits for it, as the controller
// would count the pod only after its update.
func waitForReady(t *testing.T, rc *Follower, name string) {
	t.Helper()
	ready := func() bool {
		rc.claims.mu.Lock()
		defer rc.claims.mu.Unlock()
		for _, w := range rc.claims.byTop {
			if slices.ContainsFunc(w.pods, func(p *newPod) bool { return p.name == name && !p.readySeen.IsZero() }) {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(testkit.Within); !ready(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s not seen Ready after %v", name, testkit.Within)
		}
	}
}

// TestWatchClosedAsRoutineReopensAtOnce: a watch the API server closes after it got somewhere is
// reopened at once, from where it got, so that the follows on it fall no further behind; one
// closed with no news is reopened only after watchPause, so that a server closing them at once
// cannot make macaque spin.
func TestWatchClosedAsRoutineReopensAtOnce(t *testing.T) {
	api := newPipeAPI()
	clock := newManualClock(kill0, watchPause) // a pause waits for the test to move the clock
	rc := &Follower{API: api, Now: clock.now, After: clock.after, Log: discardLogger()}
	ctx, cancel := context.WithCancel(t.Context())
	defer func() { cancel(); rc.feeds.wait() }()
	rc.feeds.join(ctx, rc, podsKey(testNS), "10", kill0)
	w := api.next(t)
	w.pod(t, "ADDED", "web-a", "web", 11)
	_ = w.w.Close() // closed as routine, after an event
	if w = api.next(t); w.rv != "11" {
		t.Fatalf("reopened from %q, want from 11, where it got", w.rv)
	}
	if asked := clock.asked(); len(asked) != 0 {
		t.Errorf("timers %v before the reopening, want none", asked)
	}
	_ = w.w.Close() // closed again, with no news
	for deadline := time.Now().Add(testkit.Within); !slices.Contains(clock.asked(), watchPause); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timers %v after %v, want a pause of %v", clock.asked(), testkit.Within, watchPause)
		}
	}
	api.none(t)
	clock.set(kill0.Add(watchPause))
	if w = api.next(t); w.rv != "11" {
		t.Errorf("reopened from %q after the pause, want from 11", w.rv)
	}
}
