package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/testkit"

	"github.com/macaque-chaos/macaque/internal/schedule"
	"github.com/robfig/cron/v3"
)

// runMainEnv makes this test binary run as the real macaque (see TestMain). It is not
// MACAQUE_-prefixed: macaque refuses a MACAQUE_ variable it does not know.
const runMainEnv = "GO_WANT_MACAQUE_MAIN"

// TestMain lets a test re-run this binary as the real macaque, to check exit codes and stderr.
func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// stepClock is a fake clock driven by the test: the scheduler asks for a timer, the test moves
// time forward and fires it.
type stepClock struct {
	mu      sync.Mutex
	now     time.Time
	then    []time.Time // what now becomes after each of the next reads, as a clock that steps
	reqs    chan time.Duration
	fire    chan time.Time
	pending []time.Duration // timer requests taken by waitTimer, not yet fired
}

func newStepClock(at time.Time) *stepClock {
	return &stepClock{now: at, reqs: make(chan time.Duration, 1), fire: make(chan time.Time)}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now
	if len(c.then) > 0 {
		c.now, c.then = c.then[0], c.then[1:]
	}
	return now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.reqs <- d
	return c.fire
}

// set moves the wall clock to at, as an NTP step or a resumed VM would, without firing a timer.
func (c *stepClock) set(at time.Time) {
	c.mu.Lock()
	c.now = at
	c.mu.Unlock()
}

// waitTimer waits (a few seconds at most) until the scheduler asks for its next timer, which
// proves it is done with whatever it did before, and returns the duration asked for.
func (c *stepClock) waitTimer(t *testing.T) time.Duration {
	t.Helper()
	if len(c.pending) > 0 {
		return c.pending[0]
	}
	select {
	case d := <-c.reqs:
		c.pending = append(c.pending, d)
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("the scheduler asked for no timer within 5s")
		return 0
	}
}

// fireTimer fires the timer the scheduler waits on, late after it should have ended.
func (c *stepClock) fireTimer(t *testing.T, late time.Duration) {
	t.Helper()
	d := c.waitTimer(t)
	c.pending = c.pending[1:]
	c.mu.Lock()
	c.now = c.now.Add(d + late)
	now := c.now
	c.mu.Unlock()
	select {
	case c.fire <- now:
	case <-time.After(5 * time.Second):
		t.Fatal("the scheduler did not take its timer within 5s")
	}
}

// elapse lets want pass on the scheduler's timers, which must each be at most maxSleep and
// add up to want, and fires the last one late.
func (c *stepClock) elapse(t *testing.T, want, late time.Duration) {
	t.Helper()
	for left := want; left > 0; {
		d := c.waitTimer(t)
		if d != min(left, maxSleep) {
			t.Fatalf("scheduler waits %v with %v of %v left, want %v", d, left, want, min(left, maxSleep))
		}
		left -= d
		if left > 0 {
			c.fireTimer(t, 0)
		} else {
			c.fireTimer(t, late)
		}
	}
}

// nextTickWithin waits a few seconds for a tick.
func nextTickWithin(t *testing.T, ticks <-chan time.Time) time.Time {
	t.Helper()
	select {
	case at, ok := <-ticks:
		if !ok {
			t.Fatal("ticks closed")
		}
		return at
	case <-time.After(5 * time.Second):
		t.Fatal("no tick within 5s")
		return time.Time{}
	}
}

func startScheduler(t *testing.T, spec, zone string, clock *stepClock) (chan time.Time, context.CancelFunc, chan struct{}) {
	t.Helper()
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		t.Fatal(err)
	}
	s := &scheduler{schedule: sched, location: mustLoad(t, zone), now: clock.Now, after: clock.After, log: discardLogger()}
	ticks := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.run(ctx, ticks); close(done) }()
	return ticks, cancel, done
}

func TestSchedulerRun(t *testing.T) {
	paris := time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC)

	t.Run("ticks across DST in the configured zone", func(t *testing.T) {
		clock := newStepClock(paris)
		ticks, cancel, done := startScheduler(t, "0 9 * * *", "Europe/Paris", clock)
		for _, step := range []struct {
			wait time.Duration
			at   time.Time
		}{
			{20 * time.Hour, time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC)},
			{23 * time.Hour, time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC)}, // the night is an hour shorter
			{24 * time.Hour, time.Date(2026, 3, 30, 7, 0, 0, 0, time.UTC)},
		} {
			clock.elapse(t, step.wait, 0)
			if got := nextTickWithin(t, ticks); !got.Equal(step.at) {
				t.Fatalf("tick at %v, want %v", got.UTC(), step.at)
			}
		}
		cancel()
		testkit.Recv(t, done, "the scheduler to return after ctx was cancelled")
		if _, open := testkit.Recv(t, ticks, "ticks to be closed"); open {
			t.Error("ticks not closed after ctx was cancelled")
		}
	})

	t.Run("a busy killer does not get a burst of ticks", func(t *testing.T) {
		clock := newStepClock(paris)
		ticks, cancel, done := startScheduler(t, "@every 10s", "UTC", clock)
		defer func() { cancel(); testkit.Recv(t, done, "the scheduler to stop") }()
		clock.elapse(t, 10*time.Second, 0)
		clock.elapse(t, 10*time.Second, 0) // the killer has not taken the first tick yet
		clock.elapse(t, 10*time.Second, 0)
		clock.waitTimer(t) // the scheduler has tried to send the third tick before it asks for a timer
		if got := nextTickWithin(t, ticks); !got.Equal(paris.Add(10 * time.Second)) {
			t.Errorf("tick %v, want the first one", got)
		}
		select {
		case got := <-ticks:
			t.Errorf("a second tick %v was queued", got)
		default:
		}
	})

	t.Run("a late timer does not shift or double the schedule", func(t *testing.T) {
		clock := newStepClock(time.Date(2026, 1, 1, 9, 59, 0, 0, time.UTC))
		ticks, cancel, done := startScheduler(t, "0 * * * *", "UTC", clock)
		defer func() { cancel(); testkit.Recv(t, done, "the scheduler to stop") }()
		clock.elapse(t, time.Minute, 2*time.Second) // fires at 10:00:02
		nextTickWithin(t, ticks)
		clock.elapse(t, time.Hour-2*time.Second, 0) // next wait is to 11:00:00, not 11:00:02
		if got := nextTickWithin(t, ticks); !got.Equal(time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC)) {
			t.Errorf("tick %v, want 11:00", got)
		}
	})

	t.Run("Friday to Monday is slept in steps that each read the clock again", func(t *testing.T) {
		clock := newStepClock(time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC)) // Friday 16:00
		ticks, cancel, done := startScheduler(t, "0 10 * * 1-5", "UTC", clock)
		defer func() { cancel(); testkit.Recv(t, done, "the scheduler to stop") }()
		clock.elapse(t, 66*time.Hour, 0) // every step at most maxSleep
		if got := nextTickWithin(t, ticks); !got.Equal(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)) {
			t.Errorf("tick %v, want Monday 10:00", got)
		}
	})

	t.Run("a clock that jumps forward mid-sleep fires on time, not a weekend late", func(t *testing.T) {
		clock := newStepClock(time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC)) // Friday 16:00
		ticks, cancel, done := startScheduler(t, "0 10 * * 1-5", "UTC", clock)
		defer func() { cancel(); testkit.Recv(t, done, "the scheduler to stop") }()
		clock.fireTimer(t, 0)
		// The VM was paused, or NTP stepped: when this step ends it is Monday 09:59:30.
		clock.set(time.Date(2026, 11, 30, 9, 58, 30, 0, time.UTC))
		clock.fireTimer(t, 0)
		if d := clock.waitTimer(t); d != 30*time.Second {
			t.Fatalf("after the jump the scheduler waits %v, want the 30s left to Monday 10:00", d)
		}
		clock.fireTimer(t, 0)
		if got := nextTickWithin(t, ticks); !got.Equal(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)) {
			t.Errorf("tick %v, want Monday 10:00", got)
		}
	})

	t.Run("a tick overslept by a paused VM is missed, not fired at an unscheduled time", func(t *testing.T) {
		clock := newStepClock(time.Date(2026, 11, 27, 9, 59, 0, 0, time.UTC))
		ticks, cancel, done := startScheduler(t, "0 10 * * 1-5", "UTC", clock)
		defer func() { cancel(); testkit.Recv(t, done, "the scheduler to stop") }()
		clock.fireTimer(t, 3*time.Hour) // wakes Friday 13:00, three hours after the 10:00 tick
		// The scheduler has moved on to the next activation (Monday 10:00) without a tick.
		if d := clock.waitTimer(t); d != maxSleep {
			t.Fatalf("next wait %v, want a step of %v towards Monday", d, maxSleep)
		}
		select {
		case got := <-ticks:
			t.Errorf("tick %v fired three hours late", got)
		default:
		}
	})

	t.Run("a tick woken for exactly maxSleep late still fires", func(t *testing.T) {
		clock := newStepClock(time.Date(2026, 11, 27, 9, 59, 0, 0, time.UTC))
		ticks, cancel, done := startScheduler(t, "0 10 * * 1-5", "UTC", clock)
		defer func() { cancel(); testkit.Recv(t, done, "the scheduler to stop") }()
		clock.fireTimer(t, maxSleep) // wakes at 10:01:00
		if got := nextTickWithin(t, ticks); !got.Equal(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)) {
			t.Errorf("tick %v, want Friday 10:00", got)
		}
	})

	t.Run("a clock stepped back does not fire the same activation twice", func(t *testing.T) {
		clock := newStepClock(time.Date(2026, 1, 1, 9, 59, 0, 0, time.UTC))
		ticks, cancel, done := startScheduler(t, "0 * * * *", "UTC", clock)
		defer func() { cancel(); testkit.Recv(t, done, "the scheduler to stop") }()
		clock.waitTimer(t)
		clock.mu.Lock()
		// The read that ends the sleep sees 10:00:00; right after, NTP steps the clock back 30s.
		clock.then = []time.Time{time.Date(2026, 1, 1, 9, 59, 30, 0, time.UTC)}
		clock.mu.Unlock()
		clock.fireTimer(t, 0)
		if got := nextTickWithin(t, ticks); !got.Equal(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)) {
			t.Fatalf("tick %v, want 10:00", got)
		}
		if d := clock.waitTimer(t); d != maxSleep {
			t.Errorf("next wait %v, want a step of %v towards 11:00, not the 30s back to 10:00", d, maxSleep)
		}
		clock.fireTimer(t, 0)
		clock.waitTimer(t)
		select {
		case got := <-ticks:
			t.Errorf("tick %v fired twice", got)
		default:
		}
	})
}

// view is the part of settings a test can compare: schedules are compared by their activations.
type view struct {
	Next      []time.Time // the first three activations after viewFrom
	Zone      string
	Namespace string
	Selector  string
	DryRun    bool
	Guard     guardSettings
	MinPodAge time.Duration
	Slack     slackSettings
	LogFormat string
	LogLevel  slog.Level
	Mode      killMode
	Grace     string // graceSetting of the grace period
	Count     killCount
	HTTPAddr  string
	Recovery  time.Duration
}

// viewFrom is a Friday noon, UTC.
var viewFrom = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func viewOf(s settings) view {
	v := view{Zone: s.location.String(), Namespace: s.scope.String(), Selector: s.selector.String(), DryRun: s.dryRun,
		Guard: s.guard, Slack: s.slack, LogFormat: s.logFormat, LogLevel: s.logLevel, MinPodAge: s.minPodAge, Mode: s.mode, Grace: graceSetting(s.grace), Count: s.count, HTTPAddr: s.httpAddr, Recovery: s.recovery}
	at := viewFrom
	for range 3 {
		at = schedule.Next(s.schedule, s.location, at)
		v.Next = append(v.Next, at.UTC())
	}
	return v
}

func TestConfigCheck(t *testing.T) {
	good := Config{Crontab: "0 10-16 * * 1-5", Timezone: "Europe/Paris", Selector: "app in (a,b),tier!=db",
		SlackAPIUrl: "https://slack.com/api", LogFormat: "text", LogLevel: "info", RequireHealthy: true, RecoveryTimeout: 5 * time.Minute}
	utc := func(day, hour, minute int) time.Time { return time.Date(2026, 11, day, hour, minute, 0, 0, time.UTC) }
	goodView := view{
		Next: []time.Time{utc(27, 13, 0), utc(27, 14, 0), utc(27, 15, 0)}, // 14:00, 15:00, 16:00 in Paris
		Zone: "Europe/Paris", Selector: "app in (a,b),tier!=db", Slack: slackSettings{apiURL: "https://slack.com/api/"},
		LogFormat: "text", LogLevel: slog.LevelInfo, Guard: guardSettings{on: true, ownerKinds: map[string]bool{}},
		Mode: modeDelete, Grace: "the pod's own", Count: killCount{n: 1}, Recovery: 5 * time.Minute,
	}
	tests := []struct {
		name    string
		edit    func(*Config)
		want    func(*view) // valid: how the settings differ from goodView
		wantVar string      // invalid: the variable named
		wantMsg string
	}{
		{name: "valid", edit: func(*Config) {}, want: func(*view) {}},
		{name: "fast schedule allowed", edit: func(c *Config) { c.Crontab, c.AllowFastSchedule = "@every 2s", true },
			want: func(v *view) {
				v.Next = []time.Time{viewFrom.Add(2 * time.Second), viewFrom.Add(4 * time.Second), viewFrom.Add(6 * time.Second)}
			}},
		{name: "slack both set, token trimmed", edit: func(c *Config) { c.SlackToken, c.SlackChannel = "xoxb-1\n", " C1" },
			want: func(v *view) { v.Slack.token, v.Slack.channel = "xoxb-1", "C1" }},
		{name: "json debug", edit: func(c *Config) { c.LogFormat, c.LogLevel = "json", "debug" },
			want: func(v *view) { v.LogFormat, v.LogLevel = "json", slog.LevelDebug }},
		{name: "namespace and dry run", edit: func(c *Config) { c.Namespace, c.DryRun = "shop", true },
			want: func(v *view) { v.Namespace, v.DryRun = "shop", true }},
		{name: "guard off", edit: func(c *Config) { c.RequireHealthy = false }, want: func(v *view) { v.Guard.on = false }},
		{name: "orphans and owner kinds", edit: func(c *Config) { c.AllowOrphans, c.OwnerKinds = true, " Job, Rollout ,Job" },
			want: func(v *view) {
				v.Guard.allowOrphans, v.Guard.ownerKinds = true, map[string]bool{"Job": true, "Rollout": true}
			}},
		{name: "evict mode", edit: func(c *Config) { c.Mode = "evict" }, want: func(v *view) { v.Mode = modeEvict }},
		{name: "delete mode spelt out", edit: func(c *Config) { c.Mode = "delete" }, want: func(*view) {}},
		{name: "grace period in seconds", edit: func(c *Config) { c.GracePeriod = "30" }, want: func(v *view) { v.Grace = "30s" }},
		{name: "grace period as a duration", edit: func(c *Config) { c.GracePeriod = "1m" }, want: func(v *view) { v.Grace = "60s" }},
		{name: "grace period 0 is a hard kill", edit: func(c *Config) { c.GracePeriod = "0" }, want: func(v *view) { v.Grace = "0s" }},
		{name: "grace period 0s", edit: func(c *Config) { c.GracePeriod = " 0s " }, want: func(v *view) { v.Grace = "0s" }},
		{name: "kill count", edit: func(c *Config) { c.KillCount = "3" }, want: func(v *view) { v.Count = killCount{n: 3} }},
		{name: "kill count at the cap", edit: func(c *Config) { c.KillCount = "100" }, want: func(v *view) { v.Count = killCount{n: 100} }},
		{name: "kill count as a percentage", edit: func(c *Config) { c.KillCount = "10%" }, want: func(v *view) { v.Count = killCount{percent: 10} }},
		{name: "kill count of every candidate", edit: func(c *Config) { c.KillCount = "100%" }, want: func(v *view) { v.Count = killCount{percent: 100} }},
		{name: "http server on every interface", edit: func(c *Config) { c.HTTPAddr = ":9090" }, want: func(v *view) { v.HTTPAddr = ":9090" }},
		{name: "http server on loopback, any port", edit: func(c *Config) { c.HTTPAddr = " 127.0.0.1:0 " }, want: func(v *view) { v.HTTPAddr = "127.0.0.1:0" }},
		{name: "http server on IPv6", edit: func(c *Config) { c.HTTPAddr = "[::1]:8080" }, want: func(v *view) { v.HTTPAddr = "[::1]:8080" }},
		{name: "no http server", edit: func(c *Config) { c.HTTPAddr = "  " }, want: func(*view) {}},
		{name: "http addr without a port", edit: func(c *Config) { c.HTTPAddr = "8080" }, wantVar: "MACAQUE_HTTP_ADDR", wantMsg: `"8080" is not host:port`},
		{name: "http addr with a named port", edit: func(c *Config) { c.HTTPAddr = ":http" }, wantVar: "MACAQUE_HTTP_ADDR", wantMsg: `":http": the port must be a number from 0 to 65535`},
		{name: "http addr with a port too high", edit: func(c *Config) { c.HTTPAddr = ":65536" }, wantVar: "MACAQUE_HTTP_ADDR", wantMsg: `":65536": the port must be a number`},
		{name: "http addr with a bare IPv6 host", edit: func(c *Config) { c.HTTPAddr = "::1:8080" }, wantVar: "MACAQUE_HTTP_ADDR", wantMsg: `"::1:8080" is not host:port`},
		{name: "unknown mode", edit: func(c *Config) { c.Mode = "drain" }, wantVar: "MACAQUE_MODE", wantMsg: `unknown mode "drain" (want delete or evict)`},
		{name: "mode in upper case", edit: func(c *Config) { c.Mode = "Evict" }, wantVar: "MACAQUE_MODE", wantMsg: `unknown mode "Evict"`},
		{name: "negative grace period", edit: func(c *Config) { c.GracePeriod = "-1" }, wantVar: "MACAQUE_GRACE_PERIOD", wantMsg: `"-1" is negative`},
		{name: "negative grace duration", edit: func(c *Config) { c.GracePeriod = "-5s" }, wantVar: "MACAQUE_GRACE_PERIOD", wantMsg: `"-5s" is negative`},
		{name: "fractional grace period", edit: func(c *Config) { c.GracePeriod = "1.5" }, wantVar: "MACAQUE_GRACE_PERIOD", wantMsg: `"1.5" is not whole seconds`},
		{name: "fractional grace duration", edit: func(c *Config) { c.GracePeriod = "1500ms" }, wantVar: "MACAQUE_GRACE_PERIOD", wantMsg: `"1500ms" is not a whole number of seconds`},
		{name: "grace period in words", edit: func(c *Config) { c.GracePeriod = "soon" }, wantVar: "MACAQUE_GRACE_PERIOD", wantMsg: `"soon" is not whole seconds`},
		{name: "kill count zero", edit: func(c *Config) { c.KillCount = "0" }, wantVar: "MACAQUE_KILL_COUNT", wantMsg: `"0": want 1 to 100 victims a tick`},
		{name: "kill count over the cap", edit: func(c *Config) { c.KillCount = "101" }, wantVar: "MACAQUE_KILL_COUNT", wantMsg: `"101": want 1 to 100 victims a tick`},
		{name: "kill count negative", edit: func(c *Config) { c.KillCount = "-1" }, wantVar: "MACAQUE_KILL_COUNT", wantMsg: `"-1": want 1 to 100`},
		{name: "kill count in words", edit: func(c *Config) { c.KillCount = "three" }, wantVar: "MACAQUE_KILL_COUNT", wantMsg: `"three": want a number of victims`},
		{name: "kill count 0%", edit: func(c *Config) { c.KillCount = "0%" }, wantVar: "MACAQUE_KILL_COUNT", wantMsg: `"0%": want a whole percentage from 1% to 100%`},
		{name: "kill count over 100%", edit: func(c *Config) { c.KillCount = "101%" }, wantVar: "MACAQUE_KILL_COUNT", wantMsg: `"101%": want a whole percentage`},
		{name: "kill count fractional percentage", edit: func(c *Config) { c.KillCount = "2.5%" }, wantVar: "MACAQUE_KILL_COUNT", wantMsg: `"2.5%": want a whole percentage`},
		{name: "excluded days, read in the zone", edit: func(c *Config) { c.ExcludedDays = "2026-11-27, 11-28" },
			want: func(v *view) {
				v.Next = []time.Time{time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 11, 0, 0, 0, time.UTC)}
			}},
		{name: "excluded day not a date", edit: func(c *Config) { c.ExcludedDays = "12-25,2026-02-29" }, wantVar: "MACAQUE_EXCLUDED_DAYS", wantMsg: `"2026-02-29" is not a date`},
		{name: "excluded day in another format", edit: func(c *Config) { c.ExcludedDays = "25.12" }, wantVar: "MACAQUE_EXCLUDED_DAYS", wantMsg: `"25.12" is not a date`},
		{name: "every day excluded", edit: func(c *Config) { c.ExcludedDays = everyDay() }, wantVar: "MACAQUE_EXCLUDED_DAYS", wantMsg: "would never fire"},
		{name: "every activation excluded", edit: func(c *Config) { c.Crontab, c.ExcludedDays = "0 9 29 2 *", "02-29" }, wantVar: "MACAQUE_EXCLUDED_DAYS", wantMsg: "would never fire"},
		{name: "min pod age", edit: func(c *Config) { c.MinPodAge = 10 * time.Minute }, want: func(v *view) { v.MinPodAge = 10 * time.Minute }},
		{name: "recovery timeout", edit: func(c *Config) { c.RecoveryTimeout = 10 * time.Second }, want: func(v *view) { v.Recovery = 10 * time.Second }},
		{name: "zero recovery timeout", edit: func(c *Config) { c.RecoveryTimeout = 0 }, wantVar: "MACAQUE_RECOVERY_TIMEOUT", wantMsg: "0s is not positive"},
		{name: "negative recovery timeout", edit: func(c *Config) { c.RecoveryTimeout = -time.Second }, wantVar: "MACAQUE_RECOVERY_TIMEOUT", wantMsg: "-1s is not positive"},
		{name: "recovery timeout past a day", edit: func(c *Config) { c.RecoveryTimeout = 25 * time.Hour }, wantVar: "MACAQUE_RECOVERY_TIMEOUT", wantMsg: "25h0m0s is more than 24h0m0s"},
		{name: "recovery timeout of a day", edit: func(c *Config) { c.RecoveryTimeout = 24 * time.Hour }, want: func(v *view) { v.Recovery = 24 * time.Hour }},
		{name: "negative min pod age", edit: func(c *Config) { c.MinPodAge = -time.Minute }, wantVar: "MACAQUE_MIN_POD_AGE", wantMsg: "-1m0s is negative"},
		{name: "owner kind in lower case", edit: func(c *Config) { c.OwnerKinds = "job" }, wantVar: "MACAQUE_OWNER_KINDS", wantMsg: `"job" is not a kind`},
		{name: "owner kinds with an empty item", edit: func(c *Config) { c.OwnerKinds = "Job,,Rollout" }, wantVar: "MACAQUE_OWNER_KINDS", wantMsg: `"" is not a kind`},
		{name: "owner kinds naming a plural", edit: func(c *Config) { c.OwnerKinds = "Job,rollouts.argoproj.io" }, wantVar: "MACAQUE_OWNER_KINDS", wantMsg: "not a kind"},
		{name: "owner kinds naming a checked kind", edit: func(c *Config) { c.OwnerKinds = "Job,StatefulSet" }, wantVar: "MACAQUE_OWNER_KINDS", wantMsg: "StatefulSet is always checked"},
		{name: "owner kinds naming Deployment", edit: func(c *Config) { c.OwnerKinds = "Deployment" }, wantVar: "MACAQUE_OWNER_KINDS", wantMsg: "Deployment is always checked"},
		{name: "empty crontab", edit: func(c *Config) { c.Crontab = " " }, wantVar: "MACAQUE_CRONTAB", wantMsg: "required"},
		{name: "bad crontab", edit: func(c *Config) { c.Crontab = "every day" }, wantVar: "MACAQUE_CRONTAB", wantMsg: "invalid cron spec"},
		{name: "faster than a minute", edit: func(c *Config) { c.Crontab = "@every 30s" }, wantVar: "MACAQUE_CRONTAB", wantMsg: "MACAQUE_ALLOW_FAST_SCHEDULE=true"},
		{name: "a value with a newline still makes one line", edit: func(c *Config) { c.Crontab = "@daily\nx" }, wantVar: "MACAQUE_CRONTAB", wantMsg: `"@daily\nx"`},
		{name: "bad time zone", edit: func(c *Config) { c.Timezone = "Mars/Olympus" }, wantVar: "MACAQUE_TIMEZONE", wantMsg: "unknown time zone"},
		{name: "bad selector", edit: func(c *Config) { c.Selector = "app in (a" }, wantVar: "MACAQUE_SELECTOR", wantMsg: "invalid label selector"},
		{name: "bad namespace", edit: func(c *Config) { c.Namespace = "Shop_Prod" }, wantVar: "MACAQUE_NAMESPACE", wantMsg: "invalid namespace"},
		{name: "namespace selector with *", edit: func(c *Config) { c.Namespace, c.NamespaceSelector = "*", "chaos in (on,yes), !frozen" },
			want: func(v *view) {
				v.Namespace = "* labelled chaos in (on,yes),!frozen except kube-system,kube-public,kube-node-lease"
			}},
		{name: "namespace selector of spaces is none", edit: func(c *Config) { c.Namespace, c.NamespaceSelector = "*", "  " },
			want: func(v *view) { v.Namespace = "* except kube-system,kube-public,kube-node-lease" }},
		{name: "namespace selector without *", edit: func(c *Config) { c.Namespace, c.NamespaceSelector = "shop,cart", "chaos=on" },
			wantVar: "MACAQUE_NAMESPACE_SELECTOR", wantMsg: `applies only to MACAQUE_NAMESPACE=*; "shop,cart" names the namespaces`},
		{name: "namespace selector without any namespace", edit: func(c *Config) { c.NamespaceSelector = "chaos=on" },
			wantVar: "MACAQUE_NAMESPACE_SELECTOR", wantMsg: "applies only to MACAQUE_NAMESPACE=*"},
		{name: "bad namespace selector", edit: func(c *Config) { c.Namespace, c.NamespaceSelector = "*", "chaos in (on" },
			wantVar: "MACAQUE_NAMESPACE_SELECTOR", wantMsg: `invalid label selector "chaos in (on"`},
		{name: "namespace selector with a bad value", edit: func(c *Config) { c.Namespace, c.NamespaceSelector = "*", "chaos=on off" },
			wantVar: "MACAQUE_NAMESPACE_SELECTOR", wantMsg: "invalid label selector"},
		{name: "token without channel", edit: func(c *Config) { c.SlackToken = "xoxb-1" }, wantVar: "MACAQUE_SLACK_CHANNEL", wantMsg: "required when MACAQUE_SLACK_TOKEN"},
		{name: "token of whitespace only", edit: func(c *Config) { c.SlackToken, c.SlackChannel = "\n", "C1" }, wantVar: "MACAQUE_SLACK_TOKEN", wantMsg: "required when MACAQUE_SLACK_CHANNEL"},
		{name: "channel without token", edit: func(c *Config) { c.SlackChannel = "C1" }, wantVar: "MACAQUE_SLACK_TOKEN", wantMsg: "required when MACAQUE_SLACK_CHANNEL"},
		{name: "bad slack url", edit: func(c *Config) { c.SlackAPIUrl = "slack.com/api" }, wantVar: "MACAQUE_SLACK_API_URL", wantMsg: "invalid URL"},
		{name: "slack over http to another host", edit: func(c *Config) { c.SlackAPIUrl = "http://slack-proxy.corp:8080/api/" },
			wantVar: "MACAQUE_SLACK_API_URL", wantMsg: `"http://slack-proxy.corp:8080/api/" would send the Slack token in clear text: use https, or http only to loopback`},
		{name: "slack over http to a private address", edit: func(c *Config) { c.SlackAPIUrl = "http://10.0.0.1/api/" }, wantVar: "MACAQUE_SLACK_API_URL", wantMsg: "clear text"},
		{name: "slack over http to every address", edit: func(c *Config) { c.SlackAPIUrl = "http://0.0.0.0:9/" }, wantVar: "MACAQUE_SLACK_API_URL", wantMsg: "clear text"},
		{name: "slack over http to a name starting localhost", edit: func(c *Config) { c.SlackAPIUrl = "http://localhost.evil.example/api/" }, wantVar: "MACAQUE_SLACK_API_URL", wantMsg: "clear text"},
		{name: "slack over http to a name holding a loopback address", edit: func(c *Config) { c.SlackAPIUrl = "HTTP://127.0.0.1.nip.io/api/" }, wantVar: "MACAQUE_SLACK_API_URL", wantMsg: "clear text"},
		{name: "slack over https to a proxy", edit: func(c *Config) { c.SlackAPIUrl = "https://slack-proxy.corp:8443/api" },
			want: func(v *view) { v.Slack.apiURL = "https://slack-proxy.corp:8443/api/" }},
		{name: "slack over http to localhost", edit: func(c *Config) { c.SlackAPIUrl = "http://LocalHost:8080/api/" },
			want: func(v *view) { v.Slack.apiURL = "http://LocalHost:8080/api/" }},
		{name: "slack over http to 127.0.0.0/8", edit: func(c *Config) { c.SlackAPIUrl = "http://127.3.2.1/api" },
			want: func(v *view) { v.Slack.apiURL = "http://127.3.2.1/api/" }},
		{name: "slack over http to ::1", edit: func(c *Config) { c.SlackAPIUrl = "http://[::1]:9999/api/" },
			want: func(v *view) { v.Slack.apiURL = "http://[::1]:9999/api/" }},
		{name: "bad log format", edit: func(c *Config) { c.LogFormat = "yaml" }, wantVar: "MACAQUE_LOG_FORMAT", wantMsg: "unknown format"},
		{name: "bad log level", edit: func(c *Config) { c.LogLevel = "loud" }, wantVar: "MACAQUE_LOG_LEVEL", wantMsg: "unknown level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			s, err := c.check()
			if tt.wantVar == "" {
				if err != nil {
					t.Fatalf("check() = %v, want nil", err)
				}
				want := goodView
				want.Next = slices.Clone(goodView.Next)
				tt.want(&want)
				if got := viewOf(s); !reflect.DeepEqual(got, want) {
					t.Errorf("settings = %+v\nwant       %+v", got, want)
				}
				return
			}
			var bad *configError
			if !errors.As(err, &bad) {
				t.Fatalf("check() = %v, want a configError", err)
			}
			if bad.variable != tt.wantVar || !strings.Contains(err.Error(), tt.wantMsg) || strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("check() = %q, want one line %s: ...%s...", err, tt.wantVar, tt.wantMsg)
			}
		})
	}
}

// TestOnlyPrefixedVariablesAreRead sets, for every setting, the variable without the MACAQUE_
// prefix (as an envFrom ConfigMap of another app might) to a value that would change it, and
// checks that nothing changes and no error names a variable the user never set.
func TestOnlyPrefixedVariablesAreRead(t *testing.T) {
	unsetMacaqueEnv(t)
	t.Setenv("MACAQUE_CRONTAB", "@hourly")
	base, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	strays := map[string]string{
		"CRONTAB": "@every 1s", "TIMEZONE": "Asia/Tokyo", "ALLOW_FAST_SCHEDULE": "maybe", "NAMESPACE": "prod",
		"SELECTOR": "app=payments", "DRY_RUN": "maybe", "SLACK_TOKEN": "xoxb-stray", "SLACK_CHANNEL": "CSTRAY",
		"SLACK_API_URL": "http://stray.invalid/", "LOG_FORMAT": "yaml", "LOG_LEVEL": "loud",
		"REQUIRE_HEALTHY": "false", "ALLOW_ORPHANS": "true", "OWNER_KINDS": "Job", "EXCLUDE_NAMESPACES": "shop",
		"MODE": "evict", "GRACE_PERIOD": "0", "KILL_COUNT": "50%", "EXCLUDED_DAYS": "not-a-date", "COOLDOWN": "1h", "HTTP_ADDR": "nowhere",
		"MIN_POD_AGE": "1h", "RECOVERY_TIMEOUT": "1s", "LEADER_ELECTION": "false", "NAMESPACE_SELECTOR": "chaos=on",
		"CLUSTER_NAME": "stray", "WEBHOOK_URL": "http://stray.invalid/", "WEBHOOK_AUTH_FILE": "/stray",
		"ALERTMANAGER_URL": "http://stray.invalid:9093", "BLOCKING_ALERTS": "severity==critical",
	}
	fields := reflect.TypeFor[Config]().NumField()
	if len(strays) != fields {
		t.Fatalf("%d stray variables for %d settings: add the new setting here", len(strays), fields)
	}
	for name, value := range strays {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			got, err := loadConfig()
			if err != nil {
				t.Fatalf("with %s=%q set: %v", name, value, err)
			}
			if !reflect.DeepEqual(viewOf(got), viewOf(base)) || got.crontab != base.crontab {
				t.Errorf("with %s=%q set, settings = %+v, want %+v", name, value, viewOf(got), viewOf(base))
			}
		})
	}
}

// runMain runs this test binary as macaque with env (on top of a clean environment) and
// returns its exit code, stdout and stderr. TestMain runs main before parsing test flags.
func runMain(t *testing.T, args []string, env ...string) (int, string, string) {
	t.Helper()
	// A bug that lets a bad start go on would leave this macaque running its schedule forever.
	ctx, cancel := context.WithTimeout(t.Context(), 2*testkit.Within)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	// GOCOVERDIR: a binary built with -cover warns on stderr when it is unset.
	// A free loopback port unless env says otherwise: tests running at once must not fight over :8080.
	cmd.Env = append([]string{runMainEnv + "=1", "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "GOCOVERDIR=" + t.TempDir(), "MACAQUE_HTTP_ADDR=127.0.0.1:0"}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("macaque %q still running after %v, killed; stderr: %q", args, 2*testkit.Within, stderr.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// writeKubeconfig writes a kubeconfig for an unreachable server; namespace may be empty.
func writeKubeconfig(t *testing.T, namespace string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: "` + namespace + `"}}]
current-context: x
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBadSettingsExit2 runs the real main: one line on stderr naming the variable, exit 2, and no
// API call (the kubeconfig points at a closed port, so any call would give a different error).
func TestBadSettingsExit2(t *testing.T) {
	kc := "KUBECONFIG=" + writeKubeconfig(t, "shop")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }() // it only held the port: nothing to lose
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"no crontab", []string{kc}, "macaque: MACAQUE_CRONTAB: required"},
		{"bad crontab", []string{kc, "MACAQUE_CRONTAB=* * *"}, `macaque: MACAQUE_CRONTAB: invalid cron spec "* * *"`},
		{"bad zone", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_TIMEZONE=Paris"}, `macaque: MACAQUE_TIMEZONE: unknown time zone "Paris"`},
		{"bad selector", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_SELECTOR=a=b=c"}, "macaque: MACAQUE_SELECTOR: invalid label selector"},
		{"bad namespace selector", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_NAMESPACE=*", "MACAQUE_NAMESPACE_SELECTOR=a=b=c"},
			"macaque: MACAQUE_NAMESPACE_SELECTOR: invalid label selector"},
		{"namespace selector without *", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_NAMESPACE_SELECTOR=chaos=on"},
			"macaque: MACAQUE_NAMESPACE_SELECTOR: applies only to MACAQUE_NAMESPACE=*"},
		{"half slack", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_SLACK_TOKEN=xoxb-1"}, "macaque: MACAQUE_SLACK_CHANNEL: required when MACAQUE_SLACK_TOKEN is set"},
		{"bad bool", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_DRY_RUN=maybe"}, `macaque: MACAQUE_DRY_RUN: "maybe" is not a valid bool`},
		{"bad duration", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_MIN_POD_AGE=10"}, `macaque: MACAQUE_MIN_POD_AGE: "10" is not a valid`},
		{"negative duration", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_MIN_POD_AGE=-5m"}, `macaque: MACAQUE_MIN_POD_AGE: -5m0s is negative`},
		{"fast schedule", []string{kc, "MACAQUE_CRONTAB=@every 1s"}, `macaque: MACAQUE_CRONTAB: "@every 1s" fires more often than once a minute; set MACAQUE_ALLOW_FAST_SCHEDULE=true`},
		{"zone in the spec", []string{kc, "MACAQUE_CRONTAB=CRON_TZ=Asia/Tokyo 0 9 * * *"}, `macaque: MACAQUE_CRONTAB: "CRON_TZ=Asia/Tokyo" sets the time zone in the spec: set MACAQUE_TIMEZONE instead`},
		{"http addr unparsable", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_HTTP_ADDR=8080"}, `macaque: MACAQUE_HTTP_ADDR: "8080" is not host:port`},
		{"http port taken", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_HTTP_ADDR=" + taken.Addr().String()},
			`macaque: MACAQUE_HTTP_ADDR: cannot listen on "` + taken.Addr().String() + `": listen tcp ` + taken.Addr().String() + `: bind: address already in use`},
		{"no namespace", []string{"KUBECONFIG=" + writeKubeconfig(t, ""), "MACAQUE_CRONTAB=@hourly"}, "macaque: MACAQUE_NAMESPACE: not set"},
		{"slack over http", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_SLACK_API_URL=http://slack-proxy.corp/api/"},
			`macaque: MACAQUE_SLACK_API_URL: "http://slack-proxy.corp/api/" would send the Slack token in clear text`},
		{"bad alertmanager url", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_ALERTMANAGER_URL=alertmanager:9093"},
			`macaque: MACAQUE_ALERTMANAGER_URL: "alertmanager:9093" is not an http(s) URL of Alertmanager`},
		{"bad blocking alerts", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_ALERTMANAGER_URL=http://127.0.0.1:1", "MACAQUE_BLOCKING_ALERTS=severity==critical"},
			`macaque: MACAQUE_BLOCKING_ALERTS: "severity==critical" is not a list of Alertmanager matchers`},
		{"a misspelt setting", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_COOLDOWNN=1h"},
			"macaque: MACAQUE_COOLDOWNN: not a setting macaque knows; did you mean MACAQUE_COOLDOWN?"},
		{"a misspelt required setting", []string{kc, "MACAQUE_CRONTABS=@hourly"},
			"macaque: MACAQUE_CRONTABS: not a setting macaque knows; did you mean MACAQUE_CRONTAB?"},
		{"an unknown setting", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_MAX_UNAVAILABLE=1"},
			"macaque: MACAQUE_MAX_UNAVAILABLE: not a setting macaque knows (macaque -h lists them)"},
	}
	for _, runner := range runners {
		for _, tt := range tests {
			t.Run(runner.name+"/"+tt.name, func(t *testing.T) {
				code, _, stderr := runner.run(t, nil, tt.env...)
				if code != 2 {
					t.Errorf("exit %d, want 2 (stderr %q)", code, stderr)
				}
				lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
				if len(lines) != 1 || !strings.HasPrefix(lines[0], tt.want) {
					t.Errorf("stderr = %q, want one line starting %q", stderr, tt.want)
				}
			})
		}
	}
}

func TestCommandLine(t *testing.T) {
	for _, runner := range runners {
		t.Run(runner.name+"/-h lists every setting with its default", func(t *testing.T) {
			code, stdout, stderr := runner.run(t, []string{"-h"})
			if code != 0 || stderr != "" {
				t.Errorf("exit %d, stderr %q; want 0 and nothing", code, stderr)
			}
			for _, want := range []string{"MACAQUE_CRONTAB", "MACAQUE_TIMEZONE", "UTC", "MACAQUE_ALLOW_FAST_SCHEDULE", "MACAQUE_NAMESPACE", "MACAQUE_SELECTOR",
				"MACAQUE_DRY_RUN", "MACAQUE_REQUIRE_HEALTHY", "MACAQUE_ALLOW_ORPHANS", "MACAQUE_OWNER_KINDS", "MACAQUE_SLACK_TOKEN", "MACAQUE_SLACK_CHANNEL", "MACAQUE_SLACK_API_URL", "https://slack.com/api/",
				"MACAQUE_LOG_FORMAT", "MACAQUE_LOG_LEVEL", "POD_NAME", "POD_NAMESPACE", "Exit status: 0 on SIGTERM/SIGINT, 2 for a bad setting"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("-h output lacks %q:\n%s", want, stdout)
				}
			}
		})
		for _, args := range [][]string{{"--selector=app=web"}, {"extra"}} {
			t.Run(runner.name+"/"+strings.Join(args, " ")+" is a usage error", func(t *testing.T) {
				code, stdout, stderr := runner.run(t, args, "MACAQUE_CRONTAB=@hourly")
				if code != 2 || !strings.HasPrefix(stderr, "macaque takes no arguments") && !strings.Contains(stderr, "flag provided but not defined") {
					t.Errorf("exit %d, stderr %q; want 2 and what is wrong", code, stderr)
				}
				if strings.Contains(stdout+stderr, "macaque: ") {
					t.Errorf("a usage error got a second explanation: stdout %q, stderr %q", stdout, stderr)
				}
			})
		}
		t.Run(runner.name+"/an unreachable API server exits 1", func(t *testing.T) {
			code, _, stderr := runner.run(t, nil, "KUBECONFIG="+writeKubeconfig(t, "shop"), "MACAQUE_CRONTAB=@hourly")
			if code != 1 || !strings.HasPrefix(stderr, `macaque: list pods in "shop": `) {
				t.Errorf("exit %d, stderr %q; want 1 and the failed list", code, stderr)
			}
		})
	}
}

// runners run macaque's main path two ways: as a process, which proves main's wiring, and in
// this process, which coverage and mutation testing can see into.
var runners = []struct {
	name string
	run  func(t *testing.T, args []string, env ...string) (int, string, string)
}{{"process", runMain}, {"in-process", runInProcess}}

// unsetMacaqueEnv unsets, for the rest of the test, every variable of the process that macaque
// reads (or refuses, for an unknown MACAQUE_ one), so that the developer's shell cannot change
// what a test sees.
func unsetMacaqueEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(strings.ToUpper(k), "MACAQUE_") || strings.HasPrefix(k, "POD_") || k == "KUBECONFIG" {
			t.Setenv(k, "") // restored after the test
			// Absent, not empty: an unknown MACAQUE_ name is refused even empty.
			if err := os.Unsetenv(k); err != nil {
				t.Fatalf("unset %s: %v", k, err)
			}
		}
	}
}

// runInProcess does what main does, in this process, with only env set among the variables
// macaque reads; it returns the exit status, stdout and stderr.
func runInProcess(t *testing.T, args []string, env ...string) (int, string, string) {
	t.Helper()
	unsetMacaqueEnv(t)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("MACAQUE_HTTP_ADDR", "127.0.0.1:0") // as runMain: env may say otherwise
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testkit.Within)
	defer cancel()
	var stdout, stderr bytes.Buffer
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, args, &stdout, &stderr) }()
	select {
	case err := <-errc:
		code := exitStatus(err, &stderr)
		return code, stdout.String(), stderr.String()
	case <-time.After(2 * testkit.Within): // run must return soon after its ctx is done
		t.Fatalf("run(%q) still running %v after it started, %v after its ctx was done", args, 2*testkit.Within, testkit.Within)
		return 0, "", ""
	}
}

// TestNoKubeconfigSaysWhereItLooked checks the error names only places macaque reads: client-go's
// own message points at KUBERNETES_MASTER, a variable macaque ignores.
func TestNoKubeconfigSaysWhereItLooked(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing"))
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a pod, even when the tests run in one
	s := settings{scope: scope{namespaces: []string{"shop"}}}
	_, err := kubeConfig(&s, filepath.Join(t.TempDir(), "namespace"))
	if err == nil || strings.Contains(err.Error(), "KUBERNETES_MASTER") || !strings.Contains(err.Error(), "KUBECONFIG or ~/.kube/config") {
		t.Errorf("kubeConfig() = %v, want an error naming KUBECONFIG and ~/.kube/config only", err)
	}
}

func TestNamespaceResolution(t *testing.T) {
	tests := []struct {
		name    string
		setting string // MACAQUE_NAMESPACE
		podNS   string // POD_NAMESPACE
		context string // the kubeconfig context's namespace
		mounted string // the mounted service account's namespace file, if any
		want    string
		wantBad bool
	}{
		{name: "explicit setting wins", setting: "shop", podNS: "chaos", context: "dev", want: "shop"},
		{name: "a list is not defaulted", setting: "shop,web", podNS: "chaos", want: "shop,web"},
		{name: "nor is every namespace", setting: "*", podNS: "chaos", want: "* except kube-system,kube-public,kube-node-lease"},
		{name: "downward API next", podNS: "chaos", context: "dev", mounted: "sa-ns", want: "chaos"},
		{name: "the mounted service account's namespace next", context: "dev", mounted: "sa-ns\n", want: "sa-ns"},
		{name: "kubeconfig context last", context: "dev", want: "dev"},
		{name: "an implicit default is refused", wantBad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", writeKubeconfig(t, tt.context))
			t.Setenv("POD_NAMESPACE", tt.podNS)
			sc, err := parseScope(tt.setting, "")
			if err != nil {
				t.Fatal(err)
			}
			s := settings{scope: sc}
			saFile := filepath.Join(t.TempDir(), "namespace")
			if tt.mounted != "" {
				if err := os.WriteFile(saFile, []byte(tt.mounted), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := kubeConfig(&s, saFile)
			if tt.wantBad {
				var bad *configError
				if !errors.As(err, &bad) || bad.variable != "MACAQUE_NAMESPACE" {
					t.Fatalf("kubeConfig() = %v, want a MACAQUE_NAMESPACE error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.scope.String() != tt.want {
				t.Errorf("namespace = %q, want %q", s.scope, tt.want)
			}
			if cfg.Host != "http://127.0.0.1:1" || cfg.UserAgent != "macaque" {
				t.Errorf("rest config host %q, user agent %q", cfg.Host, cfg.UserAgent)
			}
		})
	}
}

// TestHostnameIsTheFallbackForPodName: in a pod the hostname is the pod's name, so without
// POD_NAME it is what keeps macaque from picking itself.
func TestHostnameIsTheFallbackForPodName(t *testing.T) {
	want, err := os.Hostname()
	if err != nil || want == "" {
		t.Skipf("this machine has no hostname to compare with (%q, %v)", want, err)
	}
	if got := hostname(); got != want {
		t.Errorf("hostname() = %q, want %q", got, want)
	}
}
