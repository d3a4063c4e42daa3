package main

import (
	"bytes"
	"testing"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/recovery"
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
	var logs bytes.Buffer
	rec := newTestRecorder(t, srv, &logs)
	if v := runVerdict(t, srv, rec, discardLogger(), eventsAt); v.Status != recovery.Unknown {
		t.Fatalf("verdict %q (%s), want unknown", v.Status, v.Why)
	}
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
