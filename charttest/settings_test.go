package charttest

import (
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// readmeSetting is a MACAQUE_* row of README.md's settings table, which the root's
// TestREADMESettings keeps equal to config.go's Config.
type readmeSetting struct {
	name string
	def  string // the default cell's first code span; "" when it has none (no default)
}

// settingRow matches a row of the settings table: its variable, and its default cell.
var settingRow = regexp.MustCompile("(?m)^\\| `(MACAQUE_[A-Z_]+)` \\| ([^|]*) \\|")

// readmeSettings returns the MACAQUE_* rows of README.md's settings table.
func readmeSettings(t *testing.T) []readmeSetting {
	t.Helper()
	readme := repoFile(t, "README.md")
	_, table, ok := strings.Cut(readme, "\n## Settings\n")
	if !ok {
		t.Fatal("README.md has no ## Settings")
	}
	var settings []readmeSetting
	for _, m := range settingRow.FindAllStringSubmatch(table, -1) {
		s := readmeSetting{name: m[1]}
		if span := codeSpan.FindStringSubmatch(m[2]); span != nil {
			s.def = span[1]
		}
		settings = append(settings, s)
	}
	if len(settings) < 20 {
		t.Fatalf("README.md's settings table: %d MACAQUE_* rows found, want every setting", len(settings))
	}
	return settings
}

// codeSpan matches a Markdown code span; its text is the submatch.
var codeSpan = regexp.MustCompile("`([^`]*)`")

// settingValues sets each MACAQUE_* setting through the chart's values to a value other than its
// default, and what the variable must then hold.
var settingValues = map[string]struct {
	values map[string]any
	want   string
}{
	"MACAQUE_CRONTAB":             {map[string]any{"schedule": "@every 1h"}, "@every 1h"},
	"MACAQUE_TIMEZONE":            {map[string]any{"timezone": "Europe/Paris"}, "Europe/Paris"},
	"MACAQUE_ALLOW_FAST_SCHEDULE": {map[string]any{"allowFastSchedule": true}, "true"},
	"MACAQUE_NAMESPACE":           {map[string]any{"namespaces": []any{"shop", "cart"}}, "shop,cart"},
	"MACAQUE_EXCLUDE_NAMESPACES":  {map[string]any{"scope": "cluster", "excludeNamespaces": []any{"payments", "vault"}}, "payments,vault"},
	"MACAQUE_NAMESPACE_SELECTOR":  {map[string]any{"scope": "cluster", "namespaceSelector": "chaos in (on,yes)"}, "chaos in (on,yes)"},
	"MACAQUE_EXCLUDED_DAYS":       {map[string]any{"excludedDays": []any{"12-25", "2027-01-01"}}, "12-25,2027-01-01"},
	"MACAQUE_SELECTOR":            {map[string]any{"selector": "app in (web,api),tier!=db"}, "app in (web,api),tier!=db"},
	"MACAQUE_DRY_RUN":             {map[string]any{"dryRun": true}, "true"},
	"MACAQUE_REQUIRE_HEALTHY":     {map[string]any{"requireHealthy": false}, "false"},
	"MACAQUE_ALLOW_ORPHANS":       {map[string]any{"allowOrphans": true}, "true"},
	"MACAQUE_OWNER_KINDS":         {map[string]any{"ownerKinds": []any{"Job", "Rollout"}}, "Job,Rollout"},
	"MACAQUE_MODE":                {map[string]any{"mode": "evict"}, "evict"},
	"MACAQUE_GRACE_PERIOD":        {map[string]any{"gracePeriod": 30}, "30"},
	"MACAQUE_KILL_COUNT":          {map[string]any{"killCount": "10%"}, "10%"},
	"MACAQUE_MIN_POD_AGE":         {map[string]any{"minPodAge": "10m"}, "10m"},
	"MACAQUE_COOLDOWN":            {map[string]any{"cooldown": "24h"}, "24h"},
	"MACAQUE_RECOVERY_TIMEOUT":    {map[string]any{"recoveryTimeout": "10m"}, "10m"},
	"MACAQUE_ALERTMANAGER_URL":    {map[string]any{"alertmanager": map[string]any{"url": "http://alertmanager.monitoring:9093"}}, "http://alertmanager.monitoring:9093"},
	"MACAQUE_BLOCKING_ALERTS":     {map[string]any{"alertmanager": map[string]any{"blockingAlerts": `{severity=~"critical|page"}`}}, `{severity=~"critical|page"}`},
	"MACAQUE_SLACK_TOKEN":         {map[string]any{"slack": map[string]any{"existingSecret": "chaos-bot", "existingSecretKey": "bot-token"}}, "secret chaos-bot key bot-token"},
	"MACAQUE_SLACK_CHANNEL":       {map[string]any{"slack": map[string]any{"channel": "C0123456789"}}, "C0123456789"},
	"MACAQUE_SLACK_API_URL":       {map[string]any{"slack": map[string]any{"apiUrl": "https://slack-proxy.example/api/"}}, "https://slack-proxy.example/api/"},
	"MACAQUE_LEADER_ELECTION":     {map[string]any{"leaderElection": false, "replicas": 1}, "false"},
	"MACAQUE_CLUSTER_NAME":        {map[string]any{"clusterName": "prod-eu"}, "prod-eu"},
	"MACAQUE_WEBHOOK_URL":         {map[string]any{"webhook": map[string]any{"url": "https://hooks.example/macaque"}}, "https://hooks.example/macaque"},
	"MACAQUE_WEBHOOK_AUTH_FILE": {map[string]any{"webhook": map[string]any{"url": "https://hooks.example/", "authSecret": "hook", "authSecretKey": "token"}},
		"/etc/macaque/webhook/token"},
	"MACAQUE_HTTP_ADDR":  {map[string]any{"httpAddr": ":9090"}, ":9090"},
	"MACAQUE_LOG_FORMAT": {map[string]any{"logFormat": "json"}, "json"},
	"MACAQUE_LOG_LEVEL":  {map[string]any{"logLevel": "debug"}, "debug"},
}

// samples are the settings the chart sets to something else than macaque's default, as the
// plain manifest always has: a schedule (macaque requires one) and a selector that takes only the
// pods that opted in.
var samples = map[string]string{
	"MACAQUE_CRONTAB":  "0 10-16 * * 1-5",
	"MACAQUE_SELECTOR": "chaos.macaque.dev/enabled=true",
}

// envOf returns the container's environment in a render: each variable's value, or for one read
// from a Secret "secret NAME key KEY"; a variable the render leaves out is absent.
func envOf(t *testing.T, manifest string) map[string]string {
	t.Helper()
	var d appsv1.Deployment
	only(t, objectsOf(t, manifest), "Deployment", &d)
	env := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
		if ref := secretRef(e); ref != nil {
			env[e.Name] = "secret " + ref.Name + " key " + ref.Key
		}
	}
	return env
}

// secretRef is the Secret key an env var is read from, if it is.
func secretRef(e corev1.EnvVar) *corev1.SecretKeySelector {
	if e.ValueFrom == nil {
		return nil
	}
	return e.ValueFrom.SecretKeyRef
}

// TestEverySettingIsAValue checks the chart against README.md's settings table (and so against
// Config): by default every MACAQUE_* variable is set to macaque's own default, or left to it
// when it has none; and each can be set through a value, which reaches the variable.
func TestEverySettingIsAValue(t *testing.T) {
	ch := loadChart(t)
	defaults := envOf(t, render(t, ch, nil))
	for _, s := range readmeSettings(t) {
		t.Run(s.name, func(t *testing.T) {
			got, set := defaults[s.name]
			switch sample, isSample := samples[s.name]; {
			case isSample:
				if got != sample {
					t.Errorf("by default %s is %q, want the sample %q", s.name, got, sample)
				}
			case s.name == "MACAQUE_SLACK_TOKEN":
				if got != "secret macaque-slack key token" {
					t.Errorf("by default %s is %q, want it from the Secret macaque-slack, key token", s.name, got)
				}
			case s.def == "" && got != "":
				t.Errorf("by default %s is %q, want it unset or empty: macaque has no default for it", s.name, got)
			case s.def != "" && (!set || got != s.def):
				t.Errorf("by default %s is %q (set: %v), want macaque's default %q", s.name, got, set, s.def)
			}
			sv, ok := settingValues[s.name]
			if !ok {
				t.Fatalf("no value of the chart sets %s: add it to the chart and to settingValues", s.name)
			}
			if got := envOf(t, render(t, ch, sv.values))[s.name]; got != sv.want {
				t.Errorf("values %v set %s to %q, want %q", sv.values, s.name, got, sv.want)
			}
		})
	}
}
