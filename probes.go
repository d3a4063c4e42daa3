package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Health probes that tell the truth: /healthz fails when the scheduler or the killer goroutine
// has stalled, /readyz when the API server is unreachable or RBAC forbids what macaque needs.

// heartbeatMargin is how late a heartbeat may be before /healthz fails: far above a goroutine
// starved of CPU for a while, so that the kubelet never restarts a macaque that is merely slow
// (a restart mid-kill would lose the kill's report).
const heartbeatMargin = time.Minute

// accessCheckEvery is how often the access check runs. Each run costs what the start-up checks
// cost: at * scope one list of a page of one pod and a few access reviews; per named namespace
// a list of one pod, a dry-run delete (or eviction) and, with the guard, a GET of a missing
// object of each workload kind.
const accessCheckEvery = 30 * time.Second

// heartbeat is how a goroutine shows it is alive: each beat promises the next one by a deadline.
// It keeps a time.Time, not a number, so that its monotonic reading makes a wall clock that
// steps neither fail nor pass the probe.
type heartbeat struct {
	mu       sync.Mutex
	last     time.Time // the last beat
	deadline time.Time // zero: no beat is due (the goroutine waits on another one, which has its own)
}

// beat records that the goroutine was alive at now and will beat again within d.
func (h *heartbeat) beat(now time.Time, d time.Duration) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last, h.deadline = now, now.Add(d)
}

// rest records that the goroutine was alive at now and now waits with no deadline of its own.
func (h *heartbeat) rest(now time.Time) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last, h.deadline = now, time.Time{}
}

// overdue says, at now, whether a beat due has not come, and since when the goroutine was last seen.
func (h *heartbeat) overdue(now time.Time) (last time.Time, late bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last, !h.deadline.IsZero() && now.After(h.deadline)
}

// readiness is whether macaque can do its job against the API server, as the latest
// observation says: the killer's list of pods at each tick, or the periodic access check,
// whichever came last. So a fixed RoleBinding turns it ready at the next check, however far the
// next tick is.
type readiness struct {
	mu  sync.Mutex
	why string // "" when ready: what failed, for the /readyz body
}

// notStarted is /readyz's answer until the start-up checks have passed.
const notStarted = "the start-up checks have not passed yet"

// observe records the result of what (a list, a check) at now: err nil means ready.
func (r *readiness) observe(what string, now time.Time, err error) {
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
func (r *readiness) state() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.why
}

// health is what the probes read: the goroutines' heartbeats and the readiness.
type health struct {
	now       func() time.Time
	scheduler heartbeat
	killer    heartbeat
	ready     readiness
}

// newHealth is the state of a macaque starting: alive, not yet ready.
func newHealth(now func() time.Time) *health {
	return &health{now: now, ready: readiness{why: notStarted}}
}

// serveHealthz answers 200 while every goroutine's heartbeat is on time, 503 naming the first
// that is not.
func (h *health) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	now := h.now()
	for _, g := range []struct {
		name string
		beat *heartbeat
	}{{"scheduler", &h.scheduler}, {"killer", &h.killer}} {
		last, late := g.beat.overdue(now)
		if late {
			http.Error(w, fmt.Sprintf("unhealthy: the %s goroutine is stalled: last seen %v ago", g.name, now.Sub(last).Round(time.Second)), http.StatusServiceUnavailable)
			return
		}
	}
	fmt.Fprintln(w, "ok")
}

// serveReadyz answers 200 while the latest list or access check passed, 503 with what failed.
func (h *health) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	if why := h.ready.state(); why != "" {
		http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// accessCheck runs the start-up checks again every so often, so that /readyz follows RBAC and
// the API server between ticks, and turns ready again by itself when they are fixed.
type accessCheck struct {
	api       scopeAPI
	scope     scope
	mode      killMode
	healthOff bool
	every     time.Duration
	now       func() time.Time
	after     func(time.Duration) <-chan time.Time
	ready     *readiness
	log       *slog.Logger
}

// run checks every c.every until ctx is done. It logs when the check starts failing, when its
// reason changes and when it passes again, not at every failure: a RoleBinding deleted for a
// day is a few lines, not thousands.
func (c *accessCheck) run(ctx context.Context) {
	failing := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.after(c.every):
		}
		err := preflightScope(ctx, c.api, c.scope, c.mode, c.healthOff)
		if ctx.Err() != nil {
			return // cut short by SIGTERM: it says nothing of the cluster
		}
		c.ready.observe("the access check", c.now(), err)
		if err == nil {
			if failing != "" {
				c.log.Info("access check passes again: ready")
			}
			failing = ""
			continue
		}
		if err.Error() != failing {
			c.log.Warn("access check failed: not ready until it passes", "err", err)
		}
		failing = err.Error()
	}
}
