package telemetry

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/testkit"
)

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
	testkit.Recv(t, inFlight, "the scrape in flight")
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	testkit.Recv(t, stopped, "stop to return after its grace")
	if err, _ := testkit.Recv(t, errc, "the stuck scrape to be cut"); err == nil {
		t.Error("the stuck scrape got an answer, want its connection cut")
	}
}
