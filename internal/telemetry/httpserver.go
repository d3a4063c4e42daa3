package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The HTTP server on MACAQUE_HTTP_ADDR: /metrics for Prometheus, /healthz and /readyz for the
// kubelet's probes.

// ShutdownTimeout bounds how long a scrape in flight at SIGTERM may hold up the exit; it
// comes after the kill in flight has finished, within terminationGracePeriodSeconds.
const ShutdownTimeout = 5 * time.Second

// httpReadHeaderTimeout stops a client that opens a connection and never sends its request
// from holding it forever.
const httpReadHeaderTimeout = 10 * time.Second

// Listen binds addr, to be called before anything touches the cluster, so that a port already
// taken stops macaque at start with one line (the caller names the variable). An empty addr
// serves nothing: nil.
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %q: %w", addr, err)
	}
	return ln, nil
}

// NewHandler routes /metrics to m's registry and the probes to h.
func NewHandler(m *Metrics, h *Health, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError),
	}))
	mux.HandleFunc("GET /healthz", h.serveHealthz)
	mux.HandleFunc("GET /readyz", h.serveReadyz)
	return mux
}

// Serve serves handler on ln (nothing when ln is nil) until the returned stop is called; stop
// returns once the server has stopped, after at most grace (ShutdownTimeout) for the requests
// in flight, which are then cut.
func Serve(ln net.Listener, handler http.Handler, grace time.Duration, log *slog.Logger) (stop func()) {
	if ln == nil {
		return func() {}
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: httpReadHeaderTimeout,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			// The probes now fail, and the kubelet restarts macaque: the kills go on meanwhile.
			log.Error("http server stopped: no metrics nor probes", "err", err)
		}
	})
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close() // a scrape that outlasted the timeout is cut
		}
		wg.Wait()
	}
}
