package recovery

import (
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/testkit"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
)

// TestLatestEventQuoted: of a replacement's Events, in whatever order the API server lists them,
// a verdict not recovered quotes its latest Warning, or its latest Event when none is a Warning:
// a Warning says more than a later Normal one ("Pulled" after "Failed").
func TestLatestEventQuoted(t *testing.T) {
	ref := corev1.ObjectReference{Kind: "Pod", Namespace: testNS, Name: "web-7d9f-x", UID: "uid-web-x"}
	ev := func(typ, reason string, at time.Duration) eventsv1.Event {
		return seen(ref, typ, reason, reason+" at "+at.String(), at, false)
	}
	for _, tt := range []struct {
		name   string
		events []eventsv1.Event // as the API server lists them
		want   string
	}{
		{"a Warning Event is quoted over a later Normal one",
			[]eventsv1.Event{ev("Warning", "Failed", 8*time.Second), ev("Normal", "Pulled", 9*time.Second)},
			"latest event: Warning Failed: Failed at 8s"},
		{"a Warning listed after a later Normal one is quoted over it",
			[]eventsv1.Event{ev("Normal", "Pulled", 9*time.Second), ev("Warning", "Failed", 8*time.Second)},
			"latest event: Warning Failed: Failed at 8s"},
		{"the later of two Warnings, listed last",
			[]eventsv1.Event{ev("Warning", "FailedScheduling", 5*time.Second), ev("Warning", "BackOff", 8*time.Second)},
			"latest event: Warning BackOff: BackOff at 8s"},
		{"the later of two Warnings, listed first",
			[]eventsv1.Event{ev("Warning", "BackOff", 8*time.Second), ev("Warning", "FailedScheduling", 5*time.Second)},
			"latest event: Warning BackOff: BackOff at 8s"},
		{"no Warning: the latest Normal one, listed first",
			[]eventsv1.Event{ev("Normal", "Pulled", 9*time.Second), ev("Normal", "Scheduled", 2*time.Second)},
			"latest event: Normal Pulled: Pulled at 9s"},
		{"no Event: nothing quoted", nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t)
			for _, e := range tt.events {
				srv.AddEvent(e)
			}
			rc := &Follower{API: clientOf(t, srv), Log: discardLogger()}
			if got := rc.latestEvent(testkit.Ctx(t), testNS, ref.UID); got != tt.want {
				t.Errorf("latestEvent = %q, want %q", got, tt.want)
			}
		})
	}
}
