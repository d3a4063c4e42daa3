package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/testkit"

	"github.com/macaque-chaos/macaque/internal/schedule"
	"github.com/robfig/cron/v3"
)

// everyDay excludes every day of the year, 02-29 included. internal/schedule's tests have their
// own: a _test.go helper is not shared across packages.
func everyDay() string {
	var days []string
	for d := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() == 2000; d = d.AddDate(0, 0, 1) {
		days = append(days, d.Format("01-02"))
	}
	return strings.Join(days, ",")
}

// TestSchedulerSaysWhyADayHasNoTick runs the scheduler over Christmas with 12-25 excluded: no
// tick on the 25th, and one info line naming the day, logged when the tick before it is done.
func TestSchedulerSaysWhyADayHasNoTick(t *testing.T) {
	spec, err := cron.ParseStandard("0 10 * * *")
	if err != nil {
		t.Fatal(err)
	}
	days, err := schedule.ParseExcludedDays("12-25")
	if err != nil {
		t.Fatal(err)
	}
	var logs testkit.SyncBuffer
	clock := newStepClock(time.Date(2026, 12, 24, 9, 0, 0, 0, time.UTC))
	s := &scheduler{schedule: schedule.Excluding(spec, days, time.UTC), location: time.UTC,
		now: clock.Now, after: clock.After, log: slog.New(slog.NewTextHandler(&logs, nil))}
	ticks := make(chan time.Time, 1)
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	go func() { s.run(ctx, ticks); close(done) }()
	defer func() { cancel(); testkit.Recv(t, done, "the scheduler to stop") }()

	clock.elapse(t, time.Hour, 0)
	if got := nextTickWithin(t, ticks); !got.Equal(time.Date(2026, 12, 24, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("tick %v, want the 24th at 10:00", got)
	}
	clock.elapse(t, 48*time.Hour, 0)
	if got := nextTickWithin(t, ticks); !got.Equal(time.Date(2026, 12, 26, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("tick %v, want the 26th at 10:00: nothing on the 25th", got)
	}
	clock.waitTimer(t) // the scheduler has computed the tick after the 26th's
	said := strings.Count(logs.String(), `msg="passing over excluded days`)
	if said != 1 || !strings.Contains(logs.String(), "days=[2026-12-25] next_tick=2026-12-26T10:00:00.000Z") {
		t.Errorf("log says %d times why the 25th has no tick, want once naming it and the next tick:\n%s", said, logs.String())
	}
}
