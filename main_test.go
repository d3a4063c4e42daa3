package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// TestMain lets a test re-run this binary as the real macaque, to check exit codes and stderr.
func TestMain(m *testing.M) {
	if os.Getenv("MACAQUE_TEST_RUN_MAIN") == "1" {
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

func TestNextTick(t *testing.T) {
	utc := time.UTC
	tests := []struct {
		name, spec, zone string
		from             time.Time
		want             []time.Time // successive activations, in UTC
	}{
		{
			name: "daily 09:00 in Paris follows the wall clock across spring forward",
			spec: "0 9 * * *", zone: "Europe/Paris", from: time.Date(2026, 3, 27, 12, 0, 0, 0, utc),
			want: []time.Time{time.Date(2026, 3, 28, 8, 0, 0, 0, utc), time.Date(2026, 3, 29, 7, 0, 0, 0, utc), time.Date(2026, 3, 30, 7, 0, 0, 0, utc)},
		},
		{
			name: "a time in the hour skipped at spring forward does not fire that day",
			spec: "30 2 * * *", zone: "Europe/Paris", from: time.Date(2026, 3, 28, 12, 0, 0, 0, utc),
			want: []time.Time{time.Date(2026, 3, 30, 0, 30, 0, 0, utc)},
		},
		{
			name: "a time in the hour repeated at fall back fires in both",
			spec: "30 1 * * *", zone: "America/New_York", from: time.Date(2026, 10, 31, 16, 0, 0, 0, utc),
			want: []time.Time{time.Date(2026, 11, 1, 5, 30, 0, 0, utc), time.Date(2026, 11, 1, 6, 30, 0, 0, utc), time.Date(2026, 11, 2, 6, 30, 0, 0, utc)},
		},
		{
			name: "weekdays in Tokyo: Friday afternoon to Monday morning",
			spec: "0 9 * * 1-5", zone: "Asia/Tokyo", from: time.Date(2026, 11, 27, 6, 0, 0, 0, utc), // Fri 15:00 JST
			want: []time.Time{time.Date(2026, 11, 30, 0, 0, 0, 0, utc)},
		},
		{
			name: "the same spec in UTC",
			spec: "0 9 * * 1-5", zone: "UTC", from: time.Date(2026, 11, 27, 6, 0, 0, 0, utc),
			want: []time.Time{time.Date(2026, 11, 27, 9, 0, 0, 0, utc)},
		},
		{
			name: "@every ignores the zone",
			spec: "@every 30s", zone: "Australia/Lord_Howe", from: time.Date(2026, 4, 5, 14, 59, 50, 0, utc),
			want: []time.Time{time.Date(2026, 4, 5, 15, 0, 20, 0, utc), time.Date(2026, 4, 5, 15, 0, 50, 0, utc)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sched, err := cron.ParseStandard(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			at := tt.from
			for i, want := range tt.want {
				at = nextTick(sched, mustLoad(t, tt.zone), at)
				if !at.Equal(want) {
					t.Fatalf("activation %d = %v (%v), want %v", i, at.UTC(), at, want)
				}
			}
		})
	}
}

// stepClock is a fake clock driven by the test: the scheduler asks for a timer, the test moves
// time forward and fires it.
type stepClock struct {
	mu   sync.Mutex
	now  time.Time
	reqs chan time.Duration
	fire chan time.Time
}

func newStepClock(at time.Time) *stepClock {
	return &stepClock{now: at, reqs: make(chan time.Duration, 1), fire: make(chan time.Time)}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.reqs <- d
	return c.fire
}

// elapse waits for the scheduler's timer, checks its duration, and fires it at now+d+late.
func (c *stepClock) elapse(t *testing.T, want, late time.Duration) {
	t.Helper()
	d := <-c.reqs
	if d != want {
		t.Fatalf("scheduler waits %v, want %v", d, want)
	}
	c.mu.Lock()
	c.now = c.now.Add(d + late)
	now := c.now
	c.mu.Unlock()
	c.fire <- now
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
			if got := <-ticks; !got.Equal(step.at) {
				t.Fatalf("tick at %v, want %v", got.UTC(), step.at)
			}
		}
		cancel()
		<-done
		if _, open := <-ticks; open {
			t.Error("ticks not closed after ctx was cancelled")
		}
	})

	t.Run("a busy killer does not get a burst of ticks", func(t *testing.T) {
		clock := newStepClock(paris)
		ticks, cancel, done := startScheduler(t, "@every 10s", "UTC", clock)
		defer func() { cancel(); <-done }()
		clock.elapse(t, 10*time.Second, 0)
		clock.elapse(t, 10*time.Second, 0) // the killer has not taken the first tick yet
		clock.elapse(t, 10*time.Second, 0)
		if got := <-ticks; !got.Equal(paris.Add(10 * time.Second)) {
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
		defer func() { cancel(); <-done }()
		clock.elapse(t, time.Minute, 2*time.Second) // fires at 10:00:02
		<-ticks
		clock.elapse(t, time.Hour-2*time.Second, 0) // next wait is to 11:00:00, not 11:00:02
		if got := <-ticks; !got.Equal(time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC)) {
			t.Errorf("tick %v, want 11:00", got)
		}
	})
}

func TestConfigCheck(t *testing.T) {
	good := Config{Crontab: "0 10-16 * * 1-5", Timezone: "Europe/Paris", Selector: "app in (a,b),tier!=db",
		SlackAPIURL: "https://slack.com/api/", LogFormat: "text", LogLevel: "info"}
	tests := []struct {
		name    string
		edit    func(*Config)
		wantVar string // empty: valid
		wantMsg string
	}{
		{name: "valid", edit: func(*Config) {}},
		{name: "descriptor", edit: func(c *Config) { c.Crontab = "@every 30s" }},
		{name: "slack both set", edit: func(c *Config) { c.SlackToken, c.SlackChannel = "xoxb-1", "C1" }},
		{name: "json debug", edit: func(c *Config) { c.LogFormat, c.LogLevel = "json", "debug" }},
		{name: "empty crontab", edit: func(c *Config) { c.Crontab = " " }, wantVar: "MACAQUE_CRONTAB", wantMsg: "required"},
		{name: "bad crontab", edit: func(c *Config) { c.Crontab = "every day" }, wantVar: "MACAQUE_CRONTAB", wantMsg: "invalid cron spec"},
		{name: "six fields", edit: func(c *Config) { c.Crontab = "0 0 10 * * *" }, wantVar: "MACAQUE_CRONTAB", wantMsg: "expected exactly 5 fields"},
		{name: "out of range", edit: func(c *Config) { c.Crontab = "61 * * * *" }, wantVar: "MACAQUE_CRONTAB", wantMsg: "invalid cron spec"},
		{name: "never fires", edit: func(c *Config) { c.Crontab = "0 0 30 2 *" }, wantVar: "MACAQUE_CRONTAB", wantMsg: "never fires"},
		{name: "bad time zone", edit: func(c *Config) { c.Timezone = "Mars/Olympus" }, wantVar: "MACAQUE_TIMEZONE", wantMsg: "unknown time zone"},
		{name: "bad selector", edit: func(c *Config) { c.Selector = "app in (a" }, wantVar: "MACAQUE_SELECTOR", wantMsg: "invalid label selector"},
		{name: "bad namespace", edit: func(c *Config) { c.Namespace = "Shop_Prod" }, wantVar: "MACAQUE_NAMESPACE", wantMsg: "invalid namespace"},
		{name: "token without channel", edit: func(c *Config) { c.SlackToken = "xoxb-1" }, wantVar: "MACAQUE_SLACK_CHANNEL", wantMsg: "required when MACAQUE_SLACK_TOKEN"},
		{name: "channel without token", edit: func(c *Config) { c.SlackChannel = "C1" }, wantVar: "MACAQUE_SLACK_TOKEN", wantMsg: "required when MACAQUE_SLACK_CHANNEL"},
		{name: "bad slack url", edit: func(c *Config) { c.SlackAPIURL = "slack.com/api" }, wantVar: "MACAQUE_SLACK_API_URL", wantMsg: "invalid URL"},
		{name: "bad log format", edit: func(c *Config) { c.LogFormat = "yaml" }, wantVar: "MACAQUE_LOG_FORMAT", wantMsg: "unknown format"},
		{name: "bad log level", edit: func(c *Config) { c.LogLevel = "loud" }, wantVar: "MACAQUE_LOG_LEVEL", wantMsg: "unknown level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			_, err := c.check()
			if tt.wantVar == "" {
				if err != nil {
					t.Fatalf("check() = %v, want nil", err)
				}
				return
			}
			var bad *configError
			if !errors.As(err, &bad) {
				t.Fatalf("check() = %v, want a configError", err)
			}
			if bad.variable != tt.wantVar || !strings.Contains(bad.problem, tt.wantMsg) {
				t.Errorf("check() = %q, want %s: ...%s...", err, tt.wantVar, tt.wantMsg)
			}
		})
	}
}

// runMain runs this test binary as macaque with env (on top of a clean environment) and
// returns its exit code, stdout and stderr. TestMain runs main before parsing test flags.
func runMain(t *testing.T, args []string, env ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append([]string{"MACAQUE_TEST_RUN_MAIN=1", "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
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
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"no crontab", []string{kc}, "macaque: MACAQUE_CRONTAB: required"},
		{"bad crontab", []string{kc, "MACAQUE_CRONTAB=* * *"}, `macaque: MACAQUE_CRONTAB: invalid cron spec "* * *"`},
		{"bad zone", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_TIMEZONE=Paris"}, `macaque: MACAQUE_TIMEZONE: unknown time zone "Paris"`},
		{"bad selector", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_SELECTOR=a=b=c"}, "macaque: MACAQUE_SELECTOR: invalid label selector"},
		{"half slack", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_SLACK_TOKEN=xoxb-1"}, "macaque: MACAQUE_SLACK_CHANNEL: required when MACAQUE_SLACK_TOKEN is set"},
		{"bad bool", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_DRY_RUN=maybe"}, `macaque: MACAQUE_DRY_RUN: "maybe" is not a valid bool`},
		{"no namespace", []string{"KUBECONFIG=" + writeKubeconfig(t, ""), "MACAQUE_CRONTAB=@hourly"}, "macaque: MACAQUE_NAMESPACE: not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runMain(t, nil, tt.env...)
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

func TestCommandLine(t *testing.T) {
	t.Run("-h lists every setting with its default", func(t *testing.T) {
		code, stdout, _ := runMain(t, []string{"-h"})
		if code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
		for _, want := range []string{"MACAQUE_CRONTAB", "MACAQUE_TIMEZONE", "UTC", "MACAQUE_NAMESPACE", "MACAQUE_SELECTOR",
			"MACAQUE_DRY_RUN", "MACAQUE_SLACK_TOKEN", "MACAQUE_SLACK_CHANNEL", "MACAQUE_SLACK_API_URL", "https://slack.com/api/",
			"MACAQUE_LOG_FORMAT", "MACAQUE_LOG_LEVEL", "POD_NAME", "POD_NAMESPACE"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("-h output lacks %q:\n%s", want, stdout)
			}
		}
	})
	for _, args := range [][]string{{"--selector=app=web"}, {"extra"}} {
		t.Run(strings.Join(args, " ")+" is a usage error", func(t *testing.T) {
			if code, _, stderr := runMain(t, args, "MACAQUE_CRONTAB=@hourly"); code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, stderr)
			}
		})
	}
}

func TestNamespaceResolution(t *testing.T) {
	tests := []struct {
		name    string
		setting string // MACAQUE_NAMESPACE
		podNS   string // POD_NAMESPACE
		context string // the kubeconfig context's namespace
		want    string
		wantBad bool
	}{
		{name: "explicit setting wins", setting: "shop", podNS: "chaos", context: "dev", want: "shop"},
		{name: "downward API next", podNS: "chaos", context: "dev", want: "chaos"},
		{name: "kubeconfig context last", context: "dev", want: "dev"},
		{name: "an implicit default is refused", wantBad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", writeKubeconfig(t, tt.context))
			t.Setenv("POD_NAMESPACE", tt.podNS)
			s := settings{namespace: tt.setting}
			cfg, err := kubeConfig(&s)
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
			if s.namespace != tt.want {
				t.Errorf("namespace = %q, want %q", s.namespace, tt.want)
			}
			if cfg.Host != "http://127.0.0.1:1" || cfg.UserAgent != "macaque" {
				t.Errorf("rest config host %q, user agent %q", cfg.Host, cfg.UserAgent)
			}
		})
	}
}
