package telemetry

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// waitWithin bounds every wait of these tests.
const waitWithin = 5 * time.Second

// recvWithin receives from ch, failing the test if nothing comes within waitWithin.
func recvWithin[T any](t *testing.T, ch <-chan T, what string) (T, bool) {
	t.Helper()
	select {
	case v, ok := <-ch:
		return v, ok
	case <-time.After(waitWithin):
		t.Fatalf("still waiting after %v for %s", waitWithin, what)
		var zero T
		return zero, false
	}
}

// TestServeHTTPCutsAScrapeThatOutlastsTheGrace: at stop, a request still in flight after the
// grace is cut, so that a stuck scrape cannot hold up macaque's exit past its grace period.
func TestServeHTTPCutsAScrapeThatOutlastsTheGrace(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inFlight := make(chan struct{})
	stuck := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		close(inFlight)
		<-r.Context().Done() // only a closed connection ends it
	})
	stop := Serve(ln, stuck, 50*time.Millisecond, discardLogger())
	errc := make(chan error, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/metrics")
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	recvWithin(t, inFlight, "the scrape in flight")
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	recvWithin(t, stopped, "stop to return after its grace")
	if err, _ := recvWithin(t, errc, "the stuck scrape to be cut"); err == nil {
		t.Error("the stuck scrape got an answer, want its connection cut")
	}
}
