package main

// Fuzz targets for the three parsers of untrusted text: the cron spec and the settings a user
// writes, and the pod table an API server (or a proxy in front of it) answers. `make fuzz`
// runs each for a while; plain `go test` runs their seeds and testdata/fuzz as unit tests.

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// fuzzFroms are where activations are counted from: a plain UTC noon, and just before Paris
// falls back an hour (01:00 UTC on 2026-10-25), where wall-clock schedules are easiest to get wrong.
var fuzzFroms = []time.Time{
	time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC),
	time.Date(2026, 10, 25, 0, 30, 0, 0, mustLoadLocation("Europe/Paris")),
}

func mustLoadLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func FuzzParseSchedule(f *testing.F) {
	seeds := []struct {
		spec string
		fast bool
	}{
		{"0 10-16 * * 1-5", false}, {"* * * * *", false}, {"*/5 * * * *", false},
		{"@hourly", false}, {"@daily", false}, {"@every 30m", false}, {"@every 1m", false},
		{"@every 59s", false}, {"@every 2s", true}, {"@every 2s", false}, {"@every 90.5s", false},
		{"@every -5m", true}, {"@every 0s", true}, {"@every 100ms", true}, {"@every  30s", false},
		{"0 9 * * 7", false}, {"0 9 * * 6-7", false}, {"0 9 * * 0-7", false}, {"0 9 * * 1-7/3", false},
		{"0 9 * * 7,1", false}, {"0 0 29 2 7", false}, {"*/1 * * * 7", true}, {"0 9 * * 8", false},
		{"0 0 30 2 *", false}, {"0 0 29 2 *", false}, {"30 2 * * *", false}, {"0 0 10 * * *", false},
		{"CRON_TZ=Asia/Tokyo 0 9 * * *", false}, {"TZ=UTC 0 9 * * *", false}, {"  TZ=UTC", false}, {"TZ=", false},
	}
	for _, s := range seeds {
		f.Add(s.spec, s.fast)
	}
	f.Fuzz(func(t *testing.T, spec string, allowFast bool) {
		schedule, err := parseSchedule(spec, allowFast)
		if err != nil {
			return
		}
		if schedule == nil {
			t.Fatalf("parseSchedule(%q) = nil, nil", spec)
		}
		trimmed := strings.TrimSpace(spec)
		if strings.HasPrefix(trimmed, "CRON_TZ=") || strings.HasPrefix(trimmed, "TZ=") {
			t.Fatalf("parseSchedule(%q) accepted a spec that sets its own time zone", spec)
		}
		// nextTick evaluates a schedule in MACAQUE_TIMEZONE only if its zone is time.Local;
		// any other zone, however it got there, would override the setting.
		if s, ok := schedule.(*cron.SpecSchedule); ok && s.Location != time.Local {
			t.Fatalf("parseSchedule(%q) set the zone %v, overriding MACAQUE_TIMEZONE", spec, s.Location)
		}
		for _, from := range fuzzFroms {
			at := from
			for i := range 4 {
				next := nextTick(schedule, from.Location(), at)
				if next.IsZero() || !next.After(at) {
					t.Fatalf("parseSchedule(%q): activation %d after %v is %v", spec, i, at, next)
				}
				// The first gap is from an arbitrary time; the next ones are between activations.
				if i > 0 && !allowFast && next.Sub(at) < minInterval {
					t.Fatalf("parseSchedule(%q, false): activations %v and %v are %v apart, under %v", spec, at, next, next.Sub(at), minInterval)
				}
				at = next
			}
		}
		spec0, ok := sundayAsZero(trimmed)
		if !ok {
			return
		}
		schedule0, err := parseSchedule(spec0, allowFast)
		if err != nil {
			t.Fatalf("parseSchedule accepted %q but not %q, the same with 0 for Sunday: %v", spec, spec0, err)
		}
		for _, from := range fuzzFroms {
			at, at0 := from, from
			for range 8 {
				at, at0 = nextTick(schedule, from.Location(), at), nextTick(schedule0, from.Location(), at0)
				if !at.Equal(at0) {
					t.Fatalf("%q fires at %v, %q at %v: 7 and 0 must both be Sunday", spec, at, spec0, at0)
				}
			}
		}
	})
}

// sundayAsZero rewrites a 5-field spec's day-of-week items that plainly name Sunday as 7 ("7",
// and a range "N-7" without a step) with 0 instead, and says whether it changed anything. A step
// is left alone: "7/2" and "0/2" differ in any cron (the step runs to the field's end).
func sundayAsZero(spec string) (string, bool) {
	fields := strings.Fields(spec)
	if len(fields) != 5 {
		return "", false
	}
	items := strings.Split(fields[4], ",")
	changed := false
	for i, item := range items {
		if item == "7" {
			items[i], changed = "0", true
			continue
		}
		if lo, ok := strings.CutSuffix(item, "-7"); ok {
			if n, err := strconv.Atoi(lo); err == nil && n >= 0 && n <= 6 && lo == strconv.Itoa(n) {
				items[i], changed = lo+"-6,0", true
			}
		}
	}
	fields[4] = strings.Join(items, ",")
	return strings.Join(fields, " "), changed
}

// settingVariables are the variables Config.check may blame.
var settingVariables = []string{"MACAQUE_CRONTAB", "MACAQUE_TIMEZONE", "MACAQUE_NAMESPACE", "MACAQUE_SELECTOR",
	"MACAQUE_SLACK_TOKEN", "MACAQUE_SLACK_CHANNEL", "MACAQUE_SLACK_API_URL", "MACAQUE_LOG_FORMAT", "MACAQUE_LOG_LEVEL"}

func FuzzConfigCheck(f *testing.F) {
	type seed struct {
		crontab, zone, namespace, selector, token, channel, apiURL, format, level string
		fast, dryRun                                                              bool
	}
	good := seed{"0 10-16 * * 1-5", "Europe/Paris", "shop", "app in (a,b),tier!=db", "", "", "https://slack.com/api/", "text", "info", false, false}
	edits := []func(*seed){
		func(*seed) {},
		func(s *seed) { s.crontab, s.fast = "@every 2s", true },
		func(s *seed) { s.crontab = "@every 2s" },
		func(s *seed) { s.crontab = "0 9 * * 7" },
		func(s *seed) { s.crontab = " " },
		func(s *seed) { s.crontab = "CRON_TZ=Asia/Tokyo 0 9 * * *" },
		func(s *seed) { s.zone = "" },
		func(s *seed) { s.zone = "Mars/Olympus" },
		func(s *seed) { s.zone = "../etc/passwd" },
		func(s *seed) { s.namespace = "Shop_Prod" },
		func(s *seed) { s.selector = "app in (a" },
		func(s *seed) { s.selector = "app=web,tier notin (db),!canary" },
		func(s *seed) { s.token, s.channel = "xoxb-1\n", " C1" },
		func(s *seed) { s.token = "xoxb-1" },
		func(s *seed) { s.token, s.channel = "\n", "C1" },
		func(s *seed) { s.apiURL = "slack.com/api" },
		func(s *seed) { s.apiURL = "http://[::1]:namedport" },
		func(s *seed) { s.format, s.level = "json", "debug" },
		func(s *seed) { s.format = "yaml" },
		func(s *seed) { s.level = "loud" },
		func(s *seed) { s.level = "warn+2" },
	}
	for _, edit := range edits {
		s := good
		edit(&s)
		f.Add(s.crontab, s.zone, s.namespace, s.selector, s.token, s.channel, s.apiURL, s.format, s.level, s.fast, s.dryRun)
	}
	f.Fuzz(func(t *testing.T, crontab, zone, namespace, selector, token, channel, apiURL, format, level string, fast, dryRun bool) {
		c := Config{Crontab: crontab, Timezone: zone, AllowFastSchedule: fast, Namespace: namespace, Selector: selector, DryRun: dryRun,
			SlackToken: token, SlackChannel: channel, SlackAPIUrl: apiURL, LogFormat: format, LogLevel: level, RecoveryTimeout: 5 * time.Minute}
		s, err := c.check()
		if err == nil {
			// Settings the daemon would start with must be usable as they are.
			if s.schedule == nil || s.location == nil || s.selector == nil {
				t.Fatalf("check(%#v) = settings with a nil schedule, zone or selector: %+v", c, s)
			}
			if (s.slack.token == "") != (s.slack.channel == "") || !strings.HasSuffix(s.slack.apiURL, "/") {
				t.Fatalf("check(%#v) = slack settings %+v", c, s.slack)
			}
			return
		}
		// main prints a configError as one line naming the variable to fix, and exits 2.
		var bad *configError
		if !errors.As(err, &bad) {
			t.Fatalf("check(%#v) = %v (%T), want a *configError", c, err, err)
		}
		if !slices.Contains(settingVariables, bad.variable) {
			t.Fatalf("check(%#v) blames %q, not one of the MACAQUE_ settings", c, bad.variable)
		}
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Fatalf("check(%#v) = %q: not one line", c, err.Error())
		}
	})
}
