package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// envPrefix is the prefix of every setting macaque reads from the environment.
const envPrefix = "MACAQUE"

// Config is macaque's whole configuration, read from MACAQUE_* environment variables.
// The desc tags are what `macaque -h` prints, so they double as the reference documentation.
type Config struct {
	Crontab      string `envconfig:"CRONTAB" required:"true" desc:"when to kill: 5-field cron spec or descriptor (@hourly, @every 30s)"`
	Timezone     string `envconfig:"TIMEZONE" default:"UTC" desc:"IANA time zone the cron spec is evaluated in"`
	Namespace    string `envconfig:"NAMESPACE" desc:"namespace to kill in (default: macaque's own, or the kubeconfig context's)"`
	Selector     string `envconfig:"SELECTOR" desc:"label selector narrowing the victims, e.g. app in (a,b),tier!=db (empty: all pods)"`
	DryRun       bool   `envconfig:"DRY_RUN" default:"false" desc:"pick and report a victim, but do not delete it"`
	SlackToken   string `envconfig:"SLACK_TOKEN" desc:"Slack bot token (xoxb-...); set with MACAQUE_SLACK_CHANNEL or not at all"`
	SlackChannel string `envconfig:"SLACK_CHANNEL" desc:"Slack channel ID to report to; set with MACAQUE_SLACK_TOKEN or not at all"`
	SlackAPIURL  string `envconfig:"SLACK_API_URL" default:"https://slack.com/api/" desc:"Slack Web API base URL (for proxies and tests)"`
	LogFormat    string `envconfig:"LOG_FORMAT" default:"text" desc:"log format: text or json"`
	LogLevel     string `envconfig:"LOG_LEVEL" default:"info" desc:"log level: debug, info, warn or error"`
}

// settings is a Config checked and turned into the values the goroutines use.
type settings struct {
	crontab   string
	schedule  cron.Schedule
	location  *time.Location
	namespace string // empty until resolved against the pod's or the kubeconfig's namespace
	selector  labels.Selector
	dryRun    bool
	slack     slackSettings
	logFormat string
	logLevel  slog.Level
}

// slackSettings says where to report; an empty token means "log only".
type slackSettings struct {
	token, channel, apiURL string
}

// configError is a bad setting: it names the variable so the one line printed is enough to fix it.
type configError struct {
	variable string
	problem  string
}

func (e *configError) Error() string { return e.variable + ": " + e.problem }

// badSetting builds a configError for variable MACAQUE_<key>.
func badSetting(key, format string, args ...any) error {
	return &configError{variable: envPrefix + "_" + key, problem: fmt.Sprintf(format, args...)}
}

// loadConfig reads the environment and checks every setting that can be checked without a cluster.
func loadConfig() (settings, error) {
	var c Config
	if err := envconfig.Process(envPrefix, &c); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return settings{}, &configError{variable: pe.KeyName, problem: fmt.Sprintf("%q is not a valid %s", pe.Value, pe.TypeName)}
		}
		// envconfig reports a missing required variable with a plain error; the check below words it better.
		if !strings.HasPrefix(err.Error(), "required key ") {
			return settings{}, fmt.Errorf("read environment: %w", err)
		}
	}
	return c.check()
}

// check validates c; it reads nothing but c, so tests can drive it with a literal.
func (c Config) check() (settings, error) {
	var s settings
	var err error

	if strings.TrimSpace(c.Crontab) == "" {
		return s, badSetting("CRONTAB", "required, e.g. \"0 10-16 * * 1-5\" or \"@every 1h\"")
	}
	if s.schedule, err = cron.ParseStandard(c.Crontab); err != nil {
		return s, badSetting("CRONTAB", "invalid cron spec %q: %v", c.Crontab, err)
	}
	if s.schedule.Next(time.Now()).IsZero() {
		return s, badSetting("CRONTAB", "cron spec %q never fires", c.Crontab)
	}
	s.crontab = c.Crontab
	if c.Timezone == "" {
		c.Timezone = "UTC"
	}
	if s.location, err = time.LoadLocation(c.Timezone); err != nil {
		return s, badSetting("TIMEZONE", "unknown time zone %q (want an IANA name such as Europe/Paris)", c.Timezone)
	}
	if c.Namespace != "" {
		if errs := validation.IsDNS1123Label(c.Namespace); len(errs) > 0 {
			return s, badSetting("NAMESPACE", "invalid namespace %q: %s", c.Namespace, strings.Join(errs, "; "))
		}
		s.namespace = c.Namespace
	}
	if s.selector, err = labels.Parse(c.Selector); err != nil {
		return s, badSetting("SELECTOR", "invalid label selector %q: %v", c.Selector, err)
	}
	s.dryRun = c.DryRun

	switch {
	case c.SlackToken != "" && c.SlackChannel == "":
		return s, badSetting("SLACK_CHANNEL", "required when MACAQUE_SLACK_TOKEN is set")
	case c.SlackToken == "" && c.SlackChannel != "":
		return s, badSetting("SLACK_TOKEN", "required when MACAQUE_SLACK_CHANNEL is set")
	}
	u, err := url.Parse(c.SlackAPIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return s, badSetting("SLACK_API_URL", "invalid URL %q: want http(s)://host/path/", c.SlackAPIURL)
	}
	apiURL := c.SlackAPIURL
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/" // slack-go appends the method name directly
	}
	s.slack = slackSettings{token: c.SlackToken, channel: c.SlackChannel, apiURL: apiURL}

	switch c.LogFormat {
	case "text", "json":
		s.logFormat = c.LogFormat
	default:
		return s, badSetting("LOG_FORMAT", "unknown format %q (want text or json)", c.LogFormat)
	}
	if err := s.logLevel.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return s, badSetting("LOG_LEVEL", "unknown level %q (want debug, info, warn or error)", c.LogLevel)
	}
	return s, nil
}

// printUsage writes the settings table that `macaque -h` shows.
func printUsage(w io.Writer) error {
	fmt.Fprintf(w, "macaque deletes one random Running pod on a cron schedule and reports it to Slack.\n\n")
	tabs := tabwriter.NewWriter(w, 1, 0, 2, ' ', 0)
	if err := envconfig.Usagef(envPrefix, &Config{}, tabs, envconfig.DefaultTableFormat); err != nil {
		return fmt.Errorf("print usage: %w", err)
	}
	if err := tabs.Flush(); err != nil {
		return fmt.Errorf("print usage: %w", err)
	}
	fmt.Fprint(w, `
Set by the Deployment's downward API, not by hand:
  POD_NAME       macaque's own pod, never a victim (default: the hostname)
  POD_NAMESPACE  the namespace macaque runs in, the default for MACAQUE_NAMESPACE

Out of a cluster, macaque uses KUBECONFIG (or ~/.kube/config) and its current context.
Exit status: 0 on SIGTERM/SIGINT, 2 for a bad setting, 1 for any other failure to start.
`)
	return nil
}

// newLogger builds the one logger the daemon uses.
func newLogger(w io.Writer, s settings) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.logLevel}
	if s.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// hostname is the fallback for POD_NAME: in a pod it is the pod's name.
func hostname() string {
	name, err := os.Hostname()
	if err != nil {
		return ""
	}
	return name
}
