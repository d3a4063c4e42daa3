package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/macaque-chaos/macaque/internal/kube"

	"github.com/kelseyhightower/envconfig"
	"github.com/macaque-chaos/macaque/internal/schedule"
	"k8s.io/apimachinery/pkg/labels"
)

// envPrefix is the prefix of every setting macaque reads from the environment.
const envPrefix = "MACAQUE"

// Config is macaque's whole configuration, read from MACAQUE_* environment variables.
// The desc tags are what `macaque -h` prints, so they double as the reference documentation.
// Names come from split_words, never from an envconfig tag: a tag also makes envconfig read the
// unprefixed name (DRY_RUN for MACAQUE_DRY_RUN) when the prefixed one is unset, and a stray
// NAMESPACE=prod from an envFrom ConfigMap must not redirect the kills.
type Config struct {
	Crontab           string        `split_words:"true" required:"true" desc:"when to kill: 5-field cron spec or descriptor (@hourly, @every 30m), read in MACAQUE_TIMEZONE"`
	Timezone          string        `split_words:"true" default:"UTC" desc:"IANA time zone the cron spec is evaluated in"`
	AllowFastSchedule bool          `split_words:"true" default:"false" desc:"allow a schedule firing more often than once a minute (demos and tests)"`
	ExcludedDays      string        `split_words:"true" desc:"comma-separated days on which nothing is killed, read in MACAQUE_TIMEZONE: 2026-12-25 (that day) or 12-25 (every year)"`
	Namespace         string        `split_words:"true" desc:"namespace to kill in, a comma-separated list of them, or * for every namespace (needs macaque-cluster.yml) but kube-system, kube-public, kube-node-lease and MACAQUE_EXCLUDE_NAMESPACES unless named beside it (default: macaque's own, or the kubeconfig context's)"`
	ExcludeNamespaces string        `split_words:"true" desc:"with MACAQUE_NAMESPACE=*, comma-separated namespaces never to kill in"`
	NamespaceSelector string        `split_words:"true" desc:"with MACAQUE_NAMESPACE=*, a label selector on namespaces (chaos=on, env in (staging,qa)): only the namespaces it selects, listed again at each tick, less the excluded ones"`
	Selector          string        `split_words:"true" desc:"label selector narrowing the victims, e.g. app in (a,b),tier!=db (empty: all pods)"`
	DryRun            bool          `split_words:"true" default:"false" desc:"pick and report a victim, but do not delete it"`
	RequireHealthy    bool          `split_words:"true" default:"true" desc:"steady-state guard: kill a pod only if it is Ready and its ReplicaSet/Deployment, StatefulSet, DaemonSet or ReplicationController is at full strength and not mid-rollout"`
	AllowOrphans      bool          `split_words:"true" default:"false" desc:"with the guard, also kill bare pods (no controller), which nothing recreates"`
	OwnerKinds        string        `split_words:"true" desc:"with the guard, comma-separated owner kinds to kill unchecked (Job, an operator's kind); pods of other unknown kinds are skipped"`
	MinPodAge         time.Duration `split_words:"true" default:"0" desc:"pods younger than this (a Go duration: 10m, 1h30m) are not killed; 0 is off"`
	Mode              string        `split_words:"true" default:"delete" desc:"how to kill: delete, or evict through the Eviction API so that PodDisruptionBudgets are respected (a pick a PDB protects is passed over)"`
	GracePeriod       string        `split_words:"true" desc:"override the victim's terminationGracePeriodSeconds: whole seconds (30, 30s, 1m); 0 is a hard kill (empty: the pod's own)"`
	KillCount         string        `split_words:"true" default:"1" desc:"victims per tick: a number (at most 100) or a percentage of the candidates (10%, at least 1), never two of one controller"`
	Cooldown          string        `split_words:"true" default:"0" desc:"a workload that lost a pod is not hit again before this long (Go duration: 1h, 24h); kept in the ConfigMap macaque-cooldown in macaque's namespace, so a restart does not reset it (0: off); a workload's chaos.macaque.dev/cooldown annotation overrides it for that workload"`
	RecoveryTimeout   time.Duration `split_words:"true" default:"5m" desc:"how long after a kill macaque follows the victim's controller for its recovery verdict (time to the replacement created, Ready, and the workload back at full strength) before calling it not recovered, an alarm (Go duration: 5m, 30s)"`
	AlertmanagerURL   string        `split_words:"true" desc:"Alertmanager's root URL (http://alertmanager.monitoring:9093): at each tick, the alerts firing there that MACAQUE_BLOCKING_ALERTS selects, neither silenced nor inhibited, hold the kills; one with a namespace label that namespace's pods, one without the whole tick; a tick that cannot ask it kills nothing (empty: no gate)"`
	BlockingAlerts    string        `split_words:"true" default:"severity=\"critical\"" desc:"with MACAQUE_ALERTMANAGER_URL, the alerts that hold the kills, as Alertmanager matchers: severity=\"critical\", {severity=~\"critical|page\",team=~\"pay.*\"}, or {} for every alert"`
	SlackToken        string        `split_words:"true" desc:"Slack bot token (xoxb-...), checked with auth.test at start; set with MACAQUE_SLACK_CHANNEL or not at all"`
	SlackChannel      string        `split_words:"true" desc:"Slack channel ID to report to; set with MACAQUE_SLACK_TOKEN or not at all"`
	SlackAPIUrl       string        `split_words:"true" default:"https://slack.com/api/" desc:"Slack Web API base URL (for proxies and tests): https, or http to loopback only, since every call carries the token"`
	ClusterName       string        `split_words:"true" desc:"the cluster's name, shown in every Slack message, Event note, log line and webhook event, for a channel that serves several clusters: up to 63 letters, digits, '-', '_' or '.' (empty: none)"`
	WebhookURL        string        `split_words:"true" desc:"where to POST each tick's reports and each verdict as CloudEvents (application/cloudevents+json): https, or http (with MACAQUE_WEBHOOK_AUTH_FILE, to loopback only); empty: none"`
	WebhookAuthFile   string        `split_words:"true" desc:"file holding the webhook's whole Authorization header value (Bearer ...), e.g. a Secret's key mounted; read at start and before each send, so a rotated Secret is used without a restart"`
	LeaderElection    bool          `split_words:"true" default:"true" desc:"run as one of several replicas: only the holder of the Lease macaque-leader in macaque's namespace kills, and a standby takes over within 15s of its loss (false: one replica, no Lease)"`
	HTTPAddr          string        `split_words:"true" default:":8080" desc:"host:port of the HTTP server for /metrics, /healthz and /readyz (empty: no server, then the manifest's probes must go too)"`
	LogFormat         string        `split_words:"true" default:"text" desc:"log format: text or json"`
	LogLevel          string        `split_words:"true" default:"info" desc:"log level: debug, info, warn or error"`
}

// settings is a Config checked and turned into the values the goroutines use.
type settings struct {
	crontab   string
	schedule  schedule.Schedule
	location  *time.Location
	excluded  schedule.ExcludedDays // already applied to schedule; kept for the start log
	scope     scope                 // unresolved (no namespace) until resolved against the pod's or the kubeconfig's namespace
	selector  labels.Selector
	dryRun    bool
	guard     guardSettings
	mode      killMode
	grace     *int64 // seconds; nil: the victim's own terminationGracePeriodSeconds
	count     killCount
	cooldown  time.Duration // 0: off
	minPodAge time.Duration // 0: off
	recovery  time.Duration // MACAQUE_RECOVERY_TIMEOUT
	// leaderElection: only the holder of the Lease kills (MACAQUE_LEADER_ELECTION).
	leaderElection bool
	alerts         alertSettings
	slack          slackSettings
	cluster        string // MACAQUE_CLUSTER_NAME; "" shows none
	webhook        webhookSettings
	httpAddr       string // "" serves no metrics nor probes
	logFormat      string
	logLevel       slog.Level
}

// guardSettings configure the steady-state guard; off means every pick in scope may be killed.
type guardSettings struct {
	on           bool
	allowOrphans bool
	ownerKinds   map[string]bool
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

// Error is one line, whatever the value quoted in it: main prints it as the only line on stderr.
func (e *configError) Error() string {
	return e.variable + ": " + strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(e.problem)
}

// badSetting builds a configError for variable MACAQUE_<key>.
func badSetting(key, format string, args ...any) error {
	return &configError{variable: envPrefix + "_" + key, problem: fmt.Sprintf(format, args...)}
}

// loadConfig reads the environment and checks every setting that can be checked without a cluster.
func loadConfig() (settings, error) {
	// First: a misspelt MACAQUE_CRONTAB is better explained by its spelling than by "required".
	if err := checkUnknownSettings(os.Environ()); err != nil {
		return settings{}, err
	}
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
	s, err := c.check()
	if err != nil {
		return s, err
	}
	return s, s.webhook.checkAuthFile()
}

// serviceLink is the shape of the variables the kubelet injects for each Service of the pod's
// namespace (enableServiceLinks defaults to true; see FromServices in pkg/kubelet/envvars): for a
// Service named macaque or macaque-<rest> (upper-cased, '-' as '_'), <P>_SERVICE_HOST,
// <P>_SERVICE_PORT, <P>_SERVICE_PORT_<PORT NAME>, and the Docker-link ones <P>_PORT,
// <P>_PORT_<number>_<TCP|UDP|SCTP> and that followed by _PROTO, _PORT or _ADDR. They are no
// misspelt settings, and refusing them would make a Service named macaque stop macaque; the
// shapes are matched exactly, so a misspelling refused is one no Service can produce.
var serviceLink = regexp.MustCompile(`^MACAQUE(_[A-Z0-9_]*[A-Z0-9])?_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_[0-9]{1,5}_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$`)

// checkUnknownSettings refuses a variable of environ ("NAME=value" items, as os.Environ gives)
// that looks like a setting of macaque (MACAQUE_, in any case) but is none: a misspelling, or a
// setting of another version, would leave off a protection the user believes on. A setting
// name always wins over a service link's shape, since envconfig reads it as the setting.
func checkUnknownSettings(environ []string) error {
	known := knownSettings()
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(strings.ToUpper(name), envPrefix+"_") || slices.Contains(known, name) || serviceLink.MatchString(name) {
			continue
		}
		unknown = append(unknown, name)
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown) // the same line for the same environment, whatever its order
	name := unknown[0]
	problem := "not a setting macaque knows (macaque -h lists them)"
	if guess := closestSetting(name, known); guess != "" {
		problem = "not a setting macaque knows; did you mean " + guess + "?"
	}
	if !settingName.MatchString(name) {
		name = strconv.Quote(name) // a name printed as it is could break the one line
	}
	return &configError{variable: name, problem: problem}
}

// settingName is what an environment variable's name usually looks like; others are quoted.
var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// closestSetting is the known name nearest to name (by edit distance, upper-cased), if it is
// near enough to be a misspelling of it: at most 3 edits, and at most a third of the length of
// what follows the prefix, so that MACAQUE_FOO suggests nothing rather than MACAQUE_MODE.
func closestSetting(name string, known []string) string {
	name = strings.ToUpper(name)
	limit := min(3, max(1, (len(name)-len(envPrefix)-1)/3))
	best, bestDist := "", limit+1
	for _, k := range known {
		if d := editDistance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes (names are ASCII).
func editDistance(a, b string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// check validates c; it reads nothing but c, so tests can drive it with a literal.
func (c Config) check() (settings, error) {
	var s settings
	// In the order of Config, so that of two bad settings the first is named.
	for _, step := range []func(*settings) error{c.checkSchedule, c.checkTargets, c.checkKills, c.checkAlerts, c.checkSlack, c.checkReceivers, c.checkOutputs} {
		if err := step(&s); err != nil {
			return s, err
		}
	}
	return s, nil
}

// checkSchedule reads when to kill: the cron spec, its time zone and the excluded days.
func (c Config) checkSchedule(s *settings) error {
	var err error
	if strings.TrimSpace(c.Crontab) == "" {
		return badSetting("CRONTAB", "required, e.g. \"0 10-16 * * 1-5\" or \"@every 1h\"")
	}
	if s.schedule, err = schedule.Parse(c.Crontab, c.AllowFastSchedule); err != nil {
		return badSetting("CRONTAB", "%v", err)
	}
	s.crontab = c.Crontab
	if s.location, err = time.LoadLocation(cmp.Or(c.Timezone, "UTC")); err != nil {
		return badSetting("TIMEZONE", "unknown time zone %q (want an IANA name such as Europe/Paris)", c.Timezone)
	}
	if s.excluded, err = schedule.ParseExcludedDays(c.ExcludedDays); err != nil {
		return badSetting("EXCLUDED_DAYS", "%v", err)
	}
	if !s.excluded.Empty() {
		s.schedule = schedule.Excluding(s.schedule, s.excluded, s.location)
		if s.schedule.Next(time.Now()).IsZero() {
			return badSetting("EXCLUDED_DAYS", "every activation of %q for years ahead falls on an excluded day: it would never fire", c.Crontab)
		}
	}
	return nil
}

// checkTargets reads which pods may die: the namespaces, the selector and the guard.
func (c Config) checkTargets(s *settings) error {
	var err error
	if s.scope, err = parseScope(c.Namespace, c.ExcludeNamespaces); err != nil {
		return err
	}
	if s.scope, err = s.scope.selecting(c.NamespaceSelector); err != nil {
		return err
	}
	if s.selector, err = labels.Parse(c.Selector); err != nil {
		return badSetting("SELECTOR", "invalid label selector %q: %v", c.Selector, err)
	}
	s.dryRun = c.DryRun
	s.guard = guardSettings{on: c.RequireHealthy, allowOrphans: c.AllowOrphans}
	if s.guard.ownerKinds, err = parseOwnerKinds(c.OwnerKinds); err != nil {
		return badSetting("OWNER_KINDS", "%v", err)
	}
	return nil
}

// checkKills reads how pods die: the mode, the grace period, the cooldown, how many a tick,
// how old at least, and how long their recovery is followed.
func (c Config) checkKills(s *settings) error {
	var err error
	if s.mode, err = parseMode(c.Mode); err != nil {
		return badSetting("MODE", "%v", err)
	}
	if s.grace, err = parseGracePeriod(c.GracePeriod); err != nil {
		return badSetting("GRACE_PERIOD", "%v", err)
	}
	if s.cooldown, err = parseCooldown(c.Cooldown); err != nil {
		return err
	}
	if s.count, err = parseKillCount(c.KillCount); err != nil {
		return badSetting("KILL_COUNT", "%v", err)
	}
	if c.MinPodAge < 0 {
		return badSetting("MIN_POD_AGE", "%s is negative: want a duration such as 10m, or 0 for no minimum", c.MinPodAge)
	}
	s.minPodAge = c.MinPodAge
	if c.RecoveryTimeout <= 0 {
		return badSetting("RECOVERY_TIMEOUT", "%s is not positive: want how long to wait for a killed pod's workload to recover, such as 5m", c.RecoveryTimeout)
	}
	if c.RecoveryTimeout > maxRecoveryTimeout {
		return badSetting("RECOVERY_TIMEOUT", "%s is more than %s: a workload not back by then is not recovering", c.RecoveryTimeout, maxRecoveryTimeout)
	}
	s.recovery = c.RecoveryTimeout
	s.leaderElection = c.LeaderElection
	return nil
}

// checkSlack reads where reports go: both the token and the channel, or neither.
func (c Config) checkSlack(s *settings) error {
	// A Secret made with --from-file ends in a newline, which Slack would reject as a bad token.
	token, channel := strings.TrimSpace(c.SlackToken), strings.TrimSpace(c.SlackChannel)
	if token != "" && channel == "" {
		return badSetting("SLACK_CHANNEL", "required when MACAQUE_SLACK_TOKEN is set")
	}
	if token == "" && channel != "" {
		return badSetting("SLACK_TOKEN", "required when MACAQUE_SLACK_CHANNEL is set")
	}
	apiURL, err := parseSlackAPIURL(c.SlackAPIUrl)
	if err != nil {
		return badSetting("SLACK_API_URL", "%v", err)
	}
	s.slack = slackSettings{token: token, channel: channel, apiURL: apiURL}
	return nil
}

// checkOutputs reads what macaque serves and logs: the HTTP address and the log's format and level.
func (c Config) checkOutputs(s *settings) error {
	var err error
	if s.httpAddr, err = parseHTTPAddr(c.HTTPAddr); err != nil {
		return badSetting("HTTP_ADDR", "%v", err)
	}
	switch c.LogFormat {
	case "text", "json":
		s.logFormat = c.LogFormat
	default:
		return badSetting("LOG_FORMAT", "unknown format %q (want text or json)", c.LogFormat)
	}
	if err := s.logLevel.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return badSetting("LOG_LEVEL", "unknown level %q (want debug, info, warn or error)", c.LogLevel)
	}
	return nil
}

// parseSlackAPIURL reads MACAQUE_SLACK_API_URL, ending it in "/" (slack-go appends the method
// name directly). Every call carries the bot token, so plain http is allowed only to loopback,
// where nothing on the network can read it (a local proxy or a test's stub).
func parseSlackAPIURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("invalid URL %q: want http(s)://host/path/", raw)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("%q would send the Slack token in clear text: use https, or http only to loopback (localhost, 127.0.0.0/8, ::1)", raw)
	}
	if !strings.HasSuffix(raw, "/") {
		raw += "/"
	}
	return raw, nil
}

// isLoopback says whether host, as a URL names it, is this machine: localhost or a loopback
// address. Any other name is not, even one that resolves to loopback today, since DNS may change.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseHTTPAddr reads MACAQUE_HTTP_ADDR: host:port (host may be empty for every interface, the
// port 0 for any free one), or empty for no server. Whether the port is free is for the bind
// to say, at start.
func parseHTTPAddr(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port (:8080, 0.0.0.0:8080, [::1]:8080): %w", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("%q: the port must be a number from 0 to 65535", addr)
	}
	return addr, nil
}

// maxRecoveryTimeout bounds MACAQUE_RECOVERY_TIMEOUT, and so how long a verdict holds its
// watches open.
const maxRecoveryTimeout = 24 * time.Hour

// kindName is what a Kubernetes kind looks like: CamelCase, starting with an upper-case letter.
var kindName = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)

// parseOwnerKinds reads MACAQUE_OWNER_KINDS: kinds as written in ownerReferences (Job, not
// job or jobs), never a kind the guard checks, since listing one would not turn its check off.
func parseOwnerKinds(list string) (map[string]bool, error) {
	kinds := map[string]bool{}
	if strings.TrimSpace(list) == "" {
		return kinds, nil
	}
	for _, item := range strings.Split(list, ",") {
		kind := strings.TrimSpace(item)
		if !kindName.MatchString(kind) {
			return nil, fmt.Errorf("%q is not a kind: want kinds as ownerReferences spell them, comma-separated, e.g. Job,Rollout", kind)
		}
		if slices.ContainsFunc(kube.WorkloadKinds, func(k kube.WorkloadKind) bool { return k.Kind == kind }) {
			return nil, fmt.Errorf("%s is always checked by the steady-state guard; list only kinds it cannot check (Job, an operator's kind)", kind)
		}
		kinds[kind] = true
	}
	return kinds, nil
}

// usageNotes follow the settings in `macaque -h`.
const usageNotes = `
Set by the Deployment's downward API, not by hand:
  POD_NAME       macaque's own pod, never a victim (default: the hostname)
  POD_NAMESPACE  the namespace macaque runs in, the default for MACAQUE_NAMESPACE
Pause every kill by annotating macaque's own Deployment (found from POD_NAME at start):
  chaos.macaque.dev/paused=true (until removed) or =<RFC 3339 time> (until then)

Out of a cluster, macaque uses KUBECONFIG (or ~/.kube/config) and its current context.
A MACAQUE_ variable not listed above (a misspelling) stops macaque at start, but for the
ones the kubelet sets for a Service named macaque or macaque-* (MACAQUE_SERVICE_HOST, ...).
Exit status: 0 on SIGTERM/SIGINT, 2 for a bad setting, 1 for any other failure to start.
`

// newLogger builds the one logger the daemon uses.
func newLogger(w io.Writer, s settings) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.logLevel}
	var log *slog.Logger
	if s.logFormat == "json" {
		log = slog.New(slog.NewJSONHandler(w, opts))
	} else {
		log = slog.New(slog.NewTextHandler(w, opts))
	}
	if s.cluster != "" { // on every line, the verdicts' among them, for logs gathered from many clusters
		log = log.With("cluster", s.cluster)
	}
	return log
}

// hostname is the fallback for POD_NAME: in a pod it is the pod's name.
func hostname() string {
	name, err := os.Hostname()
	if err != nil {
		return ""
	}
	return name
}

// parseCooldown reads MACAQUE_COOLDOWN: a Go duration, whole seconds, 0 for off.
func parseCooldown(v string) (time.Duration, error) {
	if strings.TrimSpace(v) == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < 0 || d%time.Second != 0 {
		return 0, badSetting("COOLDOWN", "%q is not a duration of whole seconds, 0 or more (e.g. 1h, 90m, 0 for off)", v)
	}
	return d, nil
}
