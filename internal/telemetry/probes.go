package telemetry

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Health probes that tell the truth: /healthz fails when the scheduler or the killer goroutine
// has stalled, /readyz when the API server is unreachable or RBAC forbids what macaque needs.

// HeartbeatMargin is how late a heartbeat may be before /healthz fails: far above a goroutine
// starved of CPU for a while, so that the kubelet never restarts a macaque that is merely slow
// (a restart mid-kill would lose the kill's report).
const HeartbeatMargin = time.Minute

// Heartbeat is how a goroutine shows it is alive: each beat promises the next one by a deadline.
// It keeps a time.Time, not a number, so that its monotonic reading makes a wall clock that
// steps neither fail nor pass the probe.
type Heartbeat struct {
	mu       sync.Mutex
	last     time.Time // the last beat
	deadline time.Time // zero: no beat is due (the goroutine waits on another one, which has its own)
}

// Beat records that the goroutine was alive at now and will beat again within d.
func (h *Heartbeat) Beat(now time.Time, d time.Duration) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last, h.deadline = now, now.Add(d)
}

// Rest records that the goroutine was alive at now and now waits with no deadline of its own.
func (h *Heartbeat) Rest(now time.Time) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last, h.deadline = now, time.Time{}
}

// overdue says, at now, whether a beat due has not come, and since when the goroutine was last seen.
func (h *Heartbeat) overdue(now time.Time) (last time.Time, late bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last, !h.deadline.IsZero() && now.After(h.deadline)
}

// Readiness is whether macaque can do its job against the API server, as the latest
// observation says: the killer's list of pods at each tick, or the periodic access check,
// whichever came last. So a fixed RoleBinding turns it ready at the next check, however far the
// next tick is.
type Readiness struct {
	mu  sync.Mutex
	why string // "" when ready: what failed, for the /readyz body
}

// NotStarted is /readyz's answer until the start-up checks have passed.
const NotStarted = "the start-up checks have not passed yet"

// Observe records the result of what (a list, a check) at now: err nil means ready.
func (r *Readiness) Observe(what string, now time.Time, err error) {
	if r == nil {
		return
	}
	why := ""
	if err != nil {
		why = fmt.Sprintf("%s failed at %s: %v", what, now.UTC().Format(time.RFC3339), err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.why = why
}

// state is "" when ready, otherwise why not.
func (r *Readiness) state() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.why
}

// Health is what the probes read: the goroutines' heartbeats and the readiness.
type Health struct {
	now       func() time.Time
	Scheduler Heartbeat // the scheduler's, beaten at each wake-up
	Killer    Heartbeat // the killer's, beaten when a kill starts
	Ready     Readiness // the latest list of pods or access check
}

// NewHealth is the state of a macaque starting: alive, not yet ready; now is the probes' clock.
func NewHealth(now func() time.Time) *Health {
	return &Health{now: now, Ready: Readiness{why: NotStarted}}
}

// serveHealthz answers 200 while every goroutine's heartbeat is on time, 503 naming the first
// that is not.
func (h *Health) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	now := h.now()
	for _, g := range []struct {
		name string
		beat *Heartbeat
	}{{"scheduler", &h.Scheduler}, {"killer", &h.Killer}} {
		last, late := g.beat.overdue(now)
		if late {
			http.Error(w, fmt.Sprintf("unhealthy: the %s goroutine is stalled: last seen %v ago", g.name, now.Sub(last).Round(time.Second)), http.StatusServiceUnavailable)
			return
		}
	}
	fmt.Fprintln(w, "ok")
}

// serveReadyz answers 200 while the latest list or access check passed, 503 with what failed.
func (h *Health) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	if why := h.Ready.state(); why != "" {
		http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}
