package recovery

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/kube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// testNS is the namespace of the tests' workloads.
const testNS = "shop"

// tick0 is the time of the tests' kills' tick.
var tick0 = time.Date(2026, 3, 29, 9, 0, 0, 0, time.UTC)

// testGrace is how long a verdict waits for the notifier once macaque is stopping, as macaque's
// testGrace.
const testGrace = 35 * time.Second

// tickVictims is the most pods one tick kills (the killer's tickVictims): half of MaxFollowing.
const tickVictims = MaxFollowing / 2

// clientOf is the API client of srv, unlimited.
func clientOf(t *testing.T, srv *fakeapi.Server) *kube.Client {
	t.Helper()
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testEvent builds an Event as macaque's recorder does, as events.k8s.io/v1 validates it: the
// tests' EventBuilder.
func testEvent(at time.Time, reason, action string, regarding kube.ObjectRef, related *kube.ObjectRef, note string) kube.Event {
	return kube.Event{APIVersion: "events.k8s.io/v1", Kind: "Event",
		Metadata:  kube.EventMeta{Name: fmt.Sprintf("%s.%x", regarding.Name, at.UnixNano()), Namespace: regarding.Namespace},
		EventTime: metav1.NewMicroTime(at), ReportingController: kube.ReportingController, ReportingInstance: "macaque-7f9c-x2k4",
		Action: action, Reason: reason, Regarding: regarding, Related: related, Note: note, Type: "Normal"}
}

// The tests' builder is one.
var _ EventBuilder = testEvent
