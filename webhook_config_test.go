package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReceiverSettings: MACAQUE_CLUSTER_NAME, MACAQUE_WEBHOOK_URL and MACAQUE_WEBHOOK_AUTH_FILE as
// check reads them, and each bad value as the one line naming its variable.
func TestReceiverSettings(t *testing.T) {
	good := Config{Crontab: "@hourly", SlackAPIUrl: "https://slack.com/api/", LogFormat: "text", LogLevel: "info", RecoveryTimeout: 1}
	tests := []struct {
		name                   string
		cluster, url, authFile string
		wantCluster            string
		wantHook               webhookSettings
		wantVar, wantMsg       string
	}{
		{name: "none"},
		{name: "a cluster name", cluster: "prod-eu-1", wantCluster: "prod-eu-1"},
		{name: "a kubeconfig context's name", cluster: "gke_shop_europe-west1_main", wantCluster: "gke_shop_europe-west1_main"},
		{name: "a name with dots, trimmed", cluster: " eks.prod.eu\n", wantCluster: "eks.prod.eu"},
		{name: "one character", cluster: "a", wantCluster: "a"},
		{name: "63 characters", cluster: strings.Repeat("a", 63), wantCluster: strings.Repeat("a", 63)},
		{name: "64 characters", cluster: strings.Repeat("a", 64), wantVar: "MACAQUE_CLUSTER_NAME", wantMsg: "is not a cluster name: want 1 to 63"},
		{name: "a space", cluster: "prod eu", wantVar: "MACAQUE_CLUSTER_NAME", wantMsg: `"prod eu" is not a cluster name`},
		{name: "Slack markup", cluster: "<!channel>", wantVar: "MACAQUE_CLUSTER_NAME", wantMsg: "is not a cluster name"},
		{name: "an ARN", cluster: "arn:aws:eks:eu-west-1:1:cluster/prod", wantVar: "MACAQUE_CLUSTER_NAME", wantMsg: "is not a cluster name"},
		{name: "ending in a dash", cluster: "prod-", wantVar: "MACAQUE_CLUSTER_NAME", wantMsg: "starting and ending with a letter or digit"},
		{name: "a newline inside stays one line", cluster: "prod\neu", wantVar: "MACAQUE_CLUSTER_NAME", wantMsg: `"prod\neu"`},
		{name: "https webhook", url: "https://hooks.example.com/macaque?team=shop", wantHook: webhookSettings{url: "https://hooks.example.com/macaque?team=shop"}},
		{name: "https webhook with a token", url: "https://hooks.example.com/", authFile: "/etc/macaque/webhook/authorization",
			wantHook: webhookSettings{url: "https://hooks.example.com/", authFile: "/etc/macaque/webhook/authorization"}},
		{name: "an in-cluster service over http", url: "http://receiver.chaos.svc:8080/events", wantHook: webhookSettings{url: "http://receiver.chaos.svc:8080/events"}},
		{name: "http to loopback with a token", url: "http://127.0.0.1:9000/", authFile: "/a", wantHook: webhookSettings{url: "http://127.0.0.1:9000/", authFile: "/a"}},
		{name: "http elsewhere with a token", url: "http://receiver.chaos.svc:8080/", authFile: "/a", wantVar: "MACAQUE_WEBHOOK_URL",
			wantMsg: `"http://receiver.chaos.svc:8080/" would send the Authorization header of MACAQUE_WEBHOOK_AUTH_FILE in clear text`},
		{name: "no scheme", url: "hooks.example.com/x", wantVar: "MACAQUE_WEBHOOK_URL", wantMsg: `invalid URL "hooks.example.com/x"`},
		{name: "another scheme", url: "ftp://hooks.example.com/", wantVar: "MACAQUE_WEBHOOK_URL", wantMsg: "invalid URL"},
		{name: "no host", url: "https:///x", wantVar: "MACAQUE_WEBHOOK_URL", wantMsg: "invalid URL"},
		{name: "credentials in the URL", url: "https://user:secret@hooks.example.com/", wantVar: "MACAQUE_WEBHOOK_URL", wantMsg: "carries credentials"},
		{name: "an auth file without a URL", authFile: "/a", wantVar: "MACAQUE_WEBHOOK_AUTH_FILE", wantMsg: "set without MACAQUE_WEBHOOK_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			c.ClusterName, c.WebhookURL, c.WebhookAuthFile = tt.cluster, tt.url, tt.authFile
			s, err := c.check()
			if tt.wantVar == "" {
				if err != nil || s.cluster != tt.wantCluster || s.webhook != tt.wantHook {
					t.Errorf("check() = cluster %q, webhook %+v, %v; want %q, %+v", s.cluster, s.webhook, err, tt.wantCluster, tt.wantHook)
				}
				return
			}
			var bad *configError
			if !errors.As(err, &bad) || bad.variable != tt.wantVar || !strings.Contains(err.Error(), tt.wantMsg) || strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("check() = %v, want one line %s: ...%s...", err, tt.wantVar, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("check() = %v: it quotes the URL's password", err)
			}
		})
	}
}

// TestReceiverSettingsExit2 runs the real main: a bad cluster name, webhook URL or auth file is
// one line on stderr naming the variable, exit 2, before any API call.
func TestReceiverSettingsExit2(t *testing.T) {
	kc := "KUBECONFIG=" + writeKubeconfig(t, "shop")
	dir := t.TempDir()
	empty, twoLines := filepath.Join(dir, "empty"), filepath.Join(dir, "two-lines")
	for path, content := range map[string]string{empty: "\n", twoLines: "Bearer a\nBearer b\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hook := "MACAQUE_WEBHOOK_URL=https://hooks.example.com/"
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"bad cluster name", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_CLUSTER_NAME=prod eu"}, `macaque: MACAQUE_CLUSTER_NAME: "prod eu" is not a cluster name`},
		{"bad webhook URL", []string{kc, "MACAQUE_CRONTAB=@hourly", "MACAQUE_WEBHOOK_URL=hooks.example.com"}, `macaque: MACAQUE_WEBHOOK_URL: invalid URL "hooks.example.com"`},
		{"auth file missing", []string{kc, "MACAQUE_CRONTAB=@hourly", hook, "MACAQUE_WEBHOOK_AUTH_FILE=" + filepath.Join(dir, "none")},
			"macaque: MACAQUE_WEBHOOK_AUTH_FILE: read the Authorization header: open " + filepath.Join(dir, "none") + ": no such file or directory"},
		{"auth file empty", []string{kc, "MACAQUE_CRONTAB=@hourly", hook, "MACAQUE_WEBHOOK_AUTH_FILE=" + empty}, "macaque: MACAQUE_WEBHOOK_AUTH_FILE: " + empty + " is empty"},
		{"auth file of two lines", []string{kc, "MACAQUE_CRONTAB=@hourly", hook, "MACAQUE_WEBHOOK_AUTH_FILE=" + twoLines},
			"macaque: MACAQUE_WEBHOOK_AUTH_FILE: " + twoLines + " holds a line break"},
	}
	for _, runner := range runners {
		for _, tt := range tests {
			t.Run(runner.name+"/"+tt.name, func(t *testing.T) {
				code, _, stderr := runner.run(t, nil, tt.env...)
				lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
				if code != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], tt.want) {
					t.Errorf("exit %d, stderr %q; want 2 and one line starting %q", code, stderr, tt.want)
				}
			})
		}
	}
}

// TestReceiverSettingsAreNotReadUnprefixed: CLUSTER_NAME, WEBHOOK_URL and WEBHOOK_AUTH_FILE, as
// another app's envFrom might set them, change nothing.
func TestReceiverSettingsAreNotReadUnprefixed(t *testing.T) {
	unsetMacaqueEnv(t)
	t.Setenv("MACAQUE_CRONTAB", "@hourly")
	t.Setenv("CLUSTER_NAME", "stray")
	t.Setenv("WEBHOOK_URL", "https://stray.invalid/")
	t.Setenv("WEBHOOK_AUTH_FILE", "/stray")
	s, err := loadConfig()
	if err != nil || s.cluster != "" || s.webhook != (webhookSettings{}) {
		t.Errorf("loadConfig() = cluster %q, webhook %+v, %v; want none set", s.cluster, s.webhook, err)
	}
}
