package main

// Fuzz targets for two parsers of untrusted text: the settings a user writes, and the pod table
// an API server (or a proxy in front of it) answers; internal/schedule fuzzes the cron spec.
// `make fuzz` runs each for a while; plain `go test` runs their seeds and testdata/fuzz as unit tests.

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

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
