package recovery

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/testkit"
)

// TestFollowingIsTheKillsInFlight: the kills followed now, for the Lease, from the moment
// each is taken to its verdict; a bare pod's, ended at once, is never among them.
func TestFollowingIsTheKillsInFlight(t *testing.T) {
	_, api := recoveryWorld(t)
	clock := newSyncClock()
	rc := newTestRecoverer(api, clock, time.Minute)
	if got := rc.Following(); got != "" {
		t.Fatalf("Following before any kill = %q, want empty", got)
	}
	ctx, cancel := context.WithCancel(testkit.Ctx(t))
	defer cancel()
	kills := make(chan Kill, 2)
	verdicts := make(chan Verdict, 2)
	go rc.Run(ctx, kills, verdicts)
	kills <- killFor(t, api, "web-7d9f-a", "uid-web-a", webRS, webDeploy)
	clock.tell(t, 0) // the follow begins
	kills <- Kill{Namespace: testNS, Pod: "lonely", UID: "uid-lonely", Tick: tick0}
	testkit.Recv(t, verdicts, "the bare pod's verdict")
	var hs []handed
	if err := json.Unmarshal([]byte(rc.Following()), &hs); err != nil {
		t.Fatalf("Following = %q: %v", rc.Following(), err)
	}
	want := handed{Namespace: testNS, Pod: "web-7d9f-a", UID: "uid-web-a", Tick: tick0, Deleted: kill0, Workload: "Deployment/web"}
	if len(hs) != 1 || hs[0] != want {
		t.Fatalf("Following = %+v, want only %+v", hs, want)
	}
	cancel() // the follow ends, unknown: macaque stopped
	close(kills)
	testkit.Recv(t, verdicts, "the followed kill's verdict")
	if _, open := testkit.Recv(t, verdicts, "the verdicts to close"); open {
		t.Fatal("a verdict more than the kills")
	}
	if got := rc.Following(); got != "" {
		t.Errorf("Following after every verdict = %q, want empty", got)
	}
}

// TestInheritedKillsEndUnknown: the kills a lost leader followed, handed over through the
// Lease, each get one verdict at once, unknown, saying that leadership moved and from whom;
// Run ends only once kills and the inheritances are both closed.
func TestInheritedKillsEndUnknown(t *testing.T) {
	_, api := recoveryWorld(t)
	rc := newTestRecoverer(api, newSyncClock(), time.Minute)
	lost := &Follower{}
	lost.following.add(Kill{Namespace: testNS, Pod: "web-7d9f-a", UID: "uid-web-a", Tick: tick0, Deleted: kill0, Controller: &webRS, Top: &webDeploy})
	lost.following.add(Kill{Namespace: testNS, Pod: "db-1", UID: "uid-db-1", Tick: tick0, Deleted: kill0.Add(time.Second), Controller: &dbSTS})
	inherited := make(chan Inheritance, 1)
	rc.Inherited = inherited
	kills := make(chan Kill)
	close(kills)
	verdicts := make(chan Verdict, 4)
	ended := make(chan struct{})
	go func() { rc.Run(testkit.Ctx(t), kills, verdicts); close(ended) }()
	inherited <- Inheritance{From: "macaque-a", Kills: lost.Following()}
	got := map[string]Verdict{}
	for range 2 {
		v, _ := testkit.Recv(t, verdicts, "an inherited kill's verdict")
		got[v.Pod] = v
	}
	for pod, workload := range map[string]string{"web-7d9f-a": "Deployment/web", "db-1": "StatefulSet/db"} {
		v := got[pod]
		if v.Status != Unknown || v.Workload != workload || !strings.HasPrefix(v.Why, "leadership moved: macaque-a,") || !v.Time.Equal(tick0) {
			t.Errorf("verdict on %s = %s on %q at %v (%s), want unknown on %s at the tick, leadership moved from macaque-a", pod, v.Status, v.Workload, v.Time, v.Why, workload)
		}
	}
	select {
	case <-ended:
		t.Fatal("Run ended with the inheritances still open")
	case <-time.After(20 * time.Millisecond):
	}
	close(inherited)
	testkit.Recv(t, ended, "Run's end once both inputs closed")
}

// TestAnUnreadableInheritanceIsLogged: a Lease annotation that is not the kills' list ends no
// verdict, and is said.
func TestAnUnreadableInheritanceIsLogged(t *testing.T) {
	var logs testkit.SyncBuffer
	rc := &Follower{Log: slog.New(slog.NewJSONHandler(&logs, nil))}
	if vs := rc.inherit(Inheritance{From: "macaque-a", Kills: "not json"}); len(vs) != 0 {
		t.Errorf("verdicts %+v from an unreadable list, want none", vs)
	}
	if !strings.Contains(logs.String(), "cannot read the kills the last leader followed") {
		t.Errorf("log %q does not say the list was unreadable", logs.String())
	}
}
