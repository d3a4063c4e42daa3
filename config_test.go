package main

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestUnknownSettingsAreRefused: a MACAQUE_ variable macaque does not know stops the start on one
// line naming it (and the setting it is a misspelling of, if it is near one), while every
// setting, the variables the kubelet injects for Services named macaque or macaque-*, and
// variables without the prefix pass.
func TestUnknownSettingsAreRefused(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want string // the error; "" for none
	}{
		{name: "none", env: nil},
		{name: "settings only", env: []string{"MACAQUE_CRONTAB=@hourly", "MACAQUE_COOLDOWN=1h", "MACAQUE_SLACK_API_URL=https://x/"}},
		{name: "a misspelt setting", env: []string{"MACAQUE_CRONTAB=@hourly", "MACAQUE_COOLDOWNN=1h"},
			want: "MACAQUE_COOLDOWNN: not a setting macaque knows; did you mean MACAQUE_COOLDOWN?"},
		{name: "a missing underscore", env: []string{"MACAQUE_DRYRUN=true"},
			want: "MACAQUE_DRYRUN: not a setting macaque knows; did you mean MACAQUE_DRY_RUN?"},
		{name: "a plural", env: []string{"MACAQUE_NAMESPACES=shop"},
			want: "MACAQUE_NAMESPACES: not a setting macaque knows; did you mean MACAQUE_NAMESPACE?"},
		{name: "two edits in a long name", env: []string{"MACAQUE_RECOVERY_TIMOUTS=5m"},
			want: "MACAQUE_RECOVERY_TIMOUTS: not a setting macaque knows; did you mean MACAQUE_RECOVERY_TIMEOUT?"},
		{name: "lower case", env: []string{"macaque_cooldown=1h"},
			want: "macaque_cooldown: not a setting macaque knows; did you mean MACAQUE_COOLDOWN?"},
		{name: "a setting of a newer version", env: []string{"MACAQUE_MAX_UNAVAILABLE=1"},
			want: "MACAQUE_MAX_UNAVAILABLE: not a setting macaque knows (macaque -h lists them)"},
		{name: "a short name near nothing", env: []string{"MACAQUE_MOOD=1"}, // 2 edits from MACAQUE_MODE: too many for 4 letters
			want: "MACAQUE_MOOD: not a setting macaque knows (macaque -h lists them)"},
		{name: "a short name one edit away", env: []string{"MACAQUE_MODES=evict"},
			want: "MACAQUE_MODES: not a setting macaque knows; did you mean MACAQUE_MODE?"},
		{name: "the first of several, sorted", env: []string{"MACAQUE_ZZZ_UNKNOWN=1", "MACAQUE_TIMEZONES=UTC"},
			want: "MACAQUE_TIMEZONES: not a setting macaque knows; did you mean MACAQUE_TIMEZONE?"},
		{name: "a name that would break the line", env: []string{"MACAQUE_X\nY=1"},
			want: `"MACAQUE_X\nY": not a setting macaque knows`},
		{name: "the test hook of TestMain is no setting", env: []string{"MACAQUE_TEST_RUN_MAIN=1"},
			want: "MACAQUE_TEST_RUN_MAIN: not a setting macaque knows"},
		{name: "not prefixed", env: []string{"POD_NAME=macaque-0", "POD_NAMESPACE=chaos", "KUBECONFIG=/k", "NAMESPACE=prod", "COOLDOWNN=1h", "MACAQUEX=1"}},
		{name: "service macaque", env: []string{
			"MACAQUE_SERVICE_HOST=10.0.0.7", "MACAQUE_SERVICE_PORT=8080", "MACAQUE_SERVICE_PORT_HTTP=8080", "MACAQUE_SERVICE_PORT_HTTP_METRICS=9090",
			"MACAQUE_PORT=tcp://10.0.0.7:8080", "MACAQUE_PORT_8080_TCP=tcp://10.0.0.7:8080", "MACAQUE_PORT_8080_TCP_PROTO=tcp",
			"MACAQUE_PORT_8080_TCP_PORT=8080", "MACAQUE_PORT_8080_TCP_ADDR=10.0.0.7", "MACAQUE_PORT_53_UDP_ADDR=10.0.0.7", "MACAQUE_PORT_9_SCTP=sctp://10.0.0.7:9",
		}},
		{name: "service macaque-metrics", env: []string{
			"MACAQUE_METRICS_SERVICE_HOST=10.0.0.8", "MACAQUE_METRICS_SERVICE_PORT=8080", "MACAQUE_METRICS_SERVICE_PORT_METRICS=8080",
			"MACAQUE_METRICS_PORT=tcp://10.0.0.8:8080", "MACAQUE_METRICS_PORT_8080_TCP=tcp://10.0.0.8:8080",
			"MACAQUE_METRICS_PORT_8080_TCP_PROTO=tcp", "MACAQUE_METRICS_PORT_8080_TCP_PORT=8080", "MACAQUE_METRICS_PORT_8080_TCP_ADDR=10.0.0.8",
		}},
		{name: "service macaque-2-web", env: []string{"MACAQUE_2_WEB_SERVICE_HOST=10.0.0.9", "MACAQUE_2_WEB_PORT_80_TCP_ADDR=10.0.0.9"}},
		{name: "a port of no protocol is no service link", env: []string{"MACAQUE_PORT_8080_HTTP=1"},
			want: "MACAQUE_PORT_8080_HTTP: not a setting macaque knows"},
		{name: "a service link's suffix of no service link", env: []string{"MACAQUE_PORT_8080_TCP_HOST=10.0.0.7"},
			want: "MACAQUE_PORT_8080_TCP_HOST: not a setting macaque knows"},
		{name: "a service host without its prefix's underscore", env: []string{"MACAQUESERVICE_HOST=1", "MACAQUE_SERVICEHOST=1"},
			want: "MACAQUE_SERVICEHOST: not a setting macaque knows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkUnknownSettings(tt.env)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("checkUnknownSettings(%q) = %v, want nil", tt.env, err)
				}
				return
			}
			var bad *configError
			if !errors.As(err, &bad) || !strings.HasPrefix(err.Error(), tt.want) || strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("checkUnknownSettings(%q) = %q, want a bad setting, one line starting %q", tt.env, err, tt.want)
			}
		})
	}
}

// TestEverySettingIsKnown: each of Config's variables passes the check, and none has the shape
// of a service link, which would let a Service of that name set it.
func TestEverySettingIsKnown(t *testing.T) {
	known := knownSettings()
	if n := reflect.TypeFor[Config]().NumField(); len(known) != n || !slices.Contains(known, "MACAQUE_SLACK_API_URL") || !slices.Contains(known, "MACAQUE_EXCLUDE_NAMESPACES") {
		t.Fatalf("known settings %q, want the %d of Config as envconfig names them", known, n)
	}
	for _, name := range known {
		t.Run(name, func(t *testing.T) {
			if err := checkUnknownSettings([]string{name + "=x"}); err != nil {
				t.Errorf("refused: %v", err)
			}
			if serviceLink.MatchString(name) {
				t.Errorf("a Service's link variable could set %s: rename the setting", name)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "abc", 3}, {"abc", "", 3}, {"abc", "abc", 0},
		{"MACAQUE_COOLDOWNN", "MACAQUE_COOLDOWN", 1}, {"MACAQUE_DRYRUN", "MACAQUE_DRY_RUN", 1},
		{"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"FOO", "MODE", 3}, {"MOOD", "MODE", 2},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			if got := editDistance(tt.a, tt.b); got != tt.want {
				t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}
