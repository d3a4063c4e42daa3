package telemetry

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/telemetry/telemetrytest"
)

// The goroutines' deadlines TestHealthzHeartbeats puts heartbeats at, as macaque's are: the
// scheduler wakes at least every maxSleep, and a kill is bounded by its timeouts (by default
// 10s to pick, 10s to delete, 5s to read back).
const (
	maxSleep     = time.Minute
	killTimeouts = 25 * time.Second
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// wantProbe checks that path, served by the real handler over h, answers code with a body
// containing every one of want.
func wantProbe(t *testing.T, h *Health, path string, code int, want ...string) {
	t.Helper()
	telemetrytest.WantProbe(t, NewHandler(NewMetrics(nil), h, discardLogger()), path, code, want...)
}

// TestHealthzHeartbeats checks /healthz against each goroutine's heartbeat at the edge of its
// deadline: the scheduler's every maxSleep, the killer's only while a kill runs.
func TestHealthzHeartbeats(t *testing.T) {
	killTime := killTimeouts + HeartbeatMargin
	schedTime := maxSleep + HeartbeatMargin
	tests := []struct {
		name  string
		beats func(h *Health)
		at    time.Duration // after tick0
		code  int
		say   string
	}{
		{name: "no beat yet", beats: func(*Health) {}, at: time.Hour, code: http.StatusOK, say: "ok"},
		{name: "scheduler on time", beats: func(h *Health) { h.Scheduler.Beat(tick0, schedTime) }, at: schedTime, code: http.StatusOK},
		{name: "scheduler overdue", beats: func(h *Health) { h.Scheduler.Beat(tick0, schedTime) }, at: schedTime + time.Second,
			code: http.StatusServiceUnavailable, say: "the scheduler goroutine is stalled: last seen 2m1s ago"},
		{name: "a kill within its timeouts", beats: func(h *Health) { h.Killer.Beat(tick0, killTime) }, at: killTime, code: http.StatusOK},
		{name: "a kill past its timeouts", beats: func(h *Health) { h.Killer.Beat(tick0, killTime) }, at: killTime + time.Second,
			code: http.StatusServiceUnavailable, say: "the killer goroutine is stalled"},
		{name: "an idle killer owes no beat", beats: func(h *Health) { h.Killer.Beat(tick0, killTime); h.Killer.Rest(tick0.Add(time.Second)) },
			at: 48 * time.Hour, code: http.StatusOK},
		{name: "the scheduler is named first", beats: func(h *Health) { h.Scheduler.Beat(tick0, schedTime); h.Killer.Beat(tick0, killTime) },
			at: 24 * time.Hour, code: http.StatusServiceUnavailable, say: "scheduler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHealth(func() time.Time { return tick0.Add(tt.at) })
			tt.beats(h)
			wantProbe(t, h, "/healthz", tt.code, tt.say)
		})
	}
}

// TestNilHeartbeatAndReadinessRecordNothing checks that goroutines built without probes (as most
// tests build them) can beat, rest and observe.
func TestNilHeartbeatAndReadinessRecordNothing(_ *testing.T) {
	var h *Heartbeat
	h.Beat(tick0, time.Minute)
	h.Rest(tick0)
	var r *Readiness
	r.Observe("the list of pods", tick0, nil)
}
