package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/macaque-chaos/macaque/internal/telemetry"
)

// The periodic access check behind /readyz between ticks. It stays beside the start-up checks it
// re-runs; telemetry only serves what it observes.

// accessCheckEvery is how often the access check runs. Each run costs what the start-up checks
// cost: at * scope one list of a page of one pod and a few access reviews; per named namespace
// a list of one pod, a dry-run delete (or eviction) and, with the guard, a GET of a missing
// object of each workload kind.
const accessCheckEvery = 30 * time.Second

// accessCheck runs the start-up checks again every so often, so that /readyz follows RBAC and
// the API server between ticks, and turns ready again by itself when they are fixed.
type accessCheck struct {
	api       scopeAPI
	scope     scope
	way       terminator
	healthOff bool
	every     time.Duration
	now       func() time.Time
	after     func(time.Duration) <-chan time.Time
	ready     *telemetry.Readiness
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
		err := preflightScope(ctx, c.api, c.scope, c.way, c.healthOff)
		if ctx.Err() != nil {
			return // cut short by SIGTERM: it says nothing of the cluster
		}
		c.ready.Observe("the access check", c.now(), err)
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
