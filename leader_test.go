package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/election"
	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/recovery"
	"github.com/macaque-chaos/macaque/internal/testkit"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// lease is a leaderHold whose answer the test sets: err (nil: leading).
type lease struct {
	mu    sync.Mutex
	err   error
	asked []time.Duration // the need of each Hold, in order
}

func (l *lease) Hold(need time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, need)
	return l.err
}

func (l *lease) needs() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Duration(nil), l.asked...)
}

// errNotLeader is Hold's refusal on a standby.
var errNotLeader = fmt.Errorf("%w: another replica holds the Lease", election.ErrNotLeader)

func TestOnlyTheLeaderRunsATick(t *testing.T) {
	for _, c := range []struct {
		name    string
		leader  *lease // nil: no election
		reports int
		deletes int
	}{
		{"without election every replica ticks", nil, 1, 1},
		{"the leader ticks", &lease{}, 1, 1},
		{"a standby lists nothing, kills nothing, reports nothing", &lease{err: errNotLeader}, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := fakeapi.New(t, fakeapi.Pod(testNS, "web-1", nil))
			k := newTestKiller(t, srv, "", false)
			if c.leader != nil {
				k.leader = c.leader
			}
			results := runOneTick(t, k)
			if got := len(results); got != c.reports {
				t.Errorf("%d ticks reported, want %d", got, c.reports)
			}
			if got := len(srv.Deletes()); got != c.deletes {
				t.Errorf("%d deletes, want %d", got, c.deletes)
			}
			if c.reports == 0 && len(srv.Requests()) != 0 {
				t.Errorf("a standby's tick made %d requests, want none", len(srv.Requests()))
			}
		})
	}
}

func TestALeaderKillsOnlyWhileItsLeaseOutlastsTheKill(t *testing.T) {
	srv := fakeapi.New(t, fakeapi.Pod(testNS, "web-1", nil), fakeapi.Pod(testNS, "web-2", nil))
	k := newTestKiller(t, srv, "", false)
	l := &lease{}
	k.leader = l
	// The lease is lost between the tick's start and its kill (a renewal failed meanwhile).
	srv.Fail = func(r fakeapi.Request) *metav1.Status {
		if r.Method == http.MethodGet {
			l.mu.Lock()
			l.err = fmt.Errorf("%w: the Lease runs out in 9.9s unless renewed", election.ErrNotLeader)
			l.mu.Unlock()
		}
		return nil
	}
	r := killOnce(t, k)
	if n := len(srv.Deletes()); n != 0 {
		t.Fatalf("%d deletes by a replica whose lease would run out during the kill", n)
	}
	if r.Outcome != OutcomeError || !errors.Is(r.Err, election.ErrNotLeader) || !strings.Contains(r.Err.Error(), "runs out in 9.9s") {
		t.Errorf("report = %s, %v; want an error saying the lease runs out", r.Outcome, r.Err)
	}
	// Asked with the kill's own bound: the lease must outlast the DELETE's timeout.
	if got := l.needs(); len(got) == 0 || got[len(got)-1] != k.timeouts.Delete {
		t.Errorf("Hold asked for %v, want the last ask to be the DELETE's timeout %v", got, k.timeouts.Delete)
	}
}

func TestADryRunNeedsNoLeaseToReport(t *testing.T) {
	// A dry run's pick is a report, not a kill: no lease is asked for it, only for the tick.
	srv := fakeapi.New(t, fakeapi.Pod(testNS, "web-1", nil))
	k := newTestKiller(t, srv, "", true)
	l := &lease{}
	k.leader = l
	if r := killOnce(t, k); r.Outcome != OutcomeDryRun {
		t.Fatalf("outcome %s, want dry-run", r.Outcome)
	}
	if got := l.needs(); len(got) != 0 {
		t.Errorf("Hold asked %v within the tick, want nothing (run asks at its start)", got)
	}
}

func TestTheNotifierSaysWhoTookOver(t *testing.T) {
	stub := newSlackStub(t)
	n := newTestNotifier(stub, &testkit.Instant{})
	results, takeovers := make(chan []Result, 1), make(chan election.Takeover, 4)
	n.takeovers = takeovers
	at := time.Date(2026, 12, 7, 10, 0, 3, 0, time.UTC)
	takeovers <- election.Takeover{At: at, Identity: "macaque-b", From: "macaque-a", Expired: true}
	results <- []Result{killed}
	takeovers <- election.Takeover{At: at, Identity: "macaque-a", From: "macaque-b"}
	takeovers <- election.Takeover{At: at, Identity: "macaque-<!here>", From: ""}
	close(results)
	close(takeovers)
	done := make(chan struct{})
	go func() { n.run(t.Context(), results, time.Second); close(done) }()
	testkit.Recv(t, done, "the notifier to end")
	// Each channel is posted in its own order; the two channels interleave as they come.
	var crowns []string
	kills := 0
	for _, p := range stub.Posts() {
		if strings.HasPrefix(p["text"], ":crown:") {
			crowns = append(crowns, p["text"])
		}
		if strings.HasPrefix(p["text"], ":monkey_face: killed") {
			kills++
		}
	}
	want := []string{
		":crown: leader: `macaque-b` now holds the Lease macaque-leader and kills at each tick; from `macaque-a`, whose lease ran out (stopped, cut off or frozen) (at 2026-12-07 10:00:03 UTC).",
		":crown: leader: `macaque-a` now holds the Lease macaque-leader and kills at each tick; from `macaque-b`, which released it (at 2026-12-07 10:00:03 UTC).",
		":crown: leader: `macaque-&lt;!here&gt;` now holds the Lease macaque-leader and kills at each tick; no replica held it (at 2026-12-07 10:00:03 UTC).",
	}
	if kills != 1 || len(crowns) != len(want) {
		t.Fatalf("%d kill posts and %d takeover posts, want 1 and %d: %q", kills, len(crowns), len(want), stub.Posts())
	}
	for i, w := range want {
		if crowns[i] != w {
			t.Errorf("takeover post %d = %q, want %q", i, crowns[i], w)
		}
	}
}

func TestPreflightElection(t *testing.T) {
	denyLeases := func(verb string) func(fakeapi.Request) *metav1.Status {
		return func(r fakeapi.Request) *metav1.Status {
			if strings.Contains(r.Path, "/leases") && r.Method == verb {
				return fakeapi.Forbidden(map[string]string{"GET": "get", "POST": "create", "PUT": "update"}[verb], testNS)
			}
			return nil
		}
	}
	for _, c := range []struct {
		name   string
		own    string
		exists bool
		fail   func(fakeapi.Request) *metav1.Status
		want   string // "" for no error; a configError's text otherwise
	}{
		{"no lease yet, create allowed", testNS, false, nil, ""},
		{"a lease held by the other replica, update allowed", testNS, true, nil, ""},
		{"own namespace unknown", "", false, nil, "MACAQUE_LEADER_ELECTION: macaque's own namespace, where its Lease macaque-leader is kept, is unknown"},
		{"get refused", testNS, true, denyLeases("GET"), `MACAQUE_LEADER_ELECTION: cannot get the Lease macaque-leader in "` + testNS + `"`},
		{"create refused", testNS, false, denyLeases("POST"), `MACAQUE_LEADER_ELECTION: cannot create the Lease macaque-leader in "` + testNS + `"`},
		{"update refused", testNS, true, denyLeases("PUT"), `MACAQUE_LEADER_ELECTION: cannot update the Lease macaque-leader in "` + testNS + `"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := fakeapi.New(t)
			if c.exists {
				holder, secs := "macaque-other", int32(15)
				srv.SetLease(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: election.LeaseName, Namespace: testNS},
					Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs}})
			}
			before := srv.Lease(testNS, election.LeaseName)
			srv.Fail = c.fail
			err := preflightElection(t.Context(), newTestKiller(t, srv, "", false).api.(leaseAPI), c.own)
			if c.want == "" {
				if err != nil {
					t.Fatalf("preflightElection = %v, want nil", err)
				}
			} else {
				var bad *configError
				if !errors.As(err, &bad) || !strings.HasPrefix(err.Error(), c.want) {
					t.Fatalf("preflightElection = %v, want a configError starting %q", err, c.want)
				}
			}
			// The check is a dry run: the Lease is as it was (or still absent).
			if after := srv.Lease(testNS, election.LeaseName); (before == nil) != (after == nil) ||
				(before != nil && before.ResourceVersion != after.ResourceVersion) {
				t.Errorf("the check changed the Lease: %+v -> %+v", before, after)
			}
		})
	}
}

func TestRelayTakeovers(t *testing.T) {
	takeovers := make(chan election.Takeover, 2)
	told, inherited := make(chan election.Takeover, 2), make(chan recovery.Inheritance, 2)
	takeovers <- election.Takeover{Identity: "macaque-b", From: "macaque-a", Expired: true, Following: `[{"pod":"web-1"}]`}
	takeovers <- election.Takeover{Identity: "macaque-b", From: "macaque-a"} // released: nothing left
	close(takeovers)
	done := make(chan struct{})
	go func() { relayTakeovers(takeovers, told, inherited); close(done) }()
	testkit.Recv(t, done, "the relay's end")
	if n := len(told); n != 2 {
		t.Errorf("%d takeovers told, want 2", n)
	}
	in, _ := testkit.Recv(t, inherited, "the inheritance")
	if in.From != "macaque-a" || in.Kills != `[{"pod":"web-1"}]` {
		t.Errorf("inheritance %+v, want a's one kill", in)
	}
	if _, open := testkit.Recv(t, inherited, "inherited to close"); open {
		t.Error("an inheritance from a takeover that left nothing")
	}
	for range 2 {
		<-told
	}
	if _, open := testkit.Recv(t, told, "told to close"); open {
		t.Error("told not closed")
	}
}
