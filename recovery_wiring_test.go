package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/testkit"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/recovery"
	"k8s.io/client-go/rest"
)

// TestRecoveryFollowsTwoTicksOfKills: the recovery follows at once every kill of two ticks of
// the most victims a tick kills, so that a tick's kills are never refused as too many in flight.
func TestRecoveryFollowsTwoTicksOfKills(t *testing.T) {
	if recovery.MaxFollowing != 2*maxVictims {
		t.Errorf("the recovery follows %d kills at once, want two ticks of %d", recovery.MaxFollowing, maxVictims)
	}
}

// TestVerdictEventAsMacaquesOthers: the verdict's Event, built by the kills' recorder as run
// wires it, is one the API server accepts, from macaque's reporting controller and instance,
// on the workload followed and about the victim.
func TestVerdictEventAsMacaquesOthers(t *testing.T) {
	srv := fakeapi.New(t) // neither controller exists: the verdict is unknown at once
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	rec := newTestRecorder(t, srv, &logs)
	f := &recovery.Follower{API: api, Timeout: time.Hour, Now: func() time.Time { return eventsAt }, After: time.After, Log: discardLogger(),
		Events: api, NewEvent: rec.event, Grace: shutdownGrace}
	rs := kube.OwnerRef{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9f", UID: "uid-rs"}
	deploy := kube.OwnerRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "uid-deploy"}
	kills, verdicts := make(chan recovery.Kill, 1), make(chan recovery.Verdict, 1)
	kills <- recovery.Kill{Tick: tick0, Namespace: testNS, Pod: "web-7d9f-a", UID: "uid-web-a", Controller: &rs, Top: &deploy, RV: "1", Deleted: tick0}
	close(kills)
	go f.Run(testkit.Ctx(t), kills, verdicts)
	if v, _ := testkit.Recv(t, verdicts, "the verdict"); v.Status != recovery.Unknown {
		t.Fatalf("verdict %q (%s), want unknown", v.Status, v.Why)
	}
	testkit.Recv(t, verdicts, "the verdicts to close, the Event written")
	events := srv.Events()
	if len(events) != 1 {
		t.Fatalf("%d Events, want the verdict's; log: %s", len(events), logs.String())
	}
	e := events[0]
	if e.Reason != "ChaosRecoveryUnknown" || e.ReportingController != kube.ReportingController || e.ReportingInstance != "macaque-7f9c-x2k4" ||
		e.Regarding.Kind != "Deployment" || e.Regarding.Name != "web" || e.Related == nil || e.Related.Name != "web-7d9f-a" {
		t.Errorf("Event %s by %s/%s on %s %s about %v, want ChaosRecoveryUnknown by macaque on Deployment web about web-7d9f-a",
			e.Reason, e.ReportingController, e.ReportingInstance, e.Regarding.Kind, e.Regarding.Name, e.Related)
	}
}
