// Command macaque is a chaos monkey for Kubernetes: on a cron schedule it deletes one random
// Running pod in a namespace, narrowed by a label selector, and reports what happened to Slack.
package main

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/macaque-chaos/macaque/internal/election"
	"github.com/macaque-chaos/macaque/internal/recovery"

	"github.com/macaque-chaos/macaque/internal/policy"

	"github.com/macaque-chaos/macaque/internal/kube"

	_ "time/tzdata" // MACAQUE_TIMEZONE works without /usr/share/zoneinfo

	_ "golang.org/x/crypto/x509roots/fallback" // CA roots for Slack when the image is FROM scratch

	"github.com/macaque-chaos/macaque/internal/schedule"

	"github.com/macaque-chaos/macaque/internal/telemetry"
	"github.com/macaque-chaos/macaque/internal/webhook"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Timing of the daemon's goroutines. shutdownGrace outlasts a kill in flight at SIGTERM
// (defaultTimeouts.total, 25s), the write of its cooldown (cooldownTimeout, 3s) and its Events
// (eventsTimeout, 4s) so its report still gets out, and stays under the Deployment's
// terminationGracePeriodSeconds (45s) so the kubelet never has to SIGKILL us.
const (
	preflightTimeout = 15 * time.Second
	shutdownGrace    = 35 * time.Second
	// verdictGrace is how long the verdicts in flight at a stop are still followed: a rollout
	// stops the leader as the standby takes over, and the kills it made just before then still
	// get their verdicts (most recoveries take seconds) from it. Well within shutdownGrace, so
	// the notifier has time to post them.
	verdictGrace = 10 * time.Second
	// reportBuffer is the room in the channels between the goroutines. The notifier's intake
	// empties its two (ticks' reports, verdicts) at once into a queue with no bound, so only a
	// starved intake could fill them.
	reportBuffer = 64
	// maxSleep is the longest the scheduler sleeps at once: it then reads the clock again, so a
	// clock step or a paused VM moves the next tick by at most this much.
	maxSleep = time.Minute
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitStatus(err, os.Stderr))
}

// exitStatus says how run's error ends the process, writing the one line that explains it:
// 0 for a clean stop or -h, 2 for a bad setting or command line, 1 for anything else.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, errUsage) {
		return 2 // the flag package has said why already
	}
	fmt.Fprintln(stderr, "macaque: "+err.Error())
	var bad *configError
	if errors.As(err, &bad) {
		return 2
	}
	return 1
}

// errUsage is a command line macaque does not understand; the flag package has already said why.
var errUsage = errors.New("bad command line")

// run is the whole daemon: it returns when ctx is done and every goroutine has finished.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parseArgs(args, stdout, stderr); err != nil {
		return err
	}
	s, err := loadConfig()
	if err != nil {
		return err
	}
	listener, err := telemetry.Listen(s.httpAddr)
	if err != nil {
		return badSetting("HTTP_ADDR", "%v", err)
	}
	if listener != nil {
		// On a refused start; once served, stopHTTP has closed it already, and the second
		// close's error says only that.
		defer func() { _ = listener.Close() }()
	}
	restCfg, err := kubeConfig(&s, saNamespaceFile)
	if err != nil {
		return err
	}
	log := newLogger(stderr, s)
	// Served from here, so the probes answer during the start-up checks (/readyz: not yet), but
	// logged only once they pass: a refused start stays one line.
	stats := telemetry.NewMetrics(s.scope.namespaces)
	probes := telemetry.NewHealth(time.Now)
	stopHTTP := telemetry.Serve(listener, telemetry.NewHandler(stats, probes, log), telemetry.ShutdownTimeout, log)
	defer stopHTTP()

	parts, err := startUp(ctx, s, restCfg, log)
	if err != nil {
		return err
	}
	probes.Ready.Observe("the start-up checks", time.Now(), nil)
	if listener != nil {
		log.Info("serving metrics and probes", "addr", listener.Addr().String(), "paths", "/metrics /healthz /readyz")
	}
	logStart(log, s, parts)
	d, err := wire(s, restCfg, parts, log, stats, probes)
	if err != nil {
		return err
	}
	d.run(ctx, listener != nil)
	log.Info("macaque stopped")
	return nil
}

// parseArgs reads the command line, which takes no argument but -h: macaque is configured by
// its environment.
func parseArgs(args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("macaque", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { _ = printUsage(stdout) }
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "macaque takes no arguments (got %q); it is configured by MACAQUE_* variables, see -h\n", flags.Args())
		return errUsage
	}
	return nil
}

// started is what the start-up checks built and vouched for.
type started struct {
	pods    *kube.Client
	self    string     // macaque's own pod, never a victim
	way     terminator // how pods die (MACAQUE_MODE)
	guard   *policy.Guard
	events  *eventRecorder
	pause   *policy.PauseSwitch // nil: none; noPause says why
	noPause string
	own     string // macaque's own namespace: its pause switch, cooldown state and Lease
	cool    *policy.Cooldown
	slack   slackAPI          // nil: no Slack
	alerts  *policy.AlertGate // nil: no alert gate
}

// startUp makes the API client and runs the start-up checks in order: the scope's
// permissions, the recovery's, the Events', the pause switch, the cooldown's state, the
// election's Lease, Alertmanager and Slack's token. The first that fails stops macaque, with the setting to fix when it is one.
func startUp(ctx context.Context, s settings, restCfg *rest.Config, log *slog.Logger) (started, error) {
	var p started
	var err error
	if p.pods, err = kube.NewClient(restCfg); err != nil {
		return p, err
	}
	p.self = cmp.Or(os.Getenv("POD_NAME"), hostname())
	p.way = terminatorFor(s.mode, p.pods)
	if err := preflightScope(ctx, p.pods, s.scope, p.way, !s.guard.on); err != nil {
		return p, err
	}
	if err := preflightRecoveryScope(ctx, p.pods, s.scope); err != nil {
		return p, err
	}
	// The guard reads the controller chain for the opt-out annotation whatever the setting;
	// MACAQUE_REQUIRE_HEALTHY only says whether it also judges their strength.
	p.guard = &policy.Guard{API: p.pods, AllowOrphans: s.guard.allowOrphans, OwnerKinds: s.guard.ownerKinds, HealthOff: !s.guard.on}
	p.events = &eventRecorder{api: p.pods, instance: cmp.Or(p.self, kube.ReportingController), mode: string(s.mode), cluster: s.cluster, now: time.Now, timeout: eventsTimeout, log: log}
	preflightEventsScope(ctx, p.pods, p.events, s.scope)
	p.own = ownNamespace(saNamespaceFile)
	if p.pause, p.noPause, err = startPauseSwitch(ctx, p.pods, p.self, p.own, log); err != nil {
		return p, err
	}
	if p.cool, err = startCooldown(ctx, p.pods, s.cooldown, p.own, s.scope, log); err != nil {
		return p, err
	}
	if s.leaderElection {
		if err := preflightElection(ctx, p.pods, p.own); err != nil {
			return p, err
		}
	}
	if p.alerts, err = startAlertGate(ctx, s.alerts, log); err != nil {
		return p, err
	}
	if p.slack = newSlackPoster(s.slack); p.slack != nil {
		// A token Slack rejects stops macaque here (exit 2); an unreachable Slack only warns.
		if err := checkSlack(ctx, p.slack, log); err != nil {
			return p, err
		}
	}
	return p, nil
}

// logStart is the one line that says macaque started, and with what.
func logStart(log *slog.Logger, s settings, p started) {
	if p.pause == nil {
		log.Warn("pause switch unavailable: macaque cannot be paused by annotation", "why", p.noPause)
	}
	log.Info("macaque started", "namespace", s.scope.String(), "selector", s.selector.String(), "crontab", s.crontab,
		"timezone", s.location.String(), "dry_run", s.dryRun, "slack", s.slack.channel != "", "self", p.self,
		"require_healthy", s.guard.on, "min_pod_age", s.minPodAge, "allow_orphans", s.guard.allowOrphans, "owner_kinds", strings.Join(slices.Sorted(maps.Keys(s.guard.ownerKinds)), ","),
		"mode", s.mode, "grace_period", graceSetting(s.grace), "kill_count", s.count.String(),
		"excluded_days", s.excluded.String(), "pause_switch", p.pause.Describe(p.noPause), "cooldown", s.cooldown, "recovery_timeout", s.recovery,
		"leader_election", s.leaderElection, "webhook", s.webhook.url != "")
}

// daemon is macaque's goroutines, wired: scheduler → killer → (recovery →) notifier, and the
// access check beside them.
type daemon struct {
	sched    *scheduler
	killer   *Killer
	recov    *recovery.Follower
	notifier *Notifier
	access   *accessCheck
	webhook  *webhook.Sender   // nil: no MACAQUE_WEBHOOK_URL; fed by the notifier's intake
	elector  *election.Elector // nil: one replica, no election
	// takeovers are the elector's, which relay hands on to the notifier and the recovery.
	takeovers chan election.Takeover
	relay     func()
	kills     chan recovery.Kill
	verdicts  chan recovery.Verdict
}

// wire builds the goroutines from the settings and what the start-up checks made.
func wire(s settings, restCfg *rest.Config, p started, log *slog.Logger, stats *telemetry.Metrics, probes *telemetry.Health) (*daemon, error) {
	// The verdicts' watches and reads go through a client of their own: its rate limiter is
	// its own, so a hundred follows opening at once never make a tick's kills wait on it.
	followPods, err := kube.NewClient(restCfg)
	if err != nil {
		return nil, err
	}
	d := &daemon{kills: make(chan recovery.Kill, reportBuffer), verdicts: make(chan recovery.Verdict, reportBuffer)}
	d.sched = &scheduler{schedule: s.schedule, location: s.location, now: time.Now, after: time.After, log: log,
		alive: &probes.Scheduler, metrics: stats}
	d.killer = &Killer{api: p.pods, scope: s.scope, selector: s.selector.String(), self: p.self, dryRun: s.dryRun,
		timeouts: defaultTimeouts, rng: newRNG(), now: time.Now, log: log, guard: p.guard, terminator: p.way, grace: s.grace, count: s.count,
		pause: p.pause, minAge: s.minPodAge, events: p.events, cooldown: p.cool, alive: &probes.Killer, ready: &probes.Ready, metrics: stats,
		recover: d.kills}
	d.killer.alerts = p.alerts
	d.recov = &recovery.Follower{API: followPods, Timeout: s.recovery, Now: time.Now, After: time.After, Log: log, Events: p.pods, NewEvent: p.events.event,
		Observer: stats, Grace: shutdownGrace}
	d.notifier = &Notifier{slack: p.slack, channel: s.slack.channel, after: time.After, backoff: defaultBackoff, log: log, metrics: stats, verdicts: d.verdicts,
		cluster: s.cluster}
	d.notifier.webhook, d.webhook = newWebhook(s, log, stats)
	if s.leaderElection {
		d.takeovers = make(chan election.Takeover, reportBuffer)
		d.elector = &election.Elector{API: p.pods, Namespace: p.own, Identity: p.self, Now: time.Now, After: time.After,
			Rand: newRNG(), Log: log, Observer: stats, Takeovers: d.takeovers,
			Following: d.recov.Following}
		told, inherited := make(chan election.Takeover, reportBuffer), make(chan recovery.Inheritance, reportBuffer)
		d.killer.leader, d.notifier.takeovers, d.recov.Inherited = d.elector, told, inherited
		d.relay = func() { relayTakeovers(d.takeovers, told, inherited) }
	} else {
		stats.Leading(true)
	}
	d.access = &accessCheck{api: p.pods, scope: s.scope, way: p.way, healthOff: !s.guard.on, every: accessCheckEvery,
		now: time.Now, after: time.After, ready: &probes.Ready, log: log}
	return d, nil
}

// run runs the goroutines until ctx is done and each has finished; the access check only when
// there is a /readyz to read what it finds.
func (d *daemon) run(ctx context.Context, serving bool) {
	ticks := make(chan time.Time, 1) // one slot, so a tick is never lost to a race with an idle killer
	// One value per tick, all of its reports: the notifier posts them as one message.
	results := make(chan []Result, reportBuffer)
	var wg sync.WaitGroup
	killerDone := make(chan struct{})
	wg.Go(func() { d.sched.run(ctx, ticks) })
	wg.Go(func() {
		defer close(killerDone)
		d.killer.run(ctx, ticks, results)
	})
	if d.elector != nil {
		// Until the killer has ended: the lease is released only once no kill can be in flight.
		wg.Go(func() { d.elector.Run(ctx, killerDone) })
		wg.Go(d.relay)
	}
	follows, endFollows := outliving(ctx, verdictGrace)
	defer endFollows()
	wg.Go(func() { d.recov.Run(follows, d.kills, d.verdicts) })
	wg.Go(func() { d.notifier.run(ctx, results, shutdownGrace) })
	if d.webhook != nil {
		wg.Go(func() { d.webhook.Run(ctx, d.notifier.webhook.out, shutdownGrace) })
	}
	if serving {
		wg.Go(func() { d.access.run(ctx) })
	}
	wg.Wait()
}

// outliving is a context that ends grace after ctx does (or when its cancel is called).
func outliving(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	out, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-out.Done():
		}
	})
	return out, func() { stop(); cancel() }
}

// relayTakeovers hands each takeover on to the notifier, which says it in Slack, and the kills
// the last leader followed, if it did not release the lease, to the recovery, which ends their
// verdicts; it closes both once takeovers is closed.
func relayTakeovers(takeovers <-chan election.Takeover, told chan<- election.Takeover, inherited chan<- recovery.Inheritance) {
	defer close(told)
	defer close(inherited)
	for t := range takeovers {
		told <- t
		if t.Following != "" {
			inherited <- recovery.Inheritance{From: t.From, Kills: t.Following}
		}
	}
}

// scheduler wakes at each activation of the cron schedule and signals the killer.
type scheduler struct {
	schedule schedule.Schedule
	location *time.Location
	now      func() time.Time
	after    func(time.Duration) <-chan time.Time
	log      *slog.Logger
	alive    *telemetry.Heartbeat // beaten at every wake-up, at most maxSleep apart; nil: none
	metrics  *telemetry.Metrics   // nil: none
}

// run sends each tick's scheduled time on ticks until ctx is done, then closes ticks.
// It never blocks on the killer: when a tick is already waiting, the new one is dropped.
// It sleeps at most maxSleep at a time and reads the clock again, so a wall clock that steps
// or a VM that pauses cannot stretch one long timer (Friday 16:00 to Monday 10:00) past its tick;
// a tick found to be more than maxSleep late is missed, not fired at an unscheduled time.
func (s *scheduler) run(ctx context.Context, ticks chan<- time.Time) {
	defer close(ticks)
	var last time.Time
	for {
		now := s.now()
		s.alive.Beat(now, maxSleep+telemetry.HeartbeatMargin)
		if now.Before(last) {
			now = last // never fire the same activation twice if the wall clock steps back
		}
		next, passed := schedule.NextPassing(s.schedule, s.location, now)
		if len(passed) > 0 {
			// Once per computed tick, so once per excluded day: the log says why a day had no tick.
			s.log.Info("passing over excluded days: nothing is killed on them (MACAQUE_EXCLUDED_DAYS)", "days", passed, "next_tick", next)
		}
		s.metrics.Upcoming(next)
		if next.IsZero() {
			s.log.Error("the schedule has no further activations; idling until stopped")
			s.idle(ctx)
			return
		}
		s.log.Debug("next tick", "at", next)
		for now.Before(next) {
			select {
			case <-ctx.Done():
				return
			case <-s.after(min(next.Sub(now), maxSleep)):
			}
			now = s.now()
			s.alive.Beat(now, maxSleep+telemetry.HeartbeatMargin)
		}
		last = next
		if late := now.Sub(next); late > maxSleep {
			s.log.Warn("missed tick: the clock jumped or the process was paused past it", "tick", next, "late", late)
			continue
		}
		select {
		case ticks <- next:
			s.metrics.Scheduled(next)
		default:
			s.log.Warn("skipping tick: the killer has not taken the previous one", "tick", next)
		}
	}
}

// idle waits for ctx, still beating, so that a schedule with no activations left is not taken
// for a stalled scheduler and restarted (a restart would refuse the schedule and crash-loop).
func (s *scheduler) idle(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.after(maxSleep):
			s.alive.Beat(s.now(), maxSleep+telemetry.HeartbeatMargin)
		}
	}
}

// newRNG seeds the victim picker from the OS, so two replicas or restarts never pick alike.
func newRNG() *rand.Rand {
	var seed [16]byte
	_, _ = crand.Read(seed[:]) // never fails on Linux
	return rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
}

// kubeConfig finds the API server: the in-cluster service account when in a pod, otherwise
// KUBECONFIG or ~/.kube/config. It also settles an unresolved s.scope, reading the service account's
// namespace from saNamespace (a parameter so that tests do not depend on where they run).
// It reads only local files.
func kubeConfig(s *settings, saNamespace string) (*rest.Config, error) {
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
	cfg, err := loader.ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		// client-go's own message suggests KUBERNETES_MASTER, which macaque does not read.
		return nil, errors.New("find the Kubernetes API: not in a pod with a service account, and no kubeconfig at KUBECONFIG or ~/.kube/config")
	}
	if err != nil {
		return nil, fmt.Errorf("find the Kubernetes API (in-cluster service account, KUBECONFIG or ~/.kube/config): %w", err)
	}
	if !s.scope.resolved() {
		ns := defaultNamespace(loader, saNamespace)
		if ns == "" {
			return nil, badSetting("NAMESPACE", "not set, and neither POD_NAMESPACE, a service account namespace nor the kubeconfig context names one")
		}
		s.scope.namespaces = []string{ns}
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "macaque"
	// Paging a large namespace takes one request per page, and a tick of maxVictims victims
	// makes about four small requests per victim (read-back, ReplicaSet, Deployment, delete):
	// client-go's default limit (5 per second) would make the kill wait on the client, not the
	// server, and even 50 per second would spend most of the tick's 10 s for picking.
	cfg.QPS, cfg.Burst = 100, 200
	return cfg, nil
}

// saNamespaceFile is where a pod's service account namespace is mounted.
const saNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// defaultNamespace is macaque's own namespace: POD_NAMESPACE, else the mounted service account's,
// else the one the kubeconfig context names explicitly. A chaos tool should not fall back to
// "default" by accident, so an implicit default counts as none.
func defaultNamespace(loader clientcmd.ClientConfig, saNamespace string) string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(saNamespace); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	raw, err := loader.RawConfig()
	if err != nil {
		return ""
	}
	if c := raw.Contexts[raw.CurrentContext]; c != nil {
		return c.Namespace
	}
	return ""
}

// preflight lists one pod and asks way for a dry-run kill, so an unknown namespace, missing
// RBAC or a proxy that mangles the list stops macaque at start with one clear line instead of
// failing at every tick.
func preflight(ctx context.Context, pods podAPI, namespace string, way terminator) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	_, err := pods.ListPage(ctx, kube.ListQuery{Namespace: namespace, Limit: 1}, func(string) {})
	if apierrors.IsForbidden(err) {
		return badSetting("NAMESPACE", "cannot list pods in %q (does the namespace exist, and does macaque's Role grant list there?): %v", namespace, err)
	}
	if err != nil {
		return fmt.Errorf("list pods in %q: %w", namespace, err)
	}
	return way.probe(ctx, namespace)
}
